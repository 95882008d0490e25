"""table_info: the numbers `router data info` prints, on a hand-computed table."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from router.data.stats import format_info, table_info
from router.data.table import validate_frame


@pytest.fixture
def table():
    # 4 prompts, models a (cheap) and b (dear). Oracle: a, b, none, a.
    return validate_frame(
        pd.DataFrame(
            {
                "sample_id": ["p0", "p1", "p2", "p3"],
                "prompt": ["w", "x", "y", "z"],
                "eval_name": ["mmlu-law", "mmlu-math", "gsm8k", "gsm8k"],
                "split": ["train", "train", "train", "test"],
                "a": [1.0, 0.0, 0.0, 1.0],
                "a|total_cost": [1.0, 1.0, 1.0, 1.0],
                "b": [1.0, 1.0, 0.0, 0.5],
                "b|total_cost": [3.0, 3.0, 3.0, 5.0],
            }
        ),
        "hand",
    )


def test_table_info_by_hand(table):
    info = table_info(table)
    assert info["rows"] == 4 and info["eval_names"] == 3
    assert info["domains"] == {"gsm8k": 2, "mmlu": 2}
    assert info["split"] == {"test": 1, "train": 3}
    assert info["models"]["a"] == {"mean_quality": 0.5, "mean_cost": 1.0, "total_cost": 4.0, "oracle_share": 0.5}
    assert info["models"]["b"] == pytest.approx({"mean_quality": 0.625, "mean_cost": 3.5, "total_cost": 14.0, "oracle_share": 0.25})
    assert info["oracle"] == pytest.approx({"quality": 0.75, "total_cost": 5.0, "mean_cost": 1.25, "unanswerable": 0.25})
    json.dumps(info)  # JSON-ready as is


def test_format_info_lists_every_model_and_domain(table):
    text = format_info(table_info(table))
    assert text.splitlines()[0] == "hand: 4 prompts, 2 models, 2 domains (3 eval names)"
    assert "oracle" in text and "0.7500" in text and "gsm8k" in text and "mmlu" in text
    # Models are listed cheapest first.
    assert text.index("\na ") < text.index("\nb ")
