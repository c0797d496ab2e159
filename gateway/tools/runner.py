"""One call's tool calls: each runs as its own task, bounded by its tool's timeout.

The model keeps talking while a tool runs, so tool calls never block the Live pump. Whatever
happens — unknown tool, bad arguments, exception, timeout — the model gets a `response`
(`{"result": …}` or `{"error": …}`) and the call goes on. `toolCallCancellation` (the caller
talked over the model) cancels the named tasks; they get no response, as the protocol wants.
Closing the runner (the call ended) cancels whatever is still running.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog

from gateway.call_events import CallObserver
from gateway.live.protocol import FunctionCall, FunctionResponse
from gateway.tools.context import ToolContext, ToolError
from gateway.tools.registry import ToolSet
from gateway.tools.schema import SchemaError, validate_args

__all__ = ["Outcome", "ToolRunner", "json_safe"]

Respond = Callable[[FunctionResponse], Awaitable[None]]


class Outcome:
    """The `outcome` values passed to `CallObserver.tool_result`."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


def json_safe(value: Any) -> Any:
    """`value` as plain JSON types; dates, decimals and the like become strings."""
    return json.loads(json.dumps(value, default=str, ensure_ascii=False, allow_nan=False))


class ToolRunner:
    """Runs the tool calls of one call; `respond` sends one `FunctionResponse` to Live."""

    def __init__(
        self,
        tools: ToolSet,
        context: ToolContext,
        respond: Respond,
        *,
        events: CallObserver | None = None,
        log: Any = None,
    ) -> None:
        self._tools = tools
        self._context = context
        self._respond = respond
        self._events = events or CallObserver()
        self._log = log or structlog.get_logger("gateway.tools")
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._reported: set[asyncio.Task[Any]] = set()
        """Tasks that reported their own outcome (so the done-callback does not repeat it)."""
        self._closed = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def pending(self) -> int:
        """Tool calls still running."""
        return len(self._tasks)

    def start(self, call: FunctionCall) -> None:
        """Run `call` in its own task (returns at once)."""
        self._events.tool_call(call)
        if self._closed:
            return
        task_id = call.id or f"anonymous-{id(call)}"
        task = asyncio.create_task(self._run(call), name=f"tool-{call.name}-{task_id}")
        self._tasks[task_id] = task
        self._idle.clear()
        task.add_done_callback(lambda _: self._forget(task_id, task, call))

    def cancel(self, ids: Iterable[str]) -> list[str]:
        """Cancel the named tool calls (`toolCallCancellation`); returns those still running."""
        cancelled = []
        for call_id in ids:
            task = self._tasks.get(call_id)
            if task is not None and not task.done():
                task.cancel()
                cancelled.append(call_id)
        if cancelled:
            self._log.info("tool_calls_cancelled", tool_call_ids=cancelled)
        return cancelled

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
        if task.cancelled() and task not in self._reported:
            # Cancelled before it ever ran: observers still see how it ended.
            response = FunctionResponse(call.id, call.name, {"error": "cancelled"})
            self._events.tool_result(response, 0.0, Outcome.CANCELLED)
        self._reported.discard(task)
        if not self._tasks:
            self._idle.set()

    def _report(self, response: FunctionResponse, duration_s: float, outcome: str) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._reported.add(task)
        self._events.tool_result(response, duration_s, outcome)

    async def _run(self, call: FunctionCall) -> None:
        started = time.monotonic()
        tool = self._tools.get(call.name)
        log = self._log.bind(tool=call.name, tool_call_id=call.id)
        log.info("tool_call_started", kind=tool.kind if tool else None)
        log.debug("tool_call_args", args=call.args)
        outcome = Outcome.OK
        body: dict[str, Any]
        try:
            if tool is None:
                outcome, body = Outcome.ERROR, {"error": f"unknown tool {call.name!r}"}
            else:
                validate_args(tool.parameters, call.args)
                async with asyncio.timeout(tool.timeout_s) as deadline:
                    try:
                        result = await tool.invoke(call.args, self._context)
                    except TimeoutError:
                        if deadline.expired():
                            raise
                        raise ToolError("the tool timed out") from None
                body = {"result": json_safe(result)}
        except asyncio.CancelledError:
            duration_s = time.monotonic() - started
            log.info("tool_call_cancelled", duration_ms=round(duration_s * 1000, 1))
            response = FunctionResponse(call.id, call.name, {"error": "cancelled"})
            self._report(response, duration_s, Outcome.CANCELLED)
            raise
        except SchemaError as exc:
            outcome, body = Outcome.ERROR, {"error": f"invalid arguments: {exc}"}
        except TimeoutError:
            assert tool is not None
            outcome = Outcome.TIMEOUT
            body = {"error": f"the tool {call.name} did not answer within {tool.timeout_s:g} s"}
        except ToolError as exc:
            outcome, body = Outcome.ERROR, {"error": str(exc) or "the tool failed"}
        except Exception as exc:
            log.error("tool_call_failed", error=repr(exc), exc_info=exc)
            outcome, body = Outcome.ERROR, {"error": f"the tool {call.name} failed"}
        duration_s = time.monotonic() - started
        response = FunctionResponse(call.id, call.name, body)
        level = log.info if outcome == Outcome.OK else log.warning
        level(
            "tool_call_finished",
            outcome=outcome,
            duration_ms=round(duration_s * 1000, 1),
            error=body.get("error"),
        )
        self._report(response, duration_s, outcome)
        try:
            await self._respond(response)
        except Exception as exc:
            log.warning("tool_response_not_sent", error=str(exc) or repr(exc))
