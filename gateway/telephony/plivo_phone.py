"""The phone side of a Plivo call (sans-IO): the answer-URL request as Plivo signs it, the
Audio Stream frames as Plivo sends them, and what the gateway sends back, read.

Frames follow Plivo's Stream Event Protocol (see `gateway.telephony.plivo`): numbers as JSON
numbers except `media.timestamp` (Unix ms, a string), `extra_headers` on `start` and `media`.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit
from xml.etree import ElementTree

from gateway.telephony.carrier import L16, MULAW
from gateway.telephony.phone import PhoneEvent, SignedRequest, StreamOrder
from gateway.telephony.plivo import decode_extra_headers, encode_extra_headers, sign_v3

__all__ = ["DEFAULT_AUTH_ID", "PlivoPhone"]

DEFAULT_AUTH_ID: Final = "MA" + "A1" * 9
"""An Auth ID of Plivo's shape (MA + 18 letters and digits): the account of the phone's calls."""
_FIRST_TIMESTAMP_MS: Final = 1_705_312_200_000


class PlivoPhone:  # the conformance suite's Plivo phone (gateway.telephony.phone)
    """One Plivo call; its answer-URL request is V3-signed with `auth_token` when given."""

    carrier: Final = "plivo"

    def __init__(self, auth_token: str | None = None, auth_id: str = DEFAULT_AUTH_ID) -> None:
        self._auth_token = auth_token
        self.auth_id = auth_id
        self.call_id = str(uuid.uuid4())
        self.stream_id = str(uuid.uuid4())
        self._sequence = 0
        self._chunk = 0
        self._extra_headers = ""
        self.stream_format: tuple[str, int] = (MULAW, 8000)
        """What the `<Stream contentType>` asked for (μ-law 8 kHz until an answer is read)."""

    def _next(self) -> int:
        self._sequence += 1
        return self._sequence

    def signed_headers(
        self, method: str, url: str, params: Mapping[str, str], nonce: str | None = None
    ) -> dict[str, str]:
        """Plivo's V3 headers for a request (none without an auth token)."""
        if self._auth_token is None:
            return {}
        nonce = nonce or str(secrets.randbelow(10**20)).zfill(20)
        return {
            "X-Plivo-Signature-V3": sign_v3(self._auth_token, method, url, params, nonce),
            "X-Plivo-Signature-V3-Nonce": nonce,
        }

    def voice_webhook(self, url: str, *, from_number: str, to_number: str) -> SignedRequest:
        form = {
            "CallUUID": self.call_id,
            "From": from_number.removeprefix("+"),  # Plivo sends numbers without the +
            "To": to_number.removeprefix("+"),
            "CallStatus": "ringing",
            "Direction": "inbound",
            "CallerName": from_number,
        }
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            **self.signed_headers("POST", url, form),
        }
        return SignedRequest("POST", url, headers, urlencode(form).encode())

    def read_answer(self, content_type: str, body: str) -> StreamOrder:
        stream = ElementTree.fromstring(body).find("./Stream")
        if stream is None or not (stream.text or "").strip():
            raise ValueError(f"no <Stream>wss://…</Stream> in {body!r}")
        if stream.get("bidirectional") != "true":
            raise ValueError(f"the <Stream> is not bidirectional in {body!r}")
        url = (stream.text or "").strip()
        encoding, _, rate = stream.get("contentType", "audio/x-mulaw;rate=8000").partition(";")
        self.stream_format = (L16 if encoding == "audio/x-l16" else MULAW, int(rate[5:] or 8000))
        self._extra_headers = stream.get("extraHeaders", "")
        parameters = decode_extra_headers(self._extra_headers) if self._extra_headers else None
        if parameters is None:
            parameters = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        return StreamOrder(url, parameters)

    def stream_url(self, url: str, parameters: Mapping[str, str]) -> str:
        return url  # the parameters travel in the stream's opening frames

    def stream_headers(self, url: str) -> Mapping[str, str]:
        return {}  # Plivo does not sign the WebSocket upgrade

    def opening(self, parameters: Mapping[str, str]) -> list[str | bytes]:
        """Plivo sends no `connected`: `start` comes first, with the stream's extra headers."""
        self._extra_headers = encode_extra_headers(parameters) if parameters else ""
        start: dict[str, Any] = {
            "event": "start",
            "sequenceNumber": self._next(),
            "start": {
                "callId": self.call_id,
                "streamId": self.stream_id,
                "accountId": self.auth_id,
                "tracks": ["inbound"],
                "mediaFormat": {
                    "encoding": "audio/x-l16" if self.stream_format[0] == L16 else "audio/x-mulaw",
                    "sampleRate": self.stream_format[1],
                },
            },
            "extra_headers": self._extra_headers,
        }
        return [json.dumps(start)]

    def media(self, audio: bytes) -> str | bytes:
        """20 ms of caller audio: 160 bytes of 8 kHz μ-law."""
        self._chunk += 1
        return json.dumps(
            {
                "event": "media",
                "sequenceNumber": self._next(),
                "streamId": self.stream_id,
                "media": {
                    "track": "inbound",
                    "timestamp": str(_FIRST_TIMESTAMP_MS + (self._chunk - 1) * 20),
                    "chunk": self._chunk,
                    "payload": base64.b64encode(audio).decode("ascii"),
                },
                "extra_headers": self._extra_headers,
            }
        )

    def dtmf(self, digit: str) -> str | bytes:
        return json.dumps(
            {
                "event": "dtmf",
                "sequenceNumber": self._next(),
                "streamId": self.stream_id,
                "dtmf": {"digit": digit, "track": "inbound"},
            }
        )

    def mark_played(self, name: str) -> str | bytes:
        return json.dumps(
            {
                "event": "playedStream",
                "sequenceNumber": self._next(),
                "streamId": self.stream_id,
                "name": name,
            }
        )

    def cleared(self) -> str | bytes:
        """Plivo's acknowledgement of a `clearAudio`."""
        return json.dumps(
            {"event": "clearedAudio", "sequenceNumber": self._next(), "streamId": self.stream_id}
        )

    def stop(self) -> str | bytes:
        return json.dumps(
            {
                "event": "stop",
                "sequenceNumber": self._next(),
                "streamId": self.stream_id,
                "reason": "call_hangup",
            }
        )

    def read(self, frame: str | bytes) -> PhoneEvent:
        message = json.loads(frame)
        event = message.get("event")
        if event == "playAudio":
            return PhoneEvent("media", audio=base64.b64decode(message["media"]["payload"]))
        if event == "checkpoint":
            return PhoneEvent("mark", name=str(message["name"]))
        if event == "clearAudio":
            return PhoneEvent("clear")
        return PhoneEvent("other")
