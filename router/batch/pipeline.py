"""``router route-logs``: route logged prompts in bulk with Ray Data.

read (JSONL lines / Parquet rows, parsed into id + prompt text or a quarantine reason)
  -> keep good rows -> ``map_batches`` over an actor pool (each actor: encoder + router artifact;
     embed, predict quality and cost per model, decide at every λ)
  -> ``write_parquet`` (one row per input row × λ)
and a second, cheap pass over the same parse that streams malformed rows to the quarantine file.
Then a summary is computed from the written Parquet (so it describes exactly what was written).

Output folder layout: ``<out>/decisions/*.parquet``, ``<out>/quarantine.jsonl`` (unless
``--quarantine`` names another file), ``<out>/summary.json``.

Actors take ``num_cpus=1`` and set torch's thread count themselves: Ray starts workers with
OMP_NUM_THREADS=1, and an actor asking for every CPU of a 2-CPU node leaves none for the read
tasks, which then never schedule (a silent deadlock; ../shared/notes/ray-on-this-machine.md).
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import time
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from router.batch.sources import FIELDS_COLUMN, InputFiles, parse_jsonl_file, parse_parquet_rows, resolve_inputs
from router.rewards import check_lambda, get_reward

log = logging.getLogger(__name__)

DECISIONS_DIR = "decisions"
QUARANTINE_FILE = "quarantine.jsonl"
SUMMARY_FILE = "summary.json"


class RouteLogsConfig(BaseModel):
    """Everything one ``route-logs`` run needs."""

    model_config = ConfigDict(extra="forbid")

    artifact: str = Field(description="Router artifact directory (from `router train`).")
    input: str = Field(description="JSONL/Parquet file, folder or glob; local path or pyarrow filesystem URI.")
    out: str = Field(description="Output folder (local path or URI); must be empty unless overwrite.")
    prompt_field: str = Field("prompt", min_length=1, description="Field holding a prompt string or an OpenAI messages list.")
    id_field: str = Field("id", min_length=1, description="Field holding the row id (JSONL rows without one get <file>:<line>).")
    lambdas: list[float] = Field(default_factory=lambda: [1.0], min_length=1, description="Trade-offs λ; one output row per input row and λ.")
    reward: str = Field("linear", description="Reward: linear, exponential or routerbench.")
    batch_size: int = Field(512, ge=1, le=100_000, description="Prompts per map_batches call (one encoder call).")
    actors: int = Field(1, ge=1, le=1024, description="Size of the embedding actor pool.")
    gpu: bool = Field(False, description="One GPU per actor; the encoder runs on CUDA.")
    threads: int | None = Field(None, ge=1, le=256, description="torch threads per actor; default: the node's CPUs / actors.")
    quarantine: str | None = Field(None, description="Quarantine JSONL path; default <out>/quarantine.jsonl.")
    overwrite: bool = Field(False, description="Empty a non-empty output folder first.")
    cache_dir: str | None = Field(None, description="Embedding cache folder; default the project's cache.")
    use_cache: bool = Field(True, description="Look up and store embeddings in the on-disk cache.")

    @field_validator("lambdas")
    @classmethod
    def _check_lambdas(cls, v: list[float]) -> list[float]:
        out = [check_lambda(x) for x in v]
        if len(set(out)) != len(out):
            raise ValueError(f"--lambda: repeated values in {v}")
        return out

    @field_validator("reward")
    @classmethod
    def _check_reward(cls, v: str) -> str:
        return get_reward(v).name


def parse_lambdas(text: str) -> list[float]:
    """``"0.1,1,10"`` -> [0.1, 1.0, 10.0] with a message naming the flag on error."""
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise ValueError(f"--lambda: expected comma-separated numbers, got {text!r}") from exc
    if not values:
        raise ValueError("--lambda: give at least one value")
    return [check_lambda(v) for v in values]


# ---------------------------------------------------------------------------------------------
# Output filesystem


def out_fs(path: str):
    import pyarrow.fs as pafs

    if "://" in path:
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(path))


def prepare_output(out: str, overwrite: bool):
    """(filesystem, path) of a fresh output folder. ``write_parquet`` appends to what is there, so a
    non-empty folder is refused unless ``overwrite``, which empties it."""
    import pyarrow.fs as pafs

    fs, path = out_fs(out)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File:
        raise ValueError(f"--out {out!r} is a file, not a folder")
    if info.type == pafs.FileType.Directory:
        if fs.get_file_info(pafs.FileSelector(path)):
            if not overwrite:
                raise ValueError(f"--out {out!r} is not empty; choose a new folder or pass --overwrite")
            fs.delete_dir_contents(path)
    fs.create_dir(path, recursive=True)
    return fs, path


# ---------------------------------------------------------------------------------------------
# Ray Data stages


class _ParseJsonl:
    def __init__(self, prompt_field: str, id_field: str, extra_fields: tuple[str, ...] = ()):
        self.prompt_field, self.id_field, self.extra_fields = prompt_field, id_field, extra_fields

    def __call__(self, row: dict) -> list[dict]:
        return list(parse_jsonl_file(row["bytes"], row["path"], self.prompt_field, self.id_field, self.extra_fields))


def _parse_parquet_batch(batch, prompt_field: str, id_field: str, extra_fields: tuple[str, ...] = ()):
    import pyarrow as pa

    rows = parse_parquet_rows(batch.to_pylist(), prompt_field, id_field, extra_fields)
    return pa.Table.from_pylist(rows, schema=_PARSED_SCHEMA(bool(extra_fields)))


def _PARSED_SCHEMA(with_fields: bool = False):
    import pyarrow as pa

    columns = [("id", pa.string()), ("prompt", pa.string()), ("error", pa.string()), ("source", pa.string()),
               ("line", pa.int64()), ("raw", pa.string())]  # fmt: skip
    return pa.schema(columns + ([(FIELDS_COLUMN, pa.string())] if with_fields else []))


def parsed_dataset(files: InputFiles, prompt_field: str, id_field: str, extra_fields: tuple[str, ...] = ()):
    """One Ray Dataset of parsed rows (columns of ``router.batch.sources.PARSED_COLUMNS``, plus
    ``fields`` when ``extra_fields`` are asked for)."""
    import ray.data

    extra_fields = tuple(extra_fields)
    parts = []
    if files.jsonl:
        raw = ray.data.read_binary_files(files.jsonl, filesystem=files.filesystem, include_paths=True)
        parts.append(raw.flat_map(_ParseJsonl(prompt_field, id_field, extra_fields)))
    if files.parquet:
        table = ray.data.read_parquet(files.parquet, filesystem=files.filesystem, include_paths=True)
        parts.append(
            table.map_batches(
                _parse_parquet_batch, batch_format="pyarrow",
                fn_kwargs={"prompt_field": prompt_field, "id_field": id_field, "extra_fields": extra_fields},
            )  # fmt: skip
        )
    return parts[0] if len(parts) == 1 else parts[0].union(*parts[1:])


def good_rows():
    from ray.data.expressions import col

    return col("error") == ""


def bad_rows():
    from ray.data.expressions import col

    return col("error") != ""


class RouteBatches:
    """An actor of the pool: loads the artifact and its encoder once, then routes batches."""

    def __init__(self, artifact: str, lambdas: list[float], reward: str, device: str | None, threads: int | None,
                 cache_dir: str | None, use_cache: bool):  # fmt: skip
        import torch

        if threads:
            torch.set_num_threads(threads)
        from router.embeddings import make_encoder
        from router.model.artifact import load_artifact

        self.art = load_artifact(artifact)
        self.models = list(self.art.models)
        self.lambdas = lambdas
        self.reward = get_reward(reward)
        cached = make_encoder(self.art.encoder_name, device=device, cache_dir=cache_dir if use_cache else None)
        self.embed = cached.embed if use_cache else (lambda texts: cached.encoder.encode(texts, show_progress=False))
        if cached.dim != self.art.encoder_dim:
            raise ValueError(f"encoder {self.art.encoder_name} gives {cached.dim}-d vectors, artifact expects {self.art.encoder_dim}")
        self.featurize = None
        if getattr(self.art.predictor, "needs_tokens", False):  # the model_queries variant
            from router.model.tokens import StaticTokenFeaturizer

            self.featurize = StaticTokenFeaturizer(self.art.encoder_name, self.art.predictor.config.token_segments)

    def ready(self) -> bool:
        """Load the encoder's model now (it loads lazily on the first batch otherwise)."""
        self.embed(["warm up"])
        return True

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from router.rewards import decide

        prompts = [str(p) for p in batch["prompt"]]
        X = np.asarray(self.embed(prompts), dtype=np.float32)
        if self.featurize is not None:
            tokens, mask = self.featurize(prompts)
            pred = self.art.predictor.predict(X, tokens=tokens, mask=mask)
        else:
            pred = self.art.predictor.predict(X)
        n, k = len(prompts), len(self.lambdas)
        rows = np.arange(n)
        chosen, lam_col, reward_col, q_col, c_col = [], [], [], [], []
        for lam in self.lambdas:
            choice, rewards = decide(pred.quality, pred.cost, lam, self.reward, self.art.c_ref)
            chosen.append(np.asarray(self.models, dtype=object)[choice])
            lam_col.append(np.full(n, lam))
            reward_col.append(rewards[rows, choice])
            q_col.append(pred.quality[rows, choice])
            c_col.append(pred.cost[rows, choice])
        out: dict[str, Any] = {
            "id": np.tile(batch["id"], k),
            "lambda": np.concatenate(lam_col),
            "reward_type": np.full(n * k, self.reward.name, dtype=object),
            "model": np.concatenate(chosen),
            "reward": np.concatenate(reward_col),
            "quality": np.concatenate(q_col),
            "cost": np.concatenate(c_col),
        }
        for j, m in enumerate(self.models):
            out[f"quality[{m}]"] = np.tile(pred.quality[:, j], k)
            out[f"cost[{m}]"] = np.tile(pred.cost[:, j], k)
        out["source"] = np.tile(batch["source"], k)
        out["line"] = np.tile(batch["line"], k)
        return out


# ---------------------------------------------------------------------------------------------
# Summary


def summarize(fs, decisions_dir: str, models: list[str], lambdas: list[float]) -> dict:
    """Per λ: rows, share of each chosen model, predicted total cost and mean quality, and the same
    for always choosing the best model (highest mean predicted quality over the rows)."""
    import pyarrow.dataset as pads

    cost_cols = [f"cost[{m}]" for m in models]
    qual_cols = [f"quality[{m}]" for m in models]
    dataset = pads.dataset(decisions_dir, filesystem=fs, format="parquet")
    acc = {lam: {"rows": 0, "counts": np.zeros(len(models)), "cost": 0.0, "quality": 0.0,
                 "cost_per_model": np.zeros(len(models)), "quality_per_model": np.zeros(len(models))} for lam in lambdas}  # fmt: skip
    index = {m: j for j, m in enumerate(models)}
    for batch in dataset.to_batches(columns=["lambda", "model", "cost", "quality", *cost_cols, *qual_cols]):
        cols = batch.to_pydict()
        lam_arr = np.asarray(cols["lambda"], dtype=np.float64)
        for lam in lambdas:
            sel = lam_arr == lam
            if not sel.any():
                continue
            a = acc[lam]
            a["rows"] += int(sel.sum())
            chosen = np.asarray(cols["model"], dtype=object)[sel]
            for m in chosen:
                a["counts"][index[m]] += 1
            a["cost"] += float(np.asarray(cols["cost"])[sel].sum())
            a["quality"] += float(np.asarray(cols["quality"])[sel].sum())
            a["cost_per_model"] += np.array([np.asarray(cols[c])[sel].sum() for c in cost_cols])
            a["quality_per_model"] += np.array([np.asarray(cols[c])[sel].sum() for c in qual_cols])
    per_lambda = []
    for lam in lambdas:
        a = acc[lam]
        n = max(a["rows"], 1)
        best = int(np.argmax(a["quality_per_model"]))
        per_lambda.append(
            {
                "lambda": lam,
                "rows": a["rows"],
                "share": {m: float(a["counts"][j] / n) for j, m in enumerate(models)},
                "predicted_total_cost": a["cost"],
                "predicted_mean_quality": a["quality"] / n,
                "best_model": models[best],
                "best_model_total_cost": float(a["cost_per_model"][best]),
                "best_model_mean_quality": float(a["quality_per_model"][best] / n),
                "cost_vs_best_model": float(a["cost"] / a["cost_per_model"][best]) if a["cost_per_model"][best] > 0 else None,
            }
        )
    return {"per_lambda": per_lambda}


def format_summary(summary: dict) -> str:
    lines = [
        f"rows read {summary['rows_read']}: routed {summary['rows_routed']}, quarantined {summary['rows_quarantined']}"
        + (f" (see {summary['quarantine_path']})" if summary["rows_quarantined"] else ""),
        f"wrote {summary['rows_written']} decisions to {summary['decisions_path']}",
        f"throughput {summary['rows_per_s']:.1f} rows/s over {summary['seconds']:.1f} s (reward {summary['reward']})",
    ]
    for p in summary["per_lambda"]:
        shares = ", ".join(f"{m} {s:.1%}" for m, s in sorted(p["share"].items(), key=lambda kv: -kv[1]) if s > 0) or "-"
        ratio = p["cost_vs_best_model"]
        lines.append(
            f"λ={p['lambda']:g}: {shares}; predicted cost ${p['predicted_total_cost']:.4f} vs "
            f"${p['best_model_total_cost']:.4f} always {p['best_model']}"
            + (f" ({ratio:.1%})" if ratio is not None else "")
            + f"; predicted quality {p['predicted_mean_quality']:.3f} vs {p['best_model_mean_quality']:.3f}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The run


def write_quarantine(parsed, fs, path: str) -> int:
    """Stream the malformed rows of ``parsed`` to a JSONL file; returns how many."""
    n = 0
    parent = posixpath.dirname(path)
    if parent:
        fs.create_dir(parent, recursive=True)
    with fs.open_output_stream(path) as f:
        for batch in parsed.filter(expr=bad_rows()).iter_batches(batch_format="pyarrow", batch_size=1024):
            for row in batch.to_pylist():
                record = {"id": row["id"] or None, "source": row["source"], "line": row["line"] if row["line"] >= 0 else None,
                          "reason": row["error"], "raw": row["raw"]}  # fmt: skip
                f.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
                n += 1
    return n


def route_logs(cfg: RouteLogsConfig) -> dict:
    """Run the pipeline (Ray must be initialised) and return the summary (also written as JSON)."""
    import ray
    import ray.data

    from router.model.artifact import load_artifact

    art = load_artifact(cfg.artifact)  # fail fast, in the driver, on a bad artifact
    if getattr(art.predictor, "needs_tokens", False) and art.encoder_name.startswith("hash:"):
        raise ValueError(f"--artifact {cfg.artifact!r}: its variant needs token features, which a hash encoder has not")
    models = list(art.models)
    files = resolve_inputs(cfg.input)
    fs, out_path = prepare_output(cfg.out, cfg.overwrite)
    decisions = posixpath.join(out_path, DECISIONS_DIR)
    if cfg.quarantine:
        q_fs, q_path = out_fs(cfg.quarantine)
    else:
        q_fs, q_path = fs, posixpath.join(out_path, QUARANTINE_FILE)

    cpus = int(ray.cluster_resources().get("CPU", 1))
    threads = cfg.threads or max(1, cpus // cfg.actors)
    log.info("routing %d file(s) from %s with %d actor(s) x %d thread(s), λ=%s", files.count, cfg.input, cfg.actors, threads, cfg.lambdas)

    started = time.perf_counter()
    parsed = parsed_dataset(files, cfg.prompt_field, cfg.id_field)
    routed = parsed.filter(expr=good_rows()).drop_columns(["error", "raw"]).map_batches(
        RouteBatches,
        fn_constructor_kwargs={
            "artifact": cfg.artifact, "lambdas": cfg.lambdas, "reward": cfg.reward, "device": "cuda" if cfg.gpu else None,
            "threads": threads, "cache_dir": cfg.cache_dir, "use_cache": cfg.use_cache,
        },  # fmt: skip
        batch_size=cfg.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=cfg.actors),
        num_cpus=1,
        num_gpus=1 if cfg.gpu else 0,
    )
    routed.write_parquet(decisions, filesystem=fs)
    route_seconds = time.perf_counter() - started
    n_bad = write_quarantine(parsed, q_fs, q_path)
    seconds = time.perf_counter() - started

    stats = summarize(fs, decisions, models, cfg.lambdas) if fs.get_file_info(decisions).type.name == "Directory" else {
        "per_lambda": [{"lambda": lam, "rows": 0, "share": {m: 0.0 for m in models}, "predicted_total_cost": 0.0,
                        "predicted_mean_quality": 0.0, "best_model": None, "best_model_total_cost": 0.0,
                        "best_model_mean_quality": 0.0, "cost_vs_best_model": None} for lam in cfg.lambdas]}  # fmt: skip
    written = sum(p["rows"] for p in stats["per_lambda"])
    n_good = stats["per_lambda"][0]["rows"]
    if any(p["rows"] != n_good for p in stats["per_lambda"]):
        raise RuntimeError(f"decisions per λ differ: {[p['rows'] for p in stats['per_lambda']]}")
    summary = {
        "input": cfg.input,
        "files": files.count,
        "artifact": cfg.artifact,
        "models": models,
        "reward": cfg.reward,
        "lambdas": cfg.lambdas,
        "rows_read": n_good + n_bad,
        "rows_routed": n_good,
        "rows_quarantined": n_bad,
        "rows_written": written,
        "decisions_path": decisions,
        "quarantine_path": q_path,
        "seconds": seconds,
        "route_seconds": route_seconds,
        "rows_per_s": (n_good + n_bad) / seconds if seconds > 0 else 0.0,
        **stats,
    }
    with fs.open_output_stream(posixpath.join(out_path, SUMMARY_FILE)) as f:
        f.write(json.dumps(summary, indent=2).encode("utf-8"))
    return summary
