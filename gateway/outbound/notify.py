"""When an outbound call ends: count it, tell the request's `callback_url`, and (when no media
stream carried the call, so no post-call summary went out with it) send the agent's post-call
webhook. Each happens once per call, in the background; failures are logged, never raised."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from gateway.ops.metrics import GatewayMetrics
from gateway.ops.post_call import deliver_summary, iso_utc, post_json
from gateway.outbound.registry import OutboundCall
from gateway.outbound.states import FINAL_STATES, CallState, is_machine

__all__ = ["OutboundNotifier", "outbound_section"]

log = structlog.get_logger("gateway.outbound")


def outbound_section(call: OutboundCall) -> dict[str, Any]:
    """The `outbound` part of a post-call summary. While the stream is still ending, `state`
    is what the call ends as: `voicemail` when a machine answered, else `completed`."""
    if call.state in FINAL_STATES:
        state = call.state
    else:
        state = CallState.VOICEMAIL if is_machine(call.answered_by) else CallState.COMPLETED
    return {
        "id": call.id,
        "state": state.value,
        "answered_by": call.answered_by,
        "carrier": call.carrier,
        "variables": dict(call.variables),
    }


class OutboundNotifier:
    def __init__(self, metrics: GatewayMetrics) -> None:
        self._metrics = metrics

    def placed(self, call: OutboundCall) -> None:
        self._metrics.count_outbound_call_placed(call.carrier)

    def ended(self, call: OutboundCall) -> None:
        """`call` reached its final state (the registry makes sure this runs once)."""
        self._metrics.count_outbound_call_ended(call.state.value)
        log.info(
            "outbound_call_ended",
            outbound=call.id,
            call_sid=call.carrier_call_id,
            state=call.state.value,
            end_reason=call.end_reason,
            answered_by=call.answered_by,
            duration_s=call.duration_s,
        )
        if call.callback_url:
            post_json(
                call.callback_url, call.to_json(), event="outbound_callback", outbound=call.id
            )
        config = call.agent_config.post_call_webhook if call.agent_config is not None else None
        if config is not None and not call.streamed:
            deliver_summary(config, _summary(call), call.carrier_call_id or call.id)


def _summary(call: OutboundCall) -> dict[str, Any]:
    """A post-call summary for a call no stream served (its transcript is empty)."""
    return {
        "call_sid": call.carrier_call_id,
        "stream_sid": None,
        "agent": call.agent,
        "from": call.from_number,
        "to": call.to,
        "started_at": iso_utc(call.created_at),
        "ended_at": iso_utc(datetime.now(UTC)),
        "duration_s": float(call.duration_s or 0),
        "end_reason": call.end_reason,
        "transcript": [],
        "tool_calls": [],
        "barge_ins": 0,
        "turns": 0,
        "outbound": outbound_section(call),
    }
