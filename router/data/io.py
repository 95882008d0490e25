"""Readers for the wide layout: RouterBench pickle, Parquet, CSV and JSONL, plus bundled names."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from router.data.table import DataValidationError, RoutingTable, validate_frame
from router.datasets import BUNDLED, bundled_path

# Text formats re-infer types: keep ids and prompts as text ("007" must not become 7, a prompt
# that looks like a date must not become one).
_TEXT_COLUMNS = {"sample_id": str, "prompt": str, "eval_name": str, "split": str}


def _read_json(path: Path) -> pd.DataFrame:
    """``.json``: an array of records, or JSON lines under a ``.json`` name."""
    try:
        return pd.read_json(path, dtype=_TEXT_COLUMNS)
    except ValueError:
        return pd.read_json(path, lines=True, dtype=_TEXT_COLUMNS)


# Pickles execute code when loaded: read only files you trust (RouterBench's is verified by
# sha256 in router.data.fetch).
READERS = {
    ".pkl": pd.read_pickle,
    ".pickle": pd.read_pickle,
    ".parquet": pd.read_parquet,
    ".pq": pd.read_parquet,
    ".csv": lambda p: pd.read_csv(p, dtype=_TEXT_COLUMNS, keep_default_na=False, na_values=[""]),
    ".jsonl": lambda p: pd.read_json(p, lines=True, dtype=_TEXT_COLUMNS),
    ".json": _read_json,
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


def load_table(path: str | Path, name: str | None = None, drop_incomplete: bool = False) -> RoutingTable:
    """Read and validate a routing table from a file or a bundled dataset name.

    ``drop_incomplete``: drop rows with a missing score or cost instead of failing (see
    :func:`validate_frame`)."""
    p = resolve_path(path)
    return validate_frame(read_frame(p), name or p.stem, drop_incomplete=drop_incomplete)
