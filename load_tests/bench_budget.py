"""The spend-target run: one caller key with a target of X USD per 1,000 requests, a prompt mix that
shifts from cheap prompts to expensive ones half-way, and the λ controller (serve_app.auth.budget)
steering the key's λ online. Passes when the realised spend over the last half of the run is
within ±10% of the target.

    python -m load_tests.bench_budget --out results/budget          # ~1-2 min on 2 cores
    python -m load_tests.bench_budget --out /tmp/b --requests 400 --no-md

What runs, and what stands in for what:

* the router: a real cross-attention artifact trained here on the bundled dcrouter table's
  training half (9 models) with the model-free ``hash:64`` encoder (so the run needs no model
  download and stays light; its predictions are weaker than all-MiniLM-L6-v2's, which does not
  matter for steering spend), served in-process by ``serve_app.serving.RouterService`` with
  ``auth: required``, the keys file and the SQLite ledger: the same request path as under Serve,
  without the Embedder/Scorer deployments (the predictor is called in-process);
* the LLMs: the stub backend (a TEST DOUBLE) answering every model and reporting ``usage``
  (whitespace tokens: prompt words + a 16-word answer); its prices per model are set so that, on
  average over the training half, tokens x price equals the table's cost of that model, so the
  router's predicted costs and the charged costs are in the same units;
* the mix: test-half prompts of at most ``cheap_max_words`` words for the first half of the run,
  then prompts of ``dear_min_words`` to ``dear_max_words`` words (longer prompts: more tokens at
  every model);
* the offline start λ₀: ``router.tuning.calibrate.calibrate`` (what ``router tune --calibrate``
  runs) for a budget of X per 1,000 prompts, on the cheap kind of prompts (the traffic the key had
  when it was calibrated), with costs as the stub charges them. So a fixed λ₀ is right for the
  first half and overspends on the second: the controller has to find the new λ.

Writes ``<out>/budget_control.json`` (config, per-phase numbers, every request's λ and cost) and
``budget_control.png`` (λ and the spend rate over the run), and its section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

ANSWER_WORDS = 16  # the stub's fixed answer, in whitespace tokens


class BudgetBenchConfig(BaseModel):
    target_usd_per_1000: float = Field(0.02, gt=0, description="The key's spend target (USD per 1,000 chat requests).")
    requests: int = Field(2000, ge=40, description="Requests in the run (half cheap, half expensive).")
    concurrency: int = Field(4, ge=1, description="Callers sending at once (closed loop).")
    epochs: int = Field(4, ge=1, description="Training epochs of the artifact.")
    cheap_max_words: int = Field(13, ge=1)
    dear_min_words: int = Field(50, ge=1)
    dear_max_words: int = Field(400, ge=1, description="Cap on expensive prompts' length (keeps a few huge prompts from dominating).")
    window: int = Field(100, ge=10, description="Requests per point of the spend-rate curve.")
    seed: int = 0


def words(text: str) -> int:
    return len(text.split())


def stub_tokens(prompt: str) -> int:
    return words(prompt) + ANSWER_WORDS


def token_prices(table) -> dict[str, float]:
    """USD per million tokens per model such that mean(tokens x price) = mean(table cost) on ``table``."""
    tokens = np.array([stub_tokens(p) for p in table.prompts], dtype=np.float64)
    return {m: float(table.cost[:, j].mean() / tokens.mean() * 1e6) for j, m in enumerate(table.models)}


def stub_cost_matrix(prompts, models, prices) -> np.ndarray:
    tokens = np.array([stub_tokens(p) for p in prompts], dtype=np.float64)[:, None]
    return tokens * np.array([prices[m] for m in models])[None, :] / 1e6


def run(cfg: BudgetBenchConfig, out: Path) -> dict:
    from router.data import load_table
    from router.data.splits import train_test_split
    from router.embeddings.hashing import HashingEncoder
    from router.core import Router
    from router.model.config import TrainConfig
    from router.tuning.calibrate import calibrate
    from router.tuning.data import Embedded
    from serve_app.auth.keys import KeyEntry, KeyPolicy, KeysFile, hash_secret, new_secret, write_keys_file
    from serve_app.config import AppArgs, BackendConfig
    from serve_app.serving import RouterService
    from serve_app.testing.stub_backend import StubBackend

    import torch

    # One thread, as the Scorer replica runs it: a 2-thread torch on a busy 2-core machine is 50x slower per call.
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-budget-"))
    table = load_table("dcrouter")
    train, test = train_test_split(table, "auto")
    enc = HashingEncoder(64)
    trained = Router.untrained(TrainConfig(max_epochs=cfg.epochs, patience=cfg.epochs, seed=cfg.seed), enc)
    trained.fit(trained.embed(list(train.prompts)), train.quality, train.cost, list(train.models))
    router = Router.load(trained.save(tmp / "artifact"))
    models = router.models
    prices = token_prices(train)

    test_prompts = list(test.prompts)
    cheap_rows = [i for i, p in enumerate(test_prompts) if words(p) <= cfg.cheap_max_words]
    cheap = [test_prompts[i] for i in cheap_rows]
    dear = [p for p in test_prompts if cfg.dear_min_words <= words(p) <= cfg.dear_max_words]

    # λ₀: the offline calibration on the cheap kind of prompts, in the stub's cost units.
    embedded = Embedded(enc.encode(cheap), np.asarray(test.quality)[cheap_rows], stub_cost_matrix(cheap, models, prices), models, cheap)
    cal = calibrate(lambda part: router.predict_embedded(part.X), router.c_ref, embedded, "linear", budget=cfg.target_usd_per_1000)
    if not cal["feasible"]:
        raise SystemExit(f"the target ${cfg.target_usd_per_1000}/1000 is below the cheapest the router can do: {cal['closest']}")
    lam0 = float(cal["lambda"])

    rng = random.Random(cfg.seed)
    half = cfg.requests // 2
    mix = [("cheap", rng.choice(cheap)) for _ in range(half)] + [("expensive", rng.choice(dear)) for _ in range(cfg.requests - half)]

    # What a fixed λ₀ would spend on each phase (offline, same decisions as the service makes).
    def fixed_spend(prompts, lam):
        choice, _ = router.choose(router.predict(prompts), lam, "linear")
        cm = stub_cost_matrix(prompts, models, prices)
        return float(np.mean(cm[np.arange(len(prompts)), choice]) * 1000)

    fixed = {ph: fixed_spend([p for q, p in mix if q == ph], lam0) for ph in ("cheap", "expensive")}

    stub = StubBackend()  # TEST DOUBLE for every pool model's LLM
    port = stub.start_in_thread()
    keys_file = tmp / "keys.yaml"
    secret = new_secret("bench")
    policy = KeyPolicy(default_lambda=lam0, default_reward="linear", spend_target_usd_per_1000=cfg.target_usd_per_1000)
    write_keys_file(KeysFile(keys=[KeyEntry(id="bench", hash=hash_secret(secret), policy=policy)]), keys_file)
    backends = {m: BackendConfig(model=m, base_url=f"http://127.0.0.1:{port}/v1", input_price_per_mtok=prices[m],
                                 output_price_per_mtok=prices[m]) for m in models}  # fmt: skip
    args = AppArgs(artifact_path=str(tmp / "artifact"), keys_file=str(keys_file), max_prompt_chars=1_000_000)

    async def predict(prompts):
        return router.predict(prompts)

    records: list[dict] = [None] * len(mix)  # type: ignore[list-item]

    async def drive():
        svc = RouterService(router, backends, args, predict)
        queue = list(enumerate(mix))
        queue.reverse()

        async def caller():
            while queue:
                i, (phase, prompt) = queue.pop()
                body = json.dumps({"model": "router", "messages": [{"role": "user", "content": prompt}]}).encode()
                resp = await svc.chat(body, {"authorization": f"Bearer {secret}"})
                answer = json.loads(resp.body)
                usage = answer["usage"]
                model = resp.headers["x-router-model"]
                cost = backends[model].observed_cost(usage["prompt_tokens"], usage["completion_tokens"])
                records[i] = {"i": i, "phase": phase, "lambda": round(float(resp.headers["x-router-lambda"]), 6), "model": model,
                              "cost_usd": float(f"{cost:.6g}"), "spent_usd": float(resp.headers["x-router-spend-usd"])}  # fmt: skip

        try:
            await asyncio.gather(*(caller() for _ in range(cfg.concurrency)))
        finally:
            await svc.close()

    t_run = time.perf_counter()
    try:
        asyncio.run(drive())
    finally:
        stub.stop_thread()
    run_s = time.perf_counter() - t_run

    costs = np.array([r["cost_usd"] for r in records])
    lams = np.array([r["lambda"] for r in records])
    last_half = float(costs[half:].mean() * 1000)
    per_phase = {}
    for ph, sl in (("cheap", slice(0, half)), ("expensive", slice(half, None))):
        c = costs[sl]
        settle = slice(sl.start + len(c) // 2 if sl.start is not None else len(c) // 2, sl.stop)
        per_phase[ph] = {
            "requests": int(len(c)),
            "spend_per_1000": float(c.mean() * 1000),
            "spend_per_1000_second_half_of_phase": float(costs[settle].mean() * 1000),
            "fixed_lambda0_spend_per_1000": fixed[ph],
            "lambda_end": float(lams[sl][-1]),
            "lambda_median_second_half_of_phase": float(np.median(lams[settle])),
        }
    target = cfg.target_usd_per_1000
    result = {
        "config": cfg.model_dump(),
        "what": "RouterService in-process (auth required, SQLite ledger) + real cross-attention artifact (hash:64, dcrouter "
                "train half) + stub backend (TEST DOUBLE reporting usage); λ0 from router.tuning.calibrate",
        "lambda0": lam0,
        "calibration": {k: cal[k] for k in ("calibration", "heldout", "search")},
        "token_prices_usd_per_mtok": prices,
        "target_usd_per_1000": target,
        "last_half_spend_per_1000": last_half,
        "last_half_error": last_half / target - 1.0,
        "whole_run_spend_per_1000": float(costs.mean() * 1000),
        "within_10pct": abs(last_half / target - 1.0) <= 0.10,
        "phases": per_phase,
        "run_s": run_s,
        "total_s": time.perf_counter() - t_start,
        "records": records,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "budget_control.json").write_text(json.dumps({k: v for k, v in result.items() if k != "records"}, indent=1)[:-2]
                                             + ',\n "records": [\n' + ",\n".join(json.dumps(r) for r in records) + "\n ]\n}\n")
    plot(result, out / "budget_control.png")
    return result


def plot(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rec = result["records"]
    cfg = result["config"]
    n, w = len(rec), cfg["window"]
    costs = np.array([r["cost_usd"] for r in rec]) * 1000
    lams = np.array([r["lambda"] for r in rec])
    idx = np.arange(n)
    rolling = np.array([costs[max(0, i - w + 1): i + 1].mean() for i in idx])
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    ax1.plot(idx, lams, lw=1)
    ax1.axhline(result["lambda0"], color="gray", ls=":", label=f"λ₀ (offline calibration) = {result['lambda0']:.3g}")
    ax1.set_yscale("log")
    ax1.set_ylabel("λ used (linear reward)")
    ax1.legend(loc="upper left")
    ax1.grid(True, which="both", alpha=0.3)
    ax2.plot(idx, rolling, lw=1, label=f"spend per 1,000 requests (last {w})")
    t = result["target_usd_per_1000"]
    ax2.axhline(t, color="k", ls="--", label=f"target ${t:g}")
    ax2.axhspan(0.9 * t, 1.1 * t, color="green", alpha=0.12, label="±10%")
    for ph, style in (("cheap", "c:"), ("expensive", "m:")):
        ax2.axhline(result["phases"][ph]["fixed_lambda0_spend_per_1000"], color=style[0], ls=":", label=f"fixed λ₀, {ph} prompts")
    for ax in (ax1, ax2):
        ax.axvline(n // 2, color="r", lw=0.8)
    fixed_top = max(p["fixed_lambda0_spend_per_1000"] for p in result["phases"].values())
    ax2.set_ylim(0, 1.15 * max(fixed_top, float(rolling[w:].max()) if n > w else float(rolling.max()), 1.1 * t))
    ax2.set_xlabel("request (cheap prompts, then expensive ones from the red line)")
    ax2.set_ylabel("USD per 1,000 requests")
    ax2.legend(loc="upper left", fontsize=8)
    ax2.grid(True, alpha=0.3)
    fig.suptitle(f"Spend target steering λ: last half {result['last_half_spend_per_1000']:.4g} vs target {t:g} "
                 f"({100 * result['last_half_error']:+.1f}%)")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render_markdown(result: dict, command: str) -> str:
    from load_tests.common import format_table

    t = result["target_usd_per_1000"]
    rows = [{"phase": ph, "requests": p["requests"], "fixed λ₀: $/1000": p["fixed_lambda0_spend_per_1000"],
             "controller: $/1000": p["spend_per_1000"], "controller, 2nd half of phase": p["spend_per_1000_second_half_of_phase"],
             "λ median, 2nd half of phase": p["lambda_median_second_half_of_phase"]} for ph, p in result["phases"].items()]  # fmt: skip
    c = result["config"]
    return "\n".join([
        "## Spend target steering λ (caller keys, `load_tests/bench_budget.py`)", "",
        f"`{command}` ({result['total_s']:.0f} s, of which the {c['requests']} requests took {result['run_s']:.0f} s; concurrency "
        f"{c['concurrency']}). {result['what']}. Target **${t:g} per 1,000 requests**; λ₀ = {result['lambda0']:.4g} from the offline "
        f"calibration on cheap prompts (the traffic before the shift); the mix is test-half prompts of ≤ {c['cheap_max_words']} words, then "
        f"{c['dear_min_words']}–{c['dear_max_words']} words from request {c['requests'] // 2} on.", "",
        format_table(rows), "",
        f"**Last half of the run: ${result['last_half_spend_per_1000']:.4g} per 1,000 requests, "
        f"{100 * result['last_half_error']:+.1f}% off the target** ({'within' if result['within_10pct'] else 'NOT within'} ±10%); "
        f"a fixed λ₀ would have spent {100 * (result['phases']['expensive']['fixed_lambda0_spend_per_1000'] / t - 1):+.0f}% there "
        f"and {100 * (result['phases']['cheap']['fixed_lambda0_spend_per_1000'] / t - 1):+.0f}% on the cheap half.", "",
        "![budget control](results/budget/budget_control.png)",
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load_tests.bench_budget", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/budget")
    p.add_argument("--target", type=float, default=None, help="USD per 1,000 requests (default %(default)s from the config)")
    p.add_argument("--requests", type=int, default=None)
    p.add_argument("--no-md", action="store_true", help="do not rewrite BENCHMARKS.md")
    args = p.parse_args(argv)
    cfg = BudgetBenchConfig(**{k: v for k, v in {"target_usd_per_1000": args.target, "requests": args.requests}.items() if v is not None})
    result = run(cfg, Path(args.out))
    summary = {k: v for k, v in result.items() if k not in ("records", "token_prices_usd_per_mtok")}
    print(json.dumps(summary, indent=1))
    if not args.no_md:
        from load_tests.common import update_benchmarks_md

        command = "python -m load_tests.bench_budget --out results/budget" + (f" --target {args.target:g}" if args.target else "") + (
            f" --requests {args.requests}" if args.requests else "")
        print(f"updated {update_benchmarks_md(render_markdown(result, command), section='budget-control')}")
    return 0 if result["within_10pct"] else 1


if __name__ == "__main__":
    sys.exit(main())
