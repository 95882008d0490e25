from router.model.artifact import save_artifact
from router.model.family import build_family
from router.registry import BuildContext, family_builder


def test_one_predictor_two_rows(tmp_path):
    (cfg := tmp_path / "tune.yaml").write_text("hidden_dim: 24\n")
    entries = family_builder("cross_attention")(BuildContext(seed=7, options={"train_config": str(cfg), "cross_attention": {"lr": 0.01}}))
    assert len(entries) == 1 and not entries[0].fitted
    assert entries[0].rows == {"cross_attention_linear": "linear", "cross_attention_exp": "exponential"}
    config = entries[0].predictor.config
    assert (config.hidden_dim, config.lr, config.seed) == (24, 0.01, 7)


def test_loads_an_artifact(trained, tmp_path):
    path = save_artifact(trained, tmp_path / "a", encoder_name="hash:32", encoder_dim=32)
    (entry,) = build_family(BuildContext(artifact=str(path)))
    assert entry.fitted and entry.predictor.models == trained.models and entry.predictor.c_ref == trained.c_ref


def test_artifact_of_another_encoder_is_refused(trained, tmp_path):
    import pytest

    from router.model.artifact import ArtifactError

    class Other:
        name, dim = "st:all-MiniLM-L6-v2", 384

    path = save_artifact(trained, tmp_path / "a", encoder_name="hash:32", encoder_dim=32)
    with pytest.raises(ArtifactError, match="encoder"):
        build_family(BuildContext(artifact=str(path), options={"encoder": Other()}))
