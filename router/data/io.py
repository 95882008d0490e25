"""Readers for the wide layout: RouterBench pickle, Parquet, CSV and JSONL, plus bundled names."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from router.data.table import DataValidationError, RoutingTable, validate_frame
from router.datasets import BUNDLED, bundled_path

READERS = {
    ".pkl": pd.read_pickle,
    ".pickle": pd.read_pickle,
    ".parquet": pd.read_parquet,
    ".pq": pd.read_parquet,
    ".csv": pd.read_csv,
    ".jsonl": lambda p: pd.read_json(p, lines=True),
    ".json": lambda p: pd.read_json(p, lines=str(p).endswith("l")),
}


def resolve_path(path: str | Path) -> Path:
    """A file path, or the file of a bundled dataset name (``dcrouter``, ``routellm``)."""
    text = str(path)
    bundled = bundled_path(text)
    if bundled is not None and not Path(text).exists():
        return bundled
    p = Path(text).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"no such data file: {text} (bundled datasets: {', '.join(sorted(BUNDLED))})")
    return p


def read_frame(path: str | Path) -> pd.DataFrame:
    p = resolve_path(path)
    reader = READERS.get(p.suffix.lower())
    if reader is None:
        raise DataValidationError(f"{p}: unsupported file type {p.suffix!r}; use one of {sorted(READERS)}")
    try:
        frame = reader(p)
    except Exception as exc:  # a corrupt file is a data error, not a crash
        raise DataValidationError(f"{p}: cannot be read as {p.suffix}: {exc}") from exc
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(f"{p}: holds a {type(frame).__name__}, not a table")
    return frame


def load_table(path: str | Path, name: str | None = None) -> RoutingTable:
    """Read and validate a routing table from a file or a bundled dataset name."""
    p = resolve_path(path)
    return validate_frame(read_frame(p), name or p.stem)
