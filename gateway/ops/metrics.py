"""Prometheus metrics: one registry per app, one `CallMetrics` observer per call, `GET /metrics`.

Each app owns its `CollectorRegistry` (not the process-global one), so many apps in one
process (tests) never collide. Observers run on the call's hot path: every hook is a counter
bump or, for caller audio, one RMS over the chunk.

Reply latency is measured per agent turn that follows caller speech: from the moment the
gateway sent Live the caller's *last speech frame* (the last caller audio chunk whose RMS is at
or above `SPEECH_THRESHOLD_DBFS`) to the moment the gateway received the *first audio* of the
agent's next turn. It therefore includes Live's end-of-speech detection (its silence window)
and the model's time to first audio; the gateway's own μ-law conversion and socket write that
follow add microseconds. Turns not preceded by caller speech (a greeting) are not counted.

Outbound calls (`POST /calls`): `gateway_outbound_calls_placed_total{carrier}` counts calls the
carrier accepted; `gateway_outbound_calls_total{state}` counts each call once, when it ends, by
its final state (completed, busy, no-answer, failed, canceled, voicemail) — a call the carrier
refused to place counts as `failed` there and is not counted as placed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

import numpy as np
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from gateway.call.hooks import CallObserver
from gateway.call.outcome import CallStats, EndReason
from gateway.live.protocol import FunctionResponse, ServerMessage

__all__ = [
    "DROP_AUDIO_RATE_LIMITED",
    "DROP_BARGE_IN",
    "DROP_CALLER_BUFFER_FULL",
    "DROP_MALFORMED",
    "DROP_RATE_LIMITED",
    "METRICS",
    "METRICS_PATH",
    "OUTBOUND_FINAL_STATES",
    "SPEECH_THRESHOLD_DBFS",
    "CallMetrics",
    "GatewayMetrics",
    "add_metrics",
    "handle_metrics",
]

METRICS_PATH: Final = "/metrics"
SPEECH_THRESHOLD_DBFS: Final = -40.0
"""Caller audio at or above this RMS level counts as speech (the emulator's VAD threshold)."""
_FULL_SCALE: Final = 32768.0
_SPEECH_THRESHOLD_SQUARED: Final = (_FULL_SCALE * 10.0 ** (SPEECH_THRESHOLD_DBFS / 20.0)) ** 2

CALL_DURATION_BUCKETS_S: Final = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0)
REPLY_LATENCY_BUCKETS_S: Final = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
TOOL_DURATION_BUCKETS_S: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

DROP_BARGE_IN: Final = "barge_in"
"""Agent frames queued for the caller and dropped because the caller talked over them."""
DROP_MALFORMED: Final = "malformed"
"""Carrier frames that broke the media-stream protocol."""
DROP_CALLER_BUFFER_FULL: Final = "caller_buffer_full"
"""Caller frames dropped because Live took too long to connect (buffer overflow)."""
DROP_RATE_LIMITED: Final = "rate_limited"
"""Carrier frames over the per-call rate limit (MAX_CARRIER_FRAMES_PER_S), dropped unread."""
DROP_AUDIO_RATE_LIMITED: Final = "audio_rate_limited"
"""Caller frames whose audio ran ahead of real time past the burst, dropped before Live
(security.AudioBudget)."""
OUTBOUND_FINAL_STATES: Final = (
    "completed", "busy", "no-answer", "failed", "canceled", "voicemail",
)  # fmt: skip
"""The `state` labels of gateway_outbound_calls_total (gateway.outbound.states.FINAL_STATES)."""


class GatewayMetrics:
    """Every metric of one gateway app, registered in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.active_calls = Gauge(
            "gateway_active_calls", "Calls in progress on this process.", registry=registry
        )
        self.calls = Counter(
            "gateway_calls", "Calls ended, by outcome (why they ended).", ["outcome"],
            registry=registry,
        )
        self.call_duration = Histogram(
            "gateway_call_duration_seconds", "Call duration, from the stream's start to its end.",
            buckets=CALL_DURATION_BUCKETS_S, registry=registry,
        )
        self.reply_latency = Histogram(
            "gateway_reply_latency_seconds",
            "Caller's last speech frame sent to Live → first agent audio of the next turn.",
            buckets=REPLY_LATENCY_BUCKETS_S, registry=registry,
        )
        self.barge_ins = Counter(
            "gateway_barge_ins", "Times the caller talked over the agent.", registry=registry
        )
        self.tool_calls = Counter(
            "gateway_tool_calls", "Tool calls finished, by tool and outcome.",
            ["tool", "outcome"], registry=registry,
        )
        self.tool_duration = Histogram(
            "gateway_tool_call_duration_seconds", "Tool call duration, by tool.", ["tool"],
            buckets=TOOL_DURATION_BUCKETS_S, registry=registry,
        )
        self.live_reconnects = Counter(
            "gateway_live_reconnects", "Live sessions that dropped and were resumed mid-call.",
            registry=registry,
        )
        self.live_closes = Counter(
            "gateway_live_closes",
            "Live sessions ended by Live (or refused), by WebSocket close code ('none' when no "
            "WebSocket was established).",
            ["code"], registry=registry,
        )
        self.frames_dropped = Counter(
            "gateway_frames_dropped", "Media frames dropped, by reason.", ["reason"],
            registry=registry,
        )
        self.outbound_calls = Counter(
            "gateway_outbound_calls",
            "Outbound calls ended, by final state (each call once).", ["state"],
            registry=registry,
        )
        self.outbound_calls_placed = Counter(
            "gateway_outbound_calls_placed",
            "Outbound calls the carrier accepted to place, by carrier.", ["carrier"],
            registry=registry,
        )
        for state in OUTBOUND_FINAL_STATES:
            self.outbound_calls.labels(state=state)
        for reason in EndReason:
            self.calls.labels(outcome=reason.value)
        for drop in (
            DROP_BARGE_IN,
            DROP_MALFORMED,
            DROP_CALLER_BUFFER_FULL,
            DROP_RATE_LIMITED,
            DROP_AUDIO_RATE_LIMITED,
        ):
            self.frames_dropped.labels(reason=drop)

    def observer(self, clock: Callable[[], float] = time.monotonic) -> CallMetrics:
        """A fresh observer for one call (it keeps per-call state)."""
        return CallMetrics(self, clock)

    def count_frames_dropped(self, reason: str, frames: int) -> None:
        """Frames dropped outside a call's observer (e.g. by the carrier rate limit)."""
        if frames > 0:
            self.frames_dropped.labels(reason=reason).inc(frames)

    def count_outbound_call_ended(self, state: str) -> None:
        """An outbound call reached its final `state` (call once per call)."""
        self.outbound_calls.labels(state=state).inc()

    def count_outbound_call_placed(self, carrier: str) -> None:
        self.outbound_calls_placed.labels(carrier=carrier).inc()

    def count_active_calls(self, count: Callable[[], int]) -> None:
        """Read the active-call gauge from `count` at scrape time (the server's set of calls)."""
        self.active_calls.set_function(lambda: float(count()))

    def exposition(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


class CallMetrics(CallObserver):
    """Feeds `GatewayMetrics` from one call's events; `clock` is injectable for tests."""

    def __init__(
        self, metrics: GatewayMetrics, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._metrics = metrics
        self._clock = clock
        self._last_speech_s: float | None = None
        """When the last caller speech frame went to Live."""
        self._speech_since_agent_turn = False
        """Caller speech was sent since the agent's current/last turn began."""
        self._agent_speaking = False
        """The current agent turn has produced audio and has not ended yet."""

    def live_audio_out(self, pcm16le: bytes, rate_hz: int) -> None:
        if is_speech(pcm16le):
            self._last_speech_s = self._clock()
            self._speech_since_agent_turn = True

    def live_in(self, message: ServerMessage) -> None:
        if message.audio and not self._agent_speaking:
            self._agent_speaking = True
            if self._speech_since_agent_turn and self._last_speech_s is not None:
                self._metrics.reply_latency.observe(max(0.0, self._clock() - self._last_speech_s))
            self._speech_since_agent_turn = False
        if message.interrupted or message.turn_complete:
            self._agent_speaking = False

    def barge_in(self, frames_dropped: int) -> None:
        self._metrics.barge_ins.inc()
        if frames_dropped:
            self._metrics.frames_dropped.labels(reason=DROP_BARGE_IN).inc(frames_dropped)

    def tool_result(self, response: FunctionResponse, duration_s: float, outcome: str) -> None:
        self._metrics.tool_calls.labels(tool=response.name, outcome=outcome).inc()
        self._metrics.tool_duration.labels(tool=response.name).observe(max(0.0, duration_s))

    def error(self, kind: str, detail: str) -> None:
        if kind == "malformed_caller_frame":
            self._metrics.frames_dropped.labels(reason=DROP_MALFORMED).inc()

    def live_closed(self, code: int | None) -> None:
        self._metrics.live_closes.labels(code=_code_label(code)).inc()

    def live_reconnected(self, close_code: int | None) -> None:
        self._metrics.live_reconnects.inc()
        self._metrics.live_closes.labels(code=_code_label(close_code)).inc()

    def call_ended(self, reason: EndReason, stats: CallStats) -> None:
        metrics = self._metrics
        metrics.calls.labels(outcome=reason.value).inc()
        metrics.call_duration.observe(max(0.0, self._clock() - stats.started_monotonic))
        if stats.caller_frames_dropped_while_connecting:
            metrics.frames_dropped.labels(reason=DROP_CALLER_BUFFER_FULL).inc(
                stats.caller_frames_dropped_while_connecting
            )
        if stats.caller_frames_dropped_over_real_time:
            metrics.frames_dropped.labels(reason=DROP_AUDIO_RATE_LIMITED).inc(
                stats.caller_frames_dropped_over_real_time
            )


def is_speech(pcm16le: bytes) -> bool:
    """Whether a chunk of PCM16LE audio is loud enough to be speech (RMS ≥ the threshold)."""
    count = len(pcm16le) // 2
    if count == 0:
        return False
    samples = np.frombuffer(pcm16le, dtype="<i2", count=count).astype(np.float64)
    return float(np.dot(samples, samples)) >= _SPEECH_THRESHOLD_SQUARED * count


def _code_label(code: int | None) -> str:
    return "none" if code is None else str(code)


METRICS = web.AppKey("metrics", GatewayMetrics)


async def handle_metrics(request: web.Request) -> web.Response:
    """Prometheus scrape endpoint."""
    body = request.app[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_metrics(app: web.Application, active_calls: Callable[[], int]) -> GatewayMetrics:
    """Give `app` its metrics (`app[METRICS]`) and `GET /metrics`; returns the metrics."""
    metrics = GatewayMetrics()
    metrics.count_active_calls(active_calls)
    app[METRICS] = metrics
    app.router.add_get(METRICS_PATH, handle_metrics)
    return metrics
