"""Live call state for the console: one observer per call feeds a hub; the hub feeds SSE clients.

The observer (`ConsoleCallObserver`) runs on the call's hot path like every `CallObserver`, so
it only updates a few fields and, when a console is watching, appends ready-made event bytes
to each client's bounded queue. With no client connected the per-frame hooks return after one
attribute test. Levels are measured at most `LEVELS_PER_S` times a second per call, on one
chunk each (the caller's latest audio sent to Live, the agent's latest audio from Live): no
per-frame work beyond the check of a clock.

A client whose queue is full (it reads slower than calls produce events) is dropped: its
stream ends and its browser reconnects; the calls never wait for it.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np

from gateway.call.bridge import Call
from gateway.call.hooks import CallObserver, CallView
from gateway.call.outcome import CallStats, EndReason
from gateway.live.protocol import FunctionCall, FunctionResponse, ServerMessage

__all__ = [
    "FLOOR_DBFS",
    "LEVELS_PER_S",
    "ConsoleCallObserver",
    "ConsoleHub",
    "LiveCallState",
    "SseClient",
    "dbfs",
]

LEVELS_PER_S: Final = 5
FLOOR_DBFS: Final = -90.0
"""The level reported for silence (and for an agent that has not spoken lately)."""
AGENT_LEVEL_HOLD_S: Final = 0.4
"""The agent's last measured level counts for this long after its audio arrived."""
MAX_CLIENT_EVENTS: Final = 2000
"""Events a console client may have waiting; one more and it is dropped."""
MAX_TRANSCRIPT_LINES: Final = 500
"""Lines of a live call's transcript kept (oldest dropped first)."""
MAX_LINE_CHARS: Final = 4000
HEARTBEAT_S: Final = 15.0
_FULL_SCALE_DB: Final = 20.0 * math.log10(32768.0)
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dbfs(pcm16le: bytes) -> float:
    """RMS level of PCM16LE audio in dBFS (FLOOR_DBFS for silence or nothing)."""
    count = len(pcm16le) // 2
    if count == 0:
        return FLOOR_DBFS
    samples = np.frombuffer(pcm16le, dtype="<i2", count=count).astype(np.float64)
    mean_square = float(np.dot(samples, samples)) / count
    if mean_square <= 0.0:
        return FLOOR_DBFS
    return max(FLOOR_DBFS, round(10.0 * math.log10(mean_square) - _FULL_SCALE_DB, 1))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


class SseClient:
    """One console's event stream: a bounded queue of encoded events."""

    def __init__(self, max_events: int = MAX_CLIENT_EVENTS) -> None:
        self.max_events = max_events
        self.events: deque[bytes] = deque()
        self.wakeup = asyncio.Event()
        self.dropped = False
        """Its stream ends: it fell behind (or the gateway is shutting down: `closed`)."""
        self.closed = False

    def push(self, event: bytes) -> bool:
        """Queue `event`; False when the client is (now) dropped."""
        if self.dropped:
            return False
        if len(self.events) >= self.max_events:
            self.dropped = True
            self.events.clear()
            self.wakeup.set()
            return False
        self.events.append(event)
        self.wakeup.set()
        return True

    def take(self) -> bytes:
        data = b"".join(self.events)
        self.events.clear()
        self.wakeup.clear()
        return data


def encode_sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {_JSON.encode(data)}\n\n".encode()


class LiveCallState:
    """What the console shows of one call in progress."""

    def __init__(self, call_id: str, view: CallView, carrier: str) -> None:
        start = view.start
        assert start is not None
        params = start.custom_parameters
        self.id = call_id
        self.view = view
        self.stream_sid = start.stream_sid
        self.call_sid = start.call_sid
        self.agent = getattr(view.agent, "name", None)
        self.carrier = carrier
        self.from_number = params.get("from") or None
        self.to_number = params.get("to") or None
        self.started_at = datetime.now(UTC)
        self.started_monotonic = time.monotonic()
        self.state = "listening"
        self.tools_running = 0
        self.lines: deque[dict[str, Any]] = deque(maxlen=MAX_TRANSCRIPT_LINES)
        self.lines_total = 0
        self.open_role: str | None = None
        """The role whose line the next fragment of that role continues (None: a new line)."""

    def t(self) -> float:
        return round(time.monotonic() - self.started_monotonic, 3)

    def last_line(self) -> dict[str, str] | None:
        if not self.lines:
            return None
        line = self.lines[-1]
        return {"role": line["role"], "text": line["text"]}

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "call_sid": self.call_sid,
            "stream_sid": self.stream_sid,
            "agent": self.agent,
            "carrier": self.carrier,
            "from": self.from_number,
            "to": self.to_number,
            "started_at": _iso(self.started_at),
            "duration_s": round(time.monotonic() - self.started_monotonic, 1),
            "state": self.state,
            "last_line": self.last_line(),
        }

    def add_fragment(self, role: str, fragment: str) -> dict[str, Any]:
        """A transcription fragment; returns the `transcript` event's data."""
        t = self.t()
        if self.open_role == role and self.lines and self.lines[-1]["role"] == role:
            line = self.lines[-1]
            if len(line["text"]) < MAX_LINE_CHARS:
                line["text"] = (line["text"] + fragment)[:MAX_LINE_CHARS]
        else:
            line = {"t": t, "role": role, "text": fragment[:MAX_LINE_CHARS]}
            self.lines.append(line)
            self.lines_total += 1
            self.open_role = role
        return {
            "id": self.id,
            "role": role,
            "text": fragment,
            "t": t,
            "line": self.lines_total - 1,
            "line_t": line["t"],
            "line_text": line["text"],
        }

    def transcript(self) -> list[dict[str, Any]]:
        return [dict(line) for line in self.lines]


class ConsoleHub:
    """Calls in progress (by console id) and the consoles watching them."""

    def __init__(self, *, max_client_events: int = MAX_CLIENT_EVENTS) -> None:
        self.calls: dict[str, LiveCallState] = {}
        self.clients: set[SseClient] = set()
        self.max_client_events = max_client_events
        self.heartbeat_s = HEARTBEAT_S
        self.clients_dropped = 0

    def observer(self, carrier: str) -> ConsoleCallObserver:
        return ConsoleCallObserver(self, carrier)

    # ------------------------------------------------------------------ calls

    def add(self, view: CallView, carrier: str) -> LiveCallState:
        start = view.start
        assert start is not None
        call_id = start.call_sid or start.stream_sid or "call"
        if call_id in self.calls:
            call_id = start.stream_sid or call_id
        base, n = call_id, 2
        while call_id in self.calls:
            call_id, n = f"{base}-{n}", n + 1
        state = LiveCallState(call_id, view, carrier)
        self.calls[call_id] = state
        return state

    def hang_up(self, call_id: str) -> bool:
        """End the call the way a drain does (`Call.hang_up`); False if no such call."""
        state = self.calls.get(call_id)
        if state is None or not isinstance(state.view, Call):
            return False
        state.view.hang_up(EndReason.OPERATOR_HUNG_UP)
        return True

    def live_calls(self) -> list[dict[str, Any]]:
        return [state.summary() for state in self.calls.values()]

    # ------------------------------------------------------------------ clients

    def subscribe(self) -> SseClient:
        """A new client; its queue starts with a `call_started` per call in progress."""
        client = SseClient(self.max_client_events)
        for state in self.calls.values():
            client.push(encode_sse("call_started", state.summary()))
        self.clients.add(client)
        return client

    def unsubscribe(self, client: SseClient) -> None:
        self.clients.discard(client)

    def publish(self, event: str, data: dict[str, Any]) -> None:
        clients = self.clients
        if not clients:
            return
        encoded = encode_sse(event, data)
        for client in tuple(clients):
            if not client.push(encoded):
                clients.discard(client)
                self.clients_dropped += 1

    def close(self) -> None:
        """Shutdown: every stream ends."""
        for client in tuple(self.clients):
            client.dropped = client.closed = True
            client.wakeup.set()
        self.clients.clear()


class ConsoleCallObserver(CallObserver):
    """Feeds the hub from one call (see the module docstring)."""

    def __init__(self, hub: ConsoleHub, carrier: str) -> None:
        self._hub = hub
        self._carrier = carrier
        self._state: LiveCallState | None = None
        self._next_levels = 0.0
        self._agent_db = FLOOR_DBFS
        self._agent_at = -math.inf

    def call_started(self, call: CallView) -> None:
        if call.start is None:
            return
        self._state = self._hub.add(call, self._carrier)
        self._hub.publish("call_started", self._state.summary())

    def _set(self, state_name: str) -> None:
        state = self._state
        if state is not None and state.state != state_name:
            state.state = state_name
            self._hub.publish("call_updated", state.summary())

    # ------------------------------------------------------------------ per frame

    def live_audio_out(self, pcm16le: bytes, rate_hz: int) -> None:
        if not self._hub.clients or self._state is None:
            return
        now = time.monotonic()
        if now < self._next_levels:
            return
        self._next_levels = now + 1.0 / LEVELS_PER_S
        agent_db = self._agent_db if now - self._agent_at <= AGENT_LEVEL_HOLD_S else FLOOR_DBFS
        self._hub.publish(
            "levels", {"id": self._state.id, "caller_db": dbfs(pcm16le), "agent_db": agent_db}
        )

    def live_in(self, message: ServerMessage) -> None:
        state = self._state
        if state is None:
            return
        if message.audio:
            if self._hub.clients:
                now = time.monotonic()
                if now - self._agent_at >= 1.0 / LEVELS_PER_S:
                    self._agent_db = dbfs(message.audio[-1])
                    self._agent_at = now
            if state.state == "listening":
                self._set("speaking")
        if message.output_transcription:
            self._hub.publish(
                "transcript", state.add_fragment("agent", message.output_transcription)
            )
        if message.input_transcription:
            self._hub.publish(
                "transcript", state.add_fragment("caller", message.input_transcription)
            )
        if message.interrupted or message.turn_complete:
            state.open_role = None
            self._agent_at = -math.inf
            if state.state == "speaking":
                self._set("listening")
        if message.go_away_time_left_s is not None:
            self._set("reconnecting")

    # ------------------------------------------------------------------ events

    def tool_call(self, call: FunctionCall) -> None:
        if self._state is not None:
            self._state.tools_running += 1
            self._set("tool")

    def tool_result(self, response: FunctionResponse, duration_s: float, outcome: str) -> None:
        state = self._state
        if state is not None:
            state.tools_running = max(0, state.tools_running - 1)
            if state.tools_running == 0 and state.state == "tool":
                self._set("listening")

    def live_reconnected(self, close_code: int | None) -> None:
        if self._state is not None and self._state.state == "reconnecting":
            self._set("listening")

    def call_ended(self, reason: EndReason, stats: CallStats) -> None:
        state = self._state
        if state is None:
            return
        self._state = None
        self._hub.calls.pop(state.id, None)
        self._hub.publish("call_ended", {**state.summary(), "end_reason": reason.value})
