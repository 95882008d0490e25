"""The checkpoint of ``router label``: append-only JSONL journals, so that a re-run pays for no call twice.

Every finished model call and every grade is appended to this run's journal
(``<work>/checkpoint/journal-<time>-<pid>.jsonl``) the moment it is known and flushed to the
operating system at once, so even a killed process keeps everything it was answered; each batch
ends with an ``fsync``. A re-run reads every journal first and skips what is done:

* a call is done when it succeeded; a failed call (not paid) is tried again;
* a grade is done when it has a score, or when it failed for good (a judge that answered prose
  twice: asking again would pay for the same judgment twice); a grade that failed on the judge's
  HTTP errors is tried again.

Keys are content hashes: a call's key covers the messages, the upstream model name,
``max_tokens`` and the temperature (change any and it is a different call; a backend that moved to
another URL keeps its answers); a grade's key covers
what is graded: the grader's settings, the prompt, the answer, the reference and the tests (two
models that gave the same answer share one judgment). A torn last line (a process killed
mid-write) is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Optional

from router.backends import BackendConfig

# Grade failures that asking again would not fix, or would pay twice for.
FINAL_GRADE_FAILURES = ("judge-unparseable", "no-reference", "no-tests", "reference-is-not-a-letter", "reference-is-not-a-number")


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:32]


def call_key(messages: list, backend: BackendConfig, max_tokens: int, temperature: float) -> str:
    return _sha({"messages": messages, "model": backend.upstream_model, "max_tokens": max_tokens, "temperature": temperature})


def grade_key(fingerprint: str, prompt: str, response: str, reference: Optional[str], tests: Optional[str]) -> str:
    return _sha({"grader": fingerprint, "prompt": prompt, "response": response, "reference": reference, "tests": tests})


class Checkpoint:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.calls: dict[tuple[str, str], dict] = {}  # (call key, model) -> the successful call
        self.failed_calls: dict[tuple[str, str], dict] = {}  # the last failed attempt, while none succeeded
        self.grades: dict[str, dict] = {}  # grade key -> the done grade
        self.failed_grades: dict[str, dict] = {}
        self.spent_usd = 0.0  # every cost recorded in every journal: models' and judge's
        self.judge_spent_usd = 0.0
        self.records = 0
        self._file = None
        self.load()

    def load(self) -> None:
        self.calls.clear(), self.failed_calls.clear(), self.grades.clear(), self.failed_grades.clear()
        self.spent_usd = self.judge_spent_usd = 0.0
        self.records = 0
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("journal-*.jsonl")):
            with path.open(encoding="utf-8") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line torn by a kill
                    if isinstance(rec, dict):
                        self._apply(rec)

    def _apply(self, rec: dict) -> None:
        self.records += 1
        kind = rec.get("kind")
        if kind == "call":
            cost = float(rec.get("cost") or 0.0)
            self.spent_usd += cost
            key = (rec["key"], rec["model"])
            if rec.get("status") == "ok":
                self.calls[key] = rec
                self.failed_calls.pop(key, None)
            elif key not in self.calls:
                self.failed_calls[key] = rec
        elif kind == "grade":
            cost = float(rec.get("cost") or 0.0)
            self.spent_usd += cost
            self.judge_spent_usd += cost
            if rec.get("score") is not None or rec.get("reason") in FINAL_GRADE_FAILURES:
                self.grades[rec["key"]] = rec
                self.failed_grades.pop(rec["key"], None)
            elif rec["key"] not in self.grades:
                self.failed_grades[rec["key"]] = rec

    def done_call(self, ckey: str, model: str) -> Optional[dict]:
        return self.calls.get((ckey, model))

    def done_grade(self, gkey: str) -> Optional[dict]:
        return self.grades.get(gkey)

    def append(self, rec: dict) -> None:
        if self._file is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = f"journal-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:6]}.jsonl"
            self._file = (self.folder / name).open("a", encoding="utf-8")
        rec = dict(rec, time=time.time())
        self._file.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._file.flush()  # in the OS's hands now: survives this process being killed
        self._apply(rec)

    def sync(self) -> None:
        if self._file is not None:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self.sync()
            self._file.close()
            self._file = None
