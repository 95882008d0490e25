"""Secrets, their hashes, the keys file and its live reload."""

from __future__ import annotations

import os

import pytest
import yaml

from serve_app.auth.keys import (KeyStore, hash_secret, load_keys_file, new_secret, parse_secret, verify_secret)  # fmt: skip
from tests.serve_app.auth.conftest import add_key


def test_secret_format_hash_and_constant_time_verify():
    secret = new_secret("team-a")
    assert secret.startswith("rk-team-a-") and len(secret) == len("rk-team-a-") + 64
    assert parse_secret(secret) == "team-a"
    stored = hash_secret(secret)
    assert secret not in stored and stored.startswith("hmac-sha256$")
    assert verify_secret(secret, stored)
    assert not verify_secret(secret[:-1] + ("0" if secret[-1] != "0" else "1"), stored)
    # Salted: the same secret hashes differently each time.
    assert hash_secret(secret) != stored
    for bad in ("", "rk-", "rk-team-a", "rk-team-a-xyz", "sk-team-a-" + "0" * 64, "rk-Team-" + "0" * 64, "rk--" + "0" * 64):
        assert parse_secret(bad) is None


def test_keys_file_validation_names_the_problem(keys_path):
    add_key(keys_path, "a")
    data = yaml.safe_load(keys_path.read_text())
    for mutate, words in [
        (lambda d: d["keys"].append(dict(d["keys"][0])), "listed twice"),
        (lambda d: d["keys"][0].update(hash="plain-secret"), "hash must look like"),
        (lambda d: d["keys"][0].update(id="Bad Id"), "key id must be"),
        (lambda d: d["keys"][0]["policy"].update(budget_usd_per_day=-1), "budget_usd_per_day"),
        (lambda d: d["keys"][0]["policy"].update(on_exhausted="panic"), "on_exhausted"),
        (lambda d: d["keys"][0]["policy"].update(default_reward="quadratic"), "unknown reward"),
        (lambda d: d["keys"][0].update(secret="x"), "secret"),
    ]:
        broken = yaml.safe_load(yaml.safe_dump(data))
        mutate(broken)
        keys_path.write_text(yaml.safe_dump(broken))
        with pytest.raises(ValueError, match=words):
            load_keys_file(keys_path)


def test_store_authenticates_and_reloads_on_change(keys_path):
    now = [0.0]
    good = add_key(keys_path, "good")
    store = KeyStore(keys_path, ("small", "medium", "large"), poll_s=1.0, clock=lambda: now[0])
    assert store.authenticate(good)[1] == "ok"
    assert store.authenticate(None)[1] == "missing"
    assert store.authenticate("rk-nobody-" + "0" * 64) == (None, "invalid")
    assert store.authenticate(good[:-2] + "00")[1] == "invalid"
    later = add_key(keys_path, "later")
    assert store.authenticate(later)[1] == "invalid"  # not re-read yet: within poll_s
    now[0] += 1.5
    assert store.authenticate(later)[1] == "ok"


def test_a_broken_file_keeps_the_previous_keys_and_says_so(keys_path, caplog):
    now = [0.0]
    good = add_key(keys_path, "good")
    store = KeyStore(keys_path, ("small",), poll_s=0.1, clock=lambda: now[0])
    keys_path.write_text("keys: [ {id: good")  # a half-typed edit
    now[0] += 1
    assert store.authenticate(good)[1] == "ok"
    assert store.last_error is not None and "not reloaded" in caplog.text


def test_unknown_pool_models_are_refused_at_load(keys_path):
    add_key(keys_path, "a", models=["small", "gpt-9"])
    with pytest.raises(ValueError, match="gpt-9"):
        KeyStore(keys_path, ("small", "large"))


def test_keys_file_is_written_atomically_and_private(keys_path):
    add_key(keys_path, "a")
    assert oct(os.stat(keys_path).st_mode & 0o777) == "0o600"
    assert not [p for p in keys_path.parent.iterdir() if p.name.endswith(".tmp")]
