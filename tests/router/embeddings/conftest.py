"""A counting encoder: records every text it is asked to embed, to prove cache hits."""

from __future__ import annotations

import threading

import pytest

from router.embeddings.hashing import HashingEncoder


class CountingEncoder(HashingEncoder):
    def __init__(self, dim: int = 16, name: str | None = None):
        super().__init__(dim)
        if name is not None:
            self.name = name
        self.seen: list[str] = []
        self._count_lock = threading.Lock()

    def encode(self, texts, batch_size=64, show_progress=None):
        with self._count_lock:
            self.seen.extend(texts)
        return super().encode(texts, batch_size, show_progress)


@pytest.fixture
def counting():
    return CountingEncoder
