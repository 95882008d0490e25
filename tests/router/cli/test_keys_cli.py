"""`router keys create|list|revoke` through the real entry point."""

from __future__ import annotations

import json

import yaml

from router.cli.main import main
from serve_app.auth.keys import KeyStore, load_keys_file, verify_secret


def test_create_prints_the_secret_once_and_stores_only_its_hash(tmp_path, capsys):
    path = tmp_path / "keys.yaml"
    assert main(["keys", "create", "--file", str(path), "--id", "team-a", "--models", "small,large", "--usd-per-day", "5",
                 "--requests-per-min", "60", "--target-usd-per-1000", "0.4", "--on-exhausted", "cheapest", "--json"]) == 0  # fmt: skip
    secret = json.loads(capsys.readouterr().out)["secret"]
    text = path.read_text()
    assert secret not in text and secret[-20:] not in text
    (entry,) = load_keys_file(path).keys
    assert verify_secret(secret, entry.hash) and entry.id == "team-a" and not entry.revoked
    p = entry.policy
    assert (p.models, p.budget_usd_per_day, p.requests_per_min, p.spend_target_usd_per_1000, p.on_exhausted) == (
        ["small", "large"], 5.0, 60, 0.4, "cheapest")
    assert KeyStore(path, ("small", "large")).authenticate(secret)[1] == "ok"
    assert main(["keys", "list", "--file", str(path)]) == 0
    out = capsys.readouterr().out
    assert "team-a\tactive" in out and "budget_usd_per_day=5.0" in out and "rk-" not in out


def test_lambda_from_a_calibration_file(tmp_path, capsys):
    cal = tmp_path / "calibration.json"
    cal.write_text(json.dumps({"feasible": True, "lambda": 3.5, "reward": "linear"}))
    path = tmp_path / "keys.yaml"
    assert main(["keys", "create", "--file", str(path), "--id", "a", "--lambda-from", str(cal)]) == 0
    assert load_keys_file(path).keys[0].policy.default_lambda == 3.5
    cal.write_text(json.dumps({"feasible": False}))
    assert main(["keys", "create", "--file", str(path), "--id", "b", "--lambda-from", str(cal)]) == 2
    assert "not a feasible calibration" in capsys.readouterr().err


def test_revoke_and_errors_name_the_flag(tmp_path, capsys):
    path = tmp_path / "keys.yaml"
    assert main(["keys", "create", "--file", str(path), "--id", "a"]) == 0
    capsys.readouterr()
    assert main(["keys", "revoke", "--file", str(path), "--id", "a"]) == 0
    assert load_keys_file(path).keys[0].revoked
    assert main(["keys", "list", "--file", str(path)]) == 0
    assert "a\tREVOKED" in capsys.readouterr().out
    for argv, words in [
        (["create", "--file", str(path), "--id", "a"], "--id: key 'a' already exists"),
        (["create", "--file", str(path), "--id", "Bad Id"], "--id: key id must be"),
        (["create", "--file", str(path), "--id", "c", "--usd-per-day", "0"], "--usd-per-day: Input should be greater than 0"),
        (["create", "--file", str(path), "--id", "c", "--reward", "quadratic"], "--reward"),
        (["revoke", "--file", str(path), "--id", "nobody"], "--id: no key 'nobody'"),
        (["list", "--file", str(tmp_path / "missing.yaml")], "does not exist"),
    ]:
        assert main(["keys", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("router keys: error:") and words in err and len(err.strip().splitlines()) == 1


def test_a_broken_file_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "keys.yaml"
    path.write_text(yaml.safe_dump({"keys": [{"id": "a", "hash": "not-a-hash"}]}))
    assert main(["keys", "list", "--file", str(path)]) == 2
    err = capsys.readouterr().err
    assert "hash must look like" in err and len(err.strip().splitlines()) == 1
