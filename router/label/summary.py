"""``label_summary.json`` and the lines ``router label`` prints."""

from __future__ import annotations


def row_accounting(rows_read: int, parse_quarantined: int, counts: dict, labelled: int, dropped: int) -> dict:
    """Where every row read went; ``balanced`` checks read = labelled + quarantined + the rest."""
    quarantined = parse_quarantined + counts["ungradable"]
    out = {
        "read": rows_read,
        "quarantined": quarantined,
        "quarantined_malformed": parse_quarantined,
        "quarantined_ungradable": counts["ungradable"],
        "duplicates": counts["duplicates"],
        "not_sampled": counts["not_sampled"],
        "selected": counts["selected"],
        "labelled": labelled,
        "left_out_incomplete": dropped,
    }
    out["balanced"] = rows_read == labelled + quarantined + counts["duplicates"] + counts["not_sampled"] + dropped
    return out


def format_summary(s: dict) -> str:
    r = s["rows"]
    lines = [
        f"rows read {r['read']}: labelled {r['labelled']}, quarantined {r['quarantined']}"
        + (f" (see {s['paths']['quarantine']})" if r["quarantined"] else "")
        + f", duplicates {r['duplicates']}, not sampled {r['not_sampled']}, left out (a cell not labelled) {r['left_out_incomplete']}",
    ]
    calls = s["calls"]
    lines.append(
        f"calls this run {calls['made']} (reused from the checkpoint {calls['reused']}); "
        f"spend this run ${s['spend']['this_run_usd']:.4f}, total ${s['spend']['total_usd']:.4f} "
        f"(models ${s['spend']['models_usd']:.4f}, judge ${s['spend']['judge_usd']:.4f})"
        + (f", budget ${s['spend']['budget_usd']:g}" if s["spend"]["budget_usd"] is not None else "")
    )
    for m, c in s["cells"].items():
        failed = ", ".join(f"{k} {v}" for k, v in sorted(c["failed"].items())) or "none"
        missing = sum(c["missing"].values())
        col = " (COLUMN LEFT OUT: too many failures)" if m in s["failed_models"] else ""
        lines.append(f"  {m}: {c['ok']} labelled, failed {failed}" + (f", not done {missing}" if missing else "") + col)
    if s["spend"]["budget_reached"]:
        lines.append("budget reached: the run stopped before exceeding it; re-run with a higher --budget-usd to go on "
                     "(the checkpoint keeps every answer paid for)")  # fmt: skip
    j = s.get("judge")
    if j and j.get("grades"):
        agree = j.get("agreement")
        lines.append(
            f"judge: {j['grades']} grades, {j['quarantined_unparseable']} quarantined (unparseable twice), "
            f"{j['retried_judgments']} asked twice, ${j['cost_usd']:.4f}"
            + (f"; agrees with {agree['grader']} on {agree['share_agreeing']:.1%} of {agree['rows_with_reference']} rows with a reference"
               if agree else "")
        )  # fmt: skip
    if s["paths"]["table"]:
        lines.append(f"wrote {s['paths']['table']} ({r['labelled']} rows x {len(s['models_in_table'])} models); "
                     f"summary {s['paths']['summary']}")  # fmt: skip
    else:
        lines.append(f"no table written: no row has every model labelled (summary {s['paths']['summary']})")
    return "\n".join(lines)


def format_dry_run(d: dict) -> str:
    lines = [f"dry run: {d['rows']} prompts to label, {d['rows_done']} already done in the checkpoint"]
    for m, e in d["backends"].items():
        lines.append(f"  {m}: {e['calls']} calls, at most ${e['max_usd']:.4f} (prompts ~${e['prompt_usd']:.4f} "
                     f"+ answers of up to {d['max_tokens']} tokens)")  # fmt: skip
    if d.get("judge"):
        e = d["judge"]
        lines.append(f"  judge: at least {e['calls']} calls, at most ${e['max_usd']:.4f} (2 tries each, answers at max_tokens)")
    lines.append(f"total: {d['calls']} calls, at most ${d['max_usd']:.4f} (estimates from characters, ~3 per token)")
    return "\n".join(lines)
