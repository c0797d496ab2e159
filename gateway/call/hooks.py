"""Hooks that see everything a call does, for recording and metrics.

Observers are called synchronously on the call's hot path: they must be cheap and must not
block (queue work elsewhere). An observer that raises is logged and switched off for that call;
the call itself never notices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from gateway.live.protocol import FunctionCall, FunctionResponse, ServerMessage, SessionConfig
from gateway.telephony.base import MediaFrame, StreamStart

if TYPE_CHECKING:
    from gateway.agents.config import AgentConfig
    from gateway.call.outcome import CallStats, EndReason

log = structlog.get_logger("gateway.call_events")


class CallView(Protocol):
    """What an observer may read of the call it watches (`gateway.call.bridge.Call` is one).

    A protocol, not the call itself, so this module sits below the call: the call imports its
    hooks, the hooks never import the call.
    """

    start: StreamStart | None
    agent: AgentConfig | None
    session: SessionConfig | None
    """The Live setup of the call (model, dialect), once it has started."""
    transcript: list[tuple[str, str]]
    """(role, text) lines so far."""


class CallObserver:
    """Base class: every hook is a no-op; override the ones you need."""

    def call_started(self, call: CallView) -> None:
        """`start` arrived and the agent is chosen (call.start, call.agent are set)."""

    def carrier_in(self, frame: str | bytes) -> None:
        """A raw frame from the carrier (Twilio), before parsing; malformed ones included."""

    def caller_media(self, frame: MediaFrame) -> None:
        """The media frame just passed to `carrier_in`, as the call parsed it (well-formed
        media only): observers that want the audio need not parse the frame again."""

    def carrier_out(self, frame: str | bytes) -> None:
        """A frame actually written to the carrier (dropped barge-in frames never appear)."""

    def agent_media(self, mulaw: bytes) -> None:
        """The audio of the media frame just passed to `carrier_out` (8 kHz μ-law, the bytes
        the call built it from): observers that want it need not decode the frame."""

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


_HOOKS = tuple(
    name for name, value in vars(CallObserver).items() if callable(value) and name[0] != "_"
)


def _implements(observer: CallObserver, hook: str) -> bool:
    """Whether `observer` does something on `hook` (the base class's hooks are no-ops)."""
    if hook in getattr(observer, "__dict__", ()):
        return True
    return getattr(type(observer), hook, None) is not getattr(CallObserver, hook)


class ObserverSet(CallObserver):
    """Fans each hook out to several observers, isolating their failures.

    Several hooks run per 20 ms frame, so each hook only visits the observers that implement
    it (worked out once, not per call), and the per-frame hooks (carrier_in/out,
    live_audio_out, live_in, caller_media, agent_media) loop over them directly.
    """

    def __init__(self, observers: Sequence[CallObserver] = ()) -> None:
        self._observers = list(observers)
        self._by_hook: dict[str, tuple[CallObserver, ...]] = {}
        self._index()

    def _index(self) -> None:
        self._by_hook = {
            hook: tuple(o for o in self._observers if _implements(o, hook)) for hook in _HOOKS
        }
        self._carrier_in = self._by_hook["carrier_in"]
        self._caller_media = self._by_hook["caller_media"]
        self._carrier_out = self._by_hook["carrier_out"]
        self._agent_media = self._by_hook["agent_media"]
        self._live_audio_out = self._by_hook["live_audio_out"]
        self._live_in = self._by_hook["live_in"]

    def _failed(self, observer: CallObserver, hook: str, exc: Exception) -> None:
        log.error("observer_failed", observer=type(observer).__name__, hook=hook, error=repr(exc))
        if observer in self._observers:
            self._observers.remove(observer)
            self._index()

    def __bool__(self) -> bool:
        return bool(self._observers)

    def _each(self, hook: str, *args: Any) -> None:
        for observer in self._by_hook[hook]:
            try:
                getattr(observer, hook)(*args)
            except Exception as exc:
                self._failed(observer, hook, exc)

    def call_started(self, call: CallView) -> None:
        self._each("call_started", call)

    def carrier_in(self, frame: str | bytes) -> None:
        for observer in self._carrier_in:
            try:
                observer.carrier_in(frame)
            except Exception as exc:
                self._failed(observer, "carrier_in", exc)

    def caller_media(self, frame: MediaFrame) -> None:
        for observer in self._caller_media:
            try:
                observer.caller_media(frame)
            except Exception as exc:
                self._failed(observer, "caller_media", exc)

    def carrier_out(self, frame: str | bytes) -> None:
        for observer in self._carrier_out:
            try:
                observer.carrier_out(frame)
            except Exception as exc:
                self._failed(observer, "carrier_out", exc)

    def agent_media(self, mulaw: bytes) -> None:
        for observer in self._agent_media:
            try:
                observer.agent_media(mulaw)
            except Exception as exc:
                self._failed(observer, "agent_media", exc)

    def live_out(self, message: Mapping[str, Any]) -> None:
        self._each("live_out", message)

    def live_audio_out(self, pcm16le: bytes, rate_hz: int) -> None:
        for observer in self._live_audio_out:
            try:
                observer.live_audio_out(pcm16le, rate_hz)
            except Exception as exc:
                self._failed(observer, "live_audio_out", exc)

    def live_in(self, message: ServerMessage) -> None:
        for observer in self._live_in:
            try:
                observer.live_in(message)
            except Exception as exc:
                self._failed(observer, "live_in", exc)

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
