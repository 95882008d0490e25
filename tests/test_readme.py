"""The README's Python example runs as written (on a small artifact trained here with the hashing
encoder, in place of the one `make run` trains)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_snippet(name: str) -> str:
    text = README.read_text()
    m = re.search(rf"<!-- snippet:{name} -->\n```python\n(.*?)```\n<!-- /snippet:{name} -->", text, re.S)
    assert m, f"README has no snippet {name!r}"
    return m.group(1)


def test_python_api_example_runs(tmp_path, monkeypatch, capsys):
    from router import Router, TrainConfig
    from router.data.synthetic import make_synthetic_table

    table = make_synthetic_table(n=120, seed=0)
    Router.train(table, TrainConfig(hidden_dim=8, max_epochs=2), encoder="hash:64", cache_dir=tmp_path / "c").save(
        tmp_path / "artifacts" / "router"
    )
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_snippet("python"), "README.md", "exec"), {})
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[0].split()[0] in table.models
    assert lines[1].endswith("20.0 exponential") and lines[2].endswith("20.0 exponential")
    assert set(eval(lines[3])) == set(table.models)  # noqa: S307 - our own printed dict
