"""The phone side of a Twilio media stream: frames as Twilio sends them (sans-IO).

Used by everything that plays a caller — `gateway call`, the replay and load tools, tests — so
there is one definition of what Twilio's frames look like (numbers inside are strings).
"""

from __future__ import annotations

import base64
import json
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from gateway.telephony.carrier import MULAW
from gateway.telephony.phone import PhoneEvent, SignedRequest, StreamOrder

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


# ---------------------------------------------------------------------- as a CarrierPhone

_ACCOUNT_SID: Final = "AC" + "1" * 32


class TwilioPhone:  # the conformance suite's Twilio phone (gateway.telephony.phone)
    """One Twilio call; webhooks and the upgrade signed with `auth_token` when given."""

    carrier: Final = "twilio"
    stream_format: Final = (MULAW, 8000)
    """μ-law at 8 kHz: Twilio's only stream format."""

    def __init__(
        self,
        auth_token: str | None = None,
        account_sid: str = _ACCOUNT_SID,
        *,
        stream_sid: str | None = None,
        call_sid: str | None = None,
    ) -> None:
        self._validator = RequestValidator(auth_token) if auth_token else None
        self.call_id = call_sid or "CA" + secrets.token_hex(16)
        self._frames = TwilioCaller(
            stream_sid=stream_sid or "MZ" + secrets.token_hex(16),
            call_sid=self.call_id,
            account_sid=account_sid,
        )

    @property
    def stream_sid(self) -> str:
        return self._frames.stream_sid

    def _signed(self, url: str, params: Mapping[str, str]) -> dict[str, str]:
        if self._validator is None:
            return {}
        return {"X-Twilio-Signature": self._validator.compute_signature(url, dict(params))}

    def voice_webhook(self, url: str, *, from_number: str, to_number: str) -> SignedRequest:
        form = {
            "CallSid": self.call_id,
            "AccountSid": self._frames.account_sid,
            "From": from_number,
            "To": to_number,
            "Direction": "inbound",
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded", **self._signed(url, form)}
        return SignedRequest("POST", url, headers, urlencode(form).encode())

    def read_answer(self, content_type: str, body: str) -> StreamOrder:
        stream = ET.fromstring(body).find("./Connect/Stream")
        if stream is None or not stream.get("url"):
            raise ValueError(f"no <Connect><Stream url=…> in {body!r}")
        parameters = {p.get("name", ""): p.get("value", "") for p in stream.iter("Parameter")}
        return StreamOrder(str(stream.get("url")), parameters)

    def stream_url(self, url: str, parameters: Mapping[str, str]) -> str:
        return url  # the parameters travel in the stream's opening frames

    def stream_headers(self, url: str) -> Mapping[str, str]:
        return self._signed(url, {})

    def opening(self, parameters: Mapping[str, str]) -> list[str | bytes]:
        return [
            json.dumps(self._frames.connected()),
            json.dumps(self._frames.start(**parameters)),
        ]

    def media(self, audio: bytes) -> str | bytes:
        return json.dumps(self._frames.media(audio))

    def dtmf(self, digit: str) -> str | bytes:
        return json.dumps(self._frames.dtmf(digit))

    def mark_played(self, name: str) -> str | bytes:
        return json.dumps(self._frames.mark(name))

    def stop(self) -> str | bytes:
        return json.dumps(self._frames.stop())

    def read(self, frame: str | bytes) -> PhoneEvent:
        message = json.loads(frame)
        event = message.get("event")
        if event == "media":
            return PhoneEvent("media", audio=base64.b64decode(message["media"]["payload"]))
        if event == "mark":
            return PhoneEvent("mark", name=str(message["mark"]["name"]))
        if event == "clear":
            return PhoneEvent("clear")
        return PhoneEvent("other")
