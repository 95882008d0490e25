"""Ledger stores behind one interface (``base.Ledger``): SQLite (default) and Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from serve_app.auth.ledger.base import Ledger, Period, RateResult, SpendResult

__all__ = ["Ledger", "Period", "RateResult", "SpendResult", "open_ledger", "ledger_kind"]


def ledger_kind(url: Optional[str]) -> str:
    return "redis" if url and url.startswith(("redis://", "rediss://", "unix://")) else "sqlite"


def open_ledger(url: Optional[str], default_path: Optional[str | Path] = None) -> Ledger:
    """``redis://…``/``rediss://…``: Redis; ``sqlite:///abs/path.db`` or a plain path: SQLite; None: SQLite at ``default_path``."""
    if ledger_kind(url) == "redis":
        from serve_app.auth.ledger.redis import RedisLedger

        return RedisLedger(url)
    from serve_app.auth.ledger.sqlite import SqliteLedger

    if url is None:
        if default_path is None:
            raise ValueError("no ledger_url and no default path for the SQLite ledger")
        return SqliteLedger(default_path)
    path = url[len("sqlite://"):] if url.startswith("sqlite://") else url
    if not path:
        raise ValueError("ledger_url sqlite:// needs a path, e.g. sqlite:///var/lib/router/ledger.sqlite")
    return SqliteLedger(path)
