"""How a call ended and what happened on it: plain data, for observers, metrics and logs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum


class EndReason(StrEnum):
    CALLER_HUNG_UP = "caller_hung_up"
    CALLER_DISCONNECTED = "caller_disconnected"
    NO_START = "no_start"
    LIVE_CONNECT_FAILED = "live_connect_failed"
    LIVE_CLOSED = "live_closed"
    LIVE_FAILED = "live_failed"
    GATEWAY_SHUTDOWN = "gateway_shutdown"
    INTERNAL_ERROR = "internal_error"
    UNSUPPORTED_AUDIO = "unsupported_audio"
    """The stream's audio format has no conversion (e.g. 16 kHz L16 out)."""
    CALLER_AUDIO_FLOOD = "caller_audio_flood"
    """The caller sent audio faster than real time for too long (security.AudioBudget)."""
    OPERATOR_HUNG_UP = "operator_hung_up"
    """An operator ended the call from the console (gateway.console)."""
    # The gateway ended the call on purpose (gateway.call.control.EndCause):
    AGENT_ENDED = "agent_ended"
    END_PHRASE = "end_phrase"
    TRANSFERRED = "transferred"
    MAX_DURATION = "max_duration"
    IDLE_TIMEOUT = "idle_timeout"


@dataclass
class CallStats:
    """What happened on the call, for the end-of-call summary line."""

    started_monotonic: float = field(default_factory=time.monotonic)
    caller_frames: int = 0
    malformed_frames: int = 0
    agent_frames: int = 0
    turns: int = 0
    barge_ins: int = 0
    stale_frames_dropped: int = 0
    tool_calls: int = 0
    dtmf_digits: int = 0
    caller_frames_dropped_while_connecting: int = 0
    caller_frames_dropped_over_real_time: int = 0
    """Caller frames whose audio ran ahead of real time past the burst (security.AudioBudget)."""
    live_reconnects: int = 0
    """Live sessions that dropped and were replaced mid-call (see `Call.note_live_reconnect`)."""
