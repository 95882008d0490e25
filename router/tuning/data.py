"""What a search or a calibration works on: embedded prompts with their true quality and cost,
split into a fitting part and a validation part carved (seeded) from the training data.

The test half of a dataset (its ``split`` column, or RouterBench's seeded 70/30 per domain) is
never touched here: tuning only sees the training half, so `router eval` stays honest afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from router.data.table import RoutingTable


@dataclass
class Embedded:
    """Rows of a routing table with their embeddings."""

    X: np.ndarray  # (N, D) float32
    quality: np.ndarray  # (N, M)
    cost: np.ndarray  # (N, M) USD
    models: tuple[str, ...]
    prompts: list[str]
    # The rows' domains (``router.data.splits.domains``), when known.
    domains: np.ndarray | None = None
    # Validation only: True for rows of a training domain held out whole (``carve_domains``).
    held_out: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.X)

    def take(self, rows: np.ndarray) -> "Embedded":
        sub = lambda a: None if a is None else a[rows]  # noqa: E731
        return Embedded(self.X[rows], self.quality[rows], self.cost[rows], self.models, [self.prompts[i] for i in rows],
                        sub(self.domains), sub(self.held_out))  # fmt: skip


def embed_table(table: RoutingTable, encoder) -> Embedded:
    """``table`` with its prompts embedded by ``encoder`` (anything with ``embed(texts)``: a cached
    encoder or a :class:`router.core.Router`)."""
    from router.data.splits import domains

    return Embedded(
        np.asarray(encoder.embed(table.prompts), dtype=np.float32),
        np.asarray(table.quality, dtype=np.float64),
        np.asarray(table.cost, dtype=np.float64),
        tuple(table.models),
        list(table.prompts),
        domains(table.eval_names),
    )


def carve(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (fit rows, validation rows), both sorted; at least one row on each side."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    if n < 4:
        raise ValueError(f"need at least 4 training rows to carve a validation split, got {n}")
    from router.data.splits import split_rows

    return split_rows(n, fraction, seed)  # the same carve as training's own validation split


def training_half(table: RoutingTable, split: str = "auto") -> RoutingTable:
    """The training rows of ``table`` (``split='all'``: every row)."""
    if split == "all":
        return table
    from router.data.splits import train_test_split

    return train_test_split(table, split)[0]


def carve_domains(data: Embedded, fraction: float, seed: int, holdout_domains: int) -> tuple[Embedded, Embedded]:
    """(fit, validation) of ``data``: every row of ``holdout_domains`` training domains (a seeded
    pick; at most all but one domain) goes to validation whole, and a seeded ``fraction`` of the
    other rows joins it. ``validation.held_out`` marks the rows of the held-out domains, so a trial
    is scored both on prompts like its training prompts and on a domain it has never seen."""
    if data.domains is None or holdout_domains == 0:
        fit_rows, val_rows = carve(len(data), fraction, seed)
        val = data.take(val_rows)
        val.held_out = np.zeros(len(val), dtype=bool)
        return data.take(fit_rows), val
    names = sorted(set(data.domains.tolist()))
    k = min(int(holdout_domains), len(names) - 1)
    picked = {names[i] for i in np.random.default_rng(seed).permutation(len(names))[:k]}
    out = np.array([d in picked for d in data.domains], dtype=bool)
    rest = np.flatnonzero(~out)
    fit_local, val_local = carve(len(rest), fraction, seed)
    fit_rows = rest[fit_local]
    val_rows = np.sort(np.concatenate([rest[val_local], np.flatnonzero(out)]))
    val = data.take(val_rows)
    val.held_out = out[val_rows]
    return data.take(fit_rows), val
