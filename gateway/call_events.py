"""Hooks that see everything a call does, for recording and metrics.

Observers are called synchronously on the call's hot path: they must be cheap and must not
block (queue work elsewhere). An observer that raises is logged and switched off for that call;
the call itself never notices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from gateway.live.protocol import FunctionCall, FunctionResponse, ServerMessage

if TYPE_CHECKING:
    from gateway.call import Call, CallStats, EndReason

log = structlog.get_logger("gateway.call_events")


class CallObserver:
    """Base class: every hook is a no-op; override the ones you need."""

    def call_started(self, call: Call) -> None:
        """`start` arrived and the agent is chosen (call.start, call.agent are set)."""

    def carrier_in(self, frame: str | bytes) -> None:
        """A raw frame from the carrier (Twilio), before parsing; malformed ones included."""

    def carrier_out(self, frame: str) -> None:
        """A frame actually written to the carrier (dropped barge-in frames never appear)."""

    def live_out(self, message: Mapping[str, Any]) -> None:
        """A non-audio client message sent to Live (clientContent, toolResponse, text)."""

    def live_audio_out(self, pcm16le: bytes, rate_hz: int) -> None:
        """Caller audio sent to Live as `realtimeInput.audio`."""

    def live_in(self, message: ServerMessage) -> None:
        """A parsed message from Live."""

    def barge_in(self, frames_dropped: int) -> None:
        """Live said `interrupted`; queued frames were dropped and `clear` queued."""

    def tool_call(self, call: FunctionCall) -> None:
        """The model asked for a tool."""

    def tool_result(self, response: FunctionResponse, duration_s: float, outcome: str) -> None:
        """A tool finished: outcome is ok | error | timeout | cancelled."""

    def error(self, kind: str, detail: str) -> None:
        """Something went wrong that the call survived or ended on."""

    def live_closed(self, code: int | None) -> None:
        """Live ended the session or refused to open it: its WebSocket close code (None when
        no WebSocket was established). Not called when the gateway itself closes Live."""

    def live_reconnected(self, close_code: int | None) -> None:
        """The Live connection dropped with `close_code` and a new session took over the call."""

    def call_ended(self, reason: EndReason, stats: CallStats) -> None:
        """The call is over; both sides are closed."""


class ObserverSet(CallObserver):
    """Fans each hook out to several observers, isolating their failures."""

    def __init__(self, observers: Sequence[CallObserver] = ()) -> None:
        self._observers = list(observers)

    def __bool__(self) -> bool:
        return bool(self._observers)

    def _each(self, hook: str, *args: Any) -> None:
        for observer in list(self._observers):
            try:
                getattr(observer, hook)(*args)
            except Exception as exc:
                log.error(
                    "observer_failed", observer=type(observer).__name__, hook=hook,
                    error=repr(exc),
                )
                self._observers.remove(observer)

    def call_started(self, call: Call) -> None:
        self._each("call_started", call)

    def carrier_in(self, frame: str | bytes) -> None:
        self._each("carrier_in", frame)

    def carrier_out(self, frame: str) -> None:
        self._each("carrier_out", frame)

    def live_out(self, message: Mapping[str, Any]) -> None:
        self._each("live_out", message)

    def live_audio_out(self, pcm16le: bytes, rate_hz: int) -> None:
        self._each("live_audio_out", pcm16le, rate_hz)

    def live_in(self, message: ServerMessage) -> None:
        self._each("live_in", message)

    def barge_in(self, frames_dropped: int) -> None:
        self._each("barge_in", frames_dropped)

    def tool_call(self, call: FunctionCall) -> None:
        self._each("tool_call", call)

    def tool_result(self, response: FunctionResponse, duration_s: float, outcome: str) -> None:
        self._each("tool_result", response, duration_s, outcome)

    def error(self, kind: str, detail: str) -> None:
        self._each("error", kind, detail)

    def live_closed(self, code: int | None) -> None:
        self._each("live_closed", code)

    def live_reconnected(self, close_code: int | None) -> None:
        self._each("live_reconnected", close_code)

    def call_ended(self, reason: EndReason, stats: CallStats) -> None:
        self._each("call_ended", reason, stats)
