"""Write files and folders so that a reader sees the old version, the new one, or nothing: never
half of one. Used for router artifacts (``save_artifact``) and ``router tune``'s outputs.

The new content is written next to its destination (same folder, so the same filesystem), flushed
to disk (``fsync``), then renamed over the destination: ``rename`` is atomic on POSIX filesystems.
A process killed before the rename leaves only a hidden ``.<name>.tmp-*`` sibling, which no reader
looks at. A folder that replaces an existing one takes two renames (old out of the way, new in), so
for an instant the destination is absent, never mixed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_path(path.parent)  # make the rename itself durable
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def staging_dir(final: str | os.PathLike) -> Path:
    """A new, empty folder next to ``final`` to build its content in; then :func:`commit_dir`."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))


def commit_dir(staged: str | os.PathLike, final: str | os.PathLike) -> Path:
    """fsync every file of ``staged`` and move it to ``final``, replacing what is there."""
    staged, final = Path(staged), Path(final)
    for root, _dirs, files in os.walk(staged):
        for name in files:
            _fsync_path(Path(root) / name)
        _fsync_path(Path(root))
    old = None
    if final.exists() or final.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.replace(final, old / final.name)
    os.replace(staged, final)
    _fsync_path(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def discard_dir(staged: str | os.PathLike) -> None:
    shutil.rmtree(staged, ignore_errors=True)
