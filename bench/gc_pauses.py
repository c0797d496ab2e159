"""Garbage-collector pauses of a bridge process, printed as one JSON line on stderr at exit.

Standard library only: every bridge imports it, ours from bench/harness.py and the peers from
their own venvs (bench/peers/), so the benches read the same `bench_gc` line from each.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


class GcPauses:
    """A `gc.callbacks` entry timing each collection, by generation."""

    def __init__(self) -> None:
        self.pauses_ms: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
        else:
            self.pauses_ms[int(info["generation"])].append(
                (time.perf_counter_ns() - self._started) / 1e6
            )

    def report(self) -> None:
        gen2 = self.pauses_ms[2]
        summary = {
            "bench_gc": True,
            "collections": {g: len(p) for g, p in self.pauses_ms.items()},
            "gen2_max_ms": round(max(gen2, default=0.0), 2),
            "gen2_total_ms": round(sum(gen2), 1),
        }
        print(json.dumps(summary), file=sys.stderr, flush=True)
