import json

import numpy as np
import pytest

from router.model.artifact import ArtifactError, load_artifact, save_artifact


@pytest.fixture
def saved(trained, tmp_path):
    return save_artifact(trained, tmp_path / "art", encoder_name="hash:32", encoder_dim=32)


def _rewrite_manifest(path):
    """Re-sign the files so a test reaches the check behind the checksum."""
    from router.model.artifact import CONTENT_FILES, MANIFEST_FILE, _sha256

    manifest = json.loads((path / MANIFEST_FILE).read_text())
    manifest["sha256"] = {n: _sha256(path / n) for n in CONTENT_FILES}
    (path / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_round_trip(trained, saved, embedded_synthetic):
    _, _, _, Xt, _ = embedded_synthetic
    art = load_artifact(saved, expect_encoder="hash:32", expect_models=trained.models, expect_dim=32)
    assert art.models == trained.models and art.encoder_name == "hash:32" and art.encoder_dim == 32
    assert art.c_ref == trained.c_ref_ and art.prices == trained.prices_ and not art.needs_tokens
    assert art.config == trained.config
    a, b = trained.predict(Xt), art.predictor.predict(Xt)
    assert np.array_equal(a.quality, b.quality) and np.array_equal(a.cost, b.cost)
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "manifest.json", "pool.json", "weights.safetensors"]


def test_other_encoder(saved):
    with pytest.raises(ArtifactError, match="encoder 'hash:32'.*'st:all-MiniLM-L6-v2'"):
        load_artifact(saved, expect_encoder="st:all-MiniLM-L6-v2")


def test_other_pool(saved, trained):
    with pytest.raises(ArtifactError, match="other pool.*missing \\['gpt'\\]"):
        load_artifact(saved, expect_models=list(trained.models) + ["gpt"])
    with pytest.raises(ArtifactError, match="another order"):
        load_artifact(saved, expect_models=list(reversed(trained.models)))


def test_wrong_dimension(saved):
    with pytest.raises(ArtifactError, match="32-d embeddings.*384-d"):
        load_artifact(saved, expect_dim=384)
    config = json.loads((saved / "config.json").read_text())
    config["encoder"]["dim"] = 64
    config["network"]["input_dim"] = 64
    (saved / "config.json").write_text(json.dumps(config))
    _rewrite_manifest(saved)
    with pytest.raises(ArtifactError, match="shape"):
        load_artifact(saved)


def test_checksum_mismatch(saved):
    data = bytearray((saved / "weights.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (saved / "weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="weights.safetensors: checksum mismatch"):
        load_artifact(saved)


@pytest.mark.parametrize("name", ["weights.safetensors", "pool.json", "manifest.json", "config.json"])
def test_missing_file(saved, name):
    (saved / name).unlink()
    with pytest.raises(ArtifactError, match=f"missing file {name}"):
        load_artifact(saved)


def test_corrupt_files_behind_a_valid_manifest(saved):
    (saved / "pool.json").write_text("{not json")
    _rewrite_manifest(saved)
    with pytest.raises(ArtifactError, match="corrupt JSON"):
        load_artifact(saved)


def test_truncated_weights_behind_a_valid_manifest(saved):
    (saved / "weights.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    _rewrite_manifest(saved)
    with pytest.raises(ArtifactError, match="weights"):
        load_artifact(saved)


def test_not_a_directory(tmp_path):
    with pytest.raises(ArtifactError, match="no such artifact directory"):
        load_artifact(tmp_path / "nope")
    assert issubclass(ArtifactError, ValueError)
