"""``router route-logs``: route logged prompts in bulk with Ray Data and write decisions as Parquet."""

from __future__ import annotations

import argparse
import os


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "route-logs",
        help="route a file/folder/glob of JSONL or Parquet request logs with Ray Data",
        description="Route logged prompts in bulk: embed with an actor pool, score with a router artifact, decide at "
        "one or more λ and write Parquet (one row per input row and λ) plus a quarantine file of malformed rows.",
    )
    p.add_argument("--artifact", required=True, help="router artifact directory (from `router train`)")
    p.add_argument("--input", required=True, help="JSONL/Parquet file, folder or glob; local or a pyarrow filesystem URI")
    p.add_argument("--out", required=True, help="output folder (decisions/, quarantine.jsonl, summary.json); "
                   "built in OUT.partial and moved into place when complete")
    p.add_argument("--prompt-field", default="prompt", help="field with the prompt string or an OpenAI messages list (default: prompt)")
    p.add_argument("--id-field", default="id", help="field with the row id (default: id)")
    p.add_argument("--lambda", dest="lambdas", default="1", help="comma-separated λ values, e.g. 0.1,1,10 (default: 1)")
    p.add_argument("--reward", default="linear", help="linear, exponential or routerbench (default: linear)")
    p.add_argument("--batch-size", type=int, default=512, help="prompts per actor call (default: 512)")
    p.add_argument("--actors", type=int, default=None, help="embedding actors, each taking 1 CPU (or 1 GPU with --gpu); "
                   "default: 1, or one per GPU with --gpu")
    p.add_argument("--threads", type=int, default=None, help="torch threads per actor (default: CPUs / actors)")
    p.add_argument("--gpu", action="store_true", help="run the encoder on one GPU per actor")
    p.add_argument("--quarantine", default=None, help="quarantine JSONL path (default: OUT/quarantine.jsonl)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a non-empty --out once the new output is complete; discard an interrupted run")
    p.add_argument("--resume", action="store_true",
                   help="finish the interrupted run of this --out (OUT.partial): route only the files it had not finished")
    p.add_argument("--files-per-unit", type=int, default=16,
                   help="input files per Ray Data job; the unit a killed run redoes (default: 16)")
    p.add_argument("--cache-dir", default=None, help="embedding cache folder (default: the project's cache)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    p.add_argument("--timeline", default=None, help="append where the time went (actor start, each batch's embed and "
                   "decide seconds, the units) to this JSONL file, for profiling")
    p.add_argument("--ray-address", default=None, help="connect to this Ray cluster instead of starting a local one")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from router.batch.pipeline import RouteLogsConfig, format_summary, route_logs
    from router.rewards import parse_lambdas
    from router.cli.errors import CliError

    try:
        cfg = RouteLogsConfig(
            artifact=args.artifact, input=args.input, out=args.out, prompt_field=args.prompt_field,
            id_field=args.id_field, lambdas=parse_lambdas(args.lambdas), reward=args.reward,
            batch_size=args.batch_size, actors=args.actors, threads=args.threads, gpu=args.gpu,
            quarantine=args.quarantine, overwrite=args.overwrite, resume=args.resume,
            files_per_unit=args.files_per_unit, cache_dir=args.cache_dir, use_cache=not args.no_cache,
            timeline=args.timeline,
        )  # fmt: skip
    except ValidationError as exc:
        err = exc.errors()[0]
        field = "--" + str(err["loc"][0]).replace("_", "-") if err["loc"] else "options"
        raise CliError(f"{field}: {err['msg']}") from None
    if not os.path.isdir(cfg.artifact):
        raise CliError(f"--artifact {cfg.artifact!r}: no such directory")

    from router.cli._ray import ray_session

    with ray_session(args.ray_address, args.num_cpus):
        summary = route_logs(cfg)
    print(format_summary(summary))
    return 0
