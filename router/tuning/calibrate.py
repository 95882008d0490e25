"""λ calibration: the λ at which a trained router meets a cost budget (USD per 1,000 prompts) or
a quality target, found on validation rows and checked on held-out rows.

Rows: the dataset's test half (``split='auto'``: its ``split`` column, else RouterBench's seeded
70/30 per domain; ``'all'``: every row), i.e. prompts the artifact was not trained on, split
50/50 (seeded) into a calibration part and a held-out part.

Search: a dense grid over λ (the reward's default grid plus 241 log-spaced values across its
range), not bisection: the realised cost of a router is not guaranteed to fall monotonically
with λ (a model may be cheaper on some prompts and dearer on others), so bisection could stop at
a non-feasible or non-best λ. Budget: among λ whose calibration cost per 1,000 prompts is within
the budget, the one with the highest calibration quality (then the lowest cost). Target: among λ
whose calibration quality reaches the target, the cheapest (then the highest quality).
"""

from __future__ import annotations

import numpy as np

from router.prediction import Prediction
from router.rewards import get_reward
from router.tuning.data import Embedded, carve


def lambda_grid(reward: str, dense: int = 241) -> list[float]:
    rw = get_reward(reward)
    positive = [x for x in rw.default_grid if x > 0]
    lo, hi = np.log10(min(positive)), np.log10(max(positive))
    values = set(float(x) for x in rw.default_grid) | set(float(x) for x in np.logspace(lo, hi, dense))
    return sorted(values)


def operating_points(prediction: Prediction, data: Embedded, reward: str, c_ref: float, grid) -> list[dict]:
    """Per λ: realised mean quality and cost per 1,000 prompts (true values of the chosen models)."""
    from router.evaluation.sweep import sweep

    n = max(len(data), 1)
    return [
        {"lambda": lam, "quality": q, "cost_per_1000": c / n * 1000.0}
        for c, q, lam in sweep(prediction, data.quality, data.cost, reward, grid=grid, c_ref=c_ref)
    ]


def choose(points: list[dict], budget: float | None = None, quality_target: float | None = None) -> dict | None:
    """The calibration point meeting the budget or target (see module doc), or None if none does."""
    if (budget is None) == (quality_target is None):
        raise ValueError("give exactly one of --budget and --quality-target")
    if budget is not None:
        feasible = [p for p in points if p["cost_per_1000"] <= budget + 1e-12]
        return max(feasible, key=lambda p: (p["quality"], -p["cost_per_1000"]), default=None)
    feasible = [p for p in points if p["quality"] >= quality_target - 1e-12]
    return min(feasible, key=lambda p: (p["cost_per_1000"], -p["quality"]), default=None)


def calibrate(predict, c_ref: float, data: Embedded, reward: str, budget: float | None = None,
              quality_target: float | None = None, seed: int = 0) -> dict:  # fmt: skip
    """Calibrate on half of ``data``, report on the other half. ``predict(Embedded) -> Prediction``."""
    if budget is not None and not budget > 0:
        raise ValueError(f"--budget must be > 0 USD per 1000 prompts, got {budget}")
    if quality_target is not None and not 0 <= quality_target <= 1:
        raise ValueError(f"--quality-target must be in [0, 1], got {quality_target}")
    cal_rows, held_rows = carve(len(data), 0.5, seed)
    cal, held = data.take(cal_rows), data.take(held_rows)
    grid = lambda_grid(reward)
    cal_points = operating_points(predict(cal), cal, reward, c_ref, grid)
    chosen = choose(cal_points, budget, quality_target)
    result = {
        "reward": get_reward(reward).name,
        "budget_per_1000": budget,
        "quality_target": quality_target,
        "search": f"grid of {len(grid)} λ values",
        "n_calibration": len(cal),
        "n_heldout": len(held),
        "feasible": chosen is not None,
    }
    if chosen is None:
        # Report the closest the router gets, so the user sees how far off the request is.
        closest = min(cal_points, key=lambda p: p["cost_per_1000"]) if budget is not None else max(cal_points, key=lambda p: p["quality"])
        result["closest"] = closest
        return result
    held_point = operating_points(predict(held), held, reward, c_ref, [chosen["lambda"]])[0]
    result.update(
        {
            "lambda": chosen["lambda"],
            "calibration": {"quality": chosen["quality"], "cost_per_1000": chosen["cost_per_1000"]},
            "heldout": {"quality": held_point["quality"], "cost_per_1000": held_point["cost_per_1000"]},
            "heldout_meets": (held_point["cost_per_1000"] <= budget) if budget is not None else (held_point["quality"] >= quality_target),
        }
    )
    return result


def format_calibration(res: dict) -> str:
    goal = f"budget ${res['budget_per_1000']:g} per 1000 prompts" if res["budget_per_1000"] is not None else f"quality target {res['quality_target']:g}"
    if not res["feasible"]:
        c = res["closest"]
        return (f"no λ meets the {goal} on {res['n_calibration']} calibration prompts ({res['search']}); closest: "
                f"λ={c['lambda']:.4g} quality {c['quality']:.4f} at ${c['cost_per_1000']:.4f}/1000")  # fmt: skip
    cal, held = res["calibration"], res["heldout"]
    return (
        f"{goal}, reward {res['reward']}: λ = {res['lambda']:.6g} ({res['search']})\n"
        f"  calibration ({res['n_calibration']} prompts): quality {cal['quality']:.4f}, cost ${cal['cost_per_1000']:.4f} per 1000\n"
        f"  held-out    ({res['n_heldout']} prompts): quality {held['quality']:.4f}, cost ${held['cost_per_1000']:.4f} per 1000"
        f"  -> {'meets' if res['heldout_meets'] else 'misses'} the {goal.split(' ', 1)[0]}"
    )
