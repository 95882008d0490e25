"""Router artifacts for the load runs, built quickly so the suite needs nothing pre-trained.

The service's speed does not depend on how well the router was trained (a forward pass costs the
same whatever the weights), so the suite trains a few epochs only:

- ``minilm``: the real encoder (all-MiniLM-L6-v2) on the bundled ``dcrouter`` table (9 models).
  Its embeddings come from the on-disk cache filled by the precompute run when present (instant);
  otherwise they are computed once (minutes on 2 cores).
- ``hash``: the model-free ``hash:64`` encoder on the synthetic 3-model table: for CI smoke tests.
"""

from __future__ import annotations

from pathlib import Path

ENCODERS = {"minilm": "all-MiniLM-L6-v2", "hash": "hash:64"}


def build_artifact(out_dir: str | Path, kind: str = "hash", epochs: int = 3, cache_dir=None, n_rows: int | None = None) -> Path:
    """Train a small cross-attention router and save it to ``out_dir`` (returned)."""
    from router.core import Router
    from router.model.config import TrainConfig

    if kind == "hash":
        from router.data.synthetic import make_synthetic_table
        from router.embeddings.cache import CachedEncoder
        from router.embeddings.hashing import HashingEncoder

        table = make_synthetic_table(n=n_rows or 300, seed=0)
        encoder = CachedEncoder(HashingEncoder(64), cache_dir=cache_dir) if cache_dir is not None else HashingEncoder(64)
    elif kind == "minilm":
        from router.data import load_table
        from router.embeddings import make_encoder

        table = load_table("dcrouter")
        if n_rows is not None:
            import numpy as np

            table = table.subset(np.arange(len(table.prompts)) < n_rows)
        encoder = make_encoder(ENCODERS["minilm"], device="cpu", cache_dir=cache_dir)
    else:
        raise ValueError(f"unknown artifact kind {kind!r}; use one of {sorted(ENCODERS)}")
    config = TrainConfig(max_epochs=epochs, patience=epochs, seed=0)
    router = Router.untrained(config, encoder)
    X = router.embed(table.prompts)
    return router.fit(X, table.quality, table.cost, list(table.models), prompts=table.prompts).save(out_dir)
