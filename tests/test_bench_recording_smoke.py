"""bench/recording.py still runs end to end (a tiny call against HEAD's tree, in any clone)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_recording_bench_compares_two_trees() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / "recording.py"), "--before", "HEAD", "--minutes", "0.05"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| recorder worker") and len(rows) == 3
    assert rows[1].startswith("| before (HEAD)") and rows[2].startswith("| this tree")
    assert "before ÷ after: CPU" in out
