"""Open routing datasets vendored with the package (see README.md in this folder for provenance)."""

from __future__ import annotations

from pathlib import Path

DATASETS_DIR = Path(__file__).resolve().parent
BUNDLED = {
    "dcrouter": DATASETS_DIR / "dcrouter.parquet",
    "routellm": DATASETS_DIR / "routellm.parquet",
}


def bundled_path(name: str) -> Path | None:
    """The file of a bundled dataset called ``name`` (e.g. ``dcrouter``), or None."""
    return BUNDLED.get(name)
