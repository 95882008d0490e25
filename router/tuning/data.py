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

    def __len__(self) -> int:
        return len(self.X)

    def take(self, rows: np.ndarray) -> "Embedded":
        return Embedded(self.X[rows], self.quality[rows], self.cost[rows], self.models, [self.prompts[i] for i in rows])


def embed_table(table: RoutingTable, encoder) -> Embedded:
    """``table`` with its prompts embedded by ``encoder`` (anything with ``embed(texts)``: a cached
    encoder or a :class:`router.core.Router`)."""
    return Embedded(
        np.asarray(encoder.embed(table.prompts), dtype=np.float32),
        np.asarray(table.quality, dtype=np.float64),
        np.asarray(table.cost, dtype=np.float64),
        tuple(table.models),
        list(table.prompts),
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
