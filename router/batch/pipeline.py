"""``router route-logs``: route logged prompts in bulk with Ray Data.

read (JSONL lines / Parquet rows, parsed into id + prompt text or a quarantine reason)
  -> keep good rows -> ``map_batches`` over an actor pool (each actor: encoder + router artifact;
     embed, predict quality and cost per model, decide at every λ)
  -> ``write_parquet`` (one row per input row × λ)
and a second, cheap pass over the same parse that streams malformed rows to the quarantine file.
Then a summary is computed from the written Parquet (so it describes exactly what was written).

Output folder layout: ``<out>/decisions/<unit>/*.parquet`` (read ``<out>/decisions`` as one
Parquet dataset; ``_unit.json`` in each unit says which input files it routed), ``<out>/quarantine.jsonl``
(unless ``--quarantine`` names another file), ``<out>/summary.json``.

Complete or absent: the output is built in ``<out>.partial`` and moved to ``<out>`` only once
``summary.json`` is written, so a killed run leaves nothing at ``<out>``. Input files are routed in
*units* (``files_per_unit`` files, one Ray Data job each); a unit is written under
``decisions/.tmp-<unit>`` and renamed to ``decisions/<unit>`` when all its rows and its manifest are
on disk: the rename is the per-file completion marker. ``--resume`` reads the committed units,
throws away a half-written one, and routes only the files no committed unit lists, so every row is
written exactly once, and its decisions are those an uninterrupted run writes (a row's decisions
depend only on its prompt, the artifact, λ and the reward, which a resume must keep: ``_run.json``).

Actors take ``num_cpus=1`` and set torch's thread count themselves: Ray starts workers with
OMP_NUM_THREADS=1, and an actor asking for every CPU of a 2-CPU node leaves none for the read
tasks, which then never schedule (a silent deadlock, seen with Ray 2.60 on a 2-CPU machine).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import posixpath
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from router.batch.sources import FIELDS_COLUMN, InputFiles, parse_jsonl_file, parse_parquet_rows, resolve_inputs
from router.rewards import check_lambda, check_reward, get_reward

log = logging.getLogger(__name__)

DECISIONS_DIR = "decisions"
QUARANTINE_FILE = "quarantine.jsonl"
SUMMARY_FILE = "summary.json"
STAGING_SUFFIX = ".partial"
UNIT_PREFIX = "unit-"
UNIT_MANIFEST = "_unit.json"  # "_" and "." prefixes: ignored by Parquet dataset readers
UNIT_QUARANTINE = "_quarantine.jsonl"
RUN_FILE = "_run.json"


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
    actors: int | None = Field(None, ge=1, le=1024, description="Size of the embedding actor pool; default 1 on "
                               "CPU (with every CPU's torch thread), one per GPU with gpu.")
    gpu: bool = Field(False, description="One GPU per actor; the encoder runs on CUDA.")
    threads: int | None = Field(None, ge=1, le=256, description="torch threads per actor; default: the cluster's CPUs / actors.")
    quarantine: str | None = Field(None, description="Quarantine JSONL path; default <out>/quarantine.jsonl.")
    overwrite: bool = Field(False, description="Replace a non-empty output folder (when the new one is complete) "
                            "and discard an interrupted run's staging folder.")
    resume: bool = Field(False, description="Continue the interrupted run whose staging folder <out>.partial is "
                         "there: route only the input files it has not finished.")
    files_per_unit: int = Field(16, ge=1, le=100_000, description="Input files per Ray Data job (unit of completion): "
                                "a killed run redoes at most its unfinished unit; each job starts its own actor pool.")
    cache_dir: str | None = Field(None, description="Embedding cache folder; default the project's cache.")
    use_cache: bool = Field(True, description="Look up and store embeddings in the on-disk cache.")
    timeline: str | None = Field(None, description="Append where the time went to this local JSONL file: each pool "
                                 "actor's start and each batch's embed and decide seconds (one line per event, wall-clock "
                                 "`t`), and the driver's units. For profiling; on a cluster give a path every node can write.")

    @field_validator("lambdas")
    @classmethod
    def _check_lambdas(cls, v: list[float]) -> list[float]:
        out = [check_lambda(x, "--lambda") for x in v]
        if len(set(out)) != len(out):
            raise ValueError(f"--lambda: repeated values in {v}")
        return out

    @field_validator("reward")
    @classmethod
    def _check_reward(cls, v: str) -> str:
        return check_reward(v, "--reward")


# ---------------------------------------------------------------------------------------------
# Output filesystem


def out_fs(path: str):
    import pyarrow.fs as pafs

    if "://" in path:
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(path))


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


# Reading, parsing and writing reserve no CPU. They are light next to the encoder actors (1 CPU
# each), and a task that needs a free CPU can wait forever: once a node is lost, the actors left
# may hold every CPU there is (seen: 2 actors on the 2 CPUs of the surviving node, the parse task
# of the next unit backpressured for minutes, load_tests.bench_node_kill).
IO_TASK_CPUS = 0


def parsed_dataset(files: InputFiles, prompt_field: str, id_field: str, extra_fields: tuple[str, ...] = ()):
    """One Ray Dataset of parsed rows (columns of ``router.batch.sources.PARSED_COLUMNS``, plus
    ``fields`` when ``extra_fields`` are asked for)."""
    import ray.data

    extra_fields = tuple(extra_fields)
    io = {"num_cpus": IO_TASK_CPUS}
    parts = []
    if files.jsonl:
        raw = ray.data.read_binary_files(files.jsonl, filesystem=files.filesystem, include_paths=True, ray_remote_args=io)
        parts.append(raw.flat_map(_ParseJsonl(prompt_field, id_field, extra_fields), **io))
    if files.parquet:
        table = ray.data.read_parquet(files.parquet, filesystem=files.filesystem, include_paths=True, ray_remote_args=io)
        parts.append(
            table.map_batches(
                _parse_parquet_batch, batch_format="pyarrow",
                fn_kwargs={"prompt_field": prompt_field, "id_field": id_field, "extra_fields": extra_fields}, **io,
            )  # fmt: skip
        )
    return parts[0] if len(parts) == 1 else parts[0].union(*parts[1:])


def good_rows():
    from ray.data.expressions import col

    return col("error") == ""


def bad_rows():
    from ray.data.expressions import col

    return col("error") != ""


def record_event(path: str | None, event: str, **fields) -> None:
    """One line of the ``--timeline`` file (nothing when there is none). Appends of one short line
    from several processes do not interleave (O_APPEND), so the pool's actors and the driver share it."""
    if path:
        line = json.dumps({"event": event, "t": time.time(), "pid": os.getpid(), **fields}) + "\n"
        with open(path, "a", encoding="utf-8") as f:
            f.write(line)


class RouteBatches:
    """An actor of the pool: opens the router (and its encoder) once, then routes batches."""

    def __init__(self, artifact: str, lambdas: list[float], reward: str, device: str | None, threads: int | None,
                 cache_dir: str | None, use_cache: bool, timeline: str | None = None):  # fmt: skip
        self.timeline = timeline
        record_event(timeline, "actor_start")
        import torch

        if threads:
            torch.set_num_threads(threads)
        from router.core import Router

        self.router = Router.load(artifact, device=device, cache_dir=cache_dir, use_cache=use_cache)
        self.models = list(self.router.models)
        self.lambdas = lambdas
        self.reward = get_reward(reward)
        # Load the encoder's model (and run it once) here, while Ray Data starts the pool and the read
        # tasks parse the input, instead of after the first batch has arrived (it loads lazily
        # otherwise). The bare encoder is warmed, not the cached one: nothing is written to the cache.
        encoder = getattr(self.router.encoder, "encoder", self.router.encoder)
        if hasattr(encoder, "model"):
            encoder.encode(["warm up"], show_progress=False)
        record_event(timeline, "actor_ready")

    def ready(self) -> bool:
        """True once constructed (the model is loaded in the constructor)."""
        return True

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        started = time.perf_counter()
        prompts = [str(p) for p in batch["prompt"]]
        X = self.router.embed(prompts)
        embedded = time.perf_counter()
        pred = self.router.predict_embedded(X, prompts)
        n, k = len(prompts), len(self.lambdas)
        rows = np.arange(n)
        chosen, lam_col, reward_col, q_col, c_col = [], [], [], [], []
        for lam in self.lambdas:
            choice, rewards = self.router.choose(pred, lam, self.reward)
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
        # cpu_s: this actor's CPU seconds so far (all threads, the model load included); the pool's
        # processes may be gone before anyone outside could read them.
        record_event(self.timeline, "batch", rows=n, embed_s=embedded - started, decide_s=time.perf_counter() - embedded,
                     cpu_s=time.process_time())  # fmt: skip
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
# The run: units of input files, staged, then moved into place


def write_quarantine(parsed, fs, path: str) -> int:
    """Stream the malformed rows of ``parsed`` to a JSONL file, in input order; returns how many."""
    n = 0
    parent = posixpath.dirname(path)
    if parent:
        fs.create_dir(parent, recursive=True)
    # In input order whatever order the (CPU-free, so all concurrent) parse tasks end in: a resumed
    # run then writes the same quarantine file as an uninterrupted one. A dataset keeps the context
    # it was made with, so the option is set on that one.
    options = parsed.context.execution_options
    before, options.preserve_order = options.preserve_order, True
    try:
        with fs.open_output_stream(path) as f:
            for batch in parsed.filter(expr=bad_rows(), num_cpus=IO_TASK_CPUS).iter_batches(batch_format="pyarrow", batch_size=1024):
                for row in batch.to_pylist():
                    record = {"id": row["id"] or None, "source": row["source"], "line": row["line"] if row["line"] >= 0 else None,
                              "reason": row["error"], "raw": row["raw"]}  # fmt: skip
                    f.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
                    n += 1
    finally:
        options.preserve_order = before
    return n


def _read_json(fs, path: str) -> dict:
    with fs.open_input_stream(path) as f:
        return json.loads(f.read().decode("utf-8"))


def _write_json(fs, path: str, data: dict) -> None:
    with fs.open_output_stream(path) as f:
        f.write((json.dumps(data, indent=2) + "\n").encode("utf-8"))


def _is_dir(fs, path: str) -> bool:
    import pyarrow.fs as pafs

    return fs.get_file_info(path).type == pafs.FileType.Directory


def _run_identity(cfg: RouteLogsConfig) -> dict:
    """What decides a row's decisions: a resumed run must agree on all of it, or its rows would not
    be the rows an uninterrupted run writes."""
    from router.model.artifact import MANIFEST_FILE

    manifest = posixpath.join(os.path.abspath(cfg.artifact), MANIFEST_FILE)
    with open(manifest, "rb") as f:
        artifact_sha = hashlib.sha256(f.read()).hexdigest()
    return {"input": cfg.input, "artifact_manifest_sha256": artifact_sha, "prompt_field": cfg.prompt_field,
            "id_field": cfg.id_field, "lambdas": cfg.lambdas, "reward": cfg.reward}  # fmt: skip


@dataclass
class RunPaths:
    fs: Any  # pyarrow.fs.FileSystem of the output
    out: str  # where the finished output goes
    staging: str  # where it is built

    @property
    def decisions(self) -> str:
        return posixpath.join(self.staging, DECISIONS_DIR)


def staging_path(out_path: str) -> str:
    return out_path.rstrip("/") + STAGING_SUFFIX


def prepare_output(out: str, overwrite: bool = False, resume: bool = False) -> RunPaths:
    """Check ``--out`` and set up its staging folder (``<out>.partial``, next to it).

    A non-empty ``--out`` is refused unless ``overwrite`` (it is replaced only when the new output is
    complete). A staging folder left by an interrupted run is continued with ``resume``, removed
    with ``overwrite``, and otherwise refused, so that two runs never mix their rows."""
    import pyarrow.fs as pafs

    if overwrite and resume:
        raise ValueError("--resume continues an interrupted run and --overwrite starts over: pass one of them")
    fs, path = out_fs(out)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File:
        raise ValueError(f"--out {out!r} is a file, not a folder")
    if info.type == pafs.FileType.Directory and fs.get_file_info(pafs.FileSelector(path)):
        if resume and fs.get_file_info(posixpath.join(path, SUMMARY_FILE)).type == pafs.FileType.File:
            raise ValueError(f"--out {out!r} is complete already (it has {SUMMARY_FILE}); nothing to resume")
        if not overwrite:
            raise ValueError(f"--out {out!r} is not empty; choose a new folder or pass --overwrite")
    staging = staging_path(path)
    if _is_dir(fs, staging):
        if overwrite:
            fs.delete_dir(staging)
        elif not resume:
            raise ValueError(f"--out {out!r}: an interrupted run left {staging}; pass --resume to finish it "
                             "or --overwrite to start over")  # fmt: skip
    fs.create_dir(posixpath.join(staging, DECISIONS_DIR), recursive=True)
    return RunPaths(fs, path, staging)


def completed_units(paths: RunPaths) -> dict[str, dict]:
    """Input file -> the manifest of the finished unit that routed it. A unit is finished when its
    folder has its final name (renamed from ``.tmp-<unit>`` after every row and the manifest were
    written), so a unit killed mid-write is never counted and its rows are never read."""
    import pyarrow.fs as pafs

    done: dict[str, dict] = {}
    for info in paths.fs.get_file_info(pafs.FileSelector(paths.decisions)):
        name = posixpath.basename(info.path)
        if info.type != pafs.FileType.Directory or not name.startswith(UNIT_PREFIX):
            continue
        unit = _read_json(paths.fs, posixpath.join(info.path, UNIT_MANIFEST))
        for f in unit["files"]:
            if f["path"] in done:  # cannot happen by construction; refuse rather than write a row twice
                raise RuntimeError(f"{f['path']} is in two finished units ({done[f['path']]['unit']}, {unit['unit']})")
            done[f["path"]] = unit
    return done


def _unit_key(files: list[str]) -> str:
    return UNIT_PREFIX + hashlib.sha256("\n".join(files).encode("utf-8")).hexdigest()[:16]


def _file_sizes(files: InputFiles, paths: list[str]) -> dict[str, int]:
    return {i.path: int(i.size) for i in files.filesystem.get_file_info(paths)}


def pool_plan(actors: int | None, threads: int | None, gpu: bool) -> tuple[int, int]:
    """(actors, torch threads per actor) for a unit, from the cluster as it is now (alive nodes only).

    Default on CPU: one actor with every CPU's thread. Two 1-thread processes do encode faster than
    one 2-thread one (on 2 CPUs: 1,500 routellm prompts in 37.6 s against 44-46 s, one call each),
    but only on large calls; split into the batches that keep two actors evenly busy (188 prompts)
    they took 45 s in plain Ray actors and about 1.6x that inside Ray Data (``load_tests.bench_route_logs
    --pools default,2x1``). Default with ``gpu``: one actor per GPU."""
    import ray

    resources = ray.cluster_resources()
    cpus = max(1, int(resources.get("CPU", 1)))
    if gpu and int(resources.get("GPU", 0)) < 1:  # an actor asking for a GPU that is not there waits forever
        raise ValueError("--gpu: the Ray cluster has no GPU (ray.cluster_resources() lists none)")
    have = int(resources.get("GPU", 0)) if gpu else cpus
    wanted = actors or (have if gpu else 1)
    size = min(wanted, have)
    if size < wanted:
        log.warning("%d actor(s) asked for, %d %s(s) in the cluster now: using %d", wanted, have, "GPU" if gpu else "CPU", size)
    return size, threads or max(1, cpus // size)


def _actor_pool(size: int):
    """The unit's actor pool: ``size`` actors to start with, free to shrink to one.

    It may hold every CPU: reading, parsing and writing take none (``IO_TASK_CPUS``). Before they
    did, an actor pool holding every CPU starved them for good: after losing a node of a two-node
    cluster mid-run, 3 actors of 1 CPU on the 2 CPUs left, the parse task backpressured, no
    progress in minutes (load_tests.bench_node_kill). One task in flight per actor: a queued second
    batch would wait behind the first while another actor idles at the end of the unit."""
    import ray.data

    return ray.data.ActorPoolStrategy(min_size=1, max_size=size, initial_size=size, max_tasks_in_flight_per_actor=1)


# Batches per actor in a unit, at least: the last batch of a unit is where the pool's actors wait
# for each other, so it should be short.
BATCHES_PER_ACTOR = 4
MIN_BATCH = 32


def _estimate_rows(files: InputFiles, sizes: dict[str, int]) -> int:
    """Rows in these input files, roughly: Parquet from its footers; JSONL from the bytes per line of
    the first file's first MiB."""
    import pyarrow.parquet as pq

    rows = 0
    for f in files.parquet:
        with files.filesystem.open_input_file(f) as fh:
            rows += pq.ParquetFile(fh).metadata.num_rows
    if files.jsonl:
        with files.filesystem.open_input_stream(files.jsonl[0]) as fh:
            head = fh.read(1 << 20)
        per_line = len(head) / max(1, head.count(b"\n"))
        rows += int(sum(sizes[f] for f in files.jsonl) / max(per_line, 1.0))
    return rows


def unit_blocks(files: InputFiles, pool: int, batch_size: int) -> tuple[int, int]:
    """(prompts per actor call, Ray Data block bytes) for a unit's input files, so that its rows
    reach every actor.

    Ray Data hands an actor whole blocks, and a parsed file is one block up to 128 MiB, so with the
    defaults one file feeds one actor however large the pool. The parse stage's blocks are cut to a
    quarter of a batch (from the bytes per row), and the batch is shrunk to give each actor at
    least ``BATCHES_PER_ACTOR`` batches (never below ``MIN_BATCH`` nor above ``batch_size``)."""
    if pool == 1:  # nothing to share: the largest batches (least padding), Ray Data's own blocks
        return batch_size, 0
    sizes = _file_sizes(files, files.jsonl + files.parquet)
    rows = max(1, _estimate_rows(files, sizes))
    batch = min(batch_size, max(MIN_BATCH, -(-rows // (BATCHES_PER_ACTOR * pool))))
    block_bytes = max(4096, int(sum(sizes.values()) / rows * batch / 4))
    return batch, block_bytes


def _route_unit(cfg: RouteLogsConfig, paths: RunPaths, files: InputFiles, unit_files: list[str]) -> dict:
    """Route one unit of input files into ``decisions/<unit>`` (built under ``.tmp-<unit>``, renamed when done)."""
    import pyarrow.dataset as pads
    import ray.data

    fs = paths.fs
    key = _unit_key(unit_files)
    tmp = posixpath.join(paths.decisions, ".tmp-" + key)
    if _is_dir(fs, tmp):  # a unit killed mid-write: its rows are thrown away and routed again
        fs.delete_dir(tmp)
    fs.create_dir(tmp, recursive=True)
    chosen = set(unit_files)
    unit = InputFiles(files.filesystem, [f for f in files.jsonl if f in chosen], [f for f in files.parquet if f in chosen])
    pool, threads = pool_plan(cfg.actors, cfg.threads, cfg.gpu)
    batch, block_bytes = unit_blocks(unit, pool, cfg.batch_size)
    # A dataset keeps the DataContext current when it is made: the unit's smaller blocks apply to
    # its datasets only.
    context = ray.data.DataContext.get_current()
    before = context.target_max_block_size
    if block_bytes:
        context.target_max_block_size = min(block_bytes, before or block_bytes)
    try:
        parsed = parsed_dataset(unit, cfg.prompt_field, cfg.id_field)
    finally:
        context.target_max_block_size = before
    routed = parsed.filter(expr=good_rows(), num_cpus=IO_TASK_CPUS).drop_columns(["error", "raw"]).map_batches(
        RouteBatches,
        fn_constructor_kwargs={
            "artifact": cfg.artifact, "lambdas": cfg.lambdas, "reward": cfg.reward, "device": "cuda" if cfg.gpu else None,
            "threads": threads, "cache_dir": cfg.cache_dir, "use_cache": cfg.use_cache, "timeline": cfg.timeline,
        },  # fmt: skip
        batch_size=batch,
        batch_format="numpy",
        compute=_actor_pool(pool),
        num_cpus=1,
        num_gpus=1 if cfg.gpu else 0,
    )
    log.info("unit %s: %d file(s), %d actor(s) x %d thread(s), %d prompts per call, %d-byte blocks",
             key, len(unit_files), pool, threads, batch, block_bytes)  # fmt: skip
    record_event(cfg.timeline, "unit_start", unit=key, files=len(unit_files), actors=pool, threads=threads, batch=batch)
    # One write task per ``batch_size`` prompts at least, however small the pool's batches: each
    # 0-CPU task beyond the node's idle workers boots a worker process (about a CPU-second), which
    # Ray stops again a second after it idles. Seen: 36 worker processes in one 104 s, 2-actor run.
    routed.write_parquet(tmp, filesystem=fs, min_rows_per_file=cfg.batch_size * len(cfg.lambdas),
                         ray_remote_args={"num_cpus": IO_TASK_CPUS})  # fmt: skip
    record_event(cfg.timeline, "unit_written", unit=key)
    n_bad = write_quarantine(parsed, fs, posixpath.join(tmp, UNIT_QUARANTINE))
    record_event(cfg.timeline, "unit_quarantined", unit=key)
    written = pads.dataset(tmp, filesystem=fs, format="parquet").count_rows()
    if written % len(cfg.lambdas):
        raise RuntimeError(f"unit {key}: {written} decisions is not a multiple of {len(cfg.lambdas)} λ values")
    sizes = _file_sizes(files, unit_files)
    manifest = {"unit": key, "rows_routed": written // len(cfg.lambdas), "rows_quarantined": n_bad,
                "files": [{"path": f, "size": sizes[f]} for f in unit_files]}  # fmt: skip
    _write_json(fs, posixpath.join(tmp, UNIT_MANIFEST), manifest)
    fs.move(tmp, posixpath.join(paths.decisions, key))  # the unit's commit point
    return manifest


def _merge_quarantine(paths: RunPaths, units: list[dict], dest_fs, dest: str) -> None:
    """One quarantine file from the units' parts, in input-file order; written beside ``dest`` and renamed."""
    parent = posixpath.dirname(dest)
    if parent:
        dest_fs.create_dir(parent, recursive=True)
    tmp = posixpath.join(parent, "." + posixpath.basename(dest) + ".tmp")
    with dest_fs.open_output_stream(tmp) as out:
        for unit in units:
            with paths.fs.open_input_stream(posixpath.join(paths.decisions, unit["unit"], UNIT_QUARANTINE)) as f:
                out.write(f.read())
    dest_fs.move(tmp, dest)


def route_logs(cfg: RouteLogsConfig, on_unit_done: Callable[[dict], None] | None = None) -> dict:
    """Run the pipeline (Ray must be initialised) and return the summary (also written as JSON).

    ``on_unit_done(manifest)`` is called after each unit is committed (progress; tests use it to
    interrupt a run at a known point)."""
    from router.core import Router

    record_event(cfg.timeline, "run_start")
    router = Router.load(cfg.artifact)  # fail fast, in the driver, on a bad artifact
    pool_plan(cfg.actors, cfg.threads, cfg.gpu)  # and on a pool the cluster cannot hold (before any output)
    if router.needs_tokens and router.encoder_name.startswith("hash:"):
        raise ValueError(f"--artifact {cfg.artifact!r}: its variant needs token features, which a hash encoder has not")
    models = list(router.models)
    files = resolve_inputs(cfg.input)
    paths = prepare_output(cfg.out, cfg.overwrite, cfg.resume)
    fs = paths.fs
    identity = _run_identity(cfg)
    run_file = posixpath.join(paths.staging, RUN_FILE)
    if fs.get_file_info(run_file).type.name == "File":
        before = _read_json(fs, run_file)
        differ = sorted(k for k in identity if before.get(k) != identity[k])
        if differ:
            raise ValueError(f"--resume: the interrupted run at {paths.staging} used other {', '.join(differ)}; "
                             "resume it with the same options, or pass --overwrite to start over")  # fmt: skip
    else:
        _write_json(fs, run_file, identity)

    all_files = sorted(files.jsonl + files.parquet)
    done = completed_units(paths)
    sizes = _file_sizes(files, [f for f in all_files if f in done])
    for f, unit in done.items():
        if f not in sizes:
            raise ValueError(f"--resume: {f} was routed by the interrupted run but is no longer in --input {cfg.input!r}")
        recorded = next(x["size"] for x in unit["files"] if x["path"] == f)
        if recorded != sizes[f]:
            raise ValueError(f"--resume: {f} changed since the interrupted run routed it ({recorded} -> {sizes[f]} bytes); "
                             "pass --overwrite to start over")  # fmt: skip
    pending = [f for f in all_files if f not in done]

    log.info("routing %d of %d file(s) from %s (%d done before), λ=%s",
             len(pending), len(all_files), cfg.input, len(all_files) - len(pending), cfg.lambdas)  # fmt: skip
    started = time.perf_counter()
    for i in range(0, len(pending), cfg.files_per_unit):
        manifest = _route_unit(cfg, paths, files, pending[i : i + cfg.files_per_unit])
        if on_unit_done is not None:
            on_unit_done(manifest)
    route_seconds = time.perf_counter() - started

    units = sorted({u["unit"]: u for u in completed_units(paths).values()}.values(), key=lambda u: u["files"][0]["path"])
    if cfg.quarantine:
        q_fs, q_path = out_fs(cfg.quarantine)
    else:
        q_fs, q_path = fs, posixpath.join(paths.out, QUARANTINE_FILE)
    staged_q = posixpath.join(paths.staging, QUARANTINE_FILE) if not cfg.quarantine else q_path
    _merge_quarantine(paths, units, fs if not cfg.quarantine else q_fs, staged_q)
    n_bad = sum(u["rows_quarantined"] for u in units)
    seconds = time.perf_counter() - started

    stats = summarize(fs, paths.decisions, models, cfg.lambdas) if _routed(units) else _empty_stats(models, cfg.lambdas)
    written = sum(p["rows"] for p in stats["per_lambda"])
    n_good = stats["per_lambda"][0]["rows"]
    if any(p["rows"] != n_good for p in stats["per_lambda"]):
        raise RuntimeError(f"decisions per λ differ: {[p['rows'] for p in stats['per_lambda']]}")
    if n_good != _routed(units):  # every routed row once: none lost, none twice
        raise RuntimeError(f"{n_good} decisions per λ on disk, but the units routed {_routed(units)} rows")
    summary = {
        "input": cfg.input,
        "files": files.count,
        "files_resumed": len(all_files) - len(pending),
        "units": len(units),
        "artifact": cfg.artifact,
        "models": models,
        "reward": cfg.reward,
        "lambdas": cfg.lambdas,
        "rows_read": n_good + n_bad,
        "rows_routed": n_good,
        "rows_quarantined": n_bad,
        "rows_written": written,
        "decisions_path": posixpath.join(paths.out, DECISIONS_DIR),
        "quarantine_path": q_path,
        "seconds": seconds,
        "route_seconds": route_seconds,
        "rows_per_s": (n_good + n_bad) / seconds if seconds > 0 else 0.0,
        **stats,
    }
    _write_json(fs, posixpath.join(paths.staging, SUMMARY_FILE), summary)  # written last: the staged output is complete
    _publish(paths)
    record_event(cfg.timeline, "run_end")
    return summary


def _routed(units: list[dict]) -> int:
    return sum(u["rows_routed"] for u in units)


def _empty_stats(models: list[str], lambdas: list[float]) -> dict:
    return {"per_lambda": [{"lambda": lam, "rows": 0, "share": {m: 0.0 for m in models}, "predicted_total_cost": 0.0,
                            "predicted_mean_quality": 0.0, "best_model": None, "best_model_total_cost": 0.0,
                            "best_model_mean_quality": 0.0, "cost_vs_best_model": None} for lam in lambdas]}  # fmt: skip


def _publish(paths: RunPaths) -> None:
    """Move the complete staging folder to ``--out`` (replacing an old output, for --overwrite)."""
    import pyarrow.fs as pafs

    fs = paths.fs
    fs.delete_file(posixpath.join(paths.staging, RUN_FILE))
    if fs.get_file_info(paths.out).type == pafs.FileType.Directory:
        fs.delete_dir(paths.out)
    parent = posixpath.dirname(paths.out)
    if parent:
        fs.create_dir(parent, recursive=True)
    fs.move(paths.staging, paths.out)
    # The per-unit quarantine parts were merged into one file; the unit manifests stay (what came from where).
    for info in fs.get_file_info(pafs.FileSelector(posixpath.join(paths.out, DECISIONS_DIR))):
        with contextlib.suppress(OSError):
            fs.delete_file(posixpath.join(info.path, UNIT_QUARANTINE))
