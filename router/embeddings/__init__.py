"""Prompt embeddings: pluggable encoders and an on-disk cache."""

from router.embeddings.base import Encoder
from router.embeddings.cache import CachedEncoder, EmbeddingCache
from router.embeddings.sentence_transformer import DEFAULT_ENCODER, SentenceTransformerEncoder


def make_encoder(model: str = DEFAULT_ENCODER, device: str | None = None, cache_dir=None, batch_size: int = 64) -> CachedEncoder:
    """The standard encoder stack: a sentence-transformers model behind the on-disk cache.
    ``hash:<dim>`` selects the model-free ``HashingEncoder`` (tests and smoke runs)."""
    if model.startswith("hash:"):
        from router.embeddings.hashing import HashingEncoder

        dim = model.split(":", 1)[1]
        if not dim.isdigit():
            raise ValueError(f"encoder {model!r}: expected hash:<dim> with an integer dim, e.g. hash:64")
        return CachedEncoder(HashingEncoder(int(dim)), cache_dir=cache_dir, batch_size=batch_size)
    return CachedEncoder(SentenceTransformerEncoder(model, device=device), cache_dir=cache_dir, batch_size=batch_size)


__all__ = ["CachedEncoder", "DEFAULT_ENCODER", "EmbeddingCache", "Encoder", "SentenceTransformerEncoder", "make_encoder"]
