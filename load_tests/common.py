"""Shared bits of the benchmark and fault scripts: tables, JSON output, the BENCHMARKS.md section."""

from __future__ import annotations

import json
import os
import platform
import re
import time
from pathlib import Path
from typing import Any, Sequence

from load_tests.generator import write_json

__all__ = ["format_table", "machine_info", "print_table", "replace_section", "update_benchmarks_md", "write_json", "Timer"]

SECTION = "serve-bench"
REPO_ROOT = Path(__file__).resolve().parents[1]


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v != v:  # NaN
            return "-"
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def format_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """A Markdown table (also readable on a terminal)."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths)) + " |"  # noqa: E731
    out = [line(columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(row) for row in cells]
    return "\n".join(out)


def print_table(title: str, rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    text = f"\n## {title}\n\n{format_table(rows, columns)}\n"
    print(text, flush=True)
    return text


def machine_info() -> dict:
    import torch

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        # How Ray was started (read when it starts): Serve's fast path, its HAProxy ingress, workers' priority.
        "ray_env": {k: os.environ.get(k) for k in ("RAY_SERVE_THROUGHPUT_OPTIMIZED", "RAY_SERVE_ENABLE_HA_PROXY", "RAY_worker_niceness")},
    }


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with the content between ``<!-- section:name -->`` and ``<!-- /section:name -->``
    replaced by ``body`` (the markers are appended at the end when missing)."""
    start, end = f"<!-- section:{name} -->", f"<!-- /section:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    return text.rstrip("\n") + ("\n\n" if text.strip() else "") + block + "\n"


def update_benchmarks_md(body: str, path: str | Path | None = None, section: str = SECTION) -> Path:
    """Rewrite only our section of BENCHMARKS.md (read right before writing: others edit it too)."""
    path = Path(path) if path is not None else REPO_ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n\nMeasured numbers and the commands that reproduce them.\n"
    path.write_text(replace_section(text, section, body))
    return path


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        return False


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
