"""The per-call tool runner: one task per call, timeouts, errors as responses, cancellation."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from datetime import date
from typing import Any

from gateway.call_events import CallObserver
from gateway.live.protocol import FunctionCall, FunctionResponse
from gateway.tools import Tool, ToolContext, ToolError, ToolRunner, ToolSet
from gateway.tools.python_tool import ToolInvoker

ANY_ARGS = {"type": "object", "properties": {"n": {"type": "integer"}}}


def tool(name: str, invoke: ToolInvoker, *, timeout_s: float = 5.0) -> Tool:
    return Tool(name, "python", {"name": name}, ANY_ARGS, timeout_s, invoke)


class Recorder(CallObserver):
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.results: list[tuple[str, str, dict[str, Any]]] = []
        self.responses: list[FunctionResponse] = []
        self.changed = asyncio.Event()

    def tool_call(self, call: FunctionCall) -> None:
        self.calls.append(call.id)

    def tool_result(self, response: FunctionResponse, duration_s: float, outcome: str) -> None:
        self.results.append((response.id, outcome, response.response))

    async def respond(self, response: FunctionResponse) -> None:
        self.responses.append(response)
        self.changed.set()

    async def wait(self, count: int) -> list[FunctionResponse]:
        while len(self.responses) < count:
            self.changed.clear()
            await self.changed.wait()
        return self.responses



def runner(*tools: Tool) -> tuple[ToolRunner, Recorder]:
    recorder = Recorder()
    context = ToolContext(call_sid="CA1", agent="test")
    tool_set = ToolSet({t.name: t for t in tools})
    return ToolRunner(tool_set, context, recorder.respond, events=recorder), recorder


async def returns(args: Mapping[str, Any], context: ToolContext) -> Any:
    return {"n": args.get("n"), "call": context.call_sid, "day": date(2026, 11, 25)}


async def test_results_are_wrapped_and_made_json_safe() -> None:
    run, rec = runner(tool("f", returns))
    run.start(FunctionCall("fc-1", "f", {"n": 3}))
    [response] = await rec.wait(1)
    assert response == FunctionResponse(
        "fc-1", "f", {"result": {"n": 3, "call": "CA1", "day": "2026-11-25"}}
    )
    assert rec.calls == ["fc-1"] and rec.results[0][1] == "ok"


async def test_every_failure_becomes_an_error_response_with_its_outcome() -> None:
    async def refuses(args: Mapping[str, Any], context: ToolContext) -> Any:
        raise ToolError("not your order")

    async def crashes(args: Mapping[str, Any], context: ToolContext) -> Any:
        raise KeyError("secret internals")

    async def hangs(args: Mapping[str, Any], context: ToolContext) -> Any:
        await asyncio.Event().wait()

    async def own_timeout(args: Mapping[str, Any], context: ToolContext) -> Any:
        raise TimeoutError

    async def not_json(args: Mapping[str, Any], context: ToolContext) -> Any:
        return math.nan

    run, rec = runner(
        tool("refuses", refuses),
        tool("crashes", crashes),
        tool("hangs", hangs, timeout_s=0.05),
        tool("own_timeout", own_timeout),
        tool("not_json", not_json),
        tool("f", returns),
    )
    for n, name in enumerate(["refuses", "crashes", "hangs", "own_timeout", "not_json", "zzz"]):
        run.start(FunctionCall(f"fc-{n}", name, {}))
    run.start(FunctionCall("fc-bad", "f", {"n": "three"}))
    await rec.wait(7)
    outcomes = {rid: (outcome, body) for rid, outcome, body in rec.results}
    assert outcomes == {
        "fc-0": ("error", {"error": "not your order"}),
        "fc-1": ("error", {"error": "the tool crashes failed"}),
        "fc-2": ("timeout", {"error": "the tool hangs did not answer within 0.05 s"}),
        "fc-3": ("error", {"error": "the tool timed out"}),
        "fc-4": ("error", {"error": "the tool not_json failed"}),
        "fc-5": ("error", {"error": "unknown tool 'zzz'"}),
        "fc-bad": (
            "error",
            {"error": "invalid arguments: n: expected integer, got string 'three'"},
        ),
    }
    assert {r.id: r.response for r in rec.responses} == {k: v[1] for k, v in outcomes.items()}


async def test_calls_run_concurrently_and_answer_as_they_finish() -> None:
    release = asyncio.Event()

    async def slow(args: Mapping[str, Any], context: ToolContext) -> Any:
        await release.wait()
        return "slow"

    async def fast(args: Mapping[str, Any], context: ToolContext) -> Any:
        return "fast"

    run, rec = runner(tool("slow", slow), tool("fast", fast))
    run.start(FunctionCall("fc-1", "slow", {}))
    run.start(FunctionCall("fc-2", "fast", {}))
    await rec.wait(1)
    release.set()
    await rec.wait(2)
    assert [r.id for r in rec.responses] == ["fc-2", "fc-1"]
    await run.wait_idle()
    assert run.pending == 0


async def test_cancellation_stops_the_named_calls_without_a_response() -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    async def waits(args: Mapping[str, Any], context: ToolContext) -> Any:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append("yes")
            raise

    run, rec = runner(tool("waits", waits), tool("f", returns))
    run.start(FunctionCall("fc-1", "waits", {}))
    await started.wait()
    assert run.cancel(["fc-1", "fc-unknown"]) == ["fc-1"]
    await run.wait_idle()
    assert cancelled == ["yes"]
    assert rec.responses == []
    assert rec.results == [("fc-1", "cancelled", {"error": "cancelled"})]
    run.start(FunctionCall("fc-2", "f", {"n": 1}))  # the runner goes on
    await rec.wait(1)


async def test_close_cancels_everything_and_refuses_new_calls() -> None:
    async def waits(args: Mapping[str, Any], context: ToolContext) -> Any:
        await asyncio.Event().wait()

    run, rec = runner(tool("waits", waits))
    run.start(FunctionCall("fc-1", "waits", {}))
    run.start(FunctionCall("fc-2", "waits", {}))
    await run.close()
    assert run.pending == 0
    assert sorted(outcome for _, outcome, _ in rec.results) == ["cancelled", "cancelled"]
    run.start(FunctionCall("fc-3", "waits", {}))
    assert run.pending == 0 and rec.calls == ["fc-1", "fc-2", "fc-3"]


async def test_a_response_that_cannot_be_sent_is_logged_not_raised() -> None:
    async def broken_respond(response: FunctionResponse) -> None:
        raise ConnectionError("live is gone")

    results: list[str] = []

    class Seen(CallObserver):
        def tool_result(self, response: FunctionResponse, duration_s: float, outcome: str) -> None:
            results.append(outcome)

    run = ToolRunner(
        ToolSet({"f": tool("f", returns)}),
        ToolContext(call_sid="CA1", agent="a"),
        broken_respond,
        events=Seen(),
    )
    run.start(FunctionCall("fc-1", "f", {}))
    await run.wait_idle()
    assert results == ["ok"]
