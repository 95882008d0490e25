"""``layout: colocated``: the Dispatcher alone runs the Embedder's and the Scorer's code, under a
real Serve, and answers what the split layout and ``Router.route`` answer."""

from __future__ import annotations

import pytest

from tests.serve_app.test_service import PROMPTS, args, artifact, call_json, free_port, local_decisions  # noqa: F401 - fixtures

pytestmark = [pytest.mark.ray, pytest.mark.slow]

APP = "router-colocated-test"


@pytest.fixture(scope="module")
def base(ray_session, args):  # noqa: F811 - the imported fixture
    from ray import serve

    from serve_app.app import build_app

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app({**args, "layout": "colocated"}), name=APP, route_prefix="/")
    yield f"http://127.0.0.1:{port}"
    serve.delete(APP)
    serve.shutdown()


def test_one_deployment_runs_both_stages(base):
    from ray import serve

    assert set(serve.status().applications[APP].deployments) == {"Dispatcher"}
    status, _, body = call_json(base, "/healthz")
    assert status == 200 and body["layout"] == "colocated"
    assert body["embedder"]["encoder"] == "hash:64" and body["embedder"]["torch_threads"] == 1
    assert body["embedder"]["batching"]["max_batch_size"] == 8  # the args' batching, as in the split layout


@pytest.mark.parametrize("lam", [0.0, 5.0])
def test_route_matches_the_artifact(base, artifact, lam):  # noqa: F811
    status, _, body = call_json(base, "/v1/route", {"prompt": PROMPTS, "lambda": lam})
    assert status == 200
    expected = local_decisions(artifact, PROMPTS, lam)
    assert [d["model"] for d in body["decisions"]] == [d.model for d in expected]
    for got, want in zip(body["decisions"], expected):
        for m in want.quality:
            assert got["scores"][m]["quality"] == pytest.approx(want.quality[m], rel=1e-5)
            assert got["scores"][m]["uncertainty"] == pytest.approx(want.uncertainty[m], rel=1e-5, abs=1e-9)


def test_bad_input_is_still_a_400(base):
    status, _, body = call_json(base, "/v1/route", {"prompt": "   "})
    assert status == 400 and "prompt" in body["error"]["message"]
