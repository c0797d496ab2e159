"""The phone side of an Exotel Voicebot call (sans-IO): the applet's dynamic-URL request as
Exotel makes it, the AgentStream frames Exotel sends, and what the gateway sends back, read.

Frames follow the developer docs' examples (see `gateway.telephony.exotel`): snake_case,
numbers as decimal strings, `stream_sid` at the top, numbers in the start event in E.164.
The webhook carries the numbers in Exotel's national format (`0XXXXXXXXXX` for +91 numbers).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit

from gateway.telephony.carrier import L16
from gateway.telephony.exotel import SAMPLE_RATE_PARAMETER
from gateway.telephony.phone import PhoneEvent, SignedRequest, StreamOrder

__all__ = ["DEFAULT_ACCOUNT_SID", "ExotelPhone"]

DEFAULT_ACCOUNT_SID: Final = "gatewaytest1"
"""An Account SID of Exotel's shape (lower-case letters and digits): the phone's account."""


def _national(number: str) -> str:
    """How Exotel writes a +91 number in applet requests: `0` and the ten national digits."""
    return "0" + number[3:] if number.startswith("+91") and len(number) == 13 else number


class ExotelPhone:  # the conformance suite's Exotel phone (gateway.telephony.phone)
    """One Exotel call into a flow whose Voicebot applet fetches our dynamic URL."""

    carrier: Final = "exotel"
    stream_format: Final = (L16, 8000)
    """L16 at 8 kHz (`sample-rate=8000` in the stream URL)."""

    def __init__(self, account_sid: str = DEFAULT_ACCOUNT_SID) -> None:
        self.account_sid = account_sid
        self.call_id = secrets.token_hex(16)  # v1 Call SIDs: 32 hex digits
        self.stream_id = secrets.token_hex(16)
        self._sequence = 0
        self._chunk = 0
        self._from = ""
        self._to = ""

    def _next(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    def voice_webhook(self, url: str, *, from_number: str, to_number: str) -> SignedRequest:
        """A GET with the call's details as query fields (nothing is signed)."""
        self._from, self._to = from_number, to_number
        query = {
            "CallSid": self.call_id,
            "CallFrom": _national(from_number),
            "CallTo": _national(to_number),
            "From": _national(from_number),
            "To": _national(to_number),
            "Direction": "incoming",
            "CallStatus": "in-progress",
            "Created": "2025-01-15 10:30:00",
        }
        separator = "&" if urlsplit(url).query else "?"
        return SignedRequest("GET", f"{url}{separator}{urlencode(query)}", {}, b"")

    def read_answer(self, content_type: str, body: str) -> StreamOrder:
        try:
            document = json.loads(body)
        except ValueError:
            raise ValueError(f"the answer is not JSON: {body!r}") from None
        url = document.get("url") if isinstance(document, dict) else None
        if not isinstance(url, str) or urlsplit(url).scheme not in ("ws", "wss"):
            raise ValueError(f'no {{"url": "wss://…"}} in {body!r}')
        query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        query.pop(SAMPLE_RATE_PARAMETER, None)
        return StreamOrder(url, query)

    def stream_url(self, url: str, parameters: Mapping[str, str]) -> str:
        return url  # the parameters travel in the stream's opening frames

    def stream_headers(self, url: str) -> Mapping[str, str]:
        return {}  # no signature (Basic auth only if put in the URL, which we do not)

    def opening(self, parameters: Mapping[str, str]) -> list[str | bytes]:
        """`connected`, then `start` echoing the URL's parameters in `custom_parameters`."""
        start: dict[str, Any] = {
            "event": "start",
            "sequence_number": self._next(),
            "stream_sid": self.stream_id,
            "start": {
                "stream_sid": self.stream_id,
                "call_sid": self.call_id,
                "account_sid": self.account_sid,
                "from": self._from,
                "to": self._to,
                "custom_parameters": dict(parameters),
                "media_format": {
                    "encoding": "audio/x-raw",
                    "sample_rate": "8000",
                    "bit_rate": "16",
                },
            },
        }
        return [json.dumps({"event": "connected"}), json.dumps(start)]

    def media(self, audio: bytes) -> str | bytes:
        """Caller audio: 8 kHz 16-bit little-endian PCM (320 bytes per 20 ms)."""
        self._chunk += 1
        return json.dumps(
            {
                "event": "media",
                "sequence_number": self._next(),
                "stream_sid": self.stream_id,
                "media": {
                    "chunk": str(self._chunk),
                    "timestamp": str((self._chunk - 1) * len(audio) // 16),
                    "payload": base64.b64encode(audio).decode("ascii"),
                },
            }
        )

    def dtmf(self, digit: str) -> str | bytes:
        return json.dumps(
            {
                "event": "dtmf",
                "sequence_number": self._next(),
                "stream_sid": self.stream_id,
                "dtmf": {"digit": digit, "duration": "100"},
            }
        )

    def mark_played(self, name: str) -> str | bytes:
        return json.dumps(
            {
                "event": "mark",
                "sequence_number": self._next(),
                "stream_sid": self.stream_id,
                "mark": {"name": name},
            }
        )

    def stop(self) -> str | bytes:
        return json.dumps(
            {
                "event": "stop",
                "sequence_number": self._next(),
                "stream_sid": self.stream_id,
                "stop": {
                    "call_sid": self.call_id,
                    "account_sid": self.account_sid,
                    "reason": "callended",
                },
            }
        )

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
