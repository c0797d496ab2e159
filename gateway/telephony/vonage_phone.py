"""The phone side of a Vonage call (sans-IO): the answer-URL request as Vonage signs it (an
HS256 JWT over the query), the WebSocket messages Vonage sends, and what the gateway sends back,
read (a `CarrierPhone`).

Audio is raw L16 in binary messages both ways at the rate the NCCO asked for (16 kHz, 640
bytes per 20 ms, by default; `read_answer` notes it in `rate_hz`); `media` takes it as is.
Vonage has no stop message (it closes the socket): `stop` returns the codec's
`DISCONNECTED_EVENT`, a stand-in for tools that cannot close the socket themselves.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gateway.telephony.carrier import L16
from gateway.telephony.phone import PhoneEvent, SignedRequest, StreamOrder
from gateway.telephony.vonage import (
    CONTENT_TYPES,
    DISCONNECTED_EVENT,
    MARK_PAYLOAD_KEY,
    RATES,
    SAMPLE_RATE_HZ,
    encode_hs256,
)

__all__ = ["DEFAULT_API_KEY", "VonagePhone"]

DEFAULT_API_KEY: Final = "a1b2c3d4"
"""The `api_key` claim of the phone's JWTs (the account's key)."""


def _compact(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class VonagePhone:  # the conformance suite's Vonage phone (gateway.telephony.phone)
    """One Vonage call; its answer-URL request carries a JWT signed with `signature_secret`
    when given. `method` is the application's `answer_method`; `clock` dates the JWTs."""

    carrier: Final = "vonage"

    def __init__(
        self,
        signature_secret: str | None = None,
        application_id: str | None = None,
        *,
        method: Literal["GET", "POST"] = "GET",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = signature_secret
        self.application_id = application_id
        self.method: Literal["GET", "POST"] = method
        self._clock = clock
        self.call_id = str(uuid.uuid4())
        self.conversation_id = f"CON-{uuid.uuid4()}"
        self.rate_hz = SAMPLE_RATE_HZ
        """The stream's rate, from the NCCO's content-type once `read_answer` has seen it."""

    @property
    def stream_format(self) -> tuple[str, int]:
        """L16 at the NCCO's rate (16 kHz unless the gateway asks for 8)."""
        return L16, self.rate_hz

    def sign(self, payload: str) -> dict[str, str]:
        """The `Authorization` header Vonage would send with `payload` (the compact JSON it
        hashes) now; none without a secret."""
        if self._secret is None:
            return {}
        claims: dict[str, Any] = {
            "iat": int(self._clock()),
            "jti": str(uuid.uuid4()),
            "iss": "Vonage",
            "payload_hash": hashlib.sha256(payload.encode()).hexdigest(),
            "api_key": DEFAULT_API_KEY,
        }
        if self.application_id:
            claims["application_id"] = self.application_id
        return {"Authorization": f"Bearer {encode_hs256(self._secret, claims)}"}

    def voice_webhook(self, url: str, *, from_number: str, to_number: str) -> SignedRequest:
        fields = {
            "to": to_number.removeprefix("+"),  # Vonage sends numbers without the +
            "from": from_number.removeprefix("+"),
            "uuid": self.call_id,
            "conversation_uuid": self.conversation_id,
        }
        if self.method == "POST":
            body = _compact(fields)
            headers = {"Content-Type": "application/json", **self.sign(body)}
            return SignedRequest("POST", url, headers, body.encode())
        parts = urlsplit(url)
        pairs = [*parse_qsl(parts.query, keep_blank_values=True), *fields.items()]
        full = urlunsplit(parts._replace(query=urlencode(pairs)))
        return SignedRequest("GET", full, self.sign(_compact(dict(pairs))), b"")

    def read_answer(self, content_type: str, body: str) -> StreamOrder:
        ncco = json.loads(body)
        if not isinstance(ncco, list):
            raise ValueError(f"the answer is not an NCCO (a JSON array): {body[:200]!r}")
        for action in ncco:
            if not isinstance(action, dict) or action.get("action") != "connect":
                continue
            for endpoint in action.get("endpoint", []):
                if not isinstance(endpoint, dict) or endpoint.get("type") != "websocket":
                    continue
                content_type = str(endpoint.get("content-type"))
                if content_type not in RATES:
                    raise ValueError(f"the websocket is not L16 8/16 kHz: {body[:200]!r}")
                self.rate_hz = RATES[content_type]
                uri = str(endpoint.get("uri", ""))
                parameters = {str(k): str(v) for k, v in endpoint.get("headers", {}).items()}
                parameters.update(parse_qsl(urlsplit(uri).query, keep_blank_values=True))
                return StreamOrder(uri, parameters)
        raise ValueError(f"no connect to a websocket endpoint in {body[:200]!r}")

    def stream_url(self, url: str, parameters: Mapping[str, str]) -> str:
        return url  # the parameters travel in the stream's opening frames

    def stream_headers(self, url: str) -> Mapping[str, str]:
        return {}  # the upgrade is not signed (no endpoint `authorization` in our NCCO)

    def opening(self, parameters: Mapping[str, str]) -> list[str | bytes]:
        """`websocket:connected` with the endpoint's headers at the top level."""
        return [
            _compact(
                {
                    "event": "websocket:connected",
                    "content-type": CONTENT_TYPES[self.rate_hz],
                    **parameters,
                }
            )
        ]

    def media(self, audio: bytes) -> str | bytes:
        """20 ms of caller audio: L16 at `rate_hz` (640 bytes at 16 kHz), one binary message."""
        return bytes(audio)

    def dtmf(self, digit: str) -> str | bytes:
        return _compact({"event": "websocket:dtmf", "digit": digit, "duration": 260})

    def mark_played(self, name: str) -> str | bytes:
        return _compact({"event": "websocket:notify", "payload": {MARK_PAYLOAD_KEY: name}})

    def cleared(self) -> str | bytes:
        """Vonage's acknowledgement of a `clear`."""
        return _compact({"event": "websocket:cleared"})

    def stop(self) -> str | bytes:
        return _compact({"event": DISCONNECTED_EVENT})

    def read(self, frame: str | bytes) -> PhoneEvent:
        if isinstance(frame, bytes | bytearray):
            return PhoneEvent("media", audio=bytes(frame))
        try:
            message = json.loads(frame)
        except ValueError:
            return PhoneEvent("other")
        if not isinstance(message, dict):
            return PhoneEvent("other")
        action = message.get("action")
        if action == "notify" and isinstance(message.get("payload"), dict):
            return PhoneEvent("mark", name=str(message["payload"].get(MARK_PAYLOAD_KEY, "")))
        if action == "clear":
            return PhoneEvent("clear")
        return PhoneEvent("other")
