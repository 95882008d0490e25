"""Request logic without Serve: parsing, λ and reward resolution, chat flattening, fallback order."""

from __future__ import annotations

import json

import pytest

from serve_app.protocol import RequestError
from serve_app.parse import (
    Limits,
    check_lambda_value,
    fallback_order,
    chat_text,
    parse_chat_request,
    parse_json_object,
    parse_route_request,
    parse_router_model_name,
)

POOL = ("small", "medium", "large")
LIMITS = Limits(max_prompt_chars=50, max_prompts_per_request=3)


def route(body, raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    return parse_route_request(data, LIMITS, 1.0, "linear", POOL)


def chat(body, headers=None):
    return parse_chat_request(json.dumps(body).encode(), headers or {}, LIMITS, 1.0, "linear", POOL)


def error_of(fn, *a, **k) -> RequestError:
    with pytest.raises(RequestError) as err:
        fn(*a, **k)
    return err.value


MSG = [{"role": "user", "content": "hello"}]


def test_route_request_defaults_and_list_input():
    plan = route({"prompt": "hi"})
    assert (plan.prompts, plan.lam, plan.reward, plan.override) == (["hi"], 1.0, "linear", None)
    plan = route({"prompt": ["a", "b"], "lambda": 0.5, "reward": "exp", "model": "large"})
    assert (plan.prompts, plan.lam, plan.reward, plan.override) == (["a", "b"], 0.5, "exponential", "large")


@pytest.mark.parametrize(
    "raw, status, words",
    [
        (b"{not json", 400, "malformed JSON"),
        (b"", 400, "empty"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"lambda": 1}', 400, "missing required field 'prompt'"),
        (b'{"prompt": ""}', 400, "prompt is empty"),
        (b'{"prompt": "   "}', 400, "prompt is empty"),
        (b'{"prompt": []}', 400, "empty list"),
        (b'{"prompt": ["ok", ""]}', 400, "prompt[1] is empty"),
        (b'{"prompt": "\\ud800"}', 400, "not valid Unicode"),
        (b'{"prompt": 3}', 400, "string or a list of strings"),
        (b'{"prompt": "x", "lambda": -1}', 400, "finite number >= 0"),
        (b'{"prompt": "x", "lambda": NaN}', 400, "finite number >= 0"),
        (b'{"prompt": "x", "lambda": Infinity}', 400, "finite number >= 0"),
        (b'{"prompt": "x", "lambda": "abc"}', 400, "must be a number"),
        (b'{"prompt": "x", "lambda": true}', 400, "must be a number"),
        (b'{"prompt": "x", "reward": "quadratic"}', 400, "unknown reward"),
        (b'{"prompt": "x", "model": "gpt-9"}', 400, "unknown model 'gpt-9'"),
        (b'{"prompt": "x", "temperature": 1}', 400, "unknown field 'temperature'"),
        (b'{"prompt": "' + b"y" * 51 + b'"}', 400, "51 characters; the limit is 50"),
        (b'{"prompt": ["a", "b", "c", "d"]}', 400, "4 prompts"),
    ],
)
def test_route_request_rejections(raw, status, words):
    err = error_of(route, None, raw=raw)
    assert err.status == status
    assert words in err.message
    assert err.to_body()["error"]["message"] == err.message


def test_lambda_values():
    assert check_lambda_value("0.25", "h", text_ok=True) == 0.25  # a header
    assert check_lambda_value(0, "h") == 0.0
    # In a JSON body λ is a number, as the published schema says: "0.25" there is refused.
    assert "must be a number" in error_of(check_lambda_value, "0.25", "lambda").message
    for bad in ("nan", "inf", "-0.1", "1_0", None, [1]):
        assert error_of(check_lambda_value, bad, "h", text_ok=True).status == 400


def test_router_model_names():
    assert parse_router_model_name("router") == (True, None)
    assert parse_router_model_name("router-0.5") == (True, 0.5)
    assert parse_router_model_name("router-1e-3") == (True, 0.001)
    assert parse_router_model_name("large") == (False, None)
    assert error_of(parse_router_model_name, "router-cheap").status == 400


def test_lambda_precedence_header_then_body_then_model_name():
    plan = chat({"model": "router-0.5", "messages": MSG, "router_lambda": 2}, {"x-router-lambda": "3"})
    assert (plan.lam, plan.lambda_source) == (3.0, "header")
    plan = chat({"model": "router-0.5", "messages": MSG, "router_lambda": 2})
    assert (plan.lam, plan.lambda_source) == (2.0, "body")
    plan = chat({"model": "router-0.5", "messages": MSG})
    assert (plan.lam, plan.lambda_source) == (0.5, "model")
    plan = chat({"messages": MSG})
    assert (plan.lam, plan.lambda_source, plan.override) == (1.0, "default", None)


def test_chat_request_forward_body_and_override():
    plan = chat({"model": "medium", "messages": MSG, "router_lambda": 2, "router_reward": "wtp", "temperature": 0.3, "stream": True})
    assert plan.override == "medium" and plan.stream and plan.reward == "routerbench"
    assert plan.forward_body == {"model": "medium", "messages": MSG, "temperature": 0.3, "stream": True}
    assert chat({"messages": MSG}, {"x-router-reward": "exp"}).reward == "exponential"


@pytest.mark.parametrize(
    "body, headers, words",
    [
        ({"messages": []}, {}, "non-empty list"),
        ({}, {}, "non-empty list"),
        ({"messages": ["hi"]}, {}, "object with a role"),
        ({"messages": [{"role": "user", "content": 5}]}, {}, "string or a list of parts"),
        ({"messages": [{"role": "user", "content": "  "}]}, {}, "no text"),
        ({"messages": MSG, "model": "gpt-9"}, {}, "unknown model"),
        ({"messages": MSG, "model": 7}, {}, "non-empty string"),
        ({"messages": MSG}, {"x-router-lambda": "-2"}, "finite number >= 0"),
        ({"messages": MSG, "router_lambda": "inf"}, {}, "lambda must be a number"),
        ({"messages": MSG, "router_lambda": 1e400}, {}, "finite number >= 0"),
        ({"messages": MSG, "model": "router-nan"}, {}, "finite number >= 0"),
        ({"messages": MSG, "router_reward": "nope"}, {}, "unknown reward"),
        ({"messages": MSG, "stream": "yes"}, {}, "stream must be"),
        ({"messages": [{"role": "user", "content": "z" * 60}]}, {}, "60 characters"),
    ],
)
def test_chat_request_rejections(body, headers, words):
    err = error_of(chat, body, headers)
    assert 400 <= err.status < 500 and words in err.message


def test_chat_text_reads_user_turns_and_text_parts():
    msgs = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "image_url", "image_url": {}}]},
    ]
    assert chat_text(msgs) == "first question\n\nsecond"
    # No user turn: every turn with text.
    assert chat_text([{"role": "system", "content": "only system"}]) == "only system"
    assert error_of(chat_text, [{"role": "user", "content": 3}]).status == 400


def test_fallback_order_by_reward_then_cost_and_only_available():
    reward = {"small": 0.5, "medium": 0.7, "large": 0.7}
    cost = {"small": 1.0, "medium": 2.0, "large": 3.0}
    assert fallback_order(reward, cost, ["small", "medium", "large"]) == ["medium", "large", "small"]
    assert fallback_order(reward, cost, ["small", "large"]) == ["large", "small"]
    assert fallback_order(reward, cost, []) == []


def test_parse_json_object():
    assert parse_json_object(b'{"a": 1}') == {"a": 1}
    assert error_of(parse_json_object, b"\xff\xfe").status == 400


def test_parse_json_object_deep_nesting_is_a_400():
    err = error_of(parse_json_object, b'{"prompt": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert err.status == 400 and "nested too deeply" in str(err.to_body())
