"""router.data.fetch against a local Hub stand-in: success, bad hash, bad size, no network."""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from router.data.fetch import ROUTERBENCH_PINS, FetchError, Pin, fetch_routerbench
from router.data.io import load_table

REPO, REV, NAME = "withmartian/routerbench", "0123abcd", "routerbench_0shot.pkl"


@pytest.fixture
def hub(tmp_path, rb_frame):
    """A tiny RouterBench-shaped pickle served over HTTP on 127.0.0.1 in the Hub's URL layout."""
    root = tmp_path / "hub"
    folder = root / "datasets" / REPO / "resolve" / REV
    folder.mkdir(parents=True)
    rb_frame.to_pickle(folder / NAME)
    data = (folder / NAME).read_bytes()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield {
            "endpoint": f"http://127.0.0.1:{server.server_address[1]}",
            "pin": Pin(REPO, REV, NAME, hashlib.sha256(data).hexdigest(), len(data)),
            "bytes": data,
            "root": root,
        }
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


def test_fetch_verifies_renames_and_loads(hub, tmp_path):
    dest = tmp_path / "data"
    result = fetch_routerbench(dest, endpoint=hub["endpoint"], pins={0: hub["pin"]}, progress=False)
    assert result.downloaded and result.verified
    assert result.path == dest / NAME and result.path.read_bytes() == hub["bytes"]
    assert leftovers(dest) == [NAME]  # no temp file left behind
    table = load_table(result.path)
    assert table.models == ("gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat")
    assert table.quality.dtype == np.float64


def test_second_fetch_reuses_the_verified_copy(hub, tmp_path):
    kwargs = dict(endpoint=hub["endpoint"], pins={0: hub["pin"]}, progress=False)
    fetch_routerbench(tmp_path, **kwargs)
    again = fetch_routerbench(tmp_path, **kwargs)
    assert not again.downloaded and again.sha256 == hub["pin"].sha256
    assert fetch_routerbench(tmp_path, force=True, **kwargs).downloaded


def test_endpoint_from_environment(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTER_HF_ENDPOINT", hub["endpoint"])
    assert fetch_routerbench(tmp_path, pins={0: hub["pin"]}, progress=False).downloaded


def test_file_url_endpoint(hub, tmp_path):
    result = fetch_routerbench(tmp_path / "d", endpoint=hub["root"].as_uri(), pins={0: hub["pin"]}, progress=False)
    assert result.path.read_bytes() == hub["bytes"]


def test_hash_mismatch_deletes_the_download(hub, tmp_path):
    wrong = "0" * 64
    pin = Pin(REPO, REV, NAME, wrong, hub["pin"].size)
    dest = tmp_path / "data"
    with pytest.raises(FetchError) as err:
        fetch_routerbench(dest, endpoint=hub["endpoint"], pins={0: pin}, progress=False)
    msg = str(err.value)
    assert f"expected {wrong}" in msg and f"got {hub['pin'].sha256}" in msg and "\n" not in msg
    assert leftovers(dest) == []


def test_size_mismatch(hub, tmp_path):
    pin = Pin(REPO, REV, NAME, hub["pin"].sha256, hub["pin"].size + 1)
    with pytest.raises(FetchError, match="size mismatch"):
        fetch_routerbench(tmp_path / "d", endpoint=hub["endpoint"], pins={0: pin}, progress=False)
    assert leftovers(tmp_path / "d") == []


def test_existing_file_with_wrong_hash_is_not_trusted(hub, tmp_path):
    (tmp_path / NAME).write_bytes(b"tampered")
    with pytest.raises(FetchError, match="exists but its sha256 is .* --force"):
        fetch_routerbench(tmp_path, endpoint=hub["endpoint"], pins={0: hub["pin"]}, progress=False)
    assert fetch_routerbench(tmp_path, endpoint=hub["endpoint"], pins={0: hub["pin"]}, force=True, progress=False).downloaded


def test_http_404(hub, tmp_path):
    pin = Pin(REPO, "deadbeef", NAME, hub["pin"].sha256, None)
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_routerbench(tmp_path / "d", endpoint=hub["endpoint"], pins={0: pin}, progress=False)
    assert leftovers(tmp_path / "d") == []


def test_no_network_is_one_line(tmp_path):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(FetchError) as err:
        fetch_routerbench(tmp_path, endpoint=endpoint, progress=False, timeout=5)
    msg = str(err.value)
    assert msg.startswith(f"cannot reach {endpoint}/datasets/withmartian/routerbench/resolve/") and "\n" not in msg
    assert leftovers(tmp_path) == []


def test_unpinned_file_needs_permission(hub, tmp_path):
    pin = Pin(REPO, REV, NAME, None, None)
    with pytest.raises(FetchError, match="no pinned sha256.*--allow-unpinned"):
        fetch_routerbench(tmp_path, endpoint=hub["endpoint"], pins={5: pin}, shots=5, progress=False)
    result = fetch_routerbench(tmp_path, endpoint=hub["endpoint"], pins={5: pin}, shots=5, allow_unpinned=True, progress=False)
    assert result.downloaded and not result.verified and result.sha256 == hub["pin"].sha256


def test_unknown_shots(tmp_path):
    with pytest.raises(FetchError, match="no 3-shot file"):
        fetch_routerbench(tmp_path, shots=3)


def test_pin_table():
    zero = ROUTERBENCH_PINS[0]
    assert (zero.revision, zero.size) == ("784021482c3f320c6619ed4b3bb3b41a21424fcb", 99_567_659)
    assert zero.sha256 == "ba4f77f19517610a707c374e99322d7750c30fc4ae7ff5527888595a1e65d36d"
    assert zero.url("https://huggingface.co") == (
        "https://huggingface.co/datasets/withmartian/routerbench/resolve/"
        "784021482c3f320c6619ed4b3bb3b41a21424fcb/routerbench_0shot.pkl"
    )
    assert ROUTERBENCH_PINS[5].sha256 is None  # not known to this project: refused unless allowed


def test_progress_bar_goes_to_stderr(hub, tmp_path, capsys):
    fetch_routerbench(tmp_path / "d", endpoint=hub["endpoint"], pins={0: hub["pin"]}, progress=True)
    captured = capsys.readouterr()
    assert NAME in captured.err and captured.out == ""
