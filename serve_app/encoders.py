"""Build the encoder an artifact was trained with, from the name stored in the artifact.

Encoder names are those of ``router.embeddings`` (``Encoder.name``): ``hash:<dim>`` for the hashing
encoder, ``st:<model>`` (``st:<model>:raw`` unnormalised) for sentence-transformers. A model loaded
from a local path is named by its folder, so such an artifact needs the ``encoder`` app arg.
"""

from __future__ import annotations

from typing import Optional

from router.embeddings import encoder_from_name
from router.embeddings.base import Encoder


def build_encoder(artifact_encoder: str, override: Optional[str] = None, device: Optional[str] = None) -> Encoder:
    spec = override or artifact_encoder
    try:
        encoder = encoder_from_name(spec, device=device)
    except ValueError as exc:
        raise ValueError(f"bad encoder name {spec!r}: {exc}") from None
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
