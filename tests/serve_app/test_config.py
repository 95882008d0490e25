"""App args, backends files, the encoder named by an artifact, and build_app's early errors."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from serve_app.config import AppArgs, BackendConfig, BatchingConfig, load_backends


def test_app_args_defaults_and_path_resolution(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = AppArgs(artifact_path="artifacts/router", backends_file="b.yaml", auth="off")
    assert args.artifact_path == str(tmp_path / "artifacts" / "router")
    assert args.backends_file == str(tmp_path / "b.yaml")
    assert args.default_reward == "linear" and args.default_lambda == 1.0
    assert AppArgs(artifact_path="x", default_reward="exp", auth="off").default_reward == "exponential"


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"default_lambda": -1}, "default_lambda"),
        ({"default_lambda": float("nan")}, "default_lambda"),
        ({"default_reward": "quadratic"}, "default_reward"),
        ({"embedder_batching": {"max_batch_size": 0}}, "max_batch_size"),
        ({"embedder_batching": {"batch_wait_timeout_s": -1}}, "batch_wait_timeout_s"),
        ({"scorer_batching": {"max_batch": 3}}, "max_batch"),
        ({"scorer_batching": {"max_batch_tokens": 512}}, "max_batch_tokens"),  # an Embedder-only setting
        ({"embedder_batching": {"max_concurrent_batches": 0}}, "max_concurrent_batches"),
        ({"embedder_threads": 0}, "embedder_threads"),
        ({"max_prompt_chars": 0}, "max_prompt_chars"),
        ({"artifact_dir": "x"}, "artifact_dir"),
    ],
)
def test_app_args_errors_name_the_field(extra, field):
    with pytest.raises(ValidationError) as err:
        AppArgs.model_validate({"artifact_path": "x", "auth": "off", **extra})
    assert field in str(err.value)


def test_batching_user_config_validation():
    # Natural batching by default: no wait, one batch at a time.
    cfg = BatchingConfig.model_validate({"max_batch_size": 4})
    assert cfg.batch_wait_timeout_s == 0.0 and cfg.max_concurrent_batches == 1
    args = AppArgs.model_validate({"artifact_path": "x", "auth": "off"})
    assert args.embedder_threads is None  # derived from the replica's CPUs
    assert args.embedder_batching.max_batch_tokens == 2048 and args.scorer_batching.max_batch_size == 64
    with pytest.raises(ValidationError):
        BatchingConfig.model_validate({"max_batch_size": "many"})


def test_backends_file(tmp_path, monkeypatch):
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump({"backends": [
        {"model": "a", "base_url": "http://127.0.0.1:1/v1/", "api_key_env": "KEY_A", "input_price_per_mtok": 2, "output_price_per_mtok": 4},
        {"model": "b", "base_url": "https://x.example/v1", "served_model_name": "vendor/b"},
    ]}))
    monkeypatch.setenv("KEY_A", "secret")
    a, b = load_backends(path).backends
    assert a.base_url == "http://127.0.0.1:1/v1" and a.api_key() == "secret" and b.api_key() is None
    assert (a.upstream_model, b.upstream_model) == ("a", "vendor/b")
    assert a.observed_cost(1_000_000, 500_000) == pytest.approx(4.0)


@pytest.mark.parametrize(
    "content, words",
    [
        ({"backends": [{"model": "a", "base_url": "ftp://x"}]}, "http://"),
        ({"backends": [{"model": "a", "base_url": "http://x"}, {"model": "a", "base_url": "http://y"}]}, "listed twice"),
        ({"backends": [{"model": "a"}]}, "base_url"),
        ({"backend": []}, "backends"),
    ],
)
def test_backends_file_errors(tmp_path, content, words):
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(ValidationError, match=words):
        load_backends(path)


def test_missing_backends_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_backends(tmp_path / "none.yaml")


def test_build_app_fails_early_on_a_missing_artifact(tmp_path):
    from serve_app.app import build_app

    with pytest.raises(ValueError, match="router train --data dcrouter"):
        build_app({"artifact_path": str(tmp_path / "nothing"), "auth": "off"})


def test_build_app_refuses_backends_outside_the_pool(tmp_path):
    from router.core import Router
    from router.data.synthetic import make_synthetic_table
    from router.model.config import TrainConfig
    from serve_app.app import build_app

    table = make_synthetic_table(n=40, seed=0)  # pool: small, medium, large
    router = Router.untrained(TrainConfig(hidden_dim=8, max_epochs=1), "hash:8")
    router.fit(router.embed(table.prompts), table.quality, table.cost, table.models).save(tmp_path / "art")
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump({"backends": [{"model": "zzz", "base_url": "http://127.0.0.1:1/v1"}]}))
    with pytest.raises(ValueError, match="names none of the pool models"):
        build_app({"artifact_path": str(tmp_path / "art"), "backends_file": str(path), "auth": "off"})
    backends = [{"model": m, "base_url": "http://127.0.0.1:1/v1"} for m in ("small", "zzz")]
    path.write_text(yaml.safe_dump({"backends": backends}))
    app = build_app({"artifact_path": str(tmp_path / "art"), "backends_file": str(path), "auth": "off"})
    # The ingress is bound to the Embedder and Scorer, the artifact's router and only the pool's backends.
    dispatcher = app._bound_deployment
    embedder, scorer, bound_router, bound_backends, _ = dispatcher.init_args
    assert dispatcher.name == "Dispatcher" and embedder._bound_deployment.name == "Embedder"
    assert scorer._bound_deployment.name == "Scorer" and bound_router.models == ("small", "medium", "large")
    assert [b["model"] for b in bound_backends] == ["small"]


def test_backend_config_rejects_unknown_fields():
    with pytest.raises(ValidationError, match="api_key"):
        BackendConfig.model_validate({"model": "a", "base_url": "http://x", "api_key": "inline-secret"})
    assert np.isfinite(BackendConfig(model="a", base_url="http://x").observed_cost(10, 10))
