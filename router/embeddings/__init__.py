"""Prompt embeddings: pluggable encoders and an on-disk cache."""

from router.embeddings.base import Encoder
from router.embeddings.cache import CachedEncoder, EmbeddingCache
from router.embeddings.sentence_transformer import DEFAULT_ENCODER, SentenceTransformerEncoder


def encoder_from_name(name: str = DEFAULT_ENCODER, device: str | None = None) -> Encoder:
    """An encoder from its name, the one place names are parsed: ``hash:<dim>`` (the model-free
    ``HashingEncoder``, for tests and smoke runs), ``st:<model>`` / ``st:<model>:raw`` (an
    ``Encoder.name`` as stored in artifacts; ``:raw`` = unnormalised), or a bare
    sentence-transformers model name or path."""
    if name.startswith("hash:"):
        from router.embeddings.hashing import HashingEncoder

        dim = name.split(":", 1)[1]
        if not dim.isdigit():
            raise ValueError(f"encoder {name!r}: expected hash:<dim> with an integer dim, e.g. hash:64")
        return HashingEncoder(int(dim))
    model, normalize = name, True
    if name.startswith("st:"):
        model = name[3:]
        if model.endswith(":raw"):
            model, normalize = model[: -len(":raw")], False
    return SentenceTransformerEncoder(model, device=device, normalize=normalize)


def make_encoder(model: str = DEFAULT_ENCODER, device: str | None = None, cache_dir=None, batch_size: int = 64) -> CachedEncoder:
    """The standard encoder stack: the encoder named ``model`` (see ``encoder_from_name``) behind
    the on-disk cache."""
    return CachedEncoder(encoder_from_name(model, device), cache_dir=cache_dir, batch_size=batch_size)


__all__ = ["CachedEncoder", "DEFAULT_ENCODER", "EmbeddingCache", "Encoder", "SentenceTransformerEncoder", "encoder_from_name", "make_encoder"]
