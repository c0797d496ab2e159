"""The post-call webhook: after a call, POST its summary to the agent's `post_call_webhook`.

A `CallObserver` (one per call) collects what the summary needs while the call runs; when the
call ends it hands the JSON to a background task and returns at once, so a slow or broken
receiver never delays a call. Failures are logged with the call's id; there is no retry.
Redirects are not followed (a 3xx is logged as a failure), so the transcript and its signature
reach the configured URL and no other; a failing receiver's reply is read only for the log line.

Body (JSON): `call_sid`, `stream_sid`, `agent`, `from`, `to`, `started_at` / `ended_at`
(ISO 8601 UTC), `duration_s`, `end_reason`, `transcript` ([{role, text}], caller/agent turns in
order), `tool_calls` ([{id, name, args, result, outcome, duration_s}]), `barge_ins`, `turns`.
Signed like HTTP tools when `hmac_secret_env` is set (see `gateway.tools.signing`).

An outbound call (`POST /calls`) adds `outbound`: {id, state, answered_by, variables}; one that
never reached a stream (busy, no answer, failed, an answering machine hung up on) gets its
summary from `gateway.outbound.notify` through `deliver_summary`, with an empty transcript.
`post_json` delivers any other JSON document the same way (an outbound call's callback_url).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import structlog

from gateway.call.hooks import CallObserver, CallView
from gateway.live.protocol import FunctionCall, FunctionResponse
from gateway.ops.url_redaction import redact_url
from gateway.tools.signing import signature_headers
from gateway.tools.spec import WebhookConfig

if TYPE_CHECKING:
    from gateway.call.outcome import CallStats, EndReason

__all__ = [
    "OutboundSummary",
    "PostCallWebhook",
    "deliver_summary",
    "iso_utc",
    "merge_transcript",
    "pending_deliveries",
    "post_json",
    "wait_for_deliveries",
]

log = structlog.get_logger("gateway.post_call")

MAX_ERROR_DETAIL_BYTES = 200
"""How much of a failing receiver's reply is read, for the log."""

_DELIVERIES: set[asyncio.Task[None]] = set()
"""Deliveries in flight (strong references, so they are not garbage-collected mid-flight)."""


def pending_deliveries() -> int:
    return len(_DELIVERIES)


async def wait_for_deliveries(timeout_s: float) -> int:
    """On shutdown: give deliveries in flight up to `timeout_s`; returns how many were cut."""
    tasks = list(_DELIVERIES)
    if not tasks:
        return 0
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        task.cancel()
    return len(pending)


def merge_transcript(pieces: list[tuple[str, str]]) -> list[dict[str, str]]:
    """Live's transcription fragments joined into turns: [{role, text}], roles alternating."""
    turns: list[dict[str, str]] = []
    for role, text in pieces:
        if turns and turns[-1]["role"] == role:
            turns[-1]["text"] += text
        else:
            turns.append({"role": role, "text": text})
    for turn in turns:
        turn["text"] = " ".join(turn["text"].split())
    return [turn for turn in turns if turn["text"]]


def iso_utc(moment: datetime) -> str:
    """`2026-01-02T03:04:05.678Z`: how every time in a summary is written."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


OutboundSummary = Callable[[CallView], Mapping[str, Any] | None]
"""The `outbound` part of a call's summary, or None for a call that is not an outbound one."""


def deliver_summary(config: WebhookConfig, summary: Mapping[str, Any], call_sid: str) -> None:
    """POST `summary` to `config.url` in the background (signed as configured)."""
    body = json.dumps(summary, ensure_ascii=False, default=str).encode()
    bound = log.bind(call_sid=call_sid, url=redact_url(config.url))
    _track(_deliver(config, body, bound))


def post_json(url: str, document: Mapping[str, Any], *, event: str, **log_fields: Any) -> None:
    """POST `document` to `url` in the background, unsigned; `event`_sent / `event`_failed are
    logged with `log_fields`. Failures are never raised."""
    config = WebhookConfig(url=url)
    body = json.dumps(document, ensure_ascii=False, default=str).encode()
    bound = log.bind(url=redact_url(url), **log_fields)
    _track(_deliver(config, body, bound, event=event))


def _track(delivery: Any) -> None:
    task = asyncio.get_running_loop().create_task(delivery)
    _DELIVERIES.add(task)
    task.add_done_callback(_DELIVERIES.discard)


class PostCallWebhook(CallObserver):
    """Collects one call's summary and delivers it when the call ends (if the agent asks)."""

    def __init__(self, outbound: OutboundSummary | None = None) -> None:
        self._outbound = outbound
        self._call: CallView | None = None
        self._config: WebhookConfig | None = None
        self._started_at = datetime.now(UTC)
        self._started_monotonic = time.monotonic()
        self._tool_calls: dict[str, dict[str, Any]] = {}
        self._barge_ins = 0

    def call_started(self, call: CallView) -> None:
        self._call = call
        self._config = call.agent.post_call_webhook if call.agent is not None else None
        self._started_at = datetime.now(UTC)
        self._started_monotonic = time.monotonic()

    def tool_call(self, call: FunctionCall) -> None:
        if self._config is not None:
            key = call.id or f"#{len(self._tool_calls)}"
            self._tool_calls[key] = {"id": call.id, "name": call.name, "args": call.args}

    def tool_result(self, response: FunctionResponse, duration_s: float, outcome: str) -> None:
        entry = self._tool_calls.get(response.id)
        if entry is not None:
            entry.update(
                result=response.response, outcome=outcome, duration_s=round(duration_s, 3)
            )

    def barge_in(self, frames_dropped: int) -> None:
        self._barge_ins += 1

    def call_ended(self, reason: EndReason, stats: CallStats) -> None:
        call, config = self._call, self._config
        if call is None or config is None or call.start is None:
            return
        params = call.start.custom_parameters
        summary: dict[str, Any] = {
            "call_sid": call.start.call_sid,
            "stream_sid": call.start.stream_sid,
            "agent": call.agent.name if call.agent is not None else None,
            "from": params.get("from", ""),
            "to": params.get("to", ""),
            "started_at": iso_utc(self._started_at),
            "ended_at": iso_utc(datetime.now(UTC)),
            "duration_s": round(time.monotonic() - self._started_monotonic, 3),
            "end_reason": reason.value,
            "transcript": merge_transcript(call.transcript),
            "tool_calls": list(self._tool_calls.values()),
            "barge_ins": self._barge_ins,
            "turns": stats.turns,
        }
        outbound = self._outbound(call) if self._outbound is not None else None
        if outbound is not None:
            summary["outbound"] = dict(outbound)
        deliver_summary(config, summary, call.start.call_sid)


async def _deliver(
    config: WebhookConfig, body: bytes, bound: Any, *, event: str = "post_call_webhook"
) -> None:
    headers = {"Content-Type": "application/json"}
    if config.hmac_secret_env:
        secret = os.environ.get(config.hmac_secret_env)
        if not secret:
            bound.error(f"{event}_unsigned", missing_env=config.hmac_secret_env)
            return
        headers.update(signature_headers(secret, body, config.hmac_header))
    started = time.monotonic()
    try:
        timeout = aiohttp.ClientTimeout(total=config.timeout_s)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(config.url, data=body, headers=headers, allow_redirects=False) as response,
        ):
            if 300 <= response.status < 400:  # never resend the transcript and signature
                location = redact_url(response.headers.get("Location", ""))
                bound.error(
                    f"{event}_failed",
                    status=response.status,
                    detail="redirects are not followed",
                    location=location,
                )
                return
            if response.status >= 400:
                shown = await response.content.read(MAX_ERROR_DETAIL_BYTES)
                detail = shown.decode("utf-8", errors="replace")
                bound.error(f"{event}_failed", status=response.status, detail=detail)
                return
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        bound.error(f"{event}_failed", error=repr(exc))
        return
    bound.info(
        f"{event}_sent", duration_ms=round((time.monotonic() - started) * 1000, 1)
    )
