"""Code: run the answer's code with the row's tests in a subprocess; passing (exit status 0) is 1.

The code is the last fenced block of the answer (```python ... ``` or ``` ... ```), else the whole
answer; the tests (e.g. ``assert`` lines, as in HumanEval/MBPP) are appended to it. The run is
contained, not secured: a fresh empty temporary folder as working directory, Python in isolated
mode (``-I``: no user site, no PYTHON* variables), a minimal environment, limits on CPU time,
memory, file size and open files, its own process group, and a wall-clock limit after which the
whole group is killed (a timeout scores 0: code that hangs fails its tests). Run untrusted model
output on a machine or container you can throw away.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import tempfile

from router.label.graders.base import Grade, GradeItem

_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", re.S | re.I)
MEMORY_LIMIT_BYTES = 1 << 30
FILE_LIMIT_BYTES = 16 << 20


def extract_code(response: str) -> str:
    blocks = _FENCE.findall(response)
    return blocks[-1] if blocks else response


def _limits(cpu_s: int):
    def apply() -> None:  # runs in the child before exec
        import resource

        for res, value in ((resource.RLIMIT_CPU, cpu_s), (resource.RLIMIT_AS, MEMORY_LIMIT_BYTES),
                           (resource.RLIMIT_FSIZE, FILE_LIMIT_BYTES), (resource.RLIMIT_NOFILE, 64)):  # fmt: skip
            try:
                resource.setrlimit(res, (value, value))
            except (ValueError, OSError):
                pass

    return apply


class CodeTests:
    name = "code"

    def __init__(self, timeout_s: float = 10.0, max_parallel: int = 2):
        self.timeout_s = timeout_s
        self.fingerprint = f"code/1:{timeout_s:g}"
        self._sem = None
        self.max_parallel = max_parallel  # test runs use CPU; the calls around them do not

    async def run(self, program: str) -> tuple[bool, str]:
        """(passed, reason) of running ``program``; reason "timeout" or the exit status."""
        with tempfile.TemporaryDirectory(prefix="router-label-code-") as tmp:
            path = os.path.join(tmp, "answer_with_tests.py")
            with open(path, "w", encoding="utf-8") as f:
                f.write(program)
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-I", path, cwd=tmp, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
                env={"PATH": os.defpath, "PYTHONHASHSEED": "0", "HOME": tmp},
                preexec_fn=_limits(int(self.timeout_s) + 1), start_new_session=True,
            )  # fmt: skip
            try:
                _, err = await asyncio.wait_for(proc.communicate(), self.timeout_s)
            except asyncio.TimeoutError:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                await proc.wait()
                return False, "timeout"
            return proc.returncode == 0, f"exit {proc.returncode}: {err.decode('utf-8', 'replace')[-300:]}"

    async def grade(self, item: GradeItem) -> Grade:
        if not item.tests:
            return Grade(None, "no-tests")
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.max_parallel)
        async with self._sem:
            try:
                passed, detail = await self.run(extract_code(item.response) + "\n\n" + item.tests + "\n")
            except OSError as exc:
                return Grade(None, f"code-runner: {exc}")
        return Grade(1.0 if passed else 0.0, "", raw=detail)
