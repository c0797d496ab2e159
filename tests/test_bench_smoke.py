"""The latency and capacity benchmarks still run end to end (tiny configurations).

Nothing about speed is asserted: only that each bench completes against the real gateway and
the baseline bridge on loopback and reports numbers (no lost frames, no stale frames). The
Pipecat peer (bench/peers/) is checked without PyPI: its script compiles and is the Twilio +
Gemini Live bot, its set-up commands are the pinned venv of its own; the benches run it only
where its venv is already there (skipped otherwise, with the command that makes it).
"""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

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


# ---------------------------------------------------------------------------- the Pipecat peer

sys.path.insert(0, str(BENCH))
from peers import peer_env  # noqa: E402  (bench/ is not a package: found by path, as the benches do)

PIPECAT = peer_env.PEERS["pipecat"]


def test_pipecat_peer_script_is_the_twilio_gemini_live_bot() -> None:
    source = PIPECAT.script.read_text()
    tree = ast.parse(source, filename=str(PIPECAT.script))  # compiles under this Python
    compile(tree, str(PIPECAT.script), "exec")
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipecat")
        for alias in node.names
    }
    assert {
        "TwilioFrameSerializer",
        "GeminiLiveLLMService",
        "FastAPIWebsocketTransport",
        "PipelineWorker",
        "WorkerRunner",
    } <= imported
    # Auto hang-up needs Twilio REST credentials: the peer turns it off instead.
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert any(
        kw.arg == "auto_hang_up" and isinstance(kw.value, ast.Constant) and kw.value.value is False
        for call in calls
        for kw in call.keywords
    )
    routes = {
        call.args[0].value
        for call in calls
        if isinstance(call.func, ast.Attribute)
        and call.func.attr == "add_api_websocket_route"
        and isinstance(call.args[0], ast.Constant)
    }
    assert "/media" in routes  # where harness.GatewayProcess points the callers


def test_pipecat_peer_setup_is_a_pinned_venv_of_its_own(tmp_path: Path, monkeypatch) -> None:
    requirements = [
        line.split("#")[0].strip() for line in PIPECAT.requirements.read_text().splitlines()
    ]
    assert "pipecat-ai[google,websocket]==1.14.*" in requirements
    monkeypatch.setenv("BENCH_PIPECAT_VENV", str(tmp_path / "venv"))
    make_venv, install = peer_env.setup_commands(PIPECAT, base_python="python3")
    assert make_venv == ["python3", "-m", "venv", str(tmp_path / "venv")]
    assert install[:4] == [str(tmp_path / "venv" / "bin" / "python"), "-m", "pip", "install"]
    assert install[-2:] == ["-r", str(PIPECAT.requirements)]
    assert not peer_env.is_ready(PIPECAT)
    checked = subprocess.run(
        [sys.executable, str(BENCH / "peers" / "peer_env.py"), "pipecat", "--check"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert checked.returncode == 1 and "not set up" in checked.stdout
    printed = subprocess.run(
        [sys.executable, str(BENCH / "peers" / "peer_env.py"), "pipecat", "--print"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert printed[0].endswith(f"-m venv {tmp_path / 'venv'}")
    assert printed[1].endswith(f"-r {PIPECAT.requirements}")
    assert not (tmp_path / "venv").exists()  # printing ran nothing


needs_pipecat = pytest.mark.skipif(
    not peer_env.is_ready(PIPECAT),
    reason=f"the Pipecat peer's venv is not set up ({PIPECAT.venv}; making it needs PyPI): "
    "run `.venv/bin/python bench/peers/peer_env.py pipecat`",
)


@needs_pipecat
def test_latency_bench_runs_the_pipecat_peer() -> None:
    rows = _run("latency.py", "--samples", "5", "--impls", "pipecat", "--let-cores-sleep")
    assert isinstance(rows, list) and [row["impl"] for row in rows] == ["pipecat"]
    row = rows[0]
    for column in ("in", "out", "barge", "backlog"):
        p50, p99 = (float(x) for x in row[column].split(" / "))
        assert math.isfinite(p50) and math.isfinite(p99) and 0 < p50 <= p99
    assert row["lost"] == 0
    assert row["timeouts"] == 0
    assert row["cpu_s_per_call_minute"] > 0
    before, peak, after = row["rss_mib"]
    assert 0 < before <= peak and after > 0


@needs_pipecat
def test_capacity_bench_runs_the_pipecat_peer() -> None:
    results = _run(
        "capacity.py", "--steps", "2", "--window-s", "1", "--settle-s", "0.2",
        "--impls", "pipecat",
    )  # fmt: skip
    assert isinstance(results, dict) and sorted(results) == ["pipecat"]
    step = results["pipecat"][-1]
    assert step["calls"] == 2 and step["calls_failed"] == 0
    assert step["in_samples"] > 0 and step["out_samples"] > 0
    assert step["lost_in"] == 0
    assert step["gateway_cpu_s"] > 0
    assert 0 < step["rss_before_mib"] <= step["rss_peak_mib"]
    assert step["listening_after_ms"] > 0  # it waited for Pipecat to take caller audio
