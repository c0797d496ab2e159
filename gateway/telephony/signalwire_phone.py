"""The phone side of a SignalWire call: its webhook, signed as SignalWire signs it, and its
stream's frames as SignalWire's docs show them (sans-IO; a `CarrierPhone`).

The frames are the sparse ones of
https://developer.signalwire.com/compatibility-api/cxml/voice/stream/: no `streamSid` on
`media` and `stop`, no call ids on `stop`, `dtmf` with a duration and no track; UUID ids.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode
from xml.etree import ElementTree

from twilio.request_validator import RequestValidator

from gateway.telephony.carrier import MULAW
from gateway.telephony.phone import PhoneEvent, SignedRequest, StreamOrder
from gateway.telephony.signalwire import stream_token

__all__ = ["DEFAULT_PROJECT_ID", "SignalWirePhone"]

DEFAULT_PROJECT_ID: Final = "b08dacad-2f6c-4de1-93d6-cc732e0c69c5"
_DTMF_DURATION_MS: Final = 200


class SignalWirePhone:
    """One SignalWire call; its webhook signed with `signing_key` when given. The upgrade
    carries the bearer token the gateway's answer named (else the one `signing_key` gives)."""

    carrier: Final = "signalwire"
    stream_format: Final = (MULAW, 8000)
    """μ-law at 8 kHz, as the gateway's LaML asks for."""

    def __init__(
        self, signing_key: str | None = None, project_id: str = DEFAULT_PROJECT_ID
    ) -> None:
        self._validator = RequestValidator(signing_key) if signing_key else None
        self._token = stream_token(signing_key) if signing_key else None
        self.project_id = project_id
        self.call_id = str(uuid.uuid4())
        self.stream_sid = str(uuid.uuid4())
        self._sequence = 0
        self._chunk = 0

    def _next(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    def voice_webhook(self, url: str, *, from_number: str, to_number: str) -> SignedRequest:
        form = {
            "CallSid": self.call_id,
            "AccountSid": self.project_id,
            "From": from_number,
            "To": to_number,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self._validator is not None:
            headers["X-SignalWire-Signature"] = self._validator.compute_signature(url, form)
        return SignedRequest("POST", url, headers, urlencode(form).encode())

    def read_answer(self, content_type: str, body: str) -> StreamOrder:
        stream = ElementTree.fromstring(body).find("./Connect/Stream")
        if stream is None or not stream.get("url"):
            raise ValueError(f"no bidirectional <Connect><Stream url=…> in {body[:200]!r}")
        token = stream.get("authBearerToken")
        if token:
            self._token = token
        parameters = {p.get("name", ""): p.get("value", "") for p in stream.iter("Parameter")}
        return StreamOrder(str(stream.get("url")), parameters)

    def stream_url(self, url: str, parameters: Mapping[str, str]) -> str:
        return url  # the parameters travel in the stream's opening frames

    def stream_headers(self, url: str) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def opening(self, parameters: Mapping[str, str]) -> list[str | bytes]:
        connected = {"event": "connected", "protocol": "Call", "version": "0.2.0"}
        start = {
            "event": "start",
            "sequenceNumber": self._next(),
            "start": {
                "streamSid": self.stream_sid,
                "accountSid": self.project_id,
                "callSid": self.call_id,
                "tracks": ["inbound"],
                "customParameters": dict(parameters),
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }
        return [_dump(connected), _dump(start)]

    def media(self, audio: bytes) -> str | bytes:
        self._chunk += 1
        return _dump(
            {
                "event": "media",
                "sequenceNumber": self._next(),
                "media": {
                    "track": "inbound",
                    "chunk": str(self._chunk),
                    "timestamp": str((self._chunk - 1) * 20),
                    "payload": base64.b64encode(audio).decode("ascii"),
                },
            }
        )

    def dtmf(self, digit: str) -> str | bytes:
        return _dump(
            {
                "event": "dtmf",
                "sequenceNumber": self._next(),
                "streamSid": self.stream_sid,
                "dtmf": {"digit": digit, "duration": _DTMF_DURATION_MS},
            }
        )

    def mark_played(self, name: str) -> str | bytes:
        return _dump({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    def stop(self) -> str | bytes:
        return _dump({"event": "stop", "sequenceNumber": self._next()})

    def read(self, frame: str | bytes) -> PhoneEvent:
        try:
            message = json.loads(frame)
        except ValueError:
            return PhoneEvent("other")
        if not isinstance(message, dict):
            return PhoneEvent("other")
        event = message.get("event")
        if event == "media":
            return PhoneEvent("media", audio=base64.b64decode(message["media"]["payload"]))
        if event == "mark":
            return PhoneEvent("mark", name=str(message["mark"]["name"]))
        if event == "clear":
            return PhoneEvent("clear")
        return PhoneEvent("other")


def _dump(message: Mapping[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))
