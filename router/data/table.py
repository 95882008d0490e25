"""The canonical routing table: RouterBench's wide layout, validated.

One row per prompt: ``sample_id``, ``prompt``, ``eval_name``, optional ``split``, and per model
``<model>`` (quality in [0, 1]) and ``<model>|total_cost`` (USD). The pool of models is read from
the columns: every ``<model>|total_cost`` column names a model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

COST_SUFFIX = "|total_cost"
RESPONSE_SUFFIX = "|model_response"
REQUIRED_COLUMNS = ("sample_id", "prompt", "eval_name")
# Columns RouterBench (or our own files) carry that are neither a model score nor a cost.
_MISSING_SPELLINGS = frozenset({"", "nan", "na", "n/a", "none", "null"})
METADATA_COLUMNS = frozenset({"split", "oracle_model_to_route_to", "source", "category"})


log = logging.getLogger(__name__)


class DataValidationError(ValueError):
    """The table does not follow the wide layout; the message names the column and the row."""


@dataclass(frozen=True)
class RoutingTable:
    """A validated routing table. ``frame`` is never mutated after construction."""

    frame: pd.DataFrame
    models: tuple[str, ...]
    name: str = "data"

    # -- views -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frame)

    @property
    def prompts(self) -> list[str]:
        return self.frame["prompt"].tolist()

    @property
    def sample_ids(self) -> np.ndarray:
        return self.frame["sample_id"].to_numpy()

    @property
    def eval_names(self) -> np.ndarray:
        return self.frame["eval_name"].to_numpy()

    @property
    def has_split(self) -> bool:
        return "split" in self.frame.columns

    @property
    def quality(self) -> np.ndarray:
        """(N, M) float64 quality of each model's answer, in pool order."""
        return self.frame[list(self.models)].to_numpy(dtype=np.float64)

    @property
    def cost(self) -> np.ndarray:
        """(N, M) float64 cost in USD of each model's answer, in pool order."""
        return self.frame[[m + COST_SUFFIX for m in self.models]].to_numpy(dtype=np.float64)

    def subset(self, mask: np.ndarray | Sequence[bool] | Sequence[int], name: str | None = None) -> "RoutingTable":
        """Rows selected by a boolean mask or by positions; same pool."""
        mask = np.asarray(mask)
        rows = self.frame.iloc[np.flatnonzero(mask)] if mask.dtype == bool else self.frame.iloc[mask]
        return RoutingTable(rows.reset_index(drop=True), self.models, name or self.name)

    def with_models(self, models: Sequence[str]) -> "RoutingTable":
        """The same prompts with a sub-pool of models (e.g. to hold a model out)."""
        unknown = [m for m in models if m not in self.models]
        if unknown:
            raise DataValidationError(f"unknown model(s) {unknown}; the pool is {list(self.models)}")
        keep = [c for c in self.frame.columns if not _is_model_column(c, self.models) or _model_of(c) in models]
        return RoutingTable(self.frame[keep].copy(), tuple(models), self.name)


def _model_of(column: str) -> str:
    for suffix in (COST_SUFFIX, RESPONSE_SUFFIX):
        if column.endswith(suffix):
            return column[: -len(suffix)]
    return column


def _is_model_column(column: str, models: Sequence[str]) -> bool:
    return _model_of(column) in models and column not in REQUIRED_COLUMNS


def _row_label(frame: pd.DataFrame, position: int) -> str:
    sid = frame["sample_id"].iloc[position] if "sample_id" in frame.columns else None
    return f"row {position} (sample_id={sid!r})"


def _show(value) -> str:
    """A cell for an error message: ``inf`` rather than ``np.float64(inf)``."""
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return repr(value)


def _looks_numeric(column: pd.Series) -> bool:
    """Every present value is a number (or a numeric string, as in RouterBench's ``object``
    score columns) and at least one value is present."""
    present = column.notna()
    return bool(present.any()) and bool(pd.to_numeric(column[present], errors="coerce").notna().all())


def _prompt_text(prompt):
    """A prompt stored as a list of turns (a multi-turn chat) becomes one text, turns separated by a
    blank line; anything else is left for the empty-prompt check."""
    if isinstance(prompt, (list, tuple, np.ndarray)) and len(prompt) and all(isinstance(t, str) for t in prompt):
        return "\n\n".join(prompt)
    return prompt


def validate_frame(frame: pd.DataFrame, name: str = "data", drop_incomplete: bool = False) -> RoutingTable:
    """Check a raw wide-layout frame and return a :class:`RoutingTable`.

    Raises :class:`DataValidationError` naming the column and the first offending row for: a
    missing required column, a model score column without its cost column (or the reverse), a
    quality outside [0, 1], a NaN (or infinite) score or cost, a negative cost, a missing or
    duplicate ``sample_id`` and an empty prompt. Score columns stored as ``object`` (RouterBench's
    pickles) are converted to float64; ``<model>|model_response`` and ``oracle_model_to_route_to``
    columns are kept as they are.

    ``drop_incomplete=True`` drops rows with a missing score or cost instead of raising (the
    published 5-shot RouterBench file is reported to have a few such rows); every other check
    still raises. Off by default so that a hole in the data is never silently skipped.
    """
    frame = _check_columns(frame.reset_index(drop=True), name)
    models = _model_columns(frame, name)
    frame = _check_ids_prompts_names(frame.copy(), name)
    frame, numeric = _numeric_scores(frame, models, name, drop_incomplete)
    for col, values in numeric.items():
        frame[col] = _check_range(frame, col, values.to_numpy(), name, drop_incomplete)
    if "split" in frame.columns:
        frame["split"] = _check_split(frame, name)
    return RoutingTable(frame, models, name)


def _check_columns(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Column names as strings, none twice, the required ones present, at least one row."""
    # Non-string column names (ints in a hand-made pickle) would break the suffix tests below.
    frame.columns = [str(c) for c in frame.columns]
    if frame.columns.duplicated().any():
        dup = frame.columns[frame.columns.duplicated()][0]
        raise DataValidationError(f"{name}: column {dup!r} appears more than once")
    for col in REQUIRED_COLUMNS:
        if col not in frame.columns:
            raise DataValidationError(f"{name}: missing required column {col!r}")
    if len(frame) == 0:
        raise DataValidationError(f"{name}: the table has no rows")
    return frame


def _model_columns(frame: pd.DataFrame, name: str) -> tuple[str, ...]:
    """The pool, read from the ``<model>|total_cost`` columns, each with its quality column."""
    cost_cols = [c for c in frame.columns if c.endswith(COST_SUFFIX)]
    models = tuple(c[: -len(COST_SUFFIX)] for c in cost_cols)
    for model, cost_col in zip(models, cost_cols):
        if model not in frame.columns:
            raise DataValidationError(f"{name}: cost column {cost_col!r} has no quality column {model!r}")
    # A numeric column that is neither required, metadata, a cost nor a response looks like a
    # model score whose cost column is missing: say so rather than silently dropping a model.
    for col in frame.columns:
        if col in REQUIRED_COLUMNS or col in METADATA_COLUMNS or "|" in col or col in models:
            continue
        if _looks_numeric(frame[col]):
            raise DataValidationError(
                f"{name}: column {col!r} looks like a model's quality but has no {col + COST_SUFFIX!r} cost column"
            )
    if not models:
        raise DataValidationError(f"{name}: no model columns (expected '<model>' and '<model>{COST_SUFFIX}')")
    return models


def _check_ids_prompts_names(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Unique ``sample_id`` strings, non-empty prompt texts, an ``eval_name`` on every row."""
    if frame["sample_id"].isna().any():
        pos = int(np.flatnonzero(frame["sample_id"].isna().to_numpy())[0])
        raise DataValidationError(f"{name}: column 'sample_id': missing value at row {pos}")
    frame["sample_id"] = frame["sample_id"].astype(str)
    dup = frame["sample_id"].duplicated()
    if dup.any():
        pos = int(np.flatnonzero(dup.to_numpy())[0])
        first = int(np.flatnonzero((frame["sample_id"] == frame["sample_id"].iloc[pos]).to_numpy())[0])
        raise DataValidationError(
            f"{name}: column 'sample_id': duplicate value at {_row_label(frame, pos)} (first seen at row {first})"
        )
    frame["prompt"] = frame["prompt"].map(_prompt_text)
    prompts = frame["prompt"]
    bad_prompt = prompts.isna() | ~prompts.map(lambda p: isinstance(p, str) and p.strip() != "")
    if bad_prompt.any():
        pos = int(np.flatnonzero(bad_prompt.to_numpy())[0])
        raise DataValidationError(f"{name}: column 'prompt': empty or missing prompt at {_row_label(frame, pos)}")
    if frame["eval_name"].isna().any():
        pos = int(np.flatnonzero(frame["eval_name"].isna().to_numpy())[0])
        raise DataValidationError(f"{name}: column 'eval_name': missing value at {_row_label(frame, pos)}")
    frame["eval_name"] = frame["eval_name"].astype(str)
    return frame


def _numeric_scores(frame: pd.DataFrame, models, name: str, drop_incomplete: bool) -> tuple[pd.DataFrame, dict]:
    """Every score and cost column as float64 (text that is no number is an error), and the frame
    without incomplete rows when ``drop_incomplete``."""
    numeric = {}
    for model in models:
        for col in (model, model + COST_SUFFIX):
            values = pd.to_numeric(frame[col], errors="coerce")
            # Text that is not a number is an error even with drop_incomplete; "nan"/"null" text
            # (a CSV or JSON spelling of a missing cell) counts as missing.
            raw = frame[col]
            bad_text = values.isna() & raw.notna()
            if bad_text.any():  # only the few unparsed cells are looked at, not the whole column
                bad_text &= ~raw.map(lambda v: isinstance(v, str) and v.strip().lower() in _MISSING_SPELLINGS)
            if bad_text.any():
                pos = int(np.flatnonzero(bad_text.to_numpy())[0])
                raise DataValidationError(
                    f"{name}: column {col!r}: non-numeric value {_show(frame[col].iloc[pos])} at {_row_label(frame, pos)}"
                )
            numeric[col] = values.astype(np.float64)
    if drop_incomplete:
        complete = np.logical_and.reduce([v.notna().to_numpy() for v in numeric.values()])
        if not complete.all():
            log.warning("%s: dropping %d of %d rows with a missing score or cost", name, int((~complete).sum()), len(frame))
            frame = frame[complete].reset_index(drop=True)
            numeric = {c: v[complete].reset_index(drop=True) for c, v in numeric.items()}
            if len(frame) == 0:
                raise DataValidationError(f"{name}: no row has every score and cost")
    return frame, numeric


def _check_range(frame: pd.DataFrame, col: str, arr: np.ndarray, name: str, drop_incomplete: bool) -> np.ndarray:
    """A score or cost column that is finite, and in [0, 1] (quality) or >= 0 (cost)."""
    is_cost = col.endswith(COST_SUFFIX)
    not_finite = ~np.isfinite(arr)
    if not_finite.any():
        pos = int(np.flatnonzero(not_finite)[0])
        hint = "" if drop_incomplete or np.isinf(arr[pos]) else " (drop_incomplete=True / --drop-incomplete drops such rows)"
        raise DataValidationError(
            f"{name}: column {col!r}: NaN or infinite value {_show(frame[col].iloc[pos])} at {_row_label(frame, pos)}{hint}"
        )
    out = arr < 0 if is_cost else (arr < 0) | (arr > 1)
    if out.any():
        pos = int(np.flatnonzero(out)[0])
        what = "negative cost" if is_cost else "quality outside [0, 1]"
        raise DataValidationError(f"{name}: column {col!r}: {what} ({float(arr[pos])!r}) at {_row_label(frame, pos)}")
    return arr


def _check_split(frame: pd.DataFrame, name: str) -> pd.Series:
    splits = frame["split"].astype(str)
    bad = ~splits.isin(["train", "test", "val", "validation"])
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataValidationError(
            f"{name}: column 'split': value {splits.iloc[pos]!r} at {_row_label(frame, pos)} is not train/test/val"
        )
    return splits
