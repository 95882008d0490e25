"""A lexical hashing encoder: bag of words hashed into ``dim`` buckets, L2-normalised.

No model, no download, microseconds per prompt. It is for tests and smoke runs (and as a floor
to compare real encoders against), not for production routing.
"""

from __future__ import annotations

import hashlib
import re
from typing import Sequence

import numpy as np

from router.embeddings.base import Encoder

_WORD = re.compile(r"[a-z0-9]+")


class HashingEncoder(Encoder):
    def __init__(self, dim: int = 64):
        if dim < 2:
            raise ValueError(f"dim must be >= 2, got {dim}")
        self._dim = dim
        self.name = f"hash:{dim}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_seq_length(self) -> int:
        return 10**9

    def _bucket(self, word: str) -> tuple[int, float]:
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        return h % self._dim, 1.0 if (h >> 32) & 1 else -1.0

    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                j, sign = self._bucket(word)
                out[i, j] += sign
            norm = np.linalg.norm(out[i])
            if norm > 0:
                out[i] /= norm
        return out
