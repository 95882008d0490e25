"""Cost-quality metrics of RouterBench: the non-decreasing convex hull (NDCH) and AIQ two ways.

A router swept over λ gives points (cost, quality). Any point on a segment between two achieved
points is achievable too (route each prompt to one or the other router at random), so a router is
summarised by the *upper concave envelope* of its points, restricted to the part where quality rises
with cost (paying more for less quality is never chosen): the NDCH.

AIQ ("average improvement in quality") is the area under that hull, normalised by a cost width:

* ``aiq_paper`` (form (a), **our headline**): ∫ hull over [c_min, c_max] of the hull itself, divided
  by (c_max − c_min) — the hull's mean quality over its own cost range. It does not depend on which
  other routers are in the comparison.
* ``aiq_routerbench`` (form (b)): RouterBench's ``evaluation/AIQ.py``: every hull is extended flat to
  the largest cost of all hulls compared (c_max), integrated with the trapezoid rule *from the hull's
  first point* (not from 0) and divided by c_max. It depends on the set of routers compared, and a
  hull that starts at a high cost is penalised by the uncovered [0, c_min) part.

Degenerate hulls: a single point (or zero cost width) has AIQ = that point's quality under form (a);
under form (b) the area from the point to c_max divided by c_max (and the point's quality when
c_max is 0, where the form is undefined).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# The oracle lives in router.oracle; ``oracle(quality, cost) -> (mean quality, total
# cost)`` is re-exported here because the agreed metrics API names it.
from router.oracle import oracle_point as oracle  # noqa: F401


def _as_points(points) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] < 2 or len(pts) == 0:
        raise ValueError(f"points must be a non-empty (n, 2) array of (cost, quality), got shape {pts.shape}")
    pts = pts[:, :2]
    if not np.isfinite(pts).all():
        raise ValueError("points must be finite")
    return pts


def ndch(points) -> np.ndarray:
    """The non-decreasing convex hull of (cost, quality) points, sorted by cost: (m, 2).

    1. sort by cost, and among equal costs keep only the best quality;
    2. keep only points that raise quality over every cheaper point (the Pareto front);
    3. take the upper concave envelope of those (monotone chain); points on a straight segment
       between two hull points are dropped since they change neither the curve nor its integral.
    Extra columns (e.g. λ) are ignored.
    """
    pts = _as_points(points)
    # Sort by cost, quality descending within a cost, so the first of each cost is its best.
    order = np.lexsort((-pts[:, 1], pts[:, 0]))
    pts = pts[order]
    front: list[tuple[float, float]] = []
    for c, q in pts:
        if front and c == front[-1][0]:
            continue  # same cost, not better (sorted so the best came first)
        if front and q <= front[-1][1]:
            continue  # costs more, gains nothing: dominated
        front.append((float(c), float(q)))
    hull: list[tuple[float, float]] = []
    for p in front:
        # Pop the last point while it lies on or below the segment from its predecessor to p.
        while len(hull) >= 2:
            (x0, y0), (x1, y1) = hull[-2], hull[-1]
            cross = (x1 - x0) * (p[1] - y0) - (y1 - y0) * (p[0] - x0)
            if cross >= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    return np.array(hull, dtype=np.float64)


def _area(hull: np.ndarray) -> float:
    """Trapezoid rule (the hull is piecewise linear, so this is its exact integral)."""
    x, y = hull[:, 0], hull[:, 1]
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def aiq_paper(hull) -> float:
    """Form (a): integral of the hull over [c_min, c_max] / (c_max − c_min).

    A single point or a zero-width hull: the point's (best) quality."""
    h = _as_points(hull)
    width = h[-1, 0] - h[0, 0]
    if len(h) == 1 or width <= 0:
        return float(h[:, 1].max())
    return _area(h) / width


def common_c_max(hulls: Sequence[np.ndarray]) -> float:
    """The largest cost over all hulls compared (RouterBench's ``max_x_value``)."""
    return float(max(_as_points(h)[:, 0].max() for h in hulls))


def aiq_routerbench(hulls: Sequence[np.ndarray], c_max: float | None = None) -> list[float]:
    """Form (b), RouterBench's code: each hull extended flat to the common ``c_max`` (default: the
    largest cost over ``hulls``), integrated from its own first point, divided by ``c_max``."""
    hs = [_as_points(h) for h in hulls]
    if not hs:
        return []
    cmax = common_c_max(hs) if c_max is None else float(c_max)
    out = []
    for h in hs:
        if h[-1, 0] > cmax:
            raise ValueError(f"c_max {cmax} is below the hull's largest cost {h[-1, 0]}")
        if cmax <= 0:
            out.append(float(h[:, 1].max()))  # undefined (all costs 0): fall back to the quality
            continue
        ext = np.vstack([h, [[cmax, h[-1, 1]]]])
        out.append(_area(ext) / cmax)
    return out


def max_quality(points) -> tuple[float, float]:
    """The best quality among ``points`` and the lowest cost at which it is reached."""
    pts = _as_points(points)
    best = pts[:, 1].max()
    return float(best), float(pts[pts[:, 1] == best, 0].min())


def zero_router(single_points) -> np.ndarray:
    """RouterBench's zero router: the NDCH of the single models' (cost, quality) points, i.e. the
    best one can do by mixing fixed models at random without reading the prompt."""
    return ndch(single_points)


def aiq_paper_batch(cost: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Form (a) of many point sets at once: ``cost`` and ``quality`` are (B, L), row b being one
    set of L (cost, quality) points; returns (B,) equal to ``aiq_paper(ndch(points_b))``.

    The same steps as :func:`ndch` with the rows in lock-step (what the bootstrap needs: B
    resamples of one λ sweep): sort each row by cost (best quality first within a cost), keep the
    points that beat every cheaper one, then run the monotone chain on all rows together, popping
    only in the rows whose stack top lies on or below the new segment. Work is O(B·L) per pop
    round; a round ends when no row pops, so the loop runs about L·(pops per step) times."""
    c = np.asarray(cost, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if c.ndim != 2 or c.shape != q.shape or c.shape[1] == 0:
        raise ValueError(f"cost and quality must be equal non-empty (B, L) arrays, got {c.shape} and {q.shape}")
    if not (np.isfinite(c).all() and np.isfinite(q).all()):
        raise ValueError("points must be finite")
    b, n = c.shape
    order = np.lexsort((-q, c), axis=-1)
    c = np.take_along_axis(c, order, axis=1)
    q = np.take_along_axis(q, order, axis=1)
    # On the front: quality above every cheaper point's (same-cost seconds are never above).
    prev_best = np.concatenate([np.full((b, 1), -np.inf), np.maximum.accumulate(q, axis=1)[:, :-1]], axis=1)
    on_front = q > prev_best
    rows = np.arange(b)
    stack = np.zeros((b, n), dtype=np.int64)
    top = np.zeros(b, dtype=np.int64)
    for k in range(n):
        act = on_front[:, k]
        while True:
            cand = act & (top >= 2)
            if not cand.any():
                break
            r = rows[cand]
            i0, i1 = stack[r, top[r] - 2], stack[r, top[r] - 1]
            x0, y0, x1, y1 = c[r, i0], q[r, i0], c[r, i1], q[r, i1]
            cross = (x1 - x0) * (q[r, k] - y0) - (y1 - y0) * (c[r, k] - x0)
            pop = cross >= 0
            if not pop.any():
                break
            top[r[pop]] -= 1
        r = rows[act]
        stack[r, top[r]] = k
        top[r] += 1
    hx = np.take_along_axis(c, stack, axis=1)
    hy = np.take_along_axis(q, stack, axis=1)
    seg = np.arange(1, n)[None, :] < top[:, None]  # segment j-1 -> j exists
    area = np.where(seg, (hx[:, 1:] - hx[:, :-1]) * (hy[:, 1:] + hy[:, :-1]) / 2.0, 0.0).sum(axis=1)
    last = top - 1
    width = hx[rows, last] - hx[:, 0]
    degenerate = (top == 1) | (width <= 0)
    return np.where(degenerate, hy[rows, last], area / np.where(degenerate, 1.0, width))
