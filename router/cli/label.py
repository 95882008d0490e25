"""``router label``: label logged prompts with every model of a backends file and write a routing table.

    router label --input 'logs/*.jsonl' --prompt-field messages --backends deploy/backends.yaml \\
        --judge judge.yaml --sample 2000 --budget-usd 20 --out tables/mine.parquet

The table (``sample_id``, ``prompt``, ``eval_name``, ``<model>``, ``<model>|total_cost``,
``<model>|model_response``, ``<model>|cost_source``) is read by ``router train`` / ``router eval``
as is. Re-running the same command resumes from the checkpoint: no call is paid for twice.
"""

from __future__ import annotations

import argparse


def _task_graders(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    out = {}
    for part in text.split(","):
        task, sep, grader = part.partition("=")
        if not sep or not task.strip() or not grader.strip():
            raise ValueError(f"--task-graders: expected TASK=GRADER,..., got {part!r}")
        out[task.strip()] = grader.strip()
    return out


def _backend_limits(values: list[str]) -> dict[str, dict]:
    out = {}
    for v in values:
        model, sep, spec = v.rpartition("=")
        conc, _, rpm = spec.partition(":")
        try:
            if not sep or not model:
                raise ValueError
            out[model] = {"concurrency": int(conc), **({"rpm": float(rpm)} if rpm else {})}
        except ValueError:
            raise ValueError(f"--backend-limit: expected MODEL=CONCURRENCY[:RPM], got {v!r}") from None
    return out


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "label",
        help="label logged prompts with every model of a backends file: a routing table with real costs and graded quality",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--input", required=True, help="JSONL/Parquet file, folder or glob; local or a pyarrow filesystem URI")
    p.add_argument("--backends", required=True, help="backends YAML (the service's format); every model in it answers every prompt")
    p.add_argument("--out", required=True, help="routing table to write (.parquet)")
    p.add_argument("--work-dir", default=None, help="checkpoint, quarantine and label_summary.json (default: OUT without .parquet + .label/)")
    p.add_argument("--prompt-field", default="prompt", help="field with the prompt string or an OpenAI messages list (default: prompt)")
    p.add_argument("--id-field", default="id", help="field with the row id (default: id)")
    p.add_argument("--eval-field", default=None, help="field with the row's task, written as eval_name (default: 'unlabelled')")
    p.add_argument("--models", default=None, help="comma-separated subset of the backends file's models")
    p.add_argument("--judge", default=None, help="LLM-as-judge YAML: an OpenAI-compatible endpoint (model, base_url, prices...) and rubric")
    p.add_argument("--grader", default=None, help="default grader: exact, choice, numeric, code or judge (default: judge with --judge, else exact)")
    p.add_argument("--grader-field", default=None, help="row field naming the row's grader")
    p.add_argument("--task-graders", default=None, help="per task: TASK=GRADER,... (e.g. gsm8k=numeric,mmlu=choice)")
    p.add_argument("--reference-field", default=None, help="row field with the reference answer")
    p.add_argument("--tests-field", default=None, help="row field with Python tests (code grader)")
    p.add_argument("--numeric-tolerance", type=float, default=None, help="numeric grader: relative tolerance (default 1e-4)")
    p.add_argument("--code-timeout-s", type=float, default=None, help="code grader: seconds per test run (default 10)")
    p.add_argument("--sample", type=int, default=None, help="label a seeded random sample of N unique prompts")
    p.add_argument("--stratify-by", default=None, help="sample proportionally within each value of this field")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    p.add_argument("--no-dedup", action="store_true", help="label repeated prompt texts once per row")
    p.add_argument("--budget-usd", type=float, default=None, help="stop before the total spend (models + judge, resumed runs included) exceeds this")
    p.add_argument("--dry-run", action="store_true", help="print the calls to make and their estimated cost; call nothing")
    p.add_argument("--max-tokens", type=int, default=None, help="max_tokens of each model call (default 1024; the budget's worst case)")
    p.add_argument("--temperature", type=float, default=None, help="sampling temperature (default 0)")
    p.add_argument("--concurrency", type=int, default=None, help="requests in flight per backend (default 8)")
    p.add_argument("--rpm", type=float, default=None, help="requests started per minute per backend (default: no limit)")
    p.add_argument("--backend-limit", action="append", default=[], metavar="MODEL=CONC[:RPM]", help="limits of one backend; repeatable")
    p.add_argument("--timeout-s", type=float, default=None, help="per-attempt timeout (default 60; a backend's timeout_s wins)")
    p.add_argument("--max-attempts", type=int, default=None, help="attempts per call, retrying 429/5xx/timeouts (default 4)")
    p.add_argument("--max-failed-share", type=float, default=None, help="leave out a model with more failed cells than this share (default 0.5)")
    p.add_argument("--batch-size", type=int, default=None, help="prompts per Ray Data batch (default 8)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--ray-address", default=None, help="connect to this Ray cluster instead of starting a local one")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace):
    from pydantic import ValidationError

    from router.cli.main import CliError
    from router.label.config import LabelConfig, load_judge

    grading = {k: v for k, v in {
        "grader": args.grader, "grader_field": args.grader_field, "task_graders": _task_graders(args.task_graders),
        "reference_field": args.reference_field, "tests_field": args.tests_field,
        "numeric_rel_tol": args.numeric_tolerance, "code_timeout_s": args.code_timeout_s,
    }.items() if v not in (None, {})}  # fmt: skip
    fields = {
        "input": args.input, "backends": args.backends, "out": args.out, "work_dir": args.work_dir,
        "prompt_field": args.prompt_field, "id_field": args.id_field, "eval_field": args.eval_field,
        "models": [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None,
        "sample": args.sample, "stratify_by": args.stratify_by, "seed": args.seed, "dedup": not args.no_dedup,
        "budget_usd": args.budget_usd, "dry_run": args.dry_run, "max_tokens": args.max_tokens,
        "temperature": args.temperature, "concurrency": args.concurrency, "rpm": args.rpm,
        "backend_limits": _backend_limits(args.backend_limit), "timeout_s": args.timeout_s,
        "max_attempts": args.max_attempts, "max_failed_share": args.max_failed_share, "batch_size": args.batch_size,
        "progress": not args.no_progress, "grading": grading,
    }  # fmt: skip
    try:
        judge = load_judge(args.judge) if args.judge else None
    except ValidationError as exc:
        err = exc.errors()[0]
        raise CliError(f"--judge {args.judge}: {'.'.join(str(x) for x in err['loc']) or 'file'}: {err['msg']}") from None
    try:
        return LabelConfig(judge=judge, **{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(x) for x in err["loc"] if x != "grading"]
        field = "--" + loc[0].replace("_", "-") if loc else "options"
        raise CliError(f"{field}: {err['msg'].removeprefix('Value error, ')}") from None


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from router.cli.main import CliError

    cfg = build_config(args)
    from router.cli._ray import ray_session
    from router.label.pipeline import run_label
    from router.label.summary import format_dry_run, format_summary

    try:
        with ray_session(args.ray_address, args.num_cpus):
            result = run_label(cfg)
    except ValidationError as exc:  # the backends file
        err = exc.errors()[0]
        raise CliError(f"--backends {args.backends}: {'.'.join(str(x) for x in err['loc'])}: {err['msg']}") from None
    except KeyboardInterrupt:
        import sys

        print("router label: re-run the same command to resume; the checkpoint keeps every answer received", file=sys.stderr)
        raise
    if cfg.dry_run:
        print(format_dry_run(result))
        return 0
    print(format_summary(result))
    return 0 if result["paths"]["table"] else 1
