"""The phone side of a Telnyx TeXML call: its voice webhook, signed as Telnyx signs it (Ed25519
over `timestamp|body`), and its stream's frames as Telnyx's docs show them (sans-IO; a
`CarrierPhone`).

Frames have `stream_id` and a string `sequence_number` at the top, `start.call_control_id` /
`start.user_id`, `media_format` PCMU at 8000 Hz, `stop` with the call's ids, `dtmf` without a
track (as in
https://developers.telnyx.com/api-reference/websockets/stream-call-media-over-websocket).
The upgrade carries no signature (Telnyx signs only webhooks).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode
from xml.etree import ElementTree

from gateway.telephony.carrier import MULAW
from gateway.telephony.phone import PhoneEvent, SignedRequest, StreamOrder
from gateway.telephony.telnyx import SIGNATURE_HEADER, TIMESTAMP_HEADER, signed_message

if TYPE_CHECKING:  # cryptography is loaded by whoever hands the phone a key
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["DEFAULT_ACCOUNT_ID", "TelnyxPhone", "new_call_control_id"]

DEFAULT_ACCOUNT_ID: Final = "3e6f995f-85f7-4705-9741-53b116d28237"


def new_call_control_id() -> str:
    """A fresh id shaped like Telnyx's (`v3:` and 54 base64url characters)."""
    return "v3:" + secrets.token_urlsafe(48)[:54]


class TelnyxPhone:
    """One Telnyx call; its webhook signed with `private_key` when given (the key pair whose
    public half the gateway's TELNYX_PUBLIC_KEY holds). `clock` dates the signatures."""

    carrier: Final = "telnyx"
    stream_format: Final = (MULAW, 8000)
    """PCMU at 8 kHz, as the gateway's TeXML asks for."""

    def __init__(
        self,
        private_key: Ed25519PrivateKey | None = None,
        account_id: str = DEFAULT_ACCOUNT_ID,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = private_key
        self._clock = clock
        self.account_id = account_id
        self.call_id = new_call_control_id()
        self.stream_id = str(uuid.uuid4())
        self._sequence = 0
        self._chunk = 0

    def _next(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    def sign(self, body: bytes) -> dict[str, str]:
        """The signature headers Telnyx would send with `body` now (none without a key)."""
        if self._key is None:
            return {}
        timestamp = str(int(self._clock()))
        signature = self._key.sign(signed_message(timestamp, body))
        return {
            SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii"),
            TIMESTAMP_HEADER: timestamp,
        }

    def voice_webhook(self, url: str, *, from_number: str, to_number: str) -> SignedRequest:
        form = {
            "AccountSid": self.account_id,
            "CallSid": self.call_id,
            "CallSidLegacy": self.call_id,
            "CallStatus": "ringing",
            "ConnectionId": "1234567890",
            "Direction": "inbound",
            "From": from_number,
            "To": to_number,
        }
        body = urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **self.sign(body)}
        return SignedRequest("POST", url, headers, body)

    def read_answer(self, content_type: str, body: str) -> StreamOrder:
        stream = ElementTree.fromstring(body).find("./Connect/Stream")
        if stream is None or not stream.get("url") or stream.get("bidirectionalMode") != "rtp":
            raise ValueError(f"no bidirectional <Connect><Stream url=…> in {body[:200]!r}")
        parameters = {p.get("name", ""): p.get("value", "") for p in stream.iter("Parameter")}
        return StreamOrder(str(stream.get("url")), parameters)

    def stream_url(self, url: str, parameters: Mapping[str, str]) -> str:
        return url  # the parameters travel in the stream's opening frames

    def stream_headers(self, url: str) -> Mapping[str, str]:
        return {}

    def opening(self, parameters: Mapping[str, str]) -> list[str | bytes]:
        connected = {"event": "connected", "version": "1.0.0"}
        start = {
            "event": "start",
            "sequence_number": self._next(),
            "start": {
                "user_id": self.account_id,
                "call_control_id": self.call_id,
                "call_session_id": str(uuid.uuid4()),
                "from": parameters.get("from", ""),
                "to": parameters.get("to", ""),
                "custom_parameters": dict(parameters),
                "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
            },
            "stream_id": self.stream_id,
        }
        return [_dump(connected), _dump(start)]

    def media(self, audio: bytes) -> str | bytes:
        self._chunk += 1
        return _dump(
            {
                "event": "media",
                "sequence_number": self._next(),
                "media": {
                    "track": "inbound",
                    "chunk": str(self._chunk),
                    "timestamp": str((self._chunk - 1) * 20),
                    "payload": base64.b64encode(audio).decode("ascii"),
                },
                "stream_id": self.stream_id,
            }
        )

    def dtmf(self, digit: str) -> str | bytes:
        return _dump(
            {
                "event": "dtmf",
                "stream_id": self.stream_id,
                "occurred_at": "2025-06-05T08:54:19.698408Z",
                "sequence_number": self._next(),
                "dtmf": {"digit": digit},
            }
        )

    def mark_played(self, name: str) -> str | bytes:
        return _dump(
            {
                "event": "mark",
                "sequence_number": self._next(),
                "stream_id": self.stream_id,
                "mark": {"name": name},
            }
        )

    def stop(self) -> str | bytes:
        return _dump(
            {
                "event": "stop",
                "sequence_number": self._next(),
                "stop": {"user_id": self.account_id, "call_control_id": self.call_id},
                "stream_id": self.stream_id,
            }
        )

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
