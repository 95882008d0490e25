"""The on-disk embedding cache: a second run embeds nothing, encoders never share entries, and two
instances can use one cache at the same time."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest

from router.embeddings.cache import CachedEncoder, EmbeddingCache, default_cache_dir
from router.embeddings.hashing import HashingEncoder

PROMPTS = [f"prompt {i} about {topic}" for i, topic in enumerate(["math", "code", "chat", "law"] * 10)]


def test_second_run_embeds_nothing(tmp_path, counting):
    first = counting()
    a = CachedEncoder(first, cache_dir=tmp_path).embed(PROMPTS)
    assert len(first.seen) == len(PROMPTS)

    # A fresh instance (as in a new process) over the same directory.
    second = counting()
    cached = CachedEncoder(second, cache_dir=tmp_path)
    b = cached.embed(PROMPTS)
    assert second.seen == []
    assert cached.stats.encoded == 0 and cached.stats.hits == len(PROMPTS)
    np.testing.assert_array_equal(a, b)


def test_only_new_texts_are_embedded_and_order_is_kept(tmp_path, counting):
    enc = counting()
    cached = CachedEncoder(enc, cache_dir=tmp_path)
    cached.embed(PROMPTS[:10])
    mixed = [PROMPTS[12], PROMPTS[3], PROMPTS[12], PROMPTS[11]]
    out = cached.embed(mixed)
    assert enc.seen[10:] == [PROMPTS[12], PROMPTS[11]]  # each new text once, duplicates collapsed
    np.testing.assert_array_equal(out, HashingEncoder(16).encode(mixed))
    assert out.dtype == np.float32


def test_hashing_encoder_through_cache_matches_direct(tmp_path):
    cached = CachedEncoder(HashingEncoder(64), cache_dir=tmp_path)
    np.testing.assert_array_equal(cached.embed(PROMPTS), HashingEncoder(64).encode(PROMPTS))
    np.testing.assert_array_equal(cached.embed(PROMPTS), HashingEncoder(64).encode(PROMPTS))
    assert cached.stats.encoded == len(set(PROMPTS)) and len(cached.cache) == len(set(PROMPTS))


def test_empty_input(tmp_path):
    assert CachedEncoder(HashingEncoder(8), cache_dir=tmp_path).embed([]).shape == (0, 8)


def test_different_encoders_do_not_share_entries(tmp_path, counting):
    small, large = counting(16), counting(32)
    CachedEncoder(small, cache_dir=tmp_path).embed(PROMPTS)
    out = CachedEncoder(large, cache_dir=tmp_path).embed(PROMPTS)
    assert len(large.seen) == len(PROMPTS) and out.shape == (len(PROMPTS), 32)
    assert small.name != large.name


def test_names_that_slug_alike_get_separate_files(tmp_path, counting):
    one, two = counting(16, name="enc:a"), counting(16, name="enc/a")
    CachedEncoder(one, cache_dir=tmp_path).embed(PROMPTS[:5])
    cached_two = CachedEncoder(two, cache_dir=tmp_path)
    cached_two.embed(PROMPTS[:5])
    assert len(two.seen) == 5  # no hit on the other encoder's vectors
    assert cached_two.cache.path != CachedEncoder(one, cache_dir=tmp_path).cache.path
    # Each name finds its own file again.
    assert CachedEncoder(counting(16, name="enc/a"), cache_dir=tmp_path).cache.path == cached_two.cache.path


def test_two_instances_at_once(tmp_path, counting):
    """Two CachedEncoders over one cache directory, each used from two threads at the same time."""
    encoders = [counting(), counting()]
    instances = [CachedEncoder(e, cache_dir=tmp_path, batch_size=4) for e in encoders]
    results: dict[tuple[int, int], np.ndarray] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def work(i: int, j: int) -> None:
        try:
            barrier.wait()
            texts = PROMPTS[j * 10 :] + PROMPTS[: j * 10]  # overlapping, in a different order
            for _ in range(3):
                results[i, j] = instances[i].embed(texts)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, j)) for i in range(2) for j in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    expected = HashingEncoder(16).encode(PROMPTS)
    for (i, j), out in results.items():
        np.testing.assert_array_equal(out, np.roll(expected, -j * 10, axis=0))
    assert len(EmbeddingCache(encoders[0].name, tmp_path)) == len(set(PROMPTS))
    # Later calls were all hits: each text was embedded a bounded number of times, not per call.
    assert sum(len(e.seen) for e in encoders) <= 4 * len(PROMPTS)
    fresh = counting()
    CachedEncoder(fresh, cache_dir=tmp_path).embed(PROMPTS)
    assert fresh.seen == []


def test_pickled_cache_reopens_the_same_file(tmp_path):
    """As when a CachedEncoder is shipped to a Ray worker."""
    cached = CachedEncoder(HashingEncoder(16), cache_dir=tmp_path)
    cached.embed(PROMPTS)
    copy = pickle.loads(pickle.dumps(cached))
    before = copy.stats.encoded
    copy.embed(PROMPTS)
    assert copy.stats.encoded == before and copy.cache.path == cached.cache.path


def test_default_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTER_CACHE_DIR", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    assert EmbeddingCache("hash:4").path.parent == tmp_path / "here"


def test_hashing_encoder_rejects_tiny_dim():
    with pytest.raises(ValueError, match="dim must be >= 2"):
        HashingEncoder(1)
