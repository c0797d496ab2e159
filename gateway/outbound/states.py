"""An outbound call's state, and how a carrier's reports map onto it (sans-IO).

States: `queued` (placed, not ringing yet), `ringing`, `in-progress` (answered), and the
final ones `completed`, `busy`, `no-answer`, `failed`, `canceled` (hung up before it was
answered, e.g. `DELETE /calls/{id}` while ringing) and `voicemail` (an answering machine
took it: hung up on, or a message was left).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "FINAL_STATES",
    "MACHINE_ANSWERS",
    "CallState",
    "is_machine",
    "next_state",
    "plivo_state",
    "twilio_state",
]


class CallState(StrEnum):
    QUEUED = "queued"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"
    CANCELED = "canceled"
    VOICEMAIL = "voicemail"


FINAL_STATES: Final = frozenset(
    {
        CallState.COMPLETED,
        CallState.BUSY,
        CallState.NO_ANSWER,
        CallState.FAILED,
        CallState.CANCELED,
        CallState.VOICEMAIL,
    }
)
_ORDER: Final = {CallState.QUEUED: 0, CallState.RINGING: 1, CallState.IN_PROGRESS: 2}

_TWILIO: Final = {
    "queued": CallState.QUEUED,
    "initiated": CallState.QUEUED,
    "ringing": CallState.RINGING,
    "in-progress": CallState.IN_PROGRESS,
    "answered": CallState.IN_PROGRESS,  # the StatusCallbackEvent's name for it
    "completed": CallState.COMPLETED,
    "busy": CallState.BUSY,
    "no-answer": CallState.NO_ANSWER,
    "failed": CallState.FAILED,
    "canceled": CallState.CANCELED,
}
"""Twilio's CallStatus values (https://www.twilio.com/docs/voice/api/call-resource#call-status-values)."""

_PLIVO: Final = {
    "ringing": CallState.RINGING,
    "in-progress": CallState.IN_PROGRESS,
    "completed": CallState.COMPLETED,
    "busy": CallState.BUSY,
    "no-answer": CallState.NO_ANSWER,
    "timeout": CallState.NO_ANSWER,  # nobody connected in time: worth a retry, like no-answer
    "failed": CallState.FAILED,
    "cancel": CallState.CANCELED,
}
"""Plivo's CallStatus values (https://docs.plivo.com/docs/voice/use-cases/dial-status-reporting)."""

MACHINE_ANSWERS: Final = frozenset(
    {
        "machine_start",
        "machine_end_beep",
        "machine_end_silence",
        "machine_end_other",
        "fax",
        "machine",  # Telnyx TeXML's AnsweredBy, and what Plivo's `Machine=true` is noted as
    }
)
"""AnsweredBy values that are not a person (Twilio's, SignalWire's, Telnyx's; `human` and
`unknown` count as one: with `unknown` the agent talks, which is what a person who said nothing
needs)."""


def twilio_state(call_status: str) -> CallState | None:
    """Our state for Twilio's CallStatus; None for a value Twilio does not document."""
    return _TWILIO.get(call_status.strip().lower())


def plivo_state(call_status: str) -> CallState | None:
    """Our state for Plivo's CallStatus; None for a value Plivo does not document."""
    return _PLIVO.get(call_status.strip().lower())


def is_machine(answered_by: str | None) -> bool:
    """Whether Twilio's AnsweredBy says an answering machine (or fax) took the call."""
    return (answered_by or "").strip().lower() in MACHINE_ANSWERS


def next_state(current: CallState, reported: CallState, *, machine: bool) -> CallState:
    """The state after a carrier report: never backwards (callbacks may arrive out of order),
    never out of a final state, and a call an answering machine took ends as `voicemail`."""
    if current in FINAL_STATES and current is not CallState.VOICEMAIL:
        return current
    if reported in FINAL_STATES:
        if machine and reported is CallState.COMPLETED:
            return CallState.VOICEMAIL
        if current is CallState.VOICEMAIL:  # hung up on at the webhook: it stays voicemail
            return current
        return reported
    if current is CallState.VOICEMAIL:
        return current
    return reported if _ORDER[reported] > _ORDER[current] else current
