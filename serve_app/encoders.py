"""Build the encoder an artifact was trained with, from the name stored in the artifact.

Encoder names are those of ``router.embeddings`` (``Encoder.name``): ``hash:<dim>`` for the hashing
encoder, ``st:<model>`` (``st:<model>:raw`` unnormalised) for sentence-transformers. A model loaded
from a local path is named by its folder, so such an artifact needs the ``encoder`` app arg.
"""

from __future__ import annotations

from typing import Optional

from router.embeddings.base import Encoder


def build_encoder(artifact_encoder: str, override: Optional[str] = None, device: Optional[str] = None) -> Encoder:
    spec = override or artifact_encoder
    if spec.startswith("hash:"):
        from router.embeddings.hashing import HashingEncoder

        try:
            dim = int(spec.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"bad hashing encoder name {spec!r}; expected hash:<dim>") from None
        encoder: Encoder = HashingEncoder(dim)
    else:
        from router.embeddings.sentence_transformer import SentenceTransformerEncoder

        normalize = True
        model = spec
        if spec.startswith("st:"):
            model = spec[3:]
            if model.endswith(":raw"):
                model, normalize = model[: -len(":raw")], False
        encoder = SentenceTransformerEncoder(model, device=device, normalize=normalize)
    if encoder.name != artifact_encoder:
        raise ValueError(
            f"encoder {spec!r} produces embeddings named {encoder.name!r} but the artifact was trained on "
            f"{artifact_encoder!r}; set the app's `encoder` arg to that encoder"
        )
    return encoder


def max_tokens(encoder: Encoder) -> Optional[int]:
    """The encoder's input limit in tokens (text beyond it is not read), if it has one."""
    limit = getattr(encoder, "max_seq_length", None)
    return int(limit) if limit is not None and limit < 10**8 else None
