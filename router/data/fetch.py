"""Download RouterBench's pickles from the Hugging Face Hub at a pinned revision, verified by sha256.

Plain HTTPS (``<endpoint>/datasets/<repo>/resolve/<revision>/<file>``, the URL the Hub serves
files from) with the standard library: no ``huggingface_hub`` dependency, and the endpoint can be
pointed at a mirror or a local test server with ``$ROUTER_HF_ENDPOINT`` or the ``endpoint``
argument. The file is streamed to a temporary file next to its destination, checked (size, then
sha256) and only then renamed into place, so a half-downloaded or tampered file never sits under
the final name. Pickles run code when loaded, which is why a file without a pinned hash is
refused unless the caller explicitly allows it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
ENDPOINT_ENV = "ROUTER_HF_ENDPOINT"
ROUTERBENCH_REPO = "withmartian/routerbench"
ROUTERBENCH_REVISION = "784021482c3f320c6619ed4b3bb3b41a21424fcb"
CHUNK = 1 << 20


class FetchError(Exception):
    """A download that cannot be completed or verified; the message is one line."""


@dataclass(frozen=True)
class Pin:
    """One file of a Hub dataset at a fixed revision; ``sha256``/``size`` None when not known."""

    repo: str
    revision: str
    filename: str
    sha256: str | None
    size: int | None

    def url(self, endpoint: str) -> str:
        return f"{endpoint.rstrip('/')}/datasets/{self.repo}/resolve/{self.revision}/{self.filename}"


# RouterBench's files by number of shots. The 0-shot values were measured on a downloaded copy
# (see router/datasets/README.md). The 5-shot file has not been downloaded and hashed by this
# project, so it has no pin: downloading it needs allow_unpinned (--allow-unpinned), and prints the
# hash to pin here once checked.
ROUTERBENCH_PINS: dict[int, Pin] = {
    0: Pin(
        ROUTERBENCH_REPO,
        ROUTERBENCH_REVISION,
        "routerbench_0shot.pkl",
        sha256="ba4f77f19517610a707c374e99322d7750c30fc4ae7ff5527888595a1e65d36d",
        size=99_567_659,
    ),
    5: Pin(ROUTERBENCH_REPO, ROUTERBENCH_REVISION, "routerbench_5shot.pkl", sha256=None, size=None),
}


@dataclass(frozen=True)
class FetchResult:
    path: Path
    sha256: str
    size: int
    downloaded: bool  # False when a verified copy was already there
    verified: bool  # False for an unpinned file


def resolve_endpoint(endpoint: str | None = None) -> str:
    return endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, target, total_hint: int | None, progress: bool, timeout: float, label: str) -> tuple[str, int]:
    """Stream ``url`` into the open binary file ``target``; (sha256, bytes)."""
    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "llm-router-fetch/1"})
    digest = hashlib.sha256()
    size = 0
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else total_hint
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, disable=not progress) as bar:
            for block in iter(lambda: response.read(CHUNK), b""):
                target.write(block)
                digest.update(block)
                size += len(block)
                bar.update(len(block))
    return digest.hexdigest(), size


def fetch_file(
    pin: Pin,
    dest: str | Path,
    endpoint: str | None = None,
    force: bool = False,
    allow_unpinned: bool = False,
    progress: bool = True,
    timeout: float = 60.0,
) -> FetchResult:
    """Download ``pin`` into the directory ``dest`` and verify it; see the module docstring."""
    dest_dir = Path(dest).expanduser()
    final = dest_dir / pin.filename
    if pin.sha256 is None and not allow_unpinned:
        raise FetchError(
            f"{pin.filename} has no pinned sha256 in router/data/fetch.py, so its integrity cannot be checked "
            "and a pickle runs code when loaded; pass --allow-unpinned to download it anyway (its hash is printed)"
        )
    if final.exists() and not force:
        actual = sha256_of(final)
        if pin.sha256 is None or actual == pin.sha256:
            return FetchResult(final, actual, final.stat().st_size, downloaded=False, verified=pin.sha256 is not None)
        raise FetchError(
            f"{final} exists but its sha256 is {actual}, expected {pin.sha256}; pass --force to download it again"
        )

    url = pin.url(resolve_endpoint(endpoint))
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.NamedTemporaryFile(dir=dest_dir, prefix=f".{pin.filename}.", suffix=".part", delete=False)
    except OSError as exc:
        raise FetchError(f"cannot write to {dest_dir}: {exc.strerror or exc}") from None
    tmp_path = Path(tmp.name)
    try:
        try:
            with tmp:
                actual, size = _download(url, tmp, pin.size, progress, timeout, pin.filename)
        except urllib.error.HTTPError as exc:
            raise FetchError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            reason = getattr(exc.reason, "strerror", None) or exc.reason
            raise FetchError(
                f"cannot reach {url}: {reason} (no network? set ${ENDPOINT_ENV} to a reachable mirror, "
                f"or put a copy of {pin.filename} into {dest_dir} and re-run to verify it)"
            ) from None
        except (OSError, TimeoutError) as exc:  # connection reset, timeout mid-stream, disk full
            raise FetchError(f"download of {url} failed: {exc}") from None
        if pin.size is not None and size != pin.size:
            raise FetchError(f"size mismatch for {pin.filename}: expected {pin.size} bytes, got {size} (sha256 {actual})")
        if pin.sha256 is not None and actual != pin.sha256:
            raise FetchError(f"sha256 mismatch for {pin.filename}: expected {pin.sha256}, got {actual}")
        tmp_path.chmod(0o644)  # NamedTemporaryFile makes it owner-only
        os.replace(tmp_path, final)
    finally:
        tmp_path.unlink(missing_ok=True)  # a failed or interrupted download leaves nothing behind
    if pin.sha256 is None:
        log.warning("%s is not pinned: sha256 %s, %d bytes. Check it and add it to ROUTERBENCH_PINS.", pin.filename, actual, size)
    return FetchResult(final, actual, size, downloaded=True, verified=pin.sha256 is not None)


def fetch_routerbench(
    dest: str | Path,
    shots: int = 0,
    endpoint: str | None = None,
    force: bool = False,
    allow_unpinned: bool = False,
    progress: bool = True,
    pins: Mapping[int, Pin] | None = None,
    timeout: float = 60.0,
) -> FetchResult:
    """``routerbench_<shots>shot.pkl`` into ``dest``; ``pins`` replaces the table (tests)."""
    pins = ROUTERBENCH_PINS if pins is None else pins
    if shots not in pins:
        raise FetchError(f"RouterBench has no {shots}-shot file; choose one of {sorted(pins)}")
    return fetch_file(pins[shots], dest, endpoint, force, allow_unpinned, progress, timeout)
