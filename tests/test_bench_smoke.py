"""The latency and capacity benchmarks still run end to end (tiny configurations).

Nothing about speed is asserted: only that each bench completes against the real gateway and
the baseline bridge on loopback and reports numbers (no lost frames, no stale frames).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _run(script: str, *args: str) -> object:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args, "--no-write", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_latency_bench_reports_every_direction() -> None:
    rows = _run("latency.py", "--samples", "5", "--impls", "ours,baseline", "--let-cores-sleep")
    assert isinstance(rows, list)
    assert [row["impl"] for row in rows] == ["ours", "baseline"]
    for row in rows:
        for column in ("in", "out", "barge", "backlog"):
            p50, p99 = (float(x) for x in row[column].split(" / "))
            assert math.isfinite(p50) and math.isfinite(p99) and 0 < p50 <= p99
        assert row["stale"] == 0
        assert row["lost"] == 0
        assert row["timeouts"] == 0


def test_capacity_bench_reports_a_step() -> None:
    results = _run(
        "capacity.py",
        "--steps",
        "2",
        "--window-s",
        "1",
        "--settle-s",
        "0.2",
        "--impls",
        "ours,baseline",
    )
    assert isinstance(results, dict)
    assert sorted(results) == ["baseline", "ours"]
    for steps in results.values():
        step = steps[-1]  # a step that misses the latency bound is measured twice
        assert step["calls"] == 2 and step["calls_failed"] == 0
        assert step["in_samples"] > 0 and step["out_samples"] > 0
        assert math.isfinite(step["in_p99_ms"]) and math.isfinite(step["out_p99_ms"])
        assert step["lost_in"] == 0 and step["lost_out"] == 0
        assert step["gateway_cpu_s"] >= 0
