"""A small synthetic routing table with real structure, for tests and smoke runs.

Three domains with their own vocabulary and three models: ``small`` (cheap, good only at chat),
``medium`` (mid price, good at chat and code) and ``large`` (expensive, good at everything). A
router that reads the prompt can beat any single model's cost-quality trade-off; a random one cannot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from router.data.table import COST_SUFFIX, RoutingTable, validate_frame

VOCAB = {
    "math": "integral derivative equation solve prove theorem matrix prime sum algebra".split(),
    "code": "python function bug compile loop array class recursion debug api".split(),
    "chat": "hello recipe travel movie weather friend story music holiday coffee".split(),
}
# P(correct) per domain and model; price per prompt in USD.
SKILL = {
    "small": {"math": 0.10, "code": 0.20, "chat": 0.85},
    "medium": {"math": 0.35, "code": 0.85, "chat": 0.85},
    "large": {"math": 0.90, "code": 0.90, "chat": 0.90},
}
PRICE = {"small": 1e-5, "medium": 1e-4, "large": 1e-3}


def make_synthetic_frame(n: int = 300, seed: int = 0, with_split: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    domains = list(VOCAB)
    rows = []
    for i in range(n):
        dom = domains[i % len(domains)]
        words = rng.choice(VOCAB[dom], size=int(rng.integers(4, 9)))
        row = {"sample_id": f"s{i}", "prompt": f"{dom} question {i}: " + " ".join(words), "eval_name": dom}
        for model, skill in SKILL.items():
            row[model] = float(rng.random() < skill[dom])
            row[model + COST_SUFFIX] = PRICE[model] * float(rng.uniform(0.8, 1.2))
        if with_split:
            row["split"] = "train" if rng.random() < 0.7 else "test"
        rows.append(row)
    return pd.DataFrame(rows)


def make_synthetic_table(n: int = 300, seed: int = 0, with_split: bool = False) -> RoutingTable:
    return validate_frame(make_synthetic_frame(n, seed, with_split), name="synthetic")
