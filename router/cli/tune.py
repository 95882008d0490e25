"""``router tune``: a Ray Tune search over the router (ASHA, metric validation AIQ), or with
``--calibrate`` the λ that meets a cost budget or a quality target for a trained artifact."""

from __future__ import annotations

import argparse
import os


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "tune",
        help="Ray Tune search over the router's hyperparameters, or --calibrate λ for a budget/quality target",
        description="Search: ASHA over architecture and training knobs on the training half of --data; writes "
        "best_config.yaml (for `router train --config`), results.csv/json. Calibrate: the λ meeting --budget or "
        "--quality-target on calibration prompts, with held-out quality and cost at that λ.",
    )
    p.add_argument("--data", required=True, help="routing table file or bundled name (dcrouter, routellm)")
    p.add_argument("--out", help="output folder (search mode; calibrate mode writes calibration.json there if given)")
    p.add_argument("--split", default="auto", choices=["auto", "column", "routerbench", "all"],
                   help="which rows count as training (search) / unseen (calibrate); default auto")  # fmt: skip
    p.add_argument("--encoder", default="all-MiniLM-L6-v2", help="search mode: encoder (default all-MiniLM-L6-v2; hash:64 for smoke runs)")
    p.add_argument("--cache-dir", default=None, help="embedding cache folder (default: the project's cache)")
    p.add_argument("--seed", type=int, default=0, help="seed of the validation carve and training (default 0)")
    g = p.add_argument_group("search")
    g.add_argument("--num-samples", type=int, default=8, help="trials (default 8)")
    g.add_argument("--max-epochs", type=int, default=12, help="epochs per trial at most (default 12)")
    g.add_argument("--grace-period", type=int, default=2, help="ASHA grace period in epochs (default 2)")
    g.add_argument("--cpus-per-trial", type=float, default=0.5, help="CPUs per trial (default 0.5)")
    g.add_argument("--val-fraction", type=float, default=0.2, help="share of the training rows that scores trials (default 0.2)")
    g.add_argument("--holdout-domains", type=int, default=2,
                   help="training domains held out whole into the validation rows (default 2; 0 = random carve only)")
    g.add_argument("--variants", default="prompt_queries", help="attention variants, comma-separated (prompt_queries,model_queries)")
    g.add_argument("--rewards", default="linear,exponential", help="rewards to search, comma-separated (default linear,exponential)")
    g.add_argument("--storage-path", default=None, help="Tune storage folder (default OUT/ray_results)")
    g.add_argument("--name", default="router-tune", help="experiment name under --storage-path (default router-tune)")
    g.add_argument("--resume", action="store_true", help="resume the experiment at STORAGE_PATH/NAME (Tuner.restore)")
    c = p.add_argument_group("calibrate")
    c.add_argument("--calibrate", action="store_true", help="calibrate λ for --artifact instead of searching")
    c.add_argument("--artifact", help="router artifact directory (calibrate mode)")
    c.add_argument("--budget", type=float, default=None, help="cost budget in USD per 1000 prompts")
    c.add_argument("--quality-target", type=float, default=None, help="mean quality to reach, in [0, 1]")
    c.add_argument("--reward", default="linear", help="reward to calibrate λ of (default linear)")
    r = p.add_argument_group("ray")
    r.add_argument("--ray-address", default=None, help="connect to this Ray cluster instead of starting a local one")
    r.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    p.set_defaults(func=run)


def _split_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _calibrate(args) -> int:
    import json

    from router.cli.errors import CliError
    from router.core import Router
    from router.data.io import load_table
    from router.tuning.calibrate import calibrate, format_calibration
    from router.tuning.data import embed_table

    if not args.artifact:
        raise CliError("--calibrate needs --artifact")
    if (args.budget is None) == (args.quality_target is None):
        raise CliError("--calibrate needs exactly one of --budget and --quality-target")
    router = Router.load(args.artifact, cache_dir=args.cache_dir, use_cache=True)
    table = load_table(args.data)
    missing = [m for m in router.models if m not in table.models]
    if missing:
        raise CliError(f"--data {args.data!r} lacks the artifact's model(s) {missing}")
    table = table.with_models(list(router.models))
    if args.split != "all":
        from router.data.splits import train_test_split

        table = train_test_split(table, args.split)[1]  # the unseen half
    data = embed_table(table, router)

    def predict(part):
        return router.predict_embedded(part.X, part.prompts)

    res = calibrate(predict, router.c_ref, data, args.reward, budget=args.budget, quality_target=args.quality_target, seed=args.seed)
    print(format_calibration(res))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "calibration.json"), "w") as f:
            json.dump(res, f, indent=2)
    return 0 if res["feasible"] else 1


def _search(args) -> int:
    from pydantic import ValidationError

    from router.embeddings import make_encoder
    from router.cli.errors import CliError
    from router.data.io import load_table
    from router.tuning.data import carve_domains, embed_table, training_half
    from router.tuning.search import SearchSettings, format_top, results_table, run_search, write_outputs

    if not args.out:
        raise CliError("--out is required (search mode)")
    try:
        settings = SearchSettings(
            num_samples=args.num_samples, max_epochs=args.max_epochs, grace_period=args.grace_period,
            cpus_per_trial=args.cpus_per_trial, val_fraction=args.val_fraction, seed=args.seed,
            variants=_split_list(args.variants), rewards=_split_list(args.rewards), name=args.name,
            holdout_domains=args.holdout_domains,
        )  # fmt: skip
    except ValidationError as exc:
        err = exc.errors()[0]
        raise CliError(f"--{str(err['loc'][0]).replace('_', '-')}: {err['msg']}") from None
    train = training_half(load_table(args.data), args.split)
    encoder = make_encoder(args.encoder, cache_dir=args.cache_dir)
    print(f"router tune: {len(train)} training prompts, {len(train.models)} models, encoder {encoder.name}", flush=True)
    data = embed_table(train, encoder)
    fit, val = carve_domains(data, settings.val_fraction, settings.seed, settings.holdout_domains)
    held = sorted(set(val.domains[val.held_out].tolist())) if val.domains is not None else []
    print(f"router tune: validation = {int((~val.held_out).sum())} random rows + {int(val.held_out.sum())} rows of held-out "
          f"training domains {held}; {len(fit)} rows fit the trials", flush=True)  # fmt: skip
    model_init = encoder.embed(list(train.models))
    storage = args.storage_path or os.path.join(args.out, "ray_results")

    from router.cli._ray import ray_session

    with ray_session(args.ray_address, args.num_cpus):
        grid = run_search(fit, val, settings, storage, resume=args.resume,
                          model_init=model_init, encoder_name=encoder.name)  # fmt: skip
    rows = results_table(grid)
    paths = write_outputs(rows, settings, args.out)
    print(format_top(rows))
    print(f"router tune: best config {paths['best']}, results {paths['csv']} and {paths['json']}, Tune runs in {storage}")
    return 0


def run(args: argparse.Namespace) -> int:
    return _calibrate(args) if args.calibrate else _search(args)
