"""Summary of a routing table, as ``router data info`` prints it: size, pool, domains, each model's
mean quality and cost, and the oracle."""

from __future__ import annotations

from collections import Counter

from router.data.splits import domains
from router.data.table import RoutingTable
from router.oracle import NO_MODEL, oracle_choice, oracle_point


def table_info(table: RoutingTable) -> dict:
    """A JSON-ready summary. Costs are USD; ``mean_cost`` is per prompt, ``total_cost`` over the table."""
    quality, cost = table.quality, table.cost
    n = len(table)
    choice = oracle_choice(quality, cost)
    oracle_quality, oracle_cost = oracle_point(quality, cost)
    picks = Counter(choice.tolist())
    domain_counts = Counter(domains(table.eval_names).tolist())
    models = {
        m: {
            "mean_quality": float(quality[:, j].mean()),
            "mean_cost": float(cost[:, j].mean()),
            "total_cost": float(cost[:, j].sum()),
            "oracle_share": picks.get(j, 0) / n,
        }
        for j, m in enumerate(table.models)
    }
    info = {
        "name": table.name,
        "rows": n,
        "models": models,
        "domains": dict(sorted(domain_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        "eval_names": len(set(table.eval_names.tolist())),
        "oracle": {
            "quality": oracle_quality,
            "total_cost": oracle_cost,
            "mean_cost": oracle_cost / n,
            "unanswerable": picks.get(NO_MODEL, 0) / n,  # share of prompts no model gets right
        },
    }
    if table.has_split:
        info["split"] = dict(sorted(Counter(table.frame["split"].tolist()).items()))
    return info


def format_info(info: dict) -> str:
    """The summary as aligned text tables."""
    lines = [
        f"{info['name']}: {info['rows']:,} prompts, {len(info['models'])} models, "
        f"{len(info['domains'])} domains ({info['eval_names']} eval names)"
    ]
    if "split" in info:
        lines.append("split: " + ", ".join(f"{k} {v:,}" for k, v in info["split"].items()))
    lines.append("")
    width = max(len("oracle"), *(len(m) for m in info["models"]))
    header = f"{'model':<{width}}  {'quality':>7}  {'cost/prompt $':>13}  {'total cost $':>12}  {'oracle picks':>12}"
    lines += [header, "-" * len(header)]
    for m, s in sorted(info["models"].items(), key=lambda kv: kv[1]["mean_cost"]):
        lines.append(
            f"{m:<{width}}  {s['mean_quality']:>7.4f}  {s['mean_cost']:>13.3e}  {s['total_cost']:>12.4f}  {s['oracle_share']:>11.1%}"
        )
    o = info["oracle"]
    lines.append(f"{'oracle':<{width}}  {o['quality']:>7.4f}  {o['mean_cost']:>13.3e}  {o['total_cost']:>12.4f}")
    lines.append(
        f"(oracle: per prompt the cheapest of the best-scoring models; on the {o['unanswerable']:.1%} "
        "of prompts where no model scores above 0 it routes nowhere and costs 0)"
    )
    lines += ["", "domain counts:"]
    dwidth = max(len(d) for d in info["domains"])
    lines += [f"  {d:<{dwidth}}  {c:>6,}" for d, c in info["domains"].items()]
    return "\n".join(lines)
