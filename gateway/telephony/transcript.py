"""Live transcript frames: a gateway extension to the media-stream protocol, sent on request only.

A client that wants text (the browser softphone, `gateway call`) passes the stream parameter
`transcript=1`; the gateway then adds text frames to that stream:

    {"event": "transcript", "streamSid": "MZ…", "role": "agent" | "caller", "text": "…"}

Agent text arrives in pieces as it is spoken (append them); caller text once Live has
transcribed an utterance. Phones never ask, so Twilio never sees these frames. Sans-IO.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final, Literal

TRANSCRIPT_PARAMETER: Final = "transcript"
"""The custom stream parameter that asks for transcript frames."""
TRANSCRIPT_EVENT: Final = "transcript"

TranscriptRole = Literal["agent", "caller"]

_YES: Final = frozenset({"1", "true", "yes", "on"})


def wants_transcript(custom_parameters: Mapping[str, str]) -> bool:
    """Whether the stream asked for transcript frames (`transcript=1`, `true`, `yes`, `on`)."""
    return custom_parameters.get(TRANSCRIPT_PARAMETER, "").strip().lower() in _YES


def build_transcript(stream_sid: str, role: TranscriptRole, text: str) -> str:
    """One transcript frame (JSON text) for `stream_sid`."""
    return json.dumps(
        {"event": TRANSCRIPT_EVENT, "streamSid": stream_sid, "role": role, "text": text},
        separators=(",", ":"),
        ensure_ascii=False,
    )
