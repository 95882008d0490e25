"""Fixtures for tuning: the synthetic table embedded with the hashing encoder (no real model)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def embedded_synthetic(tmp_path_factory):
    from router.data.synthetic import make_synthetic_table
    from router.embeddings.cache import CachedEncoder
    from router.embeddings.hashing import HashingEncoder
    from router.tuning.data import embed_table

    encoder = CachedEncoder(HashingEncoder(64), cache_dir=tmp_path_factory.mktemp("emb"))
    return embed_table(make_synthetic_table(n=300, seed=0), encoder)
