"""The phone side of a Twilio media stream: frames as Twilio sends them (sans-IO).

Used by everything that plays a caller — `gateway call`, the replay and load tools, tests — so
there is one definition of what Twilio's frames look like (numbers inside are strings).
"""

from __future__ import annotations

import base64
from typing import Any

STREAM_SID = "MZ00000000000000000000000000000001"
CALL_SID = "CA00000000000000000000000000000001"
ACCOUNT_SID = "AC00000000000000000000000000000001"


class TwilioCaller:
    """Builds the frames of one call, numbering them like Twilio does."""

    def __init__(
        self,
        stream_sid: str = STREAM_SID,
        call_sid: str = CALL_SID,
        account_sid: str = ACCOUNT_SID,
    ) -> None:
        self.stream_sid = stream_sid
        self.call_sid = call_sid
        self.account_sid = account_sid
        self.sequence = 0
        self.chunk = 0

    def _next(self) -> str:
        self.sequence += 1
        return str(self.sequence)

    def connected(self) -> dict[str, Any]:
        return {"event": "connected", "protocol": "Call", "version": "1.0.0"}

    def start(self, **parameters: str) -> dict[str, Any]:
        return {
            "event": "start",
            "sequenceNumber": self._next(),
            "streamSid": self.stream_sid,
            "start": {
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "customParameters": parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }

    def media(self, mulaw: bytes) -> dict[str, Any]:
        self.chunk += 1
        return {
            "event": "media",
            "sequenceNumber": self._next(),
            "streamSid": self.stream_sid,
            "media": {
                "track": "inbound",
                "chunk": str(self.chunk),
                "timestamp": str((self.chunk - 1) * 20),
                "payload": base64.b64encode(mulaw).decode("ascii"),
            },
        }

    def dtmf(self, digit: str) -> dict[str, Any]:
        return {
            "event": "dtmf",
            "sequenceNumber": self._next(),
            "streamSid": self.stream_sid,
            "dtmf": {"track": "inbound_track", "digit": digit},
        }

    def mark(self, name: str) -> dict[str, Any]:
        return {
            "event": "mark",
            "sequenceNumber": self._next(),
            "streamSid": self.stream_sid,
            "mark": {"name": name},
        }

    def stop(self) -> dict[str, Any]:
        return {
            "event": "stop",
            "sequenceNumber": self._next(),
            "streamSid": self.stream_sid,
            "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
        }
