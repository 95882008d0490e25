"""A small embedded train/test split of the synthetic table, shared by the baseline tests."""

from dataclasses import dataclass

import numpy as np
import pytest

from router.data.splits import routerbench_split


@dataclass
class EmbeddedSplit:
    models: tuple
    X_train: np.ndarray
    q_train: np.ndarray
    c_train: np.ndarray
    X_test: np.ndarray
    q_test: np.ndarray
    c_test: np.ndarray


@pytest.fixture
def embedded_split(synthetic_table, hashing_encoder):
    train, test = routerbench_split(synthetic_table, seed=0)
    return EmbeddedSplit(
        synthetic_table.models,
        hashing_encoder.embed(train.prompts),
        train.quality,
        train.cost,
        hashing_encoder.embed(test.prompts),
        test.quality,
        test.cost,
    )
