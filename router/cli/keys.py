"""``router keys``: ``create`` a caller key (prints its secret once; the keys file keeps only a salted
hash), ``list`` the keys and their policies, ``revoke`` one (refused by a running router within a
few seconds, no restart). The keys file is the router's ``keys_file`` app arg."""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("keys", help="create, list and revoke caller keys (the router's keys_file)")
    sub = parser.add_subparsers(dest="keys_command", required=True)

    create = sub.add_parser("create", help="add a key; prints its secret once (only its hash is stored)")
    create.add_argument("--file", required=True, help="keys YAML (created if missing)")
    create.add_argument("--id", required=True, help="the key's name: a-z, 0-9, '-', '_' (shown in headers and metrics)")
    create.add_argument("--note", help="free text: owner, purpose")
    create.add_argument("--models", help="comma-separated pool models the key may use (default: the whole pool)")
    lam = create.add_mutually_exclusive_group()
    lam.add_argument("--lambda", dest="lam", type=float, help="the key's default λ (the controller's start with a target)")
    lam.add_argument("--lambda-from", help="calibration.json written by `router tune --calibrate --out DIR`: its λ")
    create.add_argument("--reward", help="the key's default reward (linear, routerbench, exponential)")
    create.add_argument("--requests-per-min", type=int, help="requests per minute, all replicas together")
    create.add_argument("--tokens-per-min", type=int, help="backend tokens (usage) per minute")
    create.add_argument("--usd-per-day", type=float, help="hard cap on spend per UTC day")
    create.add_argument("--usd-per-month", type=float, help="hard cap on spend per UTC month")
    create.add_argument("--target-usd-per-1000", type=float, help="spend target per 1,000 chat requests (steers λ online)")
    create.add_argument("--on-exhausted", choices=("refuse", "cheapest"), default="refuse",
                        help="when a cap is reached: refuse with 429 (default) or route to the cheapest model only")  # fmt: skip
    create.add_argument("--json", action="store_true", help="print {id, secret} as JSON instead of text")
    create.set_defaults(func=run_create)

    lst = sub.add_parser("list", help="the keys, whether revoked, and their policies (never a secret: none is stored)")
    lst.add_argument("--file", required=True)
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=run_list)

    revoke = sub.add_parser("revoke", help="mark a key revoked (kept in the file for the record)")
    revoke.add_argument("--file", required=True)
    revoke.add_argument("--id", required=True)
    revoke.set_defaults(func=run_revoke)


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock beside the keys file, so two `router keys` runs cannot lose each other's edit."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _load(path: Path, missing_ok: bool = False):
    from router.cli.main import CliError
    from serve_app.auth.keys import KeysFile, load_keys_file

    if missing_ok and not path.exists():
        return KeysFile()
    try:
        return load_keys_file(path)
    except Exception as exc:  # noqa: BLE001 - pydantic and YAML errors become one line
        raise CliError(f"--file {str(path)!r}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                       + (f" ({' '.join(str(exc).splitlines()[1:3]).strip()})" if len(str(exc).splitlines()) > 1 else "")) from None


def _lambda_from(path: str) -> float:
    from router.cli.main import CliError

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CliError(f"--lambda-from {path!r}: {exc}") from None
    if not isinstance(data, dict) or not data.get("feasible") or "lambda" not in data:
        raise CliError(f"--lambda-from {path!r}: not a feasible calibration (no 'lambda'); see `router tune --calibrate`")
    return float(data["lambda"])


def run_create(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from router.cli.main import CliError
    from serve_app.auth.keys import KeyEntry, KeyPolicy, check_key_id, hash_secret, new_secret, write_keys_file

    path = Path(args.file)
    try:
        check_key_id(args.id)
    except ValueError as exc:
        raise CliError(f"--id: {exc}") from None
    policy_args = {
        "models": [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None,
        "default_lambda": _lambda_from(args.lambda_from) if args.lambda_from else args.lam,
        "default_reward": args.reward,
        "requests_per_min": args.requests_per_min,
        "tokens_per_min": args.tokens_per_min,
        "budget_usd_per_day": args.usd_per_day,
        "budget_usd_per_month": args.usd_per_month,
        "spend_target_usd_per_1000": args.target_usd_per_1000,
        "on_exhausted": args.on_exhausted,
    }
    flag = {"default_lambda": "--lambda", "default_reward": "--reward", "budget_usd_per_day": "--usd-per-day",
            "budget_usd_per_month": "--usd-per-month", "spend_target_usd_per_1000": "--target-usd-per-1000"}  # fmt: skip
    try:
        policy = KeyPolicy.model_validate({k: v for k, v in policy_args.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err.get("loc") else "policy"
        raise CliError(f"{flag.get(field, '--' + field.replace('_', '-'))}: {err['msg']}") from None
    with _locked(path):
        keys = _load(path, missing_ok=True)
        if args.id in keys.by_id():
            raise CliError(f"--id: key {args.id!r} already exists in {str(path)!r} (revoke it and pick another id)")
        secret = new_secret(args.id)
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        keys.keys.append(KeyEntry(id=args.id, hash=hash_secret(secret), created=created, note=args.note, policy=policy))
        write_keys_file(keys, path)
    if args.json:
        print(json.dumps({"id": args.id, "secret": secret}))
    else:
        print(f"created key {args.id!r} in {path}")
        print(f"secret (shown once, store it now; the file keeps only its hash):\n{secret}")
    return 0


def _describe(policy) -> str:
    p = policy.model_dump(exclude_none=True)
    if p.get("on_exhausted") == "refuse" and not policy.has_budget:
        p.pop("on_exhausted")
    return ", ".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in p.items()) or "no limits"


def run_list(args: argparse.Namespace) -> int:
    keys = _load(Path(args.file))
    if args.json:
        print(json.dumps([{"id": k.id, "revoked": k.revoked, "created": k.created, "note": k.note,
                           "policy": k.policy.model_dump(exclude_none=True)} for k in keys.keys], indent=2))  # fmt: skip
        return 0
    if not keys.keys:
        print(f"no keys in {args.file}")
    for k in keys.keys:
        state = "REVOKED" if k.revoked else "active"
        print(f"{k.id}\t{state}\t{k.created or '-'}\t{_describe(k.policy)}" + (f"\t# {k.note}" if k.note else ""))
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    from router.cli.main import CliError
    from serve_app.auth.keys import write_keys_file

    path = Path(args.file)
    with _locked(path):
        keys = _load(path)
        entry = keys.by_id().get(args.id)
        if entry is None:
            raise CliError(f"--id: no key {args.id!r} in {str(path)!r} (have: {sorted(keys.by_id())})")
        if entry.revoked:
            print(f"key {args.id!r} was already revoked")
            return 0
        entry.revoked = True
        write_keys_file(keys, path)
    print(f"revoked key {args.id!r}; a running router refuses it within its keys_poll_s (1 s by default)")
    return 0
