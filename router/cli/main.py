"""``router`` console script: one module per subcommand, each with ``add_parser`` and ``run``.

Subcommand modules import heavy libraries (torch, ray) inside ``run`` so that ``router --help``
and argument errors stay instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from router.cli.errors import CliError  # noqa: F401 - re-exported for callers

# subcommand -> module under router.cli
SUBCOMMANDS = {
    "data": "router.cli.data",
    "eval": "router.cli.eval",
    "train": "router.cli.train",
    "label": "router.cli.label",
    "route-logs": "router.cli.route_logs",
    "tune": "router.cli.tune",
    "keys": "router.cli.keys",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="router", description="Cost-aware LLM router (cross-attention, RouterBench evaluation, Ray).")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in SUBCOMMANDS.items():
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    from router.data.table import DataValidationError

    try:
        return int(args.func(args) or 0)
    except (CliError, DataValidationError, FileNotFoundError, ValueError) as exc:
        print(f"router {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"router {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
