"""``router tune``: a Ray Tune search over the cross-attention router's architecture and training
knobs, with ASHA early stopping.

Per trial: fit a :class:`router.core.Router` on the fitting rows (training carves its
own early-stopping split from them and reports ``val_aiq`` — paper-form AIQ of the linear
reward on that split — after every epoch; ASHA stops weak trials on it). When training ends the
trial scores its router on OUR validation rows (carved, seeded, from the training half and never
seen by the trial's training) with the trial's reward and λ scale: paper-form AIQ over the λ
sweep (``router.evaluation``). The validation rows are a random carve of the training domains
(``holdout_aiq_in``) plus every row of ``holdout_domains`` training domains held out whole
(``holdout_aiq_out``: a domain the trial never saw, ``router.tuning.data.carve_domains``);
``holdout_aiq`` is their mean, so a configuration has to route well in and out of domain to win.
The best trial is the one with the highest ``holdout_aiq``.

Where the paper is silent (our choices): the ranges below; the reward type and its λ scale are
searched as a post-training choice (they change how λ sweeps the cost-quality plane, not the
network), and they are written as comments into the best config because ``TrainConfig`` has no
reward field.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from router.atomic import atomic_write_text
from router.rewards import get_reward
from router.tuning.data import Embedded

log = logging.getLogger(__name__)

VARIANTS = ("prompt_queries", "model_queries")
# Searched keys that are not TrainConfig fields.
REWARD_KEYS = ("reward", "lambda_scale")


class SearchSettings(BaseModel):
    """How big the search is. Defaults finish in a few minutes on 2 CPUs with cached embeddings."""

    model_config = ConfigDict(extra="forbid")

    num_samples: int = Field(8, ge=1, le=10_000, description="Trials (configurations sampled).")
    max_epochs: int = Field(12, ge=1, le=10_000, description="Epochs per trial at most (ASHA's max_t).")
    grace_period: int = Field(2, ge=1, description="Epochs every trial gets before ASHA may stop it.")
    reduction_factor: int = Field(3, ge=2, description="ASHA keeps 1/reduction_factor of trials at each rung.")
    cpus_per_trial: float = Field(0.5, gt=0, le=256, description="CPUs reserved per trial (fractions run several at once).")
    val_fraction: float = Field(0.2, gt=0, lt=0.9, description="Share of the training half held out to score trials.")
    seed: int = Field(0, ge=0, description="Seed of the validation carve and of every trial's training.")
    variants: list[str] = Field(default_factory=lambda: ["prompt_queries"], min_length=1, description="Attention variants to search.")
    rewards: list[str] = Field(default_factory=lambda: ["linear", "exponential"], min_length=1, description="Rewards to search.")
    holdout_domains: int = Field(2, ge=0, le=100, description="Training domains held out whole into the validation rows (0 = random carve only).")
    name: str = Field("router-tune", min_length=1, description="Experiment name (folder under storage_path).")

    @field_validator("variants")
    @classmethod
    def _variants(cls, v: list[str]) -> list[str]:
        bad = [x for x in v if x not in VARIANTS]
        if bad:
            raise ValueError(f"unknown variant(s) {bad}; choose from {list(VARIANTS)}")
        return v

    @field_validator("rewards")
    @classmethod
    def _rewards(cls, v: list[str]) -> list[str]:
        return [get_reward(x).name for x in v]


def search_space(settings: SearchSettings) -> dict[str, Any]:
    from ray import tune

    return {
        "variant": tune.choice(settings.variants),
        "hidden_dim": tune.choice([32, 64, 128]),
        "dropout": tune.uniform(0.0, 0.3),
        "lr": tune.loguniform(3e-4, 3e-3),
        "weight_decay": tune.loguniform(1e-4, 1e-1),
        "cost_loss_weight": tune.loguniform(0.1, 2.0),
        # The model side (router.model.profile) and the objective (router.model.training).
        "model_repr": tune.choice(["name", "profile", "both"]),
        "profile_clusters": tune.choice([10, 20, 40]),
        "loss": tune.choice(["pointwise", "listwise", "pairwise"]),
        "decision_loss_weight": tune.loguniform(0.1, 3.0),
        "reward": tune.choice(settings.rewards),
        # Multiplies the reward's default λ grid: how finely the sweep covers cheap vs good.
        "lambda_scale": tune.loguniform(0.1, 10.0),
    }


def train_config_of(config: dict, settings: SearchSettings):
    """The ``TrainConfig`` of a trial's sampled ``config``."""
    from router.model.config import TrainConfig

    fields = {k: v for k, v in config.items() if k not in REWARD_KEYS}
    threads = max(1, int(settings.cpus_per_trial))
    return TrainConfig(**fields, max_epochs=settings.max_epochs, patience=max(2, settings.max_epochs // 3),
                       seed=settings.seed, num_threads=threads)  # fmt: skip


def holdout_aiq(prediction, data: Embedded, reward: str, lambda_scale: float, c_ref: float) -> float:
    """Paper-form AIQ of the (cost, quality) points of a λ sweep of ``reward`` on ``data``."""
    from router.evaluation.metrics import aiq_paper, ndch
    from router.evaluation.sweep import sweep

    rw = get_reward(reward)
    grid = [lam * lambda_scale for lam in rw.default_grid]
    points = sweep(prediction, data.quality, data.cost, rw, grid=grid, c_ref=c_ref)
    return float(aiq_paper(ndch(np.array([(c, q) for c, q, _ in points]))))


def _trial(config: dict, fit: Embedded, val: Embedded, settings: SearchSettings, model_init, encoder_name) -> None:
    """One Tune trial (function API): train, report per epoch, then report the holdout AIQ."""
    from ray import tune

    from router.core import Router

    cfg = train_config_of(config, settings)
    last = {"val_aiq": float("nan"), "epoch": 0}

    def on_epoch(epoch: int, metrics: dict) -> None:
        aiq = metrics.get("val_aiq")
        last["val_aiq"] = float(aiq) if aiq is not None else float("nan")
        last["epoch"] = epoch
        tune.report({"val_aiq": last["val_aiq"], "val_loss": float(metrics["val_loss"]), "epoch": epoch})

    router = Router.untrained(cfg, encoder_name).fit(fit.X, fit.quality, fit.cost, fit.models, prompts=fit.prompts,
                                                     model_init=model_init, on_epoch=on_epoch)  # fmt: skip
    prediction = router.predict_embedded(val.X, val.prompts)
    scores = holdout_scores(prediction, val, config["reward"], config["lambda_scale"], router.c_ref)
    best_epoch = router.predictor.best_epoch_
    tune.report({"val_aiq": last["val_aiq"], "epoch": last["epoch"], **scores, "best_epoch": int(best_epoch or -1)})


def holdout_scores(prediction, val: Embedded, reward: str, lambda_scale: float, c_ref: float) -> dict[str, float]:
    """``holdout_aiq_in`` (random carve), ``holdout_aiq_out`` (held-out training domains) and
    ``holdout_aiq``, their mean (or the one that exists)."""
    held = np.zeros(len(val), dtype=bool) if val.held_out is None else np.asarray(val.held_out, dtype=bool)
    out = {}
    for key, rows in (("holdout_aiq_in", np.flatnonzero(~held)), ("holdout_aiq_out", np.flatnonzero(held))):
        if len(rows):
            out[key] = holdout_aiq(_rows(prediction, rows), val.take(rows), reward, lambda_scale, c_ref)
    out["holdout_aiq"] = float(np.mean(list(out.values())))
    return out


def _rows(prediction, rows):
    from router.prediction import Prediction

    unc = None if prediction.uncertainty is None else prediction.uncertainty[rows]
    return Prediction(prediction.quality[rows], prediction.cost[rows], unc)


def run_search(fit: Embedded, val: Embedded, settings: SearchSettings, storage_path: str, encoder_name: str,
               resume: bool = False, model_init: np.ndarray | None = None, space: dict | None = None):  # fmt: skip
    """Run (or resume) the search; returns Tune's ``ResultGrid``. Ray must be initialised.
    ``encoder_name``: the encoder the embeddings came from (trials embed nothing themselves, but
    the ``model_queries`` variant reads that encoder's tokenizer)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    if "model_queries" in settings.variants and encoder_name.startswith("hash:"):
        raise ValueError("variant model_queries needs a sentence-transformers encoder (token features)")
    trainable = tune.with_resources(
        tune.with_parameters(_trial, fit=fit, val=val, settings=settings, model_init=model_init, encoder_name=encoder_name),
        {"cpu": settings.cpus_per_trial},
    )
    storage_path = os.path.abspath(os.path.expanduser(storage_path))
    path = os.path.join(storage_path, settings.name)
    if resume:
        if not tune.Tuner.can_restore(path):
            raise ValueError(f"--resume: no Tune experiment to resume at {path}")
        log.info("resuming %s", path)
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        if os.path.exists(path) and os.listdir(path):
            raise ValueError(f"a Tune experiment already exists at {path}; pass --resume or another --storage-path/--name")
        # max_t is one more than the epochs: the last report (holdout_aiq) comes after the last epoch.
        scheduler = ASHAScheduler(max_t=settings.max_epochs + 1, grace_period=settings.grace_period,
                                  reduction_factor=settings.reduction_factor)  # fmt: skip
        tuner = tune.Tuner(
            trainable,
            param_space=space if space is not None else search_space(settings),
            tune_config=tune.TuneConfig(
                metric="val_aiq", mode="max", scheduler=scheduler, num_samples=settings.num_samples,
                # seeded sampling: the same settings sample the same configurations
                search_alg=BasicVariantGenerator(random_state=settings.seed),
            ),  # fmt: skip
            run_config=tune.RunConfig(name=settings.name, storage_path=storage_path, verbose=0),
        )
    return tuner.fit()


def results_table(grid) -> list[dict]:
    """One row per trial, best holdout AIQ first (stopped trials, without one, last)."""
    rows = []
    for result in grid:
        metrics = result.metrics or {}
        config = dict(result.config or {})
        rows.append(
            {
                "trial_id": metrics.get("trial_id"),
                "holdout_aiq": metrics.get("holdout_aiq"),
                "holdout_aiq_in": metrics.get("holdout_aiq_in"),
                "holdout_aiq_out": metrics.get("holdout_aiq_out"),
                "val_aiq": metrics.get("val_aiq"),
                "epochs": metrics.get("epoch"),
                "status": "error" if result.error else ("complete" if metrics.get("holdout_aiq") is not None else "stopped early"),
                **{f"config/{k}": v for k, v in sorted(config.items())},
            }
        )

    def key(row):
        h = row["holdout_aiq"]
        v = row["val_aiq"]
        return (h is None or _nan(h), -(h or 0.0), -(v if v is not None and not _nan(v) else -1.0))

    return sorted(rows, key=key)


def _nan(x) -> bool:
    return isinstance(x, float) and math.isnan(x)


def best_config_yaml(row: dict, settings: SearchSettings) -> str:
    """The best trial as a YAML of ``TrainConfig`` fields (loadable by ``router train --config``)."""
    import yaml

    config = {k.split("/", 1)[1]: v for k, v in row.items() if k.startswith("config/")}
    train = train_config_of(config, settings).model_dump()
    train.pop("num_threads")  # a trial's share of the CPUs; `router train` keeps its own default
    header = (
        f"# router tune: best of the search (trial {row['trial_id']}), holdout AIQ {row['holdout_aiq']:.4f}\n"
        f"# reward: {config.get('reward')}  lambda_scale: {config.get('lambda_scale'):.4g}"
        "  (not TrainConfig fields: use them when routing, e.g. scale λ by lambda_scale)\n"
    )
    return header + yaml.safe_dump(train, sort_keys=False)


def write_outputs(rows: list[dict], settings: SearchSettings, out_dir: str | Path) -> dict[str, Path]:
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    complete = [r for r in rows if r["holdout_aiq"] is not None and not _nan(r["holdout_aiq"])]
    if not complete:
        raise RuntimeError("no trial finished; see the Tune logs under --storage-path")
    paths = {"csv": out / "results.csv", "json": out / "results.json", "best": out / "best_config.yaml"}
    # Each file atomically (router.atomic), best_config.yaml last: a killed run leaves each file
    # old, new or absent, and a new best_config.yaml only once the results it summarises are written.
    atomic_write_text(paths["csv"], pd.DataFrame(rows).to_csv(index=False))
    atomic_write_text(paths["json"], json.dumps({"settings": settings.model_dump(), "trials": rows, "best": complete[0]}, indent=2, default=str) + "\n")
    atomic_write_text(paths["best"], best_config_yaml(complete[0], settings))
    return paths


def format_top(rows: list[dict], k: int = 5) -> str:
    cols = ["trial_id", "holdout_aiq", "holdout_aiq_in", "holdout_aiq_out", "val_aiq", "epochs", "status", "config/variant",
            "config/hidden_dim", "config/dropout", "config/lr", "config/cost_loss_weight", "config/model_repr", "config/loss",
            "config/reward", "config/lambda_scale"]  # fmt: skip

    def cell(v):
        if v is None or _nan(v):
            return "-"
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    table = [[c.removeprefix("config/") for c in cols]] + [[cell(r.get(c)) for c in cols] for r in rows[:k]]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in table)
