"""Fixtures of the cross-attention tests: the synthetic table embedded by the model-free hashing
encoder, and one small trained router shared by a test package (training takes ~1 s)."""

from __future__ import annotations

import pytest

FAST = dict(hidden_dim=16, max_epochs=25, patience=5, batch_size=64, dropout=0.0, lr=3e-3, seed=0)


@pytest.fixture(scope="session")
def fast():
    """A small, quick training config (dict of TrainConfig fields)."""
    return dict(FAST)


@pytest.fixture(scope="package")
def embedded_synthetic():
    from router.data.splits import routerbench_split
    from router.data.synthetic import make_synthetic_table
    from router.embeddings.hashing import HashingEncoder

    table = make_synthetic_table(n=300, seed=0)
    train, test = routerbench_split(table, seed=0)
    enc = HashingEncoder(32)
    return train, test, enc.encode(train.prompts), enc.encode(test.prompts), enc


@pytest.fixture(scope="package")
def trained(embedded_synthetic):
    from router.model.config import TrainConfig
    from router.model.estimator import CrossAttentionPredictor

    train, _, X, _, _ = embedded_synthetic
    return CrossAttentionPredictor(TrainConfig(**FAST)).fit(X, train.quality, train.cost, train.models)
