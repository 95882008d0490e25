"""On-disk embedding cache keyed by (encoder name, sha256 of the text).

One SQLite file per encoder under the cache directory (``$ROUTER_CACHE_DIR``, default
``~/.cache/llm-router/embeddings``). SQLite because it is in the standard library, is safe for
several processes at once (Ray Data actors, Tune trials) and looks up thousands of keys in
milliseconds; vectors are stored as raw float32 bytes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from router.embeddings.base import Encoder

_CHUNK = 500  # keys per SELECT ... IN (...), below SQLite's variable limit
_ANNOUNCE = 200  # say so before embedding at least this many prompts (the encoder shows a progress bar)

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    env = os.environ.get("ROUTER_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "llm-router" / "embeddings"


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Persistent map text -> vector for one encoder.

    Safe to share between threads (one lock around the connection) and between processes and
    instances (SQLite WAL with a busy timeout). Picklable: a copy reopens the same file.
    """

    def __init__(self, encoder_name: str, cache_dir: str | Path | None = None):
        self.encoder_name = encoder_name
        directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", encoder_name)
        self.path = directory / f"{slug}.sqlite"
        self._lock = threading.Lock()
        self._open()
        owner = self._owner()
        if owner is not None and owner != encoder_name:
            # Two names that slug alike ("a:b", "a/b") must never share vectors: the later one gets
            # a file named by a hash of its full name.
            self._conn.close()
            digest = hashlib.sha256(encoder_name.encode("utf-8")).hexdigest()[:12]
            self.path = directory / f"{slug}-{digest}.sqlite"
            self._open()

    def _open(self) -> None:
        self._conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        with self._lock, self._conn:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
            # Which encoder owns the file (files made before this table existed are claimed by the
            # first encoder that opens them, which is the one their name was made from).
            self._conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('encoder', ?)", (self.encoder_name,))

    def _owner(self) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'encoder'").fetchone()
        return row[0] if row else None

    def get_many(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors by key for those of ``texts`` that are cached."""
        keys = list({text_key(t) for t in texts})
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, blob in self._conn.execute(f"SELECT key, vec FROM emb WHERE key IN ({marks})", chunk):
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        rows = [(text_key(t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in zip(texts, vectors)]
        with self._lock, self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO emb (key, vec) VALUES (?, ?)", rows)

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM emb").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_conn"], state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._open()


@dataclass
class CacheStats:
    hits: int = 0
    encoded: int = 0


class CachedEncoder:
    """An encoder behind the cache: only texts never seen by this encoder are embedded."""

    def __init__(self, encoder: Encoder, cache_dir: str | Path | None = None, batch_size: int = 64):
        self.encoder = encoder
        self.cache = EmbeddingCache(encoder.name, cache_dir)
        self.batch_size = batch_size
        self.stats = CacheStats()

    @property
    def name(self) -> str:
        return self.encoder.name

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def embed(self, texts: Sequence[str], show_progress: bool | None = None) -> np.ndarray:
        """(len(texts), dim) float32 vectors in input order, embedding only cache misses."""
        texts = list(texts)
        found = self.cache.get_many(texts)
        missing = list(dict.fromkeys(t for t in texts if text_key(t) not in found))
        if missing:
            if len(missing) >= _ANNOUNCE:
                # The first run on a dataset spends minutes here on a CPU; later runs read the cache.
                log.info("embedding %d new prompts with %s (%d found in the cache %s); later runs read them from it",
                         len(missing), self.name, len(found), self.cache.path)  # fmt: skip
            vectors = self.encoder.encode(missing, batch_size=self.batch_size, show_progress=show_progress)
            self.cache.put_many(missing, vectors)
            found.update({text_key(t): v for t, v in zip(missing, vectors)})
        self.stats.hits += len(texts) - len(missing)
        self.stats.encoded += len(missing)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([found[text_key(t)] for t in texts]).astype(np.float32, copy=False)
