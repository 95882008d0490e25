"""Parsing request logs without Ray: ids, quarantine reasons, inputs by file/folder/glob."""

from __future__ import annotations

import json

import pytest

from router.batch.sources import parse_jsonl_file, parse_parquet_rows, resolve_inputs
from router.messages import MalformedPrompt, flatten_messages, prompt_text


def test_jsonl_rows_ids_and_reasons():
    data = b"\n".join(
        [json.dumps({"id": 7, "prompt": "hello"}).encode(), b"", b"\xff\xfe", json.dumps({"prompt": "no id"}).encode(),
         json.dumps({"id": "x", "prompt": None}).encode()]
    )  # fmt: skip
    rows = list(parse_jsonl_file(data, "/logs/f.jsonl", "prompt", "id"))
    assert [r["line"] for r in rows] == [1, 3, 4, 5]  # the blank line 2 is not a row
    assert rows[0]["id"] == "7" and rows[0]["prompt"] == "hello" and rows[0]["error"] == ""
    assert rows[1]["error"] == "line is not UTF-8"
    assert rows[2]["id"] == "f.jsonl:4" and rows[2]["error"] == ""
    assert rows[3]["error"] == "prompt is missing (null)"


def test_parquet_rows_need_an_id():
    rows = parse_parquet_rows([{"id": None, "prompt": "a", "path": "p"}, {"id": 3, "prompt": "b", "path": "p"}], "prompt", "id")
    assert rows[0]["error"] == "no id field 'id'" and rows[1]["id"] == "3" and rows[1]["error"] == ""


def test_messages_flattening():
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}, {"type": "text", "text": "b"}]}]  # fmt: skip
    assert flatten_messages(msgs) == "first\n\na\nb"  # the user turns only, in order
    assert flatten_messages([{"role": "system", "content": "only this"}]) == "only this"  # no user turn: all turns
    assert prompt_text("plain") == "plain"
    for bad, reason in [([], "non-empty"), ("   ", "empty"), (3.5, "float"), ([{"content": "x"}], "role"),
                        ([{"role": "user", "content": 5}], "content"), ([{"role": "system", "content": "  "}], "no text"),
                        ("bad \ud800 text", "not valid Unicode")]:  # fmt: skip
        with pytest.raises(MalformedPrompt, match=reason):
            prompt_text(bad)


def test_resolve_inputs_file_folder_glob(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ["a.jsonl", "b.parquet", "sub/c.jsonl", "notes.txt", "_SUCCESS.jsonl"]:
        (tmp_path / name).write_text("")
    folder = resolve_inputs(str(tmp_path))
    assert [p.rsplit("/", 1)[1] for p in folder.jsonl] == ["a.jsonl", "c.jsonl"] and len(folder.parquet) == 1
    assert len(resolve_inputs(str(tmp_path / "*.jsonl")).jsonl) == 1  # * stays in one folder
    assert len(resolve_inputs(str(tmp_path / "**" / "*.jsonl")).jsonl) == 2
    assert resolve_inputs("file://" + str(tmp_path / "a.jsonl")).jsonl[0].endswith("a.jsonl")
    with pytest.raises(FileNotFoundError):
        resolve_inputs(str(tmp_path / "missing.jsonl"))
    with pytest.raises(ValueError, match="unknown format"):
        resolve_inputs(str(tmp_path / "notes.txt"))
    with pytest.raises(FileNotFoundError, match="no JSONL or Parquet"):
        resolve_inputs(str(tmp_path / "*.csv"))
