"""Train/test splits.

* ``routerbench``: RouterBench's convention, a seeded 70/30 shuffle of sample ids within each
  domain (eval_name prefix group), so every domain is in both halves.
* ``column``: the table's own ``split`` column (``train``; ``test``/``val``/``validation`` are test).
* ``auto``: ``column`` when the column exists and has both halves, else ``routerbench``.
* leave-one-domain-out: for each domain, train on all other domains and test on that one.

A domain is an ``eval_name`` cut at its first ``-`` when other eval names share that prefix
(``mmlu-professional_law`` -> ``mmlu``, ``agentverse-mgsm`` -> ``agentverse``); otherwise the whole
name (``grade-school-math`` stays itself). RouterBench groups by prefix the same way
(``str.startswith``); the rule for lone names is ours so that domain labels stay readable.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterator

import numpy as np

from router.data.table import DataValidationError, RoutingTable

SPLIT_MODES = ("auto", "routerbench", "column")


def domains(eval_names) -> np.ndarray:
    """The domain of each eval name (see module docstring)."""
    names = [str(n) for n in eval_names]
    # How many distinct eval names share each prefix: a prefix names a domain only when shared.
    prefix_counts = Counter(n.split("-", 1)[0] for n in set(names))

    def domain(name: str) -> str:
        prefix = name.split("-", 1)[0]
        return prefix if "-" in name and prefix_counts[prefix] > 1 else name

    return np.array([domain(n) for n in names], dtype=object)


def routerbench_split(table: RoutingTable, train_fraction: float = 0.7, seed: int = 42) -> tuple[RoutingTable, RoutingTable]:
    """Seeded ``train_fraction`` / rest shuffle per domain, as RouterBench does."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    dom = domains(table.eval_names)
    is_train = np.zeros(len(table), dtype=bool)
    # One generator walked through the domains in sorted order: a fresh RandomState(seed) per
    # domain would hold out the same relative positions in every domain of the same size.
    rng = np.random.RandomState(seed)
    for d in sorted(set(dom)):
        rows = np.flatnonzero(dom == d)
        order = rng.permutation(len(rows))
        is_train[rows[order[: int(len(rows) * train_fraction)]]] = True
    return table.subset(is_train, f"{table.name}[train]"), table.subset(~is_train, f"{table.name}[test]")


def column_split(table: RoutingTable) -> tuple[RoutingTable, RoutingTable]:
    """The table's own ``split`` column."""
    if not table.has_split:
        raise DataValidationError(f"{table.name}: no 'split' column")
    is_train = table.frame["split"].to_numpy() == "train"
    return table.subset(is_train, f"{table.name}[train]"), table.subset(~is_train, f"{table.name}[test]")


def train_test_split(table: RoutingTable, mode: str = "auto", train_fraction: float = 0.7, seed: int = 42) -> tuple[RoutingTable, RoutingTable]:
    if mode not in SPLIT_MODES:
        raise ValueError(f"unknown split mode {mode!r}; choose one of {SPLIT_MODES}")
    if mode == "column" or (mode == "auto" and table.has_split and table.frame["split"].nunique() > 1):
        train, test = column_split(table)
        if len(train) == 0 or len(test) == 0:
            raise DataValidationError(f"{table.name}: the 'split' column leaves an empty train or test half")
        return train, test
    return routerbench_split(table, train_fraction, seed)


def leave_one_domain_out(table: RoutingTable) -> Iterator[tuple[str, RoutingTable, RoutingTable]]:
    """(domain, train = all other domains, test = that domain), in sorted domain order."""
    dom = domains(table.eval_names)
    names = sorted(set(dom))
    if len(names) < 2:
        raise DataValidationError(f"{table.name}: leave-one-domain-out needs at least 2 domains, found {names}")
    for d in names:
        held = dom == d
        yield d, table.subset(~held, f"{table.name}[not {d}]"), table.subset(held, f"{table.name}[{d}]")


def split_rows(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (fit rows, validation rows), both sorted; with val_fraction > 0 at least one row on each side."""
    n_val = int(round(n * val_fraction))
    if val_fraction > 0:
        n_val = min(max(n_val, 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def training_folds(n: int, domains=None, val_fraction: float = 0.2, domain_folds: int = 3, seed: int = 0
                   ) -> list[tuple[str, np.ndarray, np.ndarray]]:  # fmt: skip
    """Validation folds of ``n`` TRAINING rows, as (label, fit rows, held-out rows): a seeded
    ``val_fraction`` carve (``random``: prompts like the training prompts), then up to
    ``domain_folds`` leave-one-domain-out folds of ``domains`` (a seeded pick of the rows' domains,
    in sorted order; ``domain <name>``: a domain the fitted model never saw). No domain folds with
    ``domains`` None or fewer than 2 domains. The one place the knobs of issue 10's routers
    (ensemble shrinkage, the distance gate) and the variant study get their folds."""
    fit, val = split_rows(n, val_fraction, seed)
    out = [("random", fit, val)]
    if domains is None or domain_folds <= 0:
        return out
    dom = np.asarray(domains)
    if len(dom) != n:
        raise ValueError(f"domains has {len(dom)} entries for {n} training rows")
    names = sorted(set(dom.tolist()))
    if len(names) < 2:
        return out
    # A seeded subset of the domains, so the cost stays bounded on many domains.
    for i in sorted(np.random.default_rng(seed).permutation(len(names))[:domain_folds]):
        out.append((f"domain {names[i]}", np.flatnonzero(dom != names[i]), np.flatnonzero(dom == names[i])))
    return out
