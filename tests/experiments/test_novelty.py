"""experiments.novelty: the share of test prompts beyond the training prompts' own neighbour distances."""

from __future__ import annotations

import numpy as np

from experiments.novelty import QUANTILES, share_beyond


def _unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_foreign_prompts_are_beyond_and_familiar_ones_are_not():
    rng = np.random.default_rng(0)
    centre = rng.normal(size=16)
    train = _unit(centre + 0.3 * rng.normal(size=(400, 16)))
    quality = rng.random((400, 2))
    familiar = _unit(centre + 0.3 * rng.normal(size=(200, 16)))
    foreign = _unit(-centre + 0.3 * rng.normal(size=(200, 16)))  # the opposite direction: far in cosine
    near = share_beyond(train, quality, familiar)
    far = share_beyond(train, quality, foreign)
    assert len(near) == len(far) == len(QUANTILES)
    assert all(f == 1.0 for f in far)
    assert near[0] < 0.25 and near[0] >= near[1] >= near[2]  # about 10% beyond the 90th percentile, by construction
