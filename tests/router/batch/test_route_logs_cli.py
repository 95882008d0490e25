"""``router route-logs`` from the command line, in the shared Ray session (which it must leave running)."""

from __future__ import annotations

import pandas as pd

from router.cli.main import main


def test_route_logs_cli_end_to_end(ray_session, tiny_artifact, log_jsonl, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["route-logs", "--artifact", tiny_artifact, "--input", str(log_jsonl), "--out", str(out),
               "--lambda", "0,10", "--batch-size", "4", "--no-cache"])  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr().out
    assert "rows read 10: routed 5, quarantined 5" in printed
    decisions = pd.read_parquet(out / "decisions")
    assert len(decisions) == 5 * 2  # one row per routed input row and λ
    # The command used the session's Ray and left it running for the rest of the tests.
    assert ray_session.is_initialized()
