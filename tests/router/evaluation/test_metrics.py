"""NDCH and both AIQ forms pinned on hand-computed cases."""

import numpy as np
import pytest

from router.evaluation.metrics import aiq_paper, aiq_routerbench, common_c_max, max_quality, ndch, zero_router


def test_ndch_keeps_a_concave_rising_front_and_drops_a_quality_loss():
    # (4, .5) costs more than (3, .7) for less quality: gone. (2, .6) is above the chord
    # (1, .2)-(3, .7) (which is .45 at cost 2): kept.
    pts = [[1, 0.2], [2, 0.6], [3, 0.7], [4, 0.5]]
    assert ndch(pts).tolist() == [[1, 0.2], [2, 0.6], [3, 0.7]]
    # Area: (0.2+0.6)/2 + (0.6+0.7)/2 = 0.4 + 0.65 = 1.05 over width 2.
    assert aiq_paper(ndch(pts)) == pytest.approx(0.525)


def test_ndch_bridges_a_point_below_the_chord():
    # (1, .2) is under the chord (0, .1)-(2, .9), which is .5 at cost 1: mixing beats it.
    hull = ndch([[0, 0.1], [1, 0.2], [2, 0.9]])
    assert hull.tolist() == [[0, 0.1], [2, 0.9]]
    assert aiq_paper(hull) == pytest.approx(0.5)


def test_ndch_tie_in_cost_keeps_the_best_quality():
    hull = ndch([[1, 0.3], [2, 0.6], [1, 0.5]])
    assert hull.tolist() == [[1, 0.5], [2, 0.6]]
    assert aiq_paper(hull) == pytest.approx(0.55)


def test_ndch_drops_a_dominated_model():
    # The model at cost 2 is worse than the one at cost 1.
    hull = ndch([[1, 0.5], [2, 0.4], [3, 0.8]])
    assert hull.tolist() == [[1, 0.5], [3, 0.8]]
    assert aiq_paper(hull) == pytest.approx(0.65)


def test_ndch_equal_quality_at_higher_cost_is_dropped():
    assert ndch([[1, 0.5], [2, 0.5]]).tolist() == [[1, 0.5]]


def test_ndch_collinear_points_reduce_to_the_ends():
    hull = ndch([[0, 0.0], [1, 0.5], [2, 1.0]])
    assert hull.tolist() == [[0, 0.0], [2, 1.0]]
    assert aiq_paper(hull) == pytest.approx(0.5)


def test_ndch_ignores_input_order_and_extra_columns():
    pts = np.array([[1, 0.2, 10.0], [2, 0.6, 20.0], [3, 0.7, 30.0], [4, 0.5, 40.0]])
    shuffled = pts[[3, 0, 2, 1]]
    assert ndch(shuffled).tolist() == [[1, 0.2], [2, 0.6], [3, 0.7]]


def test_single_point_and_duplicates():
    assert ndch([[2, 0.4]]).tolist() == [[2, 0.4]]
    assert ndch([[2, 0.4], [2, 0.4], [2, 0.4]]).tolist() == [[2, 0.4]]
    assert aiq_paper(ndch([[2, 0.4]])) == 0.4
    # All at one cost: zero width, the best quality.
    assert aiq_paper(ndch([[2, 0.4], [2, 0.9]])) == 0.9


def test_the_cheapest_point_is_kept_even_when_the_best_is_at_the_same_cost_as_others():
    hull = ndch([[0, 0.0], [0, 0.3], [5, 0.3], [10, 0.8]])
    assert hull.tolist() == [[0, 0.3], [10, 0.8]]


def test_aiq_routerbench_extends_flat_and_divides_by_common_cmax():
    a = ndch([[1, 0.2], [3, 0.6]])
    b = ndch([[2, 0.5], [4, 0.7]])
    c = ndch([[2, 0.5]])
    assert common_c_max([a, b, c]) == 4
    # a: (1,.2)-(3,.6) area 0.8, then flat .6 over [3,4]: 0.6 -> 1.4 / 4.
    # b: (2,.5)-(4,.7) area 1.2 -> 1.2 / 4.  c: flat .5 over [2,4] -> 1.0 / 4.
    assert aiq_routerbench([a, b, c]) == pytest.approx([0.35, 0.3, 0.25])
    # The paper's form does not depend on the others: a is 0.4, b is 0.6.
    assert aiq_paper(a) == pytest.approx(0.4)
    assert aiq_paper(b) == pytest.approx(0.6)


def test_aiq_routerbench_with_explicit_cmax():
    a = ndch([[0, 0.5], [1, 0.5 + 1e-9]])
    assert aiq_routerbench([a], c_max=2.0)[0] == pytest.approx(0.5, abs=1e-8)
    with pytest.raises(ValueError, match="c_max"):
        aiq_routerbench([a], c_max=0.5)


def test_aiq_routerbench_zero_costs_fall_back_to_quality():
    assert aiq_routerbench([ndch([[0, 0.7]])]) == [0.7]


def test_max_quality_takes_the_cheapest_cost_of_the_best():
    assert max_quality([[3, 0.8], [1, 0.5], [2, 0.8]]) == (0.8, 2.0)


def test_zero_router_is_the_hull_of_single_models():
    # cheap (1, .4), mid (2, .5) under the chord from cheap to big (.55 at 2), big (3, .7),
    # bad (4, .6) dominated.
    singles = [[1, 0.4], [2, 0.5], [3, 0.7], [4, 0.6]]
    hull = zero_router(singles)
    assert hull.tolist() == [[1, 0.4], [3, 0.7]]
    assert aiq_paper(hull) == pytest.approx(0.55)


@pytest.mark.parametrize("bad", [[], [[1.0]], [[np.nan, 0.5]], [[1, np.inf]]])
def test_bad_points_are_rejected(bad):
    with pytest.raises(ValueError):
        ndch(bad)


def test_aiq_paper_batch_equals_the_scalar_form():
    from router.evaluation.metrics import aiq_paper_batch

    rng = np.random.default_rng(0)
    b, n = 300, 12
    cost = rng.random((b, n)) * rng.choice([1.0, 1000.0], size=(b, 1))
    quality = rng.random((b, n))
    cost[:80] = np.round(cost[:80] * 3) / 3  # equal costs
    quality[:80] = np.round(quality[:80] * 4) / 4  # equal qualities, collinear points
    cost[80:90] = 2.0  # zero width
    cost[90:95, :] = np.arange(n)  # a straight line
    quality[90:95, :] = np.arange(n) / n
    got = aiq_paper_batch(cost, quality)
    want = [aiq_paper(ndch(np.stack([cost[i], quality[i]], axis=1))) for i in range(b)]
    assert np.allclose(got, want, atol=1e-12, rtol=0)
    assert aiq_paper_batch(np.array([[3.0]]), np.array([[0.4]])) == pytest.approx([0.4])
    with pytest.raises(ValueError):
        aiq_paper_batch(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="finite"):
        aiq_paper_batch(np.array([[np.nan]]), np.array([[0.1]]))
