"""A carrier's report on an outbound call (status callback, voice webhook), in our terms.

Twilio, SignalWire and Telnyx (TeXML) send Twilio's fields: `CallSid`, `CallStatus`,
`AnsweredBy`, `CallDuration`. Plivo's callbacks (ring_url, hangup_url, machine_detection_url,
answer_url) send `CallUUID`, `CallStatus` (its own values), `Duration` and, from its machine
detection, `Machine=true|false`, noted here as `answered_by` `machine` / `human`. Vonage's
call events are JSON: `uuid`, `status` (its own values; `human` / `machine` are its machine
detection's verdict, the call being answered), `duration`; its other events (`input`,
`record`, `transfer`, `disconnected`, …) say nothing of the call's state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from gateway.outbound.states import CallState, plivo_state, twilio_state

__all__ = ["CarrierReport", "read_report"]

_VONAGE: Final = {
    "started": CallState.QUEUED,
    "ringing": CallState.RINGING,
    "answered": CallState.IN_PROGRESS,
    "human": CallState.IN_PROGRESS,
    "machine": CallState.IN_PROGRESS,
    "busy": CallState.BUSY,
    "rejected": CallState.BUSY,  # the callee turned it down, as Twilio's busy covers
    "cancelled": CallState.CANCELED,
    "unanswered": CallState.NO_ANSWER,
    "timeout": CallState.NO_ANSWER,
    "failed": CallState.FAILED,
    "completed": CallState.COMPLETED,
}
"""Vonage's call event statuses (https://developer.vonage.com/en/voice/voice-api/webhook-reference)."""


@dataclass(frozen=True, slots=True)
class CarrierReport:
    call_id: str
    """The carrier's id of the call the report is about ("" when it names none)."""
    state: CallState | None
    """What the report says the call is now (None: no status, or one not documented)."""
    answered_by: str
    """The carrier's machine detection ("" when it says nothing)."""
    duration: str
    """The call's duration in seconds as sent ("" when not sent)."""
    informational: bool = False
    """An event about something else than the call's state (Vonage's `input`, `record`, …):
    acknowledged, and nothing changes."""


def read_report(carrier: str, params: Mapping[str, str]) -> CarrierReport:
    """The fields of `carrier`'s report `params` (form fields), in our terms."""
    if carrier == "plivo":
        machine = params.get("Machine", "").strip().lower()
        return CarrierReport(
            call_id=params.get("CallUUID", ""),
            state=plivo_state(params.get("CallStatus", "")),
            answered_by={"true": "machine", "false": "human"}.get(machine, ""),
            duration=params.get("Duration", ""),
        )
    if carrier == "vonage":
        status = params.get("status", "").strip().lower()
        return CarrierReport(
            call_id=params.get("uuid", "").lower(),
            state=_VONAGE.get(status),
            answered_by=status if status in ("human", "machine") else "",
            duration=params.get("duration", ""),
            informational=bool(status) and status not in _VONAGE,
        )
    return CarrierReport(
        call_id=params.get("CallSid", ""),
        state=twilio_state(params.get("CallStatus", "")),
        answered_by=params.get("AnsweredBy", ""),
        duration=params.get("CallDuration", ""),
    )
