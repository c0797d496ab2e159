"""One call's tool calls: each runs as its own task, bounded by its tool's timeout.

Running. `start` returns at once: the Live pump never waits for a tool, and nothing here waits
for a turn boundary, so the model keeps talking while a NON_BLOCKING call runs (the default on
gemini-3.8-live). A call's behaviour is `profile.tool_behavior(tool.behavior)`: the agent's
choice, else the model's default. The answer to a NON_BLOCKING call carries a `scheduling` on
models that take one (`ModelProfile.response_scheduling`): the tool's, else WHEN_IDLE, always
explicit on the wire; BLOCKING calls get none. `toolCallCancellation` (new caller input while
a BLOCKING call runs, or a barge-in) cancels the named calls: their answer is never sent, even
when the tool finished in the same event-loop step or ignored its cancellation, and observers
see the outcome `cancelled`. An answer already being sent can no longer be cancelled. Closing
the runner (the call ended) cancels whatever is still running.

Answers. Whatever happens, the model gets an informative answer and the call goes on (Gemini
3.8 Live re-queries a tool 2–5 times when its answer is empty or uninformative). Every
`response` object has a `status`, `retryable` (may the same call, tried again, work?) and a
plain-language `message` for the model, then `result` (successes) or `error` (failures; the
short technical reason, which metrics and recordings look for):

    {"status": "ok", "retryable": false, "message": "…", "result": <what the tool returned>}
    {"status": "no_results", "retryable": false, "message": "The tool f returned nothing: there
     is no matching record. …", "result": null}            (None, "", [] or {} was returned)
    {"status": "unknown_tool", "retryable": false, "message": "…", "error": "unknown tool 'x'"}
    {"status": "invalid_argument", "retryable": false, "message": "… which argument …",
     "error": "invalid arguments: n: expected integer, got string 'three'"}
                          (also over the size limits of gateway.tools.schema: the tool never runs)
    {"status": "timeout", "retryable": true, "message": "The tool f did not answer within 5 s;
     you may try once more.", "error": "the tool f did not answer within 5 s"}
    {"status": "error", "retryable": false, "message": "…", "error": "the tool f failed"}
                                                                (any other exception)
    {"status": <ToolError.status>, "retryable": <ToolError.retryable>, "message": <its message>,
     "error": <its message>}                                   (a tool raised ToolError)

A tool may return `ToolResult(value, message=…)` to say what the model should make of its
result. HTTP tools map connection failures and 5xx replies to "unavailable" (retryable) and
4xx to "error" (gateway.tools.http_tool). A cancelled call sends nothing; observers get
`{"status": "cancelled", "retryable": false, "message": "…", "error": "cancelled"}`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import structlog

from gateway.live.models import NEWEST_PROFILE, ModelProfile, ToolBehavior, ToolScheduling
from gateway.live.protocol import FunctionCall, FunctionResponse
from gateway.tools.context import ToolContext, ToolError, ToolResult, ToolStatus
from gateway.tools.registry import Tool, ToolSet
from gateway.tools.schema import SchemaError, validate_args

__all__ = [
    "NoToolEvents",
    "Outcome",
    "ToolEvents",
    "ToolRunner",
    "answer_scheduling",
    "is_empty",
    "json_safe",
]

Respond = Callable[[FunctionResponse], Awaitable[None]]


class ToolEvents(Protocol):
    """What the runner reports about tool calls: the two tool hooks of a call's observers.

    `gateway.call.hooks.CallObserver` (and its `ObserverSet`) satisfies it; declaring only
    these two hooks here keeps the tools package below the call, with no import back up.
    """

    def tool_call(self, call: FunctionCall) -> None: ...

    def tool_result(self, response: FunctionResponse, duration_s: float, outcome: str) -> None: ...


class NoToolEvents:
    """Reports to no one (a runner without observers)."""

    def tool_call(self, call: FunctionCall) -> None:
        pass

    def tool_result(self, response: FunctionResponse, duration_s: float, outcome: str) -> None:
        pass


class Outcome:
    """The `outcome` values passed to `ToolEvents.tool_result`."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


def json_safe(value: Any) -> Any:
    """`value` as plain JSON types; dates, decimals and the like become strings."""
    return json.loads(json.dumps(value, default=str, ensure_ascii=False, allow_nan=False))


def is_empty(value: Any) -> bool:
    """A result that says nothing: None, a blank string, an empty list or object."""
    if isinstance(value, str):
        return not value.strip()
    return value is None or value == [] or value == {}


def answer_scheduling(profile: ModelProfile, tool: Tool | None) -> ToolScheduling | None:
    """The `scheduling` of the answer to a call of `tool` on `profile`'s model."""
    behavior = profile.tool_behavior(tool.behavior if tool is not None else None)
    if behavior is not ToolBehavior.NON_BLOCKING or not profile.response_scheduling:
        return None
    if tool is not None and tool.scheduling is not None:
        return tool.scheduling
    return ToolScheduling.WHEN_IDLE


MAX_LOGGED_ARGS_CHARS = 1000
"""Arguments longer than this (as JSON) are logged clipped: the model may send 16 KiB."""


def _loggable_args(args: Any) -> Any:
    try:
        text = json.dumps(args, default=str, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return "<not JSON>"
    if len(text) <= MAX_LOGGED_ARGS_CHARS:
        return args
    return f"{text[:MAX_LOGGED_ARGS_CHARS]}… ({len(text)} chars)"


def _answer(status: str, retryable: bool, message: str, **rest: Any) -> dict[str, Any]:
    return {"status": status, "retryable": retryable, "message": message, **rest}


def _cancelled_answer() -> dict[str, Any]:
    return _answer(
        ToolStatus.CANCELLED,
        False,
        "The call was cancelled before it finished; no answer was sent.",
        error="cancelled",
    )


class ToolRunner:
    """Runs the tool calls of one call; `respond` sends one `FunctionResponse` to Live.

    `profile` is the model's (`gateway.live.models.profile_for(model)`): it decides each
    call's behaviour and so whether its answer carries a `scheduling`.
    """

    def __init__(
        self,
        tools: ToolSet,
        context: ToolContext,
        respond: Respond,
        *,
        profile: ModelProfile = NEWEST_PROFILE,
        events: ToolEvents | None = None,
        log: Any = None,
    ) -> None:
        self._tools = tools
        self._context = context
        self._respond = respond
        self._profile = profile
        self._events: ToolEvents = events if events is not None else NoToolEvents()
        self._log = log or structlog.get_logger("gateway.tools")
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._reported: set[asyncio.Task[Any]] = set()
        """Tasks that reported their own outcome (so the done-callback does not repeat it)."""
        self._cancelled: set[str] = set()
        """Calls Live cancelled: whatever they come up with is dropped, never sent."""
        self._sending: set[str] = set()
        """Calls whose answer is on its way to Live: too late to cancel."""
        self._closed = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def profile(self) -> ModelProfile:
        return self._profile

    @property
    def pending(self) -> int:
        """Tool calls still running."""
        return len(self._tasks)

    def start(self, call: FunctionCall) -> None:
        """Run `call` in its own task (returns at once: the caller never waits for a tool)."""
        self._events.tool_call(call)
        if self._closed:
            return
        task_id = call.id or f"anonymous-{id(call)}"
        task = asyncio.create_task(self._run(call, task_id), name=f"tool-{call.name}-{task_id}")
        self._tasks[task_id] = task
        self._idle.clear()
        task.add_done_callback(lambda _: self._forget(task_id, task, call))

    def cancel(self, ids: Iterable[str]) -> list[str]:
        """Cancel the named tool calls (`toolCallCancellation`); returns those cancelled.

        A cancelled call's answer is never sent. Calls already answered (or being answered)
        are not cancelled.
        """
        cancelled = []
        for call_id in ids:
            task = self._tasks.get(call_id)
            if task is None or task.done() or call_id in self._sending:
                continue
            self._cancelled.add(call_id)
            task.cancel()
            cancelled.append(call_id)
        if cancelled:
            self._log.info("tool_calls_cancelled", tool_call_ids=cancelled)
        return cancelled

    def _context_for(self, tool: Tool) -> ToolContext:
        """The call's context with this tool's own `context:` values (fixed by the agent)."""
        if not tool.context:
            return self._context
        return dataclasses.replace(self._context, values=tool.context)

    async def wait_idle(self) -> None:
        """Until no tool call is running."""
        await self._idle.wait()

    async def close(self) -> None:
        """Cancel every running tool call and wait for the tasks to finish."""
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _forget(self, task_id: str, task: asyncio.Task[None], call: FunctionCall) -> None:
        if self._tasks.get(task_id) is task:
            del self._tasks[task_id]
            self._cancelled.discard(task_id)
        if task.cancelled() and task not in self._reported:
            # Cancelled before it ever ran: observers still see how it ended.
            response = FunctionResponse(call.id, call.name, _cancelled_answer())
            self._events.tool_result(response, 0.0, Outcome.CANCELLED)
        self._reported.discard(task)
        if not self._tasks:
            self._idle.set()

    def _report(self, response: FunctionResponse, duration_s: float, outcome: str) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._reported.add(task)
        self._events.tool_result(response, duration_s, outcome)

    def _report_cancelled(self, call: FunctionCall, started: float, log: Any) -> None:
        duration_s = time.monotonic() - started
        log.info("tool_call_cancelled", duration_ms=round(duration_s * 1000, 1))
        response = FunctionResponse(call.id, call.name, _cancelled_answer())
        self._report(response, duration_s, Outcome.CANCELLED)

    async def _run(self, call: FunctionCall, task_id: str) -> None:
        started = time.monotonic()
        tool = self._tools.get(call.name)
        behavior = self._profile.tool_behavior(tool.behavior if tool is not None else None)
        log = self._log.bind(tool=call.name, tool_call_id=call.id)
        log.info("tool_call_started", kind=tool.kind if tool else None, behavior=behavior.value)
        log.debug("tool_call_args", args=_loggable_args(call.args))
        try:
            outcome, body = await self._answer(call, tool, log)
        except asyncio.CancelledError:
            self._report_cancelled(call, started, log)
            raise
        if task_id in self._cancelled or self._closed:
            # Live cancelled the call as it finished (or the tool ignored the cancellation),
            # or the call is over: nobody may hear an answer to a call given up on.
            self._report_cancelled(call, started, log)
            return
        duration_s = time.monotonic() - started
        response = FunctionResponse(
            call.id, call.name, body, answer_scheduling(self._profile, tool)
        )
        level = log.info if outcome == Outcome.OK else log.warning
        level(
            "tool_call_finished",
            outcome=outcome,
            status=body["status"],
            duration_ms=round(duration_s * 1000, 1),
            error=body.get("error"),
        )
        self._report(response, duration_s, outcome)
        self._sending.add(task_id)
        try:
            await self._respond(response)
        except Exception as exc:
            log.warning("tool_response_not_sent", error=str(exc) or repr(exc))
        finally:
            self._sending.discard(task_id)

    async def _answer(
        self, call: FunctionCall, tool: Tool | None, log: Any
    ) -> tuple[str, dict[str, Any]]:
        """(outcome, response object) for `call`; raises only CancelledError."""
        name = call.name
        if tool is None:
            known = ", ".join(t.name for t in self._tools) or "none"
            return Outcome.ERROR, _answer(
                ToolStatus.UNKNOWN_TOOL,
                False,
                f"There is no tool called {name!r}; do not call it again. "
                f"The tools you have: {known}.",
                error=f"unknown tool {name!r}",
            )
        try:
            validate_args(tool.parameters, call.args)
        except SchemaError as exc:
            return Outcome.ERROR, _answer(
                ToolStatus.INVALID_ARGUMENT,
                False,
                f"The arguments for {name} were not accepted ({exc}). Correct them, asking "
                "the caller if needed, before calling it again.",
                error=f"invalid arguments: {exc}",
            )
        try:
            async with asyncio.timeout(tool.timeout_s) as deadline:
                try:
                    value = await tool.invoke(call.args, self._context_for(tool))
                except TimeoutError:
                    if deadline.expired():
                        raise
                    raise ToolError("the tool timed out", status=ToolStatus.TIMEOUT) from None
            return Outcome.OK, _success(name, value)
        except TimeoutError:
            after = f"did not answer within {tool.timeout_s:g} s"
            return Outcome.TIMEOUT, _answer(
                ToolStatus.TIMEOUT,
                True,
                f"The tool {name} {after}; you may try once more.",
                error=f"the tool {name} {after}",
            )
        except ToolError as exc:
            message = str(exc) or f"The tool {name} failed."
            return Outcome.ERROR, _answer(exc.status, exc.retryable, message, error=message)
        except Exception as exc:
            log.error("tool_call_failed", error=repr(exc), exc_info=exc)
            return Outcome.ERROR, _answer(
                ToolStatus.ERROR,
                False,
                f"The tool {name} failed because of an internal problem; trying again will "
                "not help. Tell the caller it cannot be done right now.",
                error=f"the tool {name} failed",
            )


def _success(name: str, value: Any) -> dict[str, Any]:
    """The answer to a call that returned `value` (a `ToolResult` or a plain value)."""
    given = value if isinstance(value, ToolResult) else ToolResult(value)
    result = json_safe(given.result)
    status = given.status or (ToolStatus.NO_RESULTS if is_empty(result) else ToolStatus.OK)
    message = given.message
    if not message:
        if status == ToolStatus.NO_RESULTS:
            message = (
                f"The tool {name} returned nothing: there is no matching record. Calling it "
                "again with the same arguments will not help."
            )
        else:
            message = f"The tool {name} succeeded; its answer is in result."
    return _answer(status, False, str(message), result=result)
