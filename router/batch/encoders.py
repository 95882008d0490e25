"""Rebuild the encoder an artifact was trained with from its recorded name.

Names are ``Encoder.name`` values: ``st:<model>`` (sentence-transformers; the default
``st:all-MiniLM-L6-v2`` loads offline) and ``hash:<dim>`` (the model-free test encoder). A bare
model name or path is read as a sentence-transformers model.
"""

from __future__ import annotations

from pathlib import Path

from router.embeddings.cache import CachedEncoder


def build_encoder(name: str, device: str | None = None, cache_dir: str | Path | None = None, batch_size: int = 64) -> CachedEncoder:
    from router.embeddings.hashing import HashingEncoder
    from router.embeddings.sentence_transformer import SentenceTransformerEncoder

    if name.startswith("hash:"):
        try:
            dim = int(name.split(":", 1)[1])
        except ValueError as exc:
            raise ValueError(f"encoder name {name!r}: expected hash:<dim>") from exc
        base = HashingEncoder(dim)
    else:
        model = name[3:] if name.startswith("st:") else name
        normalize = not model.endswith(":raw")
        base = SentenceTransformerEncoder(model.removesuffix(":raw"), device=device, normalize=normalize)
    return CachedEncoder(base, cache_dir=cache_dir, batch_size=batch_size)
