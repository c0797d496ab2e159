"""The per-call tool runner: one task per call, timeouts, informative answers, scheduling and
cancellation."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from datetime import date
from typing import Any

import pytest

from gateway.call.hooks import CallObserver
from gateway.live.models import (
    FLASH_LIVE_31,
    LIVE_38,
    LIVE_38_EXTENDED_THINKING,
    NATIVE_AUDIO_25,
    ModelProfile,
    ToolBehavior,
    ToolScheduling,
)
from gateway.live.protocol import FunctionCall, FunctionResponse, build_tool_response
from gateway.tools import Tool, ToolContext, ToolError, ToolResult, ToolRunner, ToolSet
from gateway.tools.python_tool import ToolInvoker

ANY_ARGS = {"type": "object", "properties": {"n": {"type": "integer"}}}


def tool(
    name: str,
    invoke: ToolInvoker,
    *,
    timeout_s: float = 5.0,
    behavior: ToolBehavior | None = None,
    scheduling: ToolScheduling | None = None,
) -> Tool:
    return Tool(name, "python", {"name": name}, ANY_ARGS, timeout_s, invoke, behavior, scheduling)


def ok(name: str, result: Any) -> dict[str, Any]:
    message = f"The tool {name} succeeded; its answer is in result."
    return {"status": "ok", "retryable": False, "message": message, "result": result}


CANCELLED = {
    "status": "cancelled",
    "retryable": False,
    "message": "The call was cancelled before it finished; no answer was sent.",
    "error": "cancelled",
}


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


def runner(*tools: Tool, profile: ModelProfile = LIVE_38) -> tuple[ToolRunner, Recorder]:
    recorder = Recorder()
    context = ToolContext(call_sid="CA1", agent="test")
    tool_set = ToolSet({t.name: t for t in tools})
    run = ToolRunner(tool_set, context, recorder.respond, profile=profile, events=recorder)
    return run, recorder


async def returns(args: Mapping[str, Any], context: ToolContext) -> Any:
    return {"n": args.get("n"), "call": context.call_sid, "day": date(2026, 11, 25)}


async def test_results_are_wrapped_informatively_and_made_json_safe() -> None:
    run, rec = runner(tool("f", returns))
    run.start(FunctionCall("fc-1", "f", {"n": 3}))
    [response] = await rec.wait(1)
    assert response == FunctionResponse(
        "fc-1",
        "f",
        {
            "status": "ok",
            "retryable": False,
            "message": "The tool f succeeded; its answer is in result.",
            "result": {"n": 3, "call": "CA1", "day": "2026-11-25"},
        },
        ToolScheduling.WHEN_IDLE,  # gemini-3.8-live: non-blocking by default
    )
    assert rec.calls == ["fc-1"] and rec.results[0][1] == "ok"


async def test_empty_results_say_there_is_nothing_so_the_model_does_not_sweep() -> None:
    values: dict[str, Any] = {"none": None, "blank": "  ", "list": [], "object": {}}

    async def empty(args: Mapping[str, Any], context: ToolContext) -> Any:
        return values[context.call_sid]

    for key, value in values.items():
        recorder = Recorder()
        run = ToolRunner(
            ToolSet({"find": tool("find", empty)}),
            ToolContext(call_sid=key, agent="test"),
            recorder.respond,
        )
        run.start(FunctionCall("fc-1", "find", {}))
        [response] = await recorder.wait(1)
        assert response.response == {
            "status": "no_results",
            "retryable": False,
            "message": "The tool find returned nothing: there is no matching record. Calling "
            "it again with the same arguments will not help.",
            "result": value,
        }, key


async def test_a_tool_result_gives_its_own_message_and_status() -> None:
    async def done(args: Mapping[str, Any], context: ToolContext) -> Any:
        return ToolResult(None, message="The note was saved.", status="ok")

    async def explained(args: Mapping[str, Any], context: ToolContext) -> Any:
        return ToolResult({"slots": ["10:00"]}, message="Offer the caller 10:00.")

    async def nothing(args: Mapping[str, Any], context: ToolContext) -> Any:
        return ToolResult([], message="No appointments are free this week.")

    run, rec = runner(tool("done", done), tool("explained", explained), tool("nothing", nothing))
    for name in ("done", "explained", "nothing"):
        run.start(FunctionCall(name, name, {}))
    await rec.wait(3)
    assert {r.id: r.response for r in rec.responses} == {
        "done": {"status": "ok", "retryable": False, "message": "The note was saved.",
                 "result": None},
        "explained": {"status": "ok", "retryable": False, "message": "Offer the caller 10:00.",
                      "result": {"slots": ["10:00"]}},
        "nothing": {"status": "no_results", "retryable": False,
                    "message": "No appointments are free this week.", "result": []},
    }  # fmt: skip


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

    async def not_found(args: Mapping[str, Any], context: ToolContext) -> Any:
        raise ToolError("No order A9999 exists.", status="not_found")

    async def down(args: Mapping[str, Any], context: ToolContext) -> Any:
        raise ToolError("The stock service is down.", status="unavailable")

    async def down_for_good(args: Mapping[str, Any], context: ToolContext) -> Any:
        raise ToolError("", status="unavailable", retryable=False)

    run, rec = runner(
        tool("refuses", refuses),
        tool("crashes", crashes),
        tool("hangs", hangs, timeout_s=0.05),
        tool("own_timeout", own_timeout),
        tool("not_json", not_json),
        tool("not_found", not_found),
        tool("down", down),
        tool("down_for_good", down_for_good),
        tool("f", returns),
    )
    names = [
        "refuses", "crashes", "hangs", "own_timeout", "not_json", "zzz",
        "not_found", "down", "down_for_good",
    ]  # fmt: skip
    for n, name in enumerate(names):
        run.start(FunctionCall(f"fc-{n}", name, {}))
    run.start(FunctionCall("fc-bad", "f", {"n": "three"}))
    await rec.wait(10)
    outcomes = {rid: (outcome, body) for rid, outcome, body in rec.results}
    failed = (
        "failed because of an internal problem; trying again will not help. Tell the "
        "caller it cannot be done right now."
    )
    known = "refuses, crashes, hangs, own_timeout, not_json, not_found, down, down_for_good, f"
    assert outcomes == {
        "fc-0": ("error", {"status": "error", "retryable": False,
                           "message": "not your order", "error": "not your order"}),
        "fc-1": ("error", {"status": "error", "retryable": False,
                           "message": f"The tool crashes {failed}",
                           "error": "the tool crashes failed"}),
        "fc-2": ("timeout", {"status": "timeout", "retryable": True,
                             "message": "The tool hangs did not answer within 0.05 s; you may "
                             "try once more.",
                             "error": "the tool hangs did not answer within 0.05 s"}),
        "fc-3": ("error", {"status": "timeout", "retryable": True,
                           "message": "the tool timed out", "error": "the tool timed out"}),
        "fc-4": ("error", {"status": "error", "retryable": False,
                           "message": f"The tool not_json {failed}",
                           "error": "the tool not_json failed"}),
        "fc-5": ("error", {"status": "unknown_tool", "retryable": False,
                           "message": "There is no tool called 'zzz'; do not call it again. "
                           f"The tools you have: {known}.",
                           "error": "unknown tool 'zzz'"}),
        "fc-6": ("error", {"status": "not_found", "retryable": False,
                           "message": "No order A9999 exists.",
                           "error": "No order A9999 exists."}),
        "fc-7": ("error", {"status": "unavailable", "retryable": True,
                           "message": "The stock service is down.",
                           "error": "The stock service is down."}),
        "fc-8": ("error", {"status": "unavailable", "retryable": False,
                           "message": "The tool down_for_good failed.",
                           "error": "The tool down_for_good failed."}),
        "fc-bad": ("error", {"status": "invalid_argument", "retryable": False,
                             "message": "The arguments for f were not accepted (n: expected "
                             "integer, got string 'three'). Correct them, asking the caller "
                             "if needed, before calling it again.",
                             "error": "invalid arguments: n: expected integer, got string "
                             "'three'"}),
    }  # fmt: skip
    assert {r.id: r.response for r in rec.responses} == {k: v[1] for k, v in outcomes.items()}
    for body in (r.response for r in rec.responses):  # every answer is informative
        assert isinstance(body["retryable"], bool) and body["message"] and body["status"]


async def test_arguments_too_large_for_the_tool_are_answered_and_never_reach_it() -> None:
    """A 400-digit integer used to raise OverflowError in validation: no answer, ever."""
    ran: list[Mapping[str, Any]] = []

    async def records(args: Mapping[str, Any], context: ToolContext) -> Any:
        ran.append(args)
        return "ran"

    run, rec = runner(tool("f", records))
    calls = {"huge": {"n": 10**400}, "int64": {"n": 2**63}, "long": {"n": 1, "pad": "x" * 20_000}}
    for call_id, args in calls.items():
        run.start(FunctionCall(call_id, "f", args))
    await run.wait_idle()  # every call's task has ended, however it ended
    answers = {r.id: r.response for r in rec.responses}
    assert sorted(answers) == sorted(calls) and ran == []
    assert {a["status"] for a in answers.values()} == {"invalid_argument"}
    assert answers["int64"]["error"] == (
        "invalid arguments: n: 9223372036854775808 is out of range for a whole number "
        "(-9223372036854775808 to 9223372036854775807)"
    )
    assert answers["long"]["error"] == (
        "invalid arguments: arguments: 20016 bytes of JSON, at most 16384 are accepted"
    )
    assert all(len(a["message"]) < 400 for a in answers.values())


@pytest.mark.parametrize(
    ("profile", "behavior", "scheduling", "expected"),
    [
        (LIVE_38, None, None, ToolScheduling.WHEN_IDLE),
        (LIVE_38, None, ToolScheduling.INTERRUPT, ToolScheduling.INTERRUPT),
        (LIVE_38, ToolBehavior.NON_BLOCKING, ToolScheduling.SILENT, ToolScheduling.SILENT),
        (LIVE_38, ToolBehavior.BLOCKING, None, None),
        (LIVE_38, ToolBehavior.BLOCKING, ToolScheduling.SILENT, None),
        (LIVE_38_EXTENDED_THINKING, None, None, ToolScheduling.WHEN_IDLE),
        (NATIVE_AUDIO_25, None, None, None),  # blocking by default
        (NATIVE_AUDIO_25, ToolBehavior.NON_BLOCKING, None, ToolScheduling.WHEN_IDLE),
        (NATIVE_AUDIO_25, ToolBehavior.NON_BLOCKING, ToolScheduling.INTERRUPT,
         ToolScheduling.INTERRUPT),
        (FLASH_LIVE_31, None, None, None),  # synchronous calls only
        (FLASH_LIVE_31, None, ToolScheduling.SILENT, None),
    ],
)  # fmt: skip
async def test_non_blocking_answers_carry_a_scheduling_blocking_ones_none(
    profile: ModelProfile,
    behavior: ToolBehavior | None,
    scheduling: ToolScheduling | None,
    expected: ToolScheduling | None,
) -> None:
    run, rec = runner(tool("f", returns, behavior=behavior, scheduling=scheduling), profile=profile)
    run.start(FunctionCall("fc-1", "f", {"n": 1}))
    run.start(FunctionCall("fc-2", "nope", {}))  # unknown: the model's default behaviour
    await rec.wait(2)
    by_id = {r.id: r for r in rec.responses}
    assert by_id["fc-1"].scheduling is expected
    wire = build_tool_response([by_id["fc-1"]])["toolResponse"]["functionResponses"][0]
    if expected is None:
        assert "scheduling" not in wire
    else:
        assert wire["scheduling"] == expected.value.upper()  # explicit, even for WHEN_IDLE
    default = profile.tool_behavior(None) is ToolBehavior.NON_BLOCKING
    assert by_id["fc-2"].scheduling is (ToolScheduling.WHEN_IDLE if default else None)


async def test_the_runner_defaults_to_the_newest_model() -> None:
    recorder = Recorder()
    run = ToolRunner(ToolSet(), ToolContext(call_sid="CA1", agent="a"), recorder.respond)
    assert run.profile is LIVE_38


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
    assert run.pending == 2 and rec.responses == []  # start() never waits for a tool
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
    assert rec.results == [("fc-1", "cancelled", CANCELLED)]
    run.start(FunctionCall("fc-2", "f", {"n": 1}))  # the runner goes on
    await rec.wait(1)


async def test_a_cancelled_call_is_never_answered_even_if_the_tool_finishes_anyway() -> None:
    started = asyncio.Event()

    async def stubborn(args: Mapping[str, Any], context: ToolContext) -> Any:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return {"done": "anyway"}  # ignores its cancellation and answers

    async def stubborn_error(args: Mapping[str, Any], context: ToolContext) -> Any:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise ToolError("interrupted") from None

    run, rec = runner(
        tool("stubborn", stubborn, behavior=ToolBehavior.BLOCKING),
        tool("stubborn_error", stubborn_error),
        tool("f", returns),
    )
    run.start(FunctionCall("fc-1", "stubborn", {}))
    run.start(FunctionCall("fc-2", "stubborn_error", {}))
    await started.wait()
    assert run.cancel(["fc-1", "fc-2"]) == ["fc-1", "fc-2"]
    await run.wait_idle()
    assert rec.responses == []
    assert sorted(rec.results) == [
        ("fc-1", "cancelled", CANCELLED),
        ("fc-2", "cancelled", CANCELLED),
    ]
    run.start(FunctionCall("fc-1", "f", {"n": 2}))  # the same id again later is answered
    [response] = await rec.wait(1)
    assert response.response == ok("f", {"n": 2, "call": "CA1", "day": "2026-11-25"})


async def test_a_call_cancelled_in_the_step_its_tool_finished_is_not_answered() -> None:
    release = asyncio.Event()
    started = asyncio.Event()

    async def waits(args: Mapping[str, Any], context: ToolContext) -> Any:
        started.set()
        await release.wait()
        return "finished"

    run, rec = runner(tool("waits", waits, behavior=ToolBehavior.BLOCKING))
    run.start(FunctionCall("fc-1", "waits", {}))
    await started.wait()
    release.set()  # the tool's answer is ready ...
    assert run.cancel(["fc-1"]) == ["fc-1"]  # ... and Live cancels it before the task runs
    await run.wait_idle()
    assert rec.responses == []
    assert rec.results == [("fc-1", "cancelled", CANCELLED)]


async def test_an_answer_already_on_its_way_is_not_cancelled() -> None:
    sending = asyncio.Event()
    sent = asyncio.Event()
    delivered: list[FunctionResponse] = []

    async def slow_respond(response: FunctionResponse) -> None:
        sending.set()
        await sent.wait()
        delivered.append(response)

    recorder = Recorder()
    run = ToolRunner(
        ToolSet({"f": tool("f", returns)}),
        ToolContext(call_sid="CA1", agent="a"),
        slow_respond,
        events=recorder,
    )
    run.start(FunctionCall("fc-1", "f", {"n": 1}))
    await sending.wait()
    assert run.cancel(["fc-1"]) == []  # too late: the answer is being sent
    sent.set()
    await run.wait_idle()
    assert [r.id for r in delivered] == ["fc-1"]
    assert [(rid, outcome) for rid, outcome, _ in recorder.results] == [("fc-1", "ok")]


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
