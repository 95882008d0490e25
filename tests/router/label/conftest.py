"""Fixtures for ``router label``: the stand-in backend (a TEST DOUBLE) playing three skilled pool
models and a judge, small request logs of bundled prompts, and the files that point at them."""

from __future__ import annotations

import socket

import pytest

from serve_app.testing import label_demo


@pytest.fixture
def down_port() -> int:
    """A port nothing listens on (a backend that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def logs(tmp_path):
    path = label_demo.write_logs(tmp_path / "logs.jsonl", label_demo.demo_log_rows(12))
    return path


@pytest.fixture
def skilled_stub(logs):
    """The stand-in backend with the demo skills and the logs as its answer key, short latencies."""
    from serve_app.testing.stub_backend import Behaviour, StubBackend, load_answer_key

    s = StubBackend(Behaviour(skills=label_demo.SKILLS, answer_key=load_answer_key(str(logs), "messages", "task"),
                              default_latency_ms=(5, 20)))  # fmt: skip
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture
def label_files(tmp_path, skilled_stub):
    return {
        "backends": label_demo.write_backends(tmp_path / "backends.yaml", skilled_stub.port),
        "judge": label_demo.write_judge(tmp_path / "judge.yaml", skilled_stub.port),
    }
