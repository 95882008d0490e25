"""Caller keys: the secret format, how a secret is stored (a salted hash, never the secret), the keys
file (YAML) with each key's policy, and a store that reloads the file when it changes.

Secrets look like ``rk-<key id>-<64 hex digits>`` (256 random bits from ``secrets``). The id in the
secret is not secret (it is also sent back as ``x-router-key``): it lets the router find the one
entry to check instead of hashing the presented secret against every key.

Why salted HMAC-SHA256 and not a slow password hash (bcrypt, scrypt, PBKDF2): slow hashes exist to
make guessing *low-entropy, human-chosen* passwords expensive after a leak of the hashes. These
secrets are 256 random bits chosen by ``router keys create``; no amount of guessing finds one, slow
or fast, while a slow hash would add 50-300 ms of CPU to every routed request (the router's own
overhead is tens of ms). The per-key random salt keeps two files (or two keys) with the same secret
from having the same hash and defeats precomputed tables. The comparison is constant-time
(``hmac.compare_digest``), and an unknown id is checked against a dummy hash so that it costs the
same as a wrong secret.

    keys:
      - id: team-a
        hash: hmac-sha256$<salt hex>$<digest hex>
        revoked: false
        policy: {models: [small, medium], requests_per_min: 60, budget_usd_per_day: 5, on_exhausted: refuse}
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from pathlib import Path
from typing import Callable, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from router.rewards import check_lambda, get_reward

log = logging.getLogger("ray.serve")

SECRET_PREFIX = "rk-"
HASH_SCHEME = "hmac-sha256"
_ID = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")
_TOKEN = re.compile(r"^[0-9a-f]{64}$")
_HASH = re.compile(rf"^{HASH_SCHEME}\$[0-9a-f]{{32}}\$[0-9a-f]{{64}}$")


def check_key_id(key_id: str) -> str:
    if not isinstance(key_id, str) or not _ID.match(key_id):
        raise ValueError(f"key id must be 1-64 characters of a-z, 0-9, '-' and '_' (not at the ends), got {key_id!r}")
    return key_id


def new_secret(key_id: str) -> str:
    """A fresh secret for ``key_id``: shown once by ``router keys create``, stored only as its hash."""
    return f"{SECRET_PREFIX}{check_key_id(key_id)}-{secrets.token_hex(32)}"


def hash_secret(secret: str, salt: Optional[bytes] = None) -> str:
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hmac.new(salt, secret.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{HASH_SCHEME}${salt.hex()}${digest}"


def verify_secret(secret: str, stored: str) -> bool:
    """Constant-time check of a presented secret against a stored ``hmac-sha256$salt$digest``."""
    try:
        _, salt_hex, digest = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    presented = hmac.new(salt, secret.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()
    return hmac.compare_digest(presented, digest)


_DUMMY_HASH = hash_secret("rk-dummy-" + "0" * 64)


def parse_secret(secret: str) -> Optional[str]:
    """The key id inside a well-formed secret, else None (nothing about the secret is echoed)."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    head, sep, token = secret[len(SECRET_PREFIX):].rpartition("-")
    if not sep or not _TOKEN.match(token) or not _ID.match(head):
        return None
    return head


class KeyPolicy(BaseModel):
    """What one key may do and spend. Every limit is optional (absent: no limit)."""

    model_config = ConfigDict(extra="forbid")

    models: Optional[list[str]] = Field(
        None, description="Pool models this key may be routed to (and name as an override); absent: the whole pool."
    )
    default_lambda: Optional[float] = Field(
        None, description="λ when the caller gives none (e.g. `router tune --calibrate`'s λ); absent: the app's default_lambda. "
        "With a spend target this is the controller's starting λ."
    )
    default_reward: Optional[str] = Field(None, description="Reward when the caller gives none; absent: the app's default_reward.")
    requests_per_min: Optional[int] = Field(None, ge=1, description="Requests per minute (fixed UTC minute windows), all replicas together.")
    tokens_per_min: Optional[int] = Field(
        None, ge=1, description="Backend tokens (prompt + completion, from `usage`) per minute; a request is admitted while the "
        "minute's count is below the limit."
    )
    budget_usd_per_day: Optional[float] = Field(None, gt=0, description="Hard cap on spend per UTC day.")
    budget_usd_per_month: Optional[float] = Field(None, gt=0, description="Hard cap on spend per UTC calendar month.")
    spend_target_usd_per_1000: Optional[float] = Field(
        None, gt=0, description="Spend target in USD per 1,000 chat requests: the router steers this key's λ online so that its "
        "realised spend rate tracks it (the caller's own λ and reward are then ignored)."
    )
    on_exhausted: Literal["refuse", "cheapest"] = Field(
        "refuse", description="When a budget is exhausted: refuse (429 naming the budget) or route to the cheapest allowed model only."
    )

    @field_validator("default_lambda")
    @classmethod
    def _lam(cls, v: Optional[float]) -> Optional[float]:
        return None if v is None else check_lambda(v)

    @field_validator("default_reward")
    @classmethod
    def _reward(cls, v: Optional[str]) -> Optional[str]:
        return None if v is None else get_reward(v).name

    @field_validator("models")
    @classmethod
    def _models(cls, v: Optional[list[str]]) -> Optional[list[str]]:
        if v is not None and not v:
            raise ValueError("models is an empty list; leave it out to allow the whole pool")
        return v

    @property
    def has_budget(self) -> bool:
        return self.budget_usd_per_day is not None or self.budget_usd_per_month is not None


class KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The key's name: in the secret, the x-router-key header and the metrics' `key` label.")
    hash: str = Field(description=f"{HASH_SCHEME}$<salt hex>$<digest hex> of the secret (see the module doc for why).")
    revoked: bool = Field(False, description="A revoked key is refused (401) within a few seconds, without a restart.")
    created: Optional[str] = Field(None, description="When `router keys create` made it (UTC, informational).")
    note: Optional[str] = Field(None, description="Free text (owner, purpose).")
    policy: KeyPolicy = Field(default_factory=KeyPolicy)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_key_id(v)

    @field_validator("hash")
    @classmethod
    def _hash(cls, v: str) -> str:
        if not _HASH.match(v):
            raise ValueError(f"hash must look like {HASH_SCHEME}$<32 hex>$<64 hex> (made by `router keys create`)")
        return v


class KeysFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[KeyEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> "KeysFile":
        ids = [k.id for k in self.keys]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"key ids listed twice: {dup}")
        return self

    def by_id(self) -> dict[str, KeyEntry]:
        return {k.id: k for k in self.keys}

    def check_models(self, pool: tuple[str, ...] | list[str]) -> None:
        for k in self.keys:
            unknown = sorted(set(k.policy.models or ()) - set(pool))
            if unknown:
                raise ValueError(f"key {k.id!r}: policy.models names models outside the pool: {unknown}")


def load_keys_file(path: str | Path) -> KeysFile:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"keys_file {str(path)!r} does not exist (create it with `router keys create --file {path}`)")
    with path.open() as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"keys_file {str(path)!r} must be a mapping with a `keys:` list")
    return KeysFile.model_validate(data)


def write_keys_file(keys: KeysFile, path: str | Path) -> None:
    """Atomically (temp file + rename, so a reader never sees half a file), readable by the owner only."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    text = yaml.safe_dump(keys.model_dump(exclude_none=True, exclude_defaults=False), sort_keys=False)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# Caller keys of the llm-router (router keys create|list|revoke). Only salted hashes, never secrets.\n")
        f.write(text)
    os.replace(tmp, path)


class KeyStore:
    """The keys file, re-read when it changes (checked at most every ``poll_s`` seconds, on use).

    A file that stops validating is reported in the log and the previous keys stay in force: a
    typo must not lock every caller out. ``router keys`` writes the file atomically, so a
    revocation made with it is always a valid file."""

    def __init__(self, path: str | Path, pool: tuple[str, ...] | list[str], poll_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):  # fmt: skip
        self.path = Path(path)
        self.pool = tuple(pool)
        self.poll_s = poll_s
        self.clock = clock
        self._stamp: Optional[tuple] = None
        self._checked = -float("inf")
        self.keys: dict[str, KeyEntry] = {}
        self.reloads = 0
        self.last_error: Optional[str] = None
        self.reload(strict=True)

    def _file_stamp(self) -> Optional[tuple]:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def reload(self, strict: bool = False) -> bool:
        """Re-read the file; True when the keys changed. ``strict``: raise instead of keeping the old keys."""
        stamp = self._file_stamp()
        try:
            parsed = load_keys_file(self.path)
            parsed.check_models(self.pool)
        except Exception as exc:  # noqa: BLE001 - reported, the previous keys stay
            if strict:
                raise ValueError(str(exc)) from None
            self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            log.error("keys_file %s not reloaded, the previous keys stay in force: %s", self.path, self.last_error)
            self._stamp = stamp
            return False
        self._stamp = stamp
        self.last_error = None
        changed = parsed.by_id() != self.keys
        self.keys = parsed.by_id()
        self.reloads += 1
        if changed and self.reloads > 1:
            log.info("keys_file %s reloaded: %d keys (%d revoked)", self.path, len(self.keys),
                     sum(k.revoked for k in self.keys.values()))  # fmt: skip
        return changed

    def maybe_reload(self) -> None:
        now = self.clock()
        if now - self._checked < self.poll_s:
            return
        self._checked = now
        if self._file_stamp() != self._stamp:
            self.reload()

    def authenticate(self, secret: Optional[str]) -> tuple[Optional[KeyEntry], str]:
        """(the key, "ok") or (None or the revoked key, why: "missing", "invalid" or "revoked")."""
        self.maybe_reload()
        if not secret:
            return None, "missing"
        key_id = parse_secret(secret)
        entry = self.keys.get(key_id) if key_id else None
        # Same work for an unknown id as for a wrong secret (no timing hint about which ids exist).
        ok = verify_secret(secret, entry.hash if entry else _DUMMY_HASH)
        if entry is None or not ok:
            return None, "invalid"
        if entry.revoked:
            return entry, "revoked"
        return entry, "ok"
