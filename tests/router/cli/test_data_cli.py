"""`router data info|validate|fetch` through the real entry point."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pandas as pd
import pytest

from router.cli.main import main


def small_frame(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample_id": [f"id{i}" for i in range(n)],
            "prompt": [f"prompt {i}" for i in range(n)],
            "eval_name": ["a-x", "a-y", "b"] * (n // 3),
            "m1": [1.0, 0.0] * (n // 2),
            "m1|total_cost": [0.1] * n,
            "m2": [1.0] * n,
            "m2|total_cost": [1.0] * n,
        }
    )


@pytest.fixture
def csv_path(tmp_path):
    path = tmp_path / "small.csv"
    small_frame().to_csv(path, index=False)
    return path


def test_validate_ok(csv_path, capsys):
    assert main(["data", "validate", str(csv_path)]) == 0
    assert capsys.readouterr().out.strip() == "OK: small: 6 rows, 2 models"


def test_validate_error_names_column_and_row(tmp_path, capsys):
    frame = small_frame()
    frame.loc[2, "m2|total_cost"] = -1.0
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path)
    assert main(["data", "validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("router data: error: bad: column 'm2|total_cost': negative cost")
    assert "row 2 (sample_id='id2')" in err and len(err.splitlines()) == 1


def test_validate_drop_incomplete(tmp_path, capsys):
    frame = small_frame()
    frame.loc[0, "m1"] = None
    path = tmp_path / "holes.jsonl"
    frame.to_json(path, orient="records", lines=True)
    assert main(["data", "validate", str(path)]) == 2
    assert "column 'm1': NaN" in capsys.readouterr().err
    assert main(["data", "validate", "--drop-incomplete", str(path)]) == 0
    assert "5 rows" in capsys.readouterr().out


def test_info_json(csv_path, capsys):
    assert main(["data", "info", "--json", str(csv_path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["rows"] == 6 and set(info["models"]) == {"m1", "m2"}
    assert info["domains"] == {"a": 4, "b": 2}
    # Oracle: m1 (cheap) where it is right, else m2.
    assert info["oracle"]["quality"] == 1.0 and info["oracle"]["total_cost"] == pytest.approx(3 * 0.1 + 3 * 1.0)


def test_info_table_on_bundled_data(capsys):
    assert main(["data", "info", "routellm"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("routellm: 15,361 prompts, 2 models, 2 domains (58 eval names)")
    assert "gpt-4-1106-preview" in out and "oracle" in out


def test_missing_file(capsys):
    assert main(["data", "info", "/no/such/file.parquet"]) == 2
    assert "no such data file" in capsys.readouterr().err


def test_fetch_without_network_is_one_line_no_traceback(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, ROUTER_HF_ENDPOINT=f"http://127.0.0.1:{port}")
    proc = subprocess.run(
        [sys.executable, "-m", "router.cli.main", "data", "fetch", "routerbench", "--dest", str(tmp_path), "--no-progress", "--timeout", "5"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("router data: error: cannot reach http://127.0.0.1:")
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_fetch_unpinned_refused(tmp_path, capsys):
    assert main(["data", "fetch", "routerbench", "--shots", "5", "--dest", str(tmp_path)]) == 2
    assert "--allow-unpinned" in capsys.readouterr().err
