"""What an encoder is: prompts in, fixed-size float32 vectors out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np


class Encoder(ABC):
    """A prompt encoder. ``name`` identifies it in caches and artifacts; it must change whenever
    the vectors it produces would change (other model, other normalisation)."""

    name: str

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of one embedding."""

    @abstractmethod
    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None) -> np.ndarray:
        """(len(texts), dim) float32 embeddings, in input order."""
