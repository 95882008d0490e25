"""Finding and parsing request logs: which files an input names, and each row -> (id, prompt) or
a quarantine reason.

Inputs are a file, a folder or a glob, on the local disk or any filesystem pyarrow knows
(``s3://``, ``gs://``, ``hdfs://``, ``file://``...). Formats are told by extension: JSONL
(``.jsonl``, ``.ndjson``, ``.json``) and Parquet (``.parquet``, ``.pq``).

JSONL is read as raw bytes and split into lines here, not with ``ray.data.read_json``: one line
that is not JSON would make ``read_json`` fail the whole file, and a line number is needed both
for the quarantine and as the id of rows that carry none (``<file name>:<line>``). Blank lines are
not rows. Parquet rows have no line numbers, so a Parquet row needs a value in the id field.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from router.messages import MalformedPrompt, prompt_text

JSONL_EXTENSIONS = (".jsonl", ".ndjson", ".json")
PARQUET_EXTENSIONS = (".parquet", ".pq")
_GLOB_CHARS = set("*?[")

# Columns of a parsed row. ``error`` is "" for a good row (never null: an all-null column would
# get Arrow's null type and clash with string blocks).
PARSED_COLUMNS = ("id", "prompt", "error", "source", "line", "raw")
# With ``extra_fields`` (``router label``: task, reference, tests...), a good row also carries
# ``fields``: a JSON object of those fields' values (absent fields left out), so that one Arrow
# string column holds values of any type.
FIELDS_COLUMN = "fields"


@dataclass(frozen=True)
class InputFiles:
    filesystem: Any  # pyarrow.fs.FileSystem
    jsonl: list[str]
    parquet: list[str]

    @property
    def count(self) -> int:
        return len(self.jsonl) + len(self.parquet)


def _glob_regex(pattern: str) -> "re.Pattern[str]":
    """Shell-style glob on whole paths: ``*`` and ``?`` stay within one folder, ``**`` spans folders."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _format_of(path: str) -> str | None:
    low = path.lower()
    if low.endswith(JSONL_EXTENSIONS):
        return "jsonl"
    if low.endswith(PARQUET_EXTENSIONS):
        return "parquet"
    return None


def resolve_inputs(spec: str) -> InputFiles:
    """The JSONL and Parquet files named by ``spec`` (file, folder or glob; local path or URI)."""
    import pyarrow.fs as pafs

    if not spec:
        raise ValueError("--input: give a file, folder or glob")
    glob = any(ch in spec for ch in _GLOB_CHARS)
    base = spec
    if glob:
        # The longest leading part without glob characters is the folder to list.
        first = min(spec.index(ch) for ch in _GLOB_CHARS if ch in spec)
        prefix = spec[:first]
        base = (prefix.rsplit("/", 1)[0] or "/") if "/" in prefix else "."
        rest = spec[len(prefix.rsplit("/", 1)[0]) + 1 :] if "/" in prefix else spec
    if "://" in base:
        try:
            fs, base_path = pafs.FileSystem.from_uri(base)
        except Exception as exc:  # unknown scheme, missing library or credentials
            raise ValueError(f"--input {spec!r}: cannot open its filesystem: {exc}") from exc
    else:
        fs, base_path = pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(base))
    if glob:
        regex = _glob_regex(base_path.rstrip("/") + "/" + rest)
        infos = fs.get_file_info(pafs.FileSelector(base_path, recursive=True, allow_not_found=True))
        files = sorted(i.path for i in infos if i.type == pafs.FileType.File and regex.match(i.path))
    else:
        info = fs.get_file_info(base_path)
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"--input {spec!r}: no such file or folder")
        if info.type == pafs.FileType.Directory:
            infos = fs.get_file_info(pafs.FileSelector(base_path, recursive=True))
            files = sorted(i.path for i in infos if i.type == pafs.FileType.File and _format_of(i.path))
        else:
            if _format_of(base_path) is None:
                raise ValueError(
                    f"--input {spec!r}: unknown format; use {', '.join(JSONL_EXTENSIONS + PARQUET_EXTENSIONS)}"
                )
            files = [base_path]
    files = [f for f in files if not posixpath.basename(f).startswith((".", "_"))]
    jsonl = [f for f in files if _format_of(f) == "jsonl"]
    parquet = [f for f in files if _format_of(f) == "parquet"]
    if not jsonl and not parquet:
        raise FileNotFoundError(f"--input {spec!r}: no JSONL or Parquet files found")
    return InputFiles(fs, jsonl, parquet)


def _row_id(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN from pandas
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def parse_record(record: Any, prompt_field: str, id_field: str, fallback_id: str | None) -> tuple[str | None, str, str]:
    """(id, prompt text, error) for one decoded record; error is "" when the row is good."""
    if not isinstance(record, dict):
        return fallback_id, "", f"row is a JSON {type(record).__name__}, not an object"
    rid = _row_id(record.get(id_field))
    if rid is None:
        rid = fallback_id
    if rid is None:
        return None, "", f"no id field {id_field!r}"
    if prompt_field not in record:
        return rid, "", f"no prompt field {prompt_field!r}"
    try:
        return rid, prompt_text(record[prompt_field]), ""
    except MalformedPrompt as exc:
        return rid, "", str(exc)


def record_fields(record: Any, names: Sequence[str]) -> str:
    """The ``fields`` cell: a JSON object of ``record``'s values for ``names`` (present ones only)."""
    if not isinstance(record, dict):
        return "{}"
    return json.dumps({k: _to_python(record[k]) for k in names if k in record}, default=str, ensure_ascii=False)


def parse_jsonl_file(data: bytes, path: str, prompt_field: str, id_field: str, extra_fields: Sequence[str] = ()) -> Iterator[dict]:
    """Parsed rows of one JSONL file, in line order (1-based line numbers); with ``extra_fields``
    each row also has a ``fields`` JSON cell (see ``FIELDS_COLUMN``)."""
    name = posixpath.basename(path)
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        fallback = f"{name}:{number}"
        try:
            line = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            row = {"id": fallback, "prompt": "", "error": "line is not UTF-8", "source": path, "line": number,
                   "raw": raw[:2000].decode("utf-8", "replace")}  # fmt: skip
            yield dict(row, fields="{}") if extra_fields else row
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            row = {"id": fallback, "prompt": "", "error": f"not JSON: {exc.msg} at column {exc.colno}",
                   "source": path, "line": number, "raw": line[:2000]}  # fmt: skip
            yield dict(row, fields="{}") if extra_fields else row
            continue
        rid, prompt, error = parse_record(record, prompt_field, id_field, fallback)
        row = {"id": rid or "", "prompt": prompt, "error": error, "source": path, "line": number, "raw": line[:2000] if error else ""}
        if extra_fields:
            row[FIELDS_COLUMN] = record_fields(record, extra_fields) if not error else "{}"
        yield row


def _to_python(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") and not isinstance(value, (str, bytes)) else value


def parse_parquet_rows(rows: list[dict], prompt_field: str, id_field: str, extra_fields: Sequence[str] = ()) -> list[dict]:
    """Parsed rows of Parquet records (dicts with a ``path`` key from ``include_paths``); with
    ``extra_fields`` each row also has a ``fields`` JSON cell."""
    out = []
    for rec in rows:
        path = rec.pop("path", "")
        record = {k: _to_python(v) for k, v in rec.items()}
        rid, prompt, error = parse_record(record, prompt_field, id_field, None)
        raw = ""
        if error:
            raw = json.dumps(record, default=str)[:2000]
        row = {"id": rid or "", "prompt": prompt, "error": error, "source": path, "line": -1, "raw": raw}
        if extra_fields:
            row[FIELDS_COLUMN] = record_fields(record, extra_fields) if not error else "{}"
        out.append(row)
    return out
