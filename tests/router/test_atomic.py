"""Atomic files and folders (router.atomic), and the artifact save built on them: a save killed
half-way leaves the previous artifact, or none, never one that ``load_artifact`` accepts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from router.atomic import atomic_write_text, commit_dir, staging_dir

ROOT = Path(__file__).resolve().parents[2]


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "best_config.yaml"
    atomic_write_text(path, "old\n")
    atomic_write_text(path, "new\n")
    assert path.read_text() == "new\n"

    def boom(src, dst):
        raise OSError("disk went away")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(path, "half")
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["best_config.yaml"]  # no temp file left


def test_commit_dir_replaces_a_folder(tmp_path):
    final = tmp_path / "artifact"
    for content in ("one", "two"):
        staged = staging_dir(final)
        assert staged.parent == tmp_path and staged.name.startswith(".artifact.tmp-")
        (staged / "f.txt").write_text(content)
        commit_dir(staged, final)
        assert (final / "f.txt").read_text() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact"]


def _tiny_predictor_code() -> str:
    return textwrap.dedent(
        """
        from router.data.synthetic import make_synthetic_table
        from router.embeddings.hashing import HashingEncoder
        from router.model.config import TrainConfig
        from router.model.estimator import CrossAttentionPredictor

        def tiny(seed):
            table = make_synthetic_table(n=60, seed=seed)
            enc = HashingEncoder(16)
            cfg = TrainConfig(hidden_dim=8, max_epochs=1, patience=1, batch_size=32, init_from_names=False, num_threads=1, seed=seed)
            return CrossAttentionPredictor(cfg).fit(enc.encode(table.prompts), table.quality, table.cost, table.models), enc
        """
    )


def test_failed_save_leaves_no_artifact(tmp_path, monkeypatch):
    import safetensors.torch

    from router.model.artifact import ArtifactError, load_artifact, save_artifact

    namespace: dict = {}
    exec(_tiny_predictor_code(), namespace)
    pred, enc = namespace["tiny"](0)

    def fail(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", fail)
    with pytest.raises(OSError):
        save_artifact(pred, tmp_path / "router", enc.name, enc.dim)
    assert not list(tmp_path.iterdir())  # neither the artifact nor its staging folder
    with pytest.raises(ArtifactError):
        load_artifact(tmp_path / "router")


@pytest.mark.slow
def test_killed_save_keeps_the_previous_artifact(tmp_path):
    """A process killed (os._exit, no cleanup) after writing the weights of a second artifact,
    before its manifest: the first artifact is intact, the half-written one is not accepted."""
    from router.model.artifact import ArtifactError, load_artifact

    script = _tiny_predictor_code() + textwrap.dedent(
        f"""
        import os, sys
        import safetensors.torch
        from router.model.artifact import save_artifact

        dest = {str(tmp_path / "router")!r}
        pred, enc = tiny(0)
        save_artifact(pred, dest, enc.name, enc.dim)
        real = safetensors.torch.save_file

        def save_then_die(*args, **kwargs):
            real(*args, **kwargs)
            os._exit(9)

        safetensors.torch.save_file = save_then_die
        pred2, _ = tiny(1)
        save_artifact(pred2, dest, enc.name, enc.dim)
        sys.exit(0)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr[-2000:]
    art = load_artifact(tmp_path / "router")  # the first one, whole
    assert art.config.seed == 0
    (leftover,) = [p for p in tmp_path.iterdir() if p.name.startswith(".router.tmp-")]
    assert (leftover / "weights.safetensors").is_file()
    with pytest.raises(ArtifactError, match="missing file manifest.json"):
        load_artifact(leftover)
