"""Fixtures for batch routing: a tiny router artifact trained here on the synthetic table with the
hashing encoder (no real model), and small request logs with broken rows."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def tiny_artifact(tmp_path_factory):
    from router.data.synthetic import make_synthetic_table
    from router.embeddings.cache import CachedEncoder
    from router.embeddings.hashing import HashingEncoder
    from router.model.artifact import save_artifact
    from router.model.config import TrainConfig
    from router.model.estimator import CrossAttentionPredictor

    base = tmp_path_factory.mktemp("artifact")
    table = make_synthetic_table(n=240, seed=1)
    encoder = CachedEncoder(HashingEncoder(64), cache_dir=base / "cache")
    X = encoder.embed(table.prompts)
    cfg = TrainConfig(hidden_dim=16, max_epochs=8, patience=8, batch_size=64, init_from_names=False, num_threads=1)
    predictor = CrossAttentionPredictor(cfg).fit(X, table.quality, table.cost, table.models)
    return str(save_artifact(predictor, base / "router", encoder_name=encoder.name, encoder_dim=encoder.dim))


GOOD_PROMPTS = [
    "math question: solve the integral of x squared",
    "code question: python function with a bug in the loop",
    "chat question: a coffee recipe for a holiday",
    "math question: prove the theorem about prime sums",
    "code question: debug the recursion in this class",
]


def write_jsonl(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def log_jsonl(tmp_path):
    """Five good rows (plain prompts, one without an id) and five broken ones, plus blank lines."""
    lines = [json.dumps({"id": f"r{i}", "prompt": p}) for i, p in enumerate(GOOD_PROMPTS[:4])]
    lines.append(json.dumps({"prompt": GOOD_PROMPTS[4]}))  # no id: gets <file>:<line>
    lines += [
        "{not json",  # not JSON
        json.dumps({"id": "b1"}),  # no prompt field
        json.dumps({"id": "b2", "prompt": "   "}),  # empty text
        json.dumps({"id": "b3", "prompt": 42}),  # wrong type
        json.dumps(["a", "list"]),  # not an object
        "",  # a blank line is not a row
    ]
    (tmp_path / "logs").mkdir()
    return write_jsonl(tmp_path / "logs" / "a.jsonl", lines)


@pytest.fixture
def log_messages_parquet(tmp_path):
    """Parquet with OpenAI ``messages``: three good rows, two broken (no text at all, null id)."""
    import pandas as pd

    def conv(text):
        return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]

    frame = pd.DataFrame(
        {
            "request_id": ["m0", "m1", "m2", "m3", None],
            "messages": [
                conv(GOOD_PROMPTS[0]),
                conv(GOOD_PROMPTS[1]),
                [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, {"role": "user", "content": GOOD_PROMPTS[2]}],
                [{"role": "assistant", "content": " "}, {"role": "user", "content": ""}],
                conv(GOOD_PROMPTS[3]),
            ],
        }
    )
    path = tmp_path / "pq" / "logs.parquet"
    path.parent.mkdir()
    frame.to_parquet(path)
    return path
