"""``router data``: ``info`` (summary of a table), ``validate`` (OK or the first error) and
``fetch routerbench`` (download RouterBench's pickle at a pinned revision, verified by sha256)."""

from __future__ import annotations

import argparse
import json

DATASETS = ("routerbench",)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("data", help="inspect, validate and download routing data")
    sub = parser.add_subparsers(dest="data_command", required=True)

    def add_path(p: argparse.ArgumentParser) -> None:
        p.add_argument("path", help="a .pkl/.parquet/.csv/.jsonl/.json file, or a bundled name: dcrouter, routellm")
        p.add_argument("--drop-incomplete", action="store_true", help="drop rows with a missing score or cost instead of failing")

    info = sub.add_parser("info", help="rows, models, domains, per-model mean quality and cost, the oracle")
    add_path(info)
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.set_defaults(func=run_info)

    validate = sub.add_parser("validate", help="check a table; print OK or the first error (naming column and row)")
    add_path(validate)
    validate.set_defaults(func=run_validate)

    fetch = sub.add_parser(
        "fetch",
        help="download a dataset at a pinned revision and verify its sha256",
        description="Downloads from the Hugging Face Hub ($ROUTER_HF_ENDPOINT or --endpoint overrides the host).",
    )
    fetch.add_argument("dataset", choices=DATASETS)
    fetch.add_argument("--dest", required=True, help="directory to put the file in")
    fetch.add_argument("--shots", type=int, choices=(0, 5), default=0, help="RouterBench's 0-shot or 5-shot file (default 0)")
    fetch.add_argument("--force", action="store_true", help="download again even if a verified copy exists")
    fetch.add_argument("--allow-unpinned", action="store_true", help="download a file whose sha256 is not pinned (prints its hash)")
    fetch.add_argument("--endpoint", default=None, help="Hub base URL (default $ROUTER_HF_ENDPOINT or https://huggingface.co)")
    fetch.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server (default 60)")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bar")
    fetch.set_defaults(func=run_fetch)


def run_info(args) -> int:
    from router.data.io import load_table
    from router.data.stats import format_info, table_info

    info = table_info(load_table(args.path, drop_incomplete=args.drop_incomplete))
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def run_validate(args) -> int:
    from router.data.io import load_table

    table = load_table(args.path, drop_incomplete=args.drop_incomplete)  # raises with column and row
    print(f"OK: {table.name}: {len(table):,} rows, {len(table.models)} models")
    return 0


def run_fetch(args) -> int:
    from router.cli.errors import CliError
    from router.data.fetch import FetchError, fetch_routerbench

    try:
        result = fetch_routerbench(
            args.dest,
            shots=args.shots,
            endpoint=args.endpoint,
            force=args.force,
            allow_unpinned=args.allow_unpinned,
            progress=not args.no_progress,
            timeout=args.timeout,
        )
    except FetchError as exc:
        raise CliError(str(exc)) from None
    state = "downloaded" if result.downloaded else "already present"
    check = "sha256 verified" if result.verified else "NOT VERIFIED (no pinned hash)"
    print(f"{result.path}: {state}, {result.size:,} bytes, sha256 {result.sha256} ({check})")
    return 0


def run(args) -> int:
    """The subcommand contract of router.cli.main: dispatch to the chosen ``router data`` command."""
    return {"info": run_info, "validate": run_validate, "fetch": run_fetch}[args.data_command](args)
