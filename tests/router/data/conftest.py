"""Fixtures for the data tests: a tiny wide-layout frame and a RouterBench-shaped one."""

from __future__ import annotations

import pandas as pd
import pytest


def tiny_frame(n: int = 6) -> pd.DataFrame:
    """Two models, ``cheap`` and ``strong``, over ``n`` prompts in two eval names."""
    return pd.DataFrame(
        {
            "sample_id": [f"id{i}" for i in range(n)],
            "prompt": [f"prompt number {i}" for i in range(n)],
            "eval_name": ["mmlu-law" if i % 2 else "mmlu-math" for i in range(n)],
            "cheap": [float(i % 2) for i in range(n)],
            "cheap|total_cost": [0.001] * n,
            "strong": [1.0] * n,
            "strong|total_cost": [0.01 + 0.001 * i for i in range(n)],
        }
    )


def routerbench_like_frame(n: int = 8) -> pd.DataFrame:
    """The shape of ``routerbench_0shot.pkl``: score columns of dtype object, a
    ``|model_response`` column per model and ``oracle_model_to_route_to``."""
    frame = pd.DataFrame({"sample_id": [f"grade-school-math.{i}" for i in range(n)]})
    frame["prompt"] = [f"['Question {i}: what is {i} + {i}?']" for i in range(n)]
    frame["eval_name"] = ["grade-school-math" if i < n // 2 else "mmlu-astronomy" for i in range(n)]
    for j, model in enumerate(["gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat"]):
        frame[model] = pd.Series([1 if (i + j) % 2 else 0.0 for i in range(n)], dtype=object)
        frame[model + "|model_response"] = [f"answer {i} by {model}" for i in range(n)]
        frame[model + "|total_cost"] = pd.Series([1e-4 * (j + 1) * (i + 1) for i in range(n)], dtype=object)
    frame["oracle_model_to_route_to"] = ["gpt-4-1106-preview"] * n
    return frame


@pytest.fixture
def frame() -> pd.DataFrame:
    return tiny_frame()


@pytest.fixture
def rb_frame() -> pd.DataFrame:
    return routerbench_like_frame()


@pytest.fixture
def make_frame():
    """The tiny frame as a factory, for tests that need another size."""
    return tiny_frame
