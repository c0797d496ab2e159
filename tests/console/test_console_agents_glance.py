"""The console's agents view (with a broken agent file) and its numbers at a glance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.agents.config import load_agents
from gateway.agents.store import AgentStore
from gateway.console.glance import HourlyCounts, histogram_quantile
from tests.console.backend_harness import barge_in_call, console_gateway, question_call

GOOD = """\
name: support
lines: ["+15550001111"]
carriers: [twilio]
voice: Kore
system_instruction: Help callers.
tools:
  - builtin: end_call
"""
BROKEN = """\
name: billing
voice: Kore
greting: Hello!
"""


async def test_agents_show_their_check_and_a_refused_reload(tmp_path: Path) -> None:
    agents_dir = tmp_path / "agents"
    agents_dir.mkdir()
    (agents_dir / "support.yaml").write_text(GOOD)
    store = AgentStore(load_agents(agents_dir), agents_dir)
    async with console_gateway(tmp_path, agents=store) as gateway:
        before = await gateway.get_json("/console/api/agents")
        assert before["reload"] == {"ok": True, "error": None, "at": None}
        (support,) = before["agents"]
        assert support == {
            "name": "support",
            "loaded": True,
            "lines": ["+15550001111"],
            "carriers": ["twilio"],
            "model": "gemini-3.8-live",
            "voice": "Kore",
            "tools": ["end_call"],
            "source": str(agents_dir / "support.yaml"),
            "check": {"ok": True, "errors": []},
        }
        (agents_dir / "billing.yaml").write_text(BROKEN)
        assert await store.reload_async() is False
        after = await gateway.get_json("/console/api/agents")
        assert after["reload"]["ok"] is False and after["reload"]["at"].endswith("Z")
        assert "billing.yaml:3: greting: unknown field" in after["reload"]["error"]
        by_name = {agent["name"]: agent for agent in after["agents"]}
        assert by_name["support"]["check"]["ok"] is True  # still serving
        billing = by_name["billing"]
        assert billing["loaded"] is False and billing["check"]["ok"] is False
        assert billing["source"] == str(agents_dir / "billing.yaml")
        assert any("greting: unknown field" in error for error in billing["check"]["errors"])
        (agents_dir / "billing.yaml").write_text(BROKEN.replace("greting", "greeting"))
        assert await store.reload_async() is True
        fixed = await gateway.get_json("/console/api/agents")
        assert fixed["reload"]["ok"] is True and fixed["reload"]["error"] is None
        assert {a["name"]: a["check"]["ok"] for a in fixed["agents"]} == {
            "support": True, "billing": True,
        }  # fmt: skip


async def test_glance_counts_calls_barge_ins_and_latency(tmp_path: Path) -> None:
    async with console_gateway(tmp_path, record_calls="off") as gateway:
        empty = await gateway.get_json("/console/api/glance")
        assert empty["calls_today"] == 0 and empty["barge_ins"] == 0
        assert empty["reply_latency_ms"] == {"p50": None, "p95": None}
        assert len(empty["hourly"]) == 24
        await question_call(gateway, 31, agent="default")
        await barge_in_call(gateway, 32, agent="default")
        numbers = await gateway.get_json("/console/api/glance")
    assert numbers["calls_today"] == 2
    assert numbers["barge_ins"] == 1
    assert numbers["tool_errors"] == 0 and numbers["live_reconnects"] == 0
    latency = numbers["reply_latency_ms"]
    assert latency["p50"] is not None and 0 < latency["p50"] <= latency["p95"] <= 10_000
    hours = numbers["hourly"]
    assert hours[-1]["calls"] == 2 and hours[-1]["barge_ins"] == 1
    assert sum(hour["calls"] for hour in hours[:-1]) == 0
    assert hours[-1]["hour"].endswith(":00:00Z")
    assert set(hours[0]) == {"hour", "calls", "barge_ins", "tool_errors", "reconnects"}


def test_percentiles_interpolate_within_buckets() -> None:
    buckets = [(0.25, 0.0), (0.5, 10.0), (1.0, 20.0), (float("inf"), 20.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.5)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.375)
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.95)
    assert histogram_quantile(0.5, [(1.0, 0.0), (float("inf"), 0.0)]) is None
    assert histogram_quantile(0.99, [(1.0, 1.0), (float("inf"), 5.0)]) == 1.0


def test_hours_roll_over_and_old_ones_are_forgotten() -> None:
    now = [datetime(2026, 12, 3, 23, 30, tzinfo=UTC)]
    counts = HourlyCounts(clock=lambda: now[0])
    counts.count("calls")
    now[0] += timedelta(hours=1)  # past midnight: a new day
    counts.count("calls")
    counts.count("tool_errors")
    assert counts.calls_today() == 1
    hours = counts.last_24_hours()
    assert [h["calls"] for h in hours[-2:]] == [1, 1] and hours[-1]["tool_errors"] == 1
    assert hours[-1]["hour"] == "2026-12-04T00:00:00Z"
    now[0] += timedelta(hours=60)
    counts.count("barge_ins")
    assert sum(h["calls"] for h in counts.last_24_hours()) == 0
    assert len(counts._hours) == 1
