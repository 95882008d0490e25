"""The embedded ledger: one SQLite file in WAL mode, shared by every replica (process) on the node.

Each operation is one ``BEGIN IMMEDIATE`` transaction: it takes the database's write lock before
reading, so two replicas checking the same budget at once are serialised and cannot both take the
last dollar. One connection per thread (sqlite3 connections are not shared across threads).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Optional, Sequence

from serve_app.auth.ledger.base import Ledger, Period, RateResult, SpendResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value REAL NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (id TEXT PRIMARY KEY, key_id TEXT NOT NULL, amount REAL NOT NULL, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS reservations_key ON reservations (key_id);
CREATE TABLE IF NOT EXISTS state (key_id TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _c(key_id: str, what: str) -> str:
    return f"{key_id}|{what}"


class SqliteLedger(Ledger):
    kind = "sqlite"

    def __init__(self, path: str | Path, busy_timeout_s: float = 10.0):
        self.path = Path(path).expanduser().resolve()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._ops = 0
        self._conn().executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves.
            db = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes; a power cut may lose the last commits
            self._local.db = db
        return db

    class _Tx:
        def __init__(self, db: sqlite3.Connection):
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type, exc, tb) -> None:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def _tx(self) -> "SqliteLedger._Tx":
        return self._Tx(self._conn())

    @staticmethod
    def _get(db: sqlite3.Connection, name: str, now: float) -> float:
        row = db.execute("SELECT value FROM counters WHERE name = ? AND expires_at > ?", (name, now)).fetchone()
        return float(row[0]) if row else 0.0

    @staticmethod
    def _add(db: sqlite3.Connection, name: str, amount: float, expires_at: float, now: float) -> None:
        # An expired row is a previous bucket of the same name: start again from 0.
        db.execute(
            "INSERT INTO counters (name, value, expires_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
            "value = CASE WHEN counters.expires_at > ? THEN counters.value + excluded.value ELSE excluded.value END, "
            "expires_at = excluded.expires_at",
            (name, amount, expires_at, now),
        )

    def _reserved(self, db: sqlite3.Connection, key_id: str, now: float) -> float:
        db.execute("DELETE FROM reservations WHERE key_id = ? AND expires_at <= ?", (key_id, now))
        row = db.execute("SELECT COALESCE(SUM(amount), 0) FROM reservations WHERE key_id = ?", (key_id,)).fetchone()
        return float(row[0])

    def _housekeeping(self, db: sqlite3.Connection, now: float) -> None:
        self._ops += 1
        if self._ops % 500 == 0:
            db.execute("DELETE FROM counters WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM reservations WHERE expires_at <= ?", (now,))

    def hit(self, key_id, window, window_expires_at, max_requests, max_tokens, now) -> RateResult:
        with self._tx() as db:
            req = int(self._get(db, _c(key_id, f"req:{window}"), now))
            tok = int(self._get(db, _c(key_id, f"tok:{window}"), now))
            if max_requests is not None and req >= max_requests:
                return RateResult(False, req, tok, "requests_per_min")
            if max_tokens is not None and tok >= max_tokens:
                return RateResult(False, req, tok, "tokens_per_min")
            self._add(db, _c(key_id, f"req:{window}"), 1, window_expires_at, now)
            self._housekeeping(db, now)
            return RateResult(True, req + 1, tok)

    def reserve(self, key_id, periods: Sequence[Period], amount, reservation_id, reservation_expires_at, enforce, now) -> SpendResult:
        with self._tx() as db:
            reserved = self._reserved(db, key_id, now)
            spent = {p.name: self._get(db, _c(key_id, f"usd:{p.name}"), now) + reserved for p in periods}
            if enforce:
                for p in periods:
                    if p.cap is not None and spent[p.name] + amount > p.cap + 1e-12:
                        return SpendResult(False, spent, p.name)
            db.execute("INSERT OR REPLACE INTO reservations (id, key_id, amount, expires_at) VALUES (?, ?, ?, ?)",
                       (reservation_id, key_id, amount, reservation_expires_at))  # fmt: skip
            return SpendResult(True, spent)

    def settle(self, key_id, reservation_id, periods, cost, tokens, window, window_expires_at, now) -> dict:
        with self._tx() as db:
            db.execute("DELETE FROM reservations WHERE id = ?", (reservation_id,))
            for p in periods:
                self._add(db, _c(key_id, f"usd:{p.name}"), cost, p.expires_at, now)
            if tokens:
                self._add(db, _c(key_id, f"tok:{window}"), tokens, window_expires_at, now)
            return {p.name: self._get(db, _c(key_id, f"usd:{p.name}"), now) for p in periods}

    def spent(self, key_id, periods, now) -> dict:
        with self._tx() as db:
            reserved = self._reserved(db, key_id, now)
            return {p.name: self._get(db, _c(key_id, f"usd:{p.name}"), now) + reserved for p in periods}

    def get_state(self, key_id) -> Optional[dict]:
        row = self._conn().execute("SELECT value FROM state WHERE key_id = ?", (key_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_state(self, key_id, state) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO state (key_id, value) VALUES (?, ?)", (key_id, json.dumps(state)))

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
