"""TEST DOUBLE setup for ``router label``: request logs made of bundled prompts, and the files that
point ``router label`` at the stand-in backend (``serve_app.testing.stub_backend``), which plays three
pool models of clearly different skill per task and a judge. Nothing here is a real model.

    python -m serve_app.testing.label_demo --out demo --rows 240 --port 9001

writes ``demo/logs.jsonl`` (OpenAI ``messages`` rows with a ``task`` field, plus a few malformed
rows that the quarantine catches), ``demo/skills.yaml``, ``demo/backends.yaml`` and
``demo/judge.yaml``; then start the stand-in with
``python -m serve_app.testing.stub_backend --port 9001 --skills demo/skills.yaml --answer-key demo/logs.jsonl
--key-prompt-field messages --key-task-field task --latency-ms-range 200-800``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

# Three tasks of the bundled dcrouter table, each best answered by a different stand-in model.
TASKS = ("gsm8k", "mbpp", "trivia_qa")
MODELS = ("alpha-8b", "beta-32b", "gamma-70b")
SKILLS = {
    "alpha-8b": {"gsm8k": 0.9, "mbpp": 0.15, "trivia_qa": 0.2},
    "beta-32b": {"gsm8k": 0.15, "mbpp": 0.9, "trivia_qa": 0.2},
    "gamma-70b": {"gsm8k": 0.2, "mbpp": 0.15, "trivia_qa": 0.9},
}
# USD per million tokens (input, output): made up, of the size real providers charge.
PRICES = {"alpha-8b": (0.2, 0.4), "beta-32b": (0.6, 1.2), "gamma-70b": (2.0, 6.0)}
JUDGE_MODEL = "stub-judge"
MALFORMED_LINES = [
    "{this line is not json",
    json.dumps({"id": "no-messages", "task": "gsm8k"}),
    json.dumps({"id": "empty-messages", "messages": [], "task": "mbpp"}),
]


def demo_log_rows(rows: int, seed: int = 0, tasks=TASKS) -> list[dict]:
    """``rows`` log records (messages + task), drawn evenly from ``tasks`` of the bundled dcrouter prompts."""
    from router.data import load_table

    frame = load_table("dcrouter").frame
    per_task = -(-rows // len(tasks))
    picked = []
    for task in tasks:
        sub = frame[frame["eval_name"] == task]
        picked.append(sub.sample(n=min(per_task, len(sub)), random_state=seed))
    out = []
    for part in picked:
        for sid, prompt, task in zip(part["sample_id"], part["prompt"], part["eval_name"]):
            out.append({"id": str(sid), "messages": [{"role": "user", "content": prompt}], "task": task})
    return sorted(out, key=lambda r: r["id"])[:rows] if len(out) > rows else out


def write_logs(path: Path, records: list[dict], malformed: bool = True) -> Path:
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    if malformed:
        for i, bad in enumerate(MALFORMED_LINES):  # spread through the file
            lines.insert(min(len(lines), (i + 1) * max(1, len(lines) // 4)), bad)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_backends(path: Path, port: int, models=MODELS, down: tuple[str, ...] = (), down_port: int | None = None) -> Path:
    """The backends file: every model on the stand-in at ``port``; models in ``down`` on ``down_port``
    (a port nothing listens on)."""
    entries = []
    for m in models:
        p = down_port if m in down else port
        inp, out = PRICES.get(m, (1.0, 2.0))
        entries.append({"model": m, "base_url": f"http://127.0.0.1:{p}/v1", "input_price_per_mtok": inp, "output_price_per_mtok": out})
    path.write_text("# TEST DOUBLE backends: every model is the stand-in stub backend\n" + yaml.safe_dump({"backends": entries}, sort_keys=False))
    return path


def write_judge(path: Path, port: int, **extra) -> Path:
    cfg = {"model": JUDGE_MODEL, "base_url": f"http://127.0.0.1:{port}/v1", "input_price_per_mtok": 0.5,
           "output_price_per_mtok": 1.5, "max_tokens": 8, **extra}  # fmt: skip
    path.write_text("# TEST DOUBLE judge: the stand-in stub backend's judge\n" + yaml.safe_dump(cfg, sort_keys=False))
    return path


def write_skills(path: Path, skills=None) -> Path:
    path.write_text(yaml.safe_dump(skills or SKILLS, sort_keys=False))
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m serve_app.testing.label_demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder to write the demo files to")
    p.add_argument("--rows", type=int, default=240, help="log rows (split evenly over the tasks)")
    p.add_argument("--port", type=int, default=9001, help="port of the stand-in backend")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_logs(out / "logs.jsonl", demo_log_rows(args.rows, args.seed))
    write_skills(out / "skills.yaml")
    write_backends(out / "backends.yaml", args.port)
    write_judge(out / "judge.yaml", args.port)
    print(f"wrote {out}/logs.jsonl ({args.rows} rows + {len(MALFORMED_LINES)} malformed), skills.yaml, backends.yaml, judge.yaml")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
