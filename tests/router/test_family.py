from router.model.artifact import save_artifact
from tests.router.model.conftest import embedded_synthetic, fast, trained  # noqa: F401
from router.family import build_family
from router.registry import BuildContext, family_builder


def test_one_predictor_two_rows(tmp_path):
    (cfg := tmp_path / "tune.yaml").write_text("hidden_dim: 24\n")
    entries = family_builder("cross_attention")(BuildContext(seed=7, options={"train_config": str(cfg), "cross_attention": {"lr": 0.01}}))
    assert len(entries) == 1 and not entries[0].fitted
    assert entries[0].rows == {"cross_attention_linear": "linear", "cross_attention_exp": "exponential"}
    config = entries[0].predictor.router.config
    assert (config.hidden_dim, config.lr, config.seed) == (24, 0.01, 7)


def test_loads_an_artifact(trained, tmp_path):
    path = save_artifact(trained, tmp_path / "a", encoder_name="hash:32", encoder_dim=32)
    (entry,) = build_family(BuildContext(artifact=str(path)))
    assert entry.fitted and entry.predictor.models == trained.models and entry.predictor.router.c_ref == trained.c_ref_


def test_artifact_of_another_encoder_is_refused(trained, tmp_path):
    import pytest

    from router.model.artifact import ArtifactError

    class Other:
        name, dim = "st:all-MiniLM-L6-v2", 384

    path = save_artifact(trained, tmp_path / "a", encoder_name="hash:32", encoder_dim=32)
    with pytest.raises(ArtifactError, match="encoder"):
        build_family(BuildContext(artifact=str(path), options={"encoder": Other()}))


def test_eval_of_a_model_queries_artifact_reads_its_token_features(tmp_path):
    """`router eval --artifact` on a model_queries artifact: the runner's points are those of the
    artifact's own predictions (which read token features), not of embeddings alone."""
    import numpy as np

    from router.core import Router
    from router.data.splits import routerbench_split
    from router.data.synthetic import make_synthetic_table
    from router.embeddings import make_encoder
    from router.evaluation.runner import evaluate
    from router.evaluation.sweep import sweep
    from router.model.config import TrainConfig

    table = make_synthetic_table(n=80, seed=3)
    train, test = routerbench_split(table, seed=0)
    encoder = make_encoder("all-MiniLM-L6-v2", cache_dir=tmp_path / "cache")
    cfg = TrainConfig(variant="model_queries", hidden_dim=16, max_epochs=2, token_segments=4, seed=0)
    router = Router.untrained(cfg, encoder)
    router.fit(router.embed(train.prompts), train.quality, train.cost, train.models, prompts=train.prompts).save(tmp_path / "mq")

    res = evaluate(train, test, ["cross_attention"], encoder, BuildContext(artifact=str(tmp_path / "mq")))
    own = Router.load(tmp_path / "mq").predict(list(test.prompts))
    expected = np.array(sweep(own, test.quality, test.cost, "linear", c_ref=router.c_ref))
    assert np.allclose(np.array(res["routers"]["cross_attention_linear"]["points"]), expected)
    # Without the token features the same network predicts something else (so the check has teeth).
    X = encoder.embed(test.prompts)
    blind = router.predictor.predict(X, tokens=np.zeros((len(X), 0, X.shape[1]), dtype=np.float32))
    assert not np.allclose(blind.quality, own.quality)


def test_a_fallback_router_gets_the_training_domains(embedded_synthetic):  # noqa: F811
    from router.data.splits import domains

    train, _, X, _, enc = embedded_synthetic
    opts = {"encoder": enc, "cross_attention": {"hidden_dim": 8, "max_epochs": 2, "fallback": "gate", "fallback_domain_folds": 1}}
    (entry,) = family_builder("cross_attention")(BuildContext(seed=0, options=opts))
    (default,) = family_builder("cross_attention")(BuildContext(seed=0, options={"encoder": enc}))
    (plain,) = family_builder("cross_attention")(BuildContext(seed=0, options={"encoder": enc, "cross_attention": {"fallback": "off"}}))
    (member,) = family_builder("cross_attention")(BuildContext(seed=0, options={"encoder": enc, "network_only": True}))
    assert entry.predictor.wants_domains and default.predictor.wants_domains  # the default is gate_blend
    assert not plain.predictor.wants_domains and not member.predictor.wants_domains  # an ensemble member: the network alone
    entry.predictor.fit(X, train.quality, train.cost, train.models, domains=domains(train.eval_names))
    assert entry.predictor.router.predictor.selection_["folds"][1].startswith("domain ")  # a real domain, not a k-means cluster
