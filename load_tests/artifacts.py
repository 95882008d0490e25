"""Router artifacts for the load runs, built quickly so the suite needs nothing pre-trained.

The service's speed does not depend on how well the router was trained (a forward pass costs the
same whatever the weights), so the suite trains a few epochs only:

- ``minilm``: the real encoder (all-MiniLM-L6-v2) on the bundled ``dcrouter`` table (9 models).
  Its embeddings come from the on-disk cache filled by the precompute run when present (instant);
  otherwise they are computed once (minutes on 2 cores).
- ``hash``: the model-free ``hash:64`` encoder on the synthetic 3-model table: for CI smoke tests.
- ``hash:<dim>``: a model-free encoder on ``dcrouter`` (9 models, like ``minilm``); ``hash:384`` has
  all-MiniLM-L6-v2's width, so the service moves the same bytes and answers the same pool as with
  the real encoder but spends nothing on encoding: Serve's own cost (a stand-in for a GPU encoder).
"""

from __future__ import annotations

from pathlib import Path

ENCODERS = {"minilm": "all-MiniLM-L6-v2", "hash": "hash:64"}


def encoder_name(kind: str) -> str:
    """The encoder an artifact kind is trained on: ``minilm``, ``hash`` (hash:64) or ``hash:<dim>``."""
    if kind in ENCODERS:
        return ENCODERS[kind]
    if kind.startswith("hash:") and kind[5:].isdigit() and int(kind[5:]) >= 2:
        return kind
    raise ValueError(f"unknown artifact kind {kind!r}; use one of {sorted(ENCODERS)} or hash:<dim>")


def build_artifact(out_dir: str | Path, kind: str = "hash", epochs: int = 3, cache_dir=None, n_rows: int | None = None) -> Path:
    """Train a small cross-attention router and save it to ``out_dir`` (returned)."""
    from router.core import Router
    from router.model.config import TrainConfig

    name = encoder_name(kind)
    if kind == "hash":
        from router.data.synthetic import make_synthetic_table
        from router.embeddings.cache import CachedEncoder
        from router.embeddings.hashing import HashingEncoder

        table = make_synthetic_table(n=n_rows or 300, seed=0)
        dim = int(name.split(":", 1)[1])
        encoder = CachedEncoder(HashingEncoder(dim), cache_dir=cache_dir) if cache_dir is not None else HashingEncoder(dim)
    else:
        from router.data import load_table
        from router.embeddings import make_encoder

        table = load_table("dcrouter")
        if n_rows is not None:
            import numpy as np

            table = table.subset(np.arange(len(table.prompts)) < n_rows)
        encoder = make_encoder(name, device="cpu", cache_dir=cache_dir)
    config = TrainConfig(max_epochs=epochs, patience=epochs, seed=0)
    router = Router.untrained(config, encoder)
    X = router.embed(table.prompts)
    return router.fit(X, table.quality, table.cost, list(table.models), prompts=table.prompts).save(out_dir)
