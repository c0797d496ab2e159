"""Vonage Voice API as a `Carrier`: answer URL, NCCO, the WebSocket endpoint, the Calls API.

Sans-IO apart from `VonageRest` (aiohttp). What differs from the other carriers, and how it is
met here:

* **the answer URL** is a GET with `uuid`, `conversation_uuid`, `from`, `to` in the query (or,
  with `answer_method` POST, the same fields as a JSON body). Numbers are E.164 without `+`
  (`447700900000`); `inbound_call` adds it. No account is named: the call's account is the
  configured application id ("" without one), on the webhook and the stream alike;
* **signed callbacks** carry `Authorization: Bearer <JWT>`, HS256 with the account's signature
  secret, claims `iat` (seconds), `jti`, `iss` "Vonage", `api_key`, `application_id`,
  `payload_hash` (SHA-256 hex of the payload). For a GET the payload is the query as a JSON
  object in the order sent, without whitespace; for a POST the body. We refuse a JWT whose
  `iat` is more than `SIGNATURE_TOLERANCE_S` away (replay) or whose `payload_hash` matches
  neither form;
* **the answer** is an NCCO `connect` to a `websocket` endpoint, `content-type`
  `audio/l16;rate=16000` (wideband, the default; `VONAGE_AUDIO_RATE_HZ=8000` asks for
  narrowband), with `connect`'s parameters as the endpoint's `headers` (≤ 512 bytes
  in the docs; beyond that they go in the URL's query and `codec(upgrade)` reads them).
  Refusing is a `talk` action alone: the call ends when the NCCO does;
* **the stream**: the first message is text, `{"event": "websocket:connected", "content-type":
  …, <headers at the top level>}`; then binary messages of raw 16-bit little-endian PCM, 20 ms
  each (640 bytes at 16 kHz, 320 at 8 kHz), both ways; the rate is the content-type's.
  Text events: `websocket:dtmf` (`digit`, `duration`),
  `websocket:notify` (the `payload` of a `notify` we sent, once the audio before it played),
  `websocket:cleared` (after our `clear`). Vonage names neither the stream nor (unless we put it
  in the headers) the call: the codec makes up a stream id, the call id is the `call_sid`
  header the server passes. There is no stop event: the socket closes;
* **the upgrade is not checked** (`verify_stream` → None): streams are protected by the
  binding the webhook issued (`binding_secret` is the signature secret);
* **REST** (`VonageRest`): `PUT {base}/v1/calls/{uuid}` with `{"action": "hangup"}` or
  `{"action": "transfer", "destination": {"type": "ncco", "ncco": [connect…]}}`, authorised by
  an application JWT (RS256 with the application's private key; `application_id`, `iat`,
  `exp`, `jti`).

Docs relied on:
https://developer.vonage.com/en/voice/voice-api/concepts/websockets (connect/websocket endpoint,
content-type, headers ≤ 512 bytes, websocket:connected with the headers at the top level,
320-byte 20 ms frames, websocket:dtmf; notify/clear/websocket:notify/websocket:cleared as
summarised by the AsyncAPI description generated from that page,
github.com/api-evangelist/vonage asyncapi/vonage-asyncapi.yml),
https://developer.vonage.com/en/voice/voice-api/webhook-reference (answer webhook fields, GET
query or POST JSON, numbers without `+`),
https://developer.vonage.com/en/voice/voice-api/ncco-reference (connect, talk, phone/sip
endpoints),
https://developer.vonage.com/en/messages/concepts/signed-webhooks and
https://developer.vonage.com/en/getting-started/concepts/webhooks#decoding-signed-webhooks
(HS256 JWT claims), https://api.support.vonage.com/hc/en-us/articles/19033783342876 (Voice
payload_hash over the query or body as compact JSON),
https://developer.vonage.com/en/voice/voice-api/code-snippets/transfer-a-call-inline-ncco and
the websockets guide's `PUT https://api.nexmo.com/v1/calls/{uuid}` `{"action": "hangup"}`,
https://developer.vonage.com/en/getting-started/concepts/authentication (application JWTs).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp

from gateway.telephony.base import (
    CarrierEvent,
    CarrierNotice,
    Dtmf,
    MarkEcho,
    MediaFrame,
    StreamStart,
    StreamStop,
    TelephonyProtocolError,
    UnknownEvent,
)
from gateway.telephony.carrier import (
    L16,
    CarrierRequestError,
    CarrierRest,
    CarrierRestError,
    InboundCall,
    WebhookAnswer,
    WebhookRequest,
)
from gateway.telephony.json_fields import show as _show
from gateway.telephony.json_fields import type_name as _type_name
from gateway.tools.spec import TransferTarget

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from gateway.settings import Settings

__all__ = [
    "CONTENT_TYPE",
    "CONTENT_TYPES",
    "DEFAULT_API_BASE_URL",
    "DISCONNECTED_EVENT",
    "DTMF_KEYS",
    "MARK_PAYLOAD_KEY",
    "MAX_CUSTOM_PARAMETERS",
    "MAX_CUSTOM_PARAMETERS_CHARS",
    "MAX_HEADERS_BYTES",
    "MAX_MEDIA_PAYLOAD_BYTES",
    "MAX_TEXT_FRAME_CHARS",
    "RATES",
    "REST_TIMEOUT_S",
    "SIGNATURE_TOLERANCE_S",
    "JwtClaims",
    "VonageCarrier",
    "VonageCodec",
    "VonageRest",
    "application_jwt",
    "build_connect_ncco",
    "build_talk_ncco",
    "build_transfer_ncco",
    "decode_hs256",
    "encode_hs256",
    "is_call_uuid",
    "payload_hashes",
    "rest_error_detail",
]

CONTENT_TYPES: Final = {8000: "audio/l16;rate=8000", 16000: "audio/l16;rate=16000"}
"""The endpoint content-types Vonage streams, by rate (both carry L16 both ways)."""
RATES: Final = {content_type: rate for rate, content_type in CONTENT_TYPES.items()}
"""The rate each of those content-types stands for."""
SAMPLE_RATE_HZ: Final = 16000
"""The NCCO's default rate: wideband, straight into Live's 16 kHz input."""
CONTENT_TYPE: Final = CONTENT_TYPES[SAMPLE_RATE_HZ]
"""What the NCCO asks for by default."""
MAX_MEDIA_PAYLOAD_BYTES: Final = 3200
"""Largest inbound binary message: 100 ms of 16 kHz L16 (Vonage sends 20 ms, 640 bytes)."""
MAX_TEXT_FRAME_CHARS: Final = 8192
"""Largest text message (`websocket:connected` carries our ≤ 512-byte headers)."""
MAX_HEADERS_BYTES: Final = 512
"""Vonage's limit on the websocket endpoint's `headers` (compact JSON)."""
MAX_CUSTOM_PARAMETERS: Final = 32
MAX_CUSTOM_PARAMETERS_CHARS: Final = 4000
MARK_PAYLOAD_KEY: Final = "name"
"""Key of a `notify` payload that carries the mark's name."""
DISCONNECTED_EVENT: Final = "websocket:disconnected"
"""Not a Vonage message (Vonage just closes the socket): the fake phone's hang-up, taken as a
StreamStop so tools that cannot close a socket can end a stream."""
DTMF_KEYS: Final = frozenset("0123456789*#ABCD")
SIGNATURE_TOLERANCE_S: Final = 300
"""Largest distance between a webhook JWT's `iat` and our clock (either way) we accept."""
DEFAULT_API_BASE_URL: Final = "https://api.nexmo.com"
REST_TIMEOUT_S: Final = 10.0
APPLICATION_JWT_LIFETIME_S: Final = 300

_MAX_JWT_CHARS: Final = 4096
_MAX_LABEL_CHARS: Final = 64
_MAX_MARK_NAME_CHARS: Final = 256
_MAX_ERROR_CHARS: Final = 200
_CALL_UUID: Final = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
_VONAGE_NUMBER: Final = re.compile(r"[1-9][0-9]{1,14}")
_RESERVED_KEYS: Final = frozenset({"event", "content-type"})

_JsonObject = dict[str, Any]


def is_call_uuid(value: str) -> bool:
    """A Vonage call `uuid` (8-4-4-4-12 hex digits): safe in a URL path."""
    return _CALL_UUID.fullmatch(value) is not None




def _compact(obj: object) -> str:
    """JSON as JavaScript's JSON.stringify writes it (what Vonage hashes and sends)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------- JWTs


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    if _B64URL.fullmatch(text) is None or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class JwtClaims:
    """The claims of a verified webhook JWT that we act on."""

    issued_at: int
    payload_hash: str | None
    application_id: str | None
    raw: Mapping[str, Any] = field(repr=False)


def encode_hs256(secret: str, claims: Mapping[str, Any]) -> str:
    """A JWT signed as Vonage signs callbacks (HS256 with the signature secret)."""
    header = _b64url(_compact({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64url(_compact(dict(claims)).encode())
    signing_input = f"{header}.{body}".encode("ascii")
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{body}.{_b64url(signature)}"


def decode_hs256(secret: str, token: str) -> JwtClaims:
    """The claims of `token` if HS256-signed with `secret`; ValueError saying why not."""
    if len(token) > _MAX_JWT_CHARS:
        raise ValueError("token too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT (three dot-separated parts)")
    try:
        header = json.loads(_unb64url(parts[0]))
        signature = _unb64url(parts[2])
    except (ValueError, binascii.Error):
        raise ValueError("JWT header or signature is not base64url JSON") from None
    if type(header) is not dict or header.get("alg") != "HS256":
        raise ValueError("JWT alg is not HS256")  # never `none`, never a key-type confusion
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    expected = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise ValueError("JWT signature does not match")
    try:
        claims = json.loads(_unb64url(parts[1]))
    except (ValueError, binascii.Error):
        raise ValueError("JWT claims are not base64url JSON") from None
    if type(claims) is not dict:
        raise ValueError("JWT claims are not an object")
    issued_at = claims.get("iat")
    if type(issued_at) is not int:
        raise ValueError("JWT iat is not an integer")
    payload_hash = claims.get("payload_hash")
    application_id = claims.get("application_id")
    return JwtClaims(
        issued_at=issued_at,
        payload_hash=payload_hash if isinstance(payload_hash, str) else None,
        application_id=application_id if isinstance(application_id, str) else None,
        raw=MappingProxyType(claims),
    )


def payload_hashes(method: str, url: str, body: bytes) -> frozenset[str]:
    """The SHA-256 hex digests a genuine `payload_hash` may have: for a GET the query as a
    compact JSON object in the order sent; for a POST the raw body and its compact form."""

    def digest(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    if method.upper() == "GET":
        query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        return frozenset({digest(_compact(query).encode())})
    forms = {digest(body)}
    try:
        forms.add(digest(_compact(json.loads(body)).encode()))
    except (ValueError, RecursionError):
        pass
    return frozenset(forms)


def application_jwt(
    application_id: str,
    private_key: rsa.RSAPrivateKey,
    *,
    now: float,
    lifetime_s: int = APPLICATION_JWT_LIFETIME_S,
) -> str:
    """An application JWT for the Voice REST API (RS256, `application_id` `iat` `exp` `jti`)."""
    issued_at = int(now)
    header = _b64url(_compact({"alg": "RS256", "typ": "JWT"}).encode())
    claims = {
        "application_id": application_id,
        "iat": issued_at,
        "exp": issued_at + lifetime_s,
        "jti": str(uuid.uuid4()),
    }
    body = _b64url(_compact(claims).encode())
    signing_input = f"{header}.{body}".encode("ascii")
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signature = private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{body}.{_b64url(signature)}"


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """The application's RSA private key from its PEM; ValueError naming VONAGE_PRIVATE_KEY
    (a `\\n`-escaped one-line PEM, as env files hold it, is accepted)."""
    # cryptography (~8 MiB resident) is loaded only when Vonage REST credentials are set.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    text = pem.strip().replace("\\n", "\n")
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("VONAGE_PRIVATE_KEY is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("VONAGE_PRIVATE_KEY is not an RSA key (Vonage signs RS256)")
    return key


# ---------------------------------------------------------------------- NCCO


def build_connect_ncco(
    stream_url: str, parameters: Mapping[str, str], *, rate_hz: int = SAMPLE_RATE_HZ
) -> str:
    """The NCCO that streams the call both ways as L16 at `rate_hz` to `stream_url`, with the
    parameters as the endpoint's `headers` (in the URL's query when over 512 bytes).
    Raises ValueError for a URL Vonage cannot use (not ws(s)://, or with a query) or a rate
    it does not stream."""
    if rate_hz not in CONTENT_TYPES:
        raise ValueError(f"Vonage streams L16 at 8000 or 16000 Hz, not {rate_hz}")
    parts = urlsplit(stream_url)
    if parts.scheme not in ("wss", "ws") or not parts.netloc:
        raise ValueError(f"stream_url must be an absolute wss:// URL, got {stream_url!r}")
    if parts.query:
        raise ValueError(f"stream_url must not have a query string, got {stream_url!r}")
    endpoint: _JsonObject = {
        "type": "websocket",
        "uri": stream_url,
        "content-type": CONTENT_TYPES[rate_hz],
    }
    headers = dict(parameters)
    if len(_compact(headers).encode()) <= MAX_HEADERS_BYTES:
        endpoint["headers"] = headers
    else:
        endpoint["uri"] = f"{stream_url}?{urlencode(headers)}"
    return _compact([{"action": "connect", "endpoint": [endpoint]}])


def build_talk_ncco(message: str) -> str:
    """An NCCO that says `message`; the call ends with it (calls we turn away)."""
    return _compact([{"action": "talk", "text": message}])


def _vonage_number(number: str) -> str:
    return number.removeprefix("+")


def build_transfer_ncco(target: TransferTarget) -> list[_JsonObject]:
    """`connect` to a phone number (E.164 without `+`) or a SIP URI; `from` = the caller id."""
    if target.number.startswith("sip:"):
        endpoint: _JsonObject = {"type": "sip", "uri": target.number}
    else:
        endpoint = {"type": "phone", "number": _vonage_number(target.number)}
    action: _JsonObject = {"action": "connect", "endpoint": [endpoint]}
    if target.caller_id:
        action["from"] = _vonage_number(target.caller_id)
    return [action]


# ---------------------------------------------------------------------- the media stream


def _parameters(msg: _JsonObject, query: Mapping[str, str]) -> dict[str, str]:
    """`connect`'s parameters: the string fields of `websocket:connected` besides its own,
    else the upgrade's query. Non-string fields are Vonage's, not ours: skipped."""
    params = {k: v for k, v in msg.items() if k not in _RESERVED_KEYS and type(v) is str}
    if not params:
        params = dict(query)
    if len(params) > MAX_CUSTOM_PARAMETERS:
        raise TelephonyProtocolError(
            f"websocket:connected has {len(params)} parameters, over the limit of "
            f"MAX_CUSTOM_PARAMETERS={MAX_CUSTOM_PARAMETERS}"
        )
    total = sum(len(name) + len(value) for name, value in params.items())
    if total > MAX_CUSTOM_PARAMETERS_CHARS:
        raise TelephonyProtocolError(
            f"websocket:connected parameters hold {total} chars of names and values, over the "
            f"limit of MAX_CUSTOM_PARAMETERS_CHARS={MAX_CUSTOM_PARAMETERS_CHARS}"
        )
    return params


def _str(parent: _JsonObject, key: str, path: str, *, max_chars: int = _MAX_LABEL_CHARS) -> str:
    value = parent.get(key)
    if value is None:
        raise TelephonyProtocolError(f"missing field {path}")
    if type(value) is not str:
        raise TelephonyProtocolError(f"{path} must be a string, got {_type_name(value)}")
    if len(value) > max_chars:
        raise TelephonyProtocolError(f"{path} is {len(value)} chars, over the limit of {max_chars}")
    return value


class VonageCodec:
    """MediaStreamCodec for one Vonage WebSocket (stateful: a fresh one per stream).

    Vonage gives the stream no id, so the codec makes one up; `call_sid` comes from the
    `call_sid` header the server puts in the NCCO (the binding covers it). `query` is the
    upgrade's query: the parameters when they did not fit the endpoint's `headers`.
    """

    name: Final = "vonage"

    def __init__(self, query: Mapping[str, str] | None = None, *, account_id: str = "") -> None:
        self._query = dict(query or {})
        self._account_id = account_id
        self.stream_id = f"vonage-{uuid.uuid4()}"
        self._start: StreamStart | None = None
        self._rate_hz = SAMPLE_RATE_HZ
        self._audio_bytes = 0
        self._chunk = 0

    def parse(self, frame: str | bytes) -> CarrierEvent:
        """One inbound message as an event; TelephonyProtocolError names what is malformed."""
        if not isinstance(frame, str):
            return self._media(bytes(frame))
        if len(frame) > MAX_TEXT_FRAME_CHARS:  # before any decoding work
            raise TelephonyProtocolError(
                f"text frame is {len(frame)} chars, over the limit of {MAX_TEXT_FRAME_CHARS}"
            )
        try:
            msg = json.loads(frame)
        except json.JSONDecodeError as exc:
            raise TelephonyProtocolError(f"frame is not valid JSON ({exc})") from None
        except RecursionError:
            raise TelephonyProtocolError("frame is not valid JSON (nested too deeply)") from None
        if type(msg) is not dict:
            raise TelephonyProtocolError(f"frame must be a JSON object, got {_type_name(msg)}")
        event = _str(msg, "event", "event")
        if event == "websocket:connected":
            return self._connected(msg)
        if event == "websocket:dtmf":
            return self._dtmf(msg)
        if event == "websocket:notify":
            return self._notify(msg)
        if event == "websocket:cleared":
            return CarrierNotice(stream_sid=self.stream_id, event=event)
        if event == DISCONNECTED_EVENT:
            start = self._start
            return StreamStop(
                stream_sid=self.stream_id,
                call_sid=start.call_sid if start is not None else "",
                account_sid=self._account_id,
                sequence_number=None,
            )
        return UnknownEvent(event=event, raw=MappingProxyType(msg))

    def _connected(self, msg: _JsonObject) -> StreamStart:
        content_type = _str(msg, "content-type", "content-type")
        normalized = content_type.replace(" ", "").lower()
        if normalized not in RATES:
            raise TelephonyProtocolError(
                f"content-type must be one of {', '.join(RATES)} (what the NCCO asks for), "
                f"got {_show(content_type)}"
            )
        rate_hz = RATES[normalized]
        if self._start is not None and rate_hz != self._rate_hz:
            raise TelephonyProtocolError("a second websocket:connected, at another rate")
        self._rate_hz = rate_hz
        params = _parameters(msg, self._query)
        # Our `call_sid` header (the binding covers it), else a `uuid` should Vonage send one.
        call_sid = params.get("call_sid") or params.get("uuid") or ""
        if call_sid and not is_call_uuid(call_sid):
            raise TelephonyProtocolError(
                f"call_sid must be a Vonage call uuid, got {_show(call_sid)}"
            )
        event = StreamStart(
            stream_sid=self.stream_id,
            call_sid=call_sid.lower(),
            account_sid=self._account_id,
            tracks=("inbound",),
            custom_parameters=MappingProxyType(params),
            encoding=L16,
            sample_rate_hz=rate_hz,
            channels=1,
            sequence_number=None,
        )
        if self._start is None:
            self._start = event
        elif self._start.call_sid != event.call_sid:
            raise TelephonyProtocolError("a second websocket:connected, for another call")
        return event

    def _media(self, payload: bytes) -> MediaFrame:
        size = len(payload)
        if size > MAX_MEDIA_PAYLOAD_BYTES:
            raise TelephonyProtocolError(
                f"binary audio frame is {size} bytes, over the limit of "
                f"MAX_MEDIA_PAYLOAD_BYTES={MAX_MEDIA_PAYLOAD_BYTES}"
            )
        if size == 0 or size % 2:
            raise TelephonyProtocolError(
                f"binary audio frame is {size} bytes, not whole 16-bit samples"
            )
        self._chunk += 1
        timestamp_ms = self._audio_bytes // (2 * self._rate_hz // 1000)
        self._audio_bytes += size
        return MediaFrame(
            stream_sid=self.stream_id,
            track="inbound",
            chunk=self._chunk,
            timestamp_ms=timestamp_ms,
            payload=payload,
            sequence_number=None,
        )

    def _dtmf(self, msg: _JsonObject) -> Dtmf:
        digit = _str(msg, "digit", "digit")
        if digit not in DTMF_KEYS:  # a "digit" reaches the model as text: only keys pass
            raise TelephonyProtocolError(
                f"digit must be one key of 0-9, *, #, A-D, got {_show(digit)}"
            )
        return Dtmf(stream_sid=self.stream_id, digit=digit, track="inbound", sequence_number=None)

    def _notify(self, msg: _JsonObject) -> MarkEcho:
        payload = msg.get("payload")
        if type(payload) is not dict:
            raise TelephonyProtocolError(f"payload must be an object, got {_type_name(payload)}")
        path = f"payload.{MARK_PAYLOAD_KEY}"
        name = _str(payload, MARK_PAYLOAD_KEY, path, max_chars=_MAX_MARK_NAME_CHARS)
        return MarkEcho(stream_sid=self.stream_id, name=name, sequence_number=None)

    def build_media(self, stream_sid: str, audio: bytes) -> bytes:
        """A binary message of raw L16 at the stream's rate (Vonage wants 20 ms per message:
        640 bytes at 16 kHz)."""
        return bytes(audio)

    def build_mark(self, stream_sid: str, name: str) -> str:
        """`notify`: Vonage sends its payload back as `websocket:notify` once the audio
        before it has played."""
        return _compact({"action": "notify", "payload": {MARK_PAYLOAD_KEY: name}})

    def build_clear(self, stream_sid: str) -> str:
        """`clear`: Vonage drops the audio it has buffered (acknowledged: websocket:cleared)."""
        return '{"action":"clear"}'


# ---------------------------------------------------------------------- REST


class VonageRest:
    """Hang-up and transfer through the Voice API's modify-call resource; one HTTP session
    per request, each authorised by a fresh application JWT."""

    def __init__(
        self,
        application_id: str,
        private_key: str | rsa.RSAPrivateKey,
        *,
        base_url: str = DEFAULT_API_BASE_URL,
        timeout_s: float = REST_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.application_id = application_id
        self._key = load_private_key(private_key) if isinstance(private_key, str) else private_key
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> VonageRest | None:
        application_id = getattr(settings, "vonage_application_id", None)
        private_key = getattr(settings, "vonage_private_key", None)
        if not (application_id and private_key):
            return None
        base_url = getattr(settings, "vonage_api_base_url", None) or DEFAULT_API_BASE_URL
        return cls(application_id, private_key, base_url=base_url)

    async def hang_up(self, account_id: str | None, call_id: str) -> None:
        """End the call (204; 404, the call has already ended, counts as done)."""
        await self._modify(call_id, {"action": "hangup"}, ok_404=True)

    async def transfer(self, account_id: str | None, call_id: str, target: TransferTarget) -> None:
        """Replace the call's NCCO with a `connect` to `target` (our stream ends)."""
        body = {
            "action": "transfer",
            "destination": {"type": "ncco", "ncco": build_transfer_ncco(target)},
        }
        await self._modify(call_id, body)

    async def _modify(self, call_id: str, body: Mapping[str, Any], *, ok_404: bool = False) -> None:
        if not is_call_uuid(call_id):  # never a URL path built from text that is not an id
            raise CarrierRestError("not a Vonage call uuid")
        url = f"{self.base_url}/v1/calls/{call_id.lower()}"
        token = application_jwt(self.application_id, self._key, now=self._clock())
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        try:
            async with asyncio.timeout(self.timeout_s), aiohttp.ClientSession() as http:
                async with http.put(url, json=dict(body), headers=headers) as response:
                    if 200 <= response.status < 300 or (ok_404 and response.status == 404):
                        return
                    detail = rest_error_detail(await response.content.read(4096))
                    raise CarrierRestError(
                        f"Vonage answered {response.status} to {body['action']}: {detail}"
                    )
        except TimeoutError:
            raise CarrierRestError(f"no answer from Vonage within {self.timeout_s:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise CarrierRestError(f"cannot reach Vonage: {exc!r}") from None


def rest_error_detail(body: bytes) -> str:
    """Vonage's problem document (`title: detail`), else the start of the body."""
    text = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        words = [str(parsed[k]) for k in ("title", "detail", "error_title") if parsed.get(k)]
        if words:
            return ": ".join(words)[:_MAX_ERROR_CHARS]
    return (text.strip() or "(empty body)")[:_MAX_ERROR_CHARS]


# ---------------------------------------------------------------------- Vonage as a Carrier


def _e164(value: str) -> str | None:
    """`from`/`to` as the gateway writes numbers: Vonage's E.164 has no `+`."""
    if not value:
        return None
    return f"+{value}" if _VONAGE_NUMBER.fullmatch(value) else value


class VonageCarrier:
    """Vonage Voice with an NCCO `connect` to a WebSocket (L16 both ways, 16 kHz by default)."""

    name: Final = "vonage"

    def __init__(
        self,
        signature_secret: str | None,
        *,
        application_id: str | None = None,
        rest: VonageRest | None = None,
        account_allowlist: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.time,
        rate_hz: int = SAMPLE_RATE_HZ,
    ) -> None:
        if rate_hz not in CONTENT_TYPES:
            raise ValueError(f"Vonage streams L16 at 8000 or 16000 Hz, not {rate_hz}")
        self.rate_hz: Final = rate_hz
        self._secret = signature_secret or None
        self._application_id = application_id or None
        self._rest = rest
        self._account_allowlist = account_allowlist
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> VonageCarrier:
        return cls(
            getattr(settings, "vonage_signature_secret", None),
            application_id=getattr(settings, "vonage_application_id", None),
            rest=VonageRest.from_settings(settings),
            rate_hz=getattr(settings, "vonage_audio_rate_hz", SAMPLE_RATE_HZ),
        )

    @property
    def account_allowlist(self) -> frozenset[str]:
        return self._account_allowlist

    @property
    def signed(self) -> bool:
        return self._secret is not None

    @property
    def binding_secret(self) -> str | None:
        return self._secret

    @property
    def upgrade_vouches_call(self) -> bool:
        return False  # streams are vouched for by the webhook's binding

    def verify_webhook(self, request: WebhookRequest) -> str | None:
        secret = self._secret
        if secret is None:
            return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "missing_signature"
        try:
            claims = decode_hs256(secret, token.strip())
        except ValueError:
            return "invalid_signature"
        if abs(self._clock() - claims.issued_at) > SIGNATURE_TOLERANCE_S:
            return "stale_signature"
        if claims.payload_hash is None or claims.payload_hash.lower() not in payload_hashes(
            request.method, request.url, request.body
        ):
            return "invalid_signature"  # a genuine JWT replayed with other fields
        if (
            self._application_id is not None
            and claims.application_id is not None
            and claims.application_id != self._application_id
        ):
            return "invalid_signature"  # the secret is the account's: another app's call
        return None

    def verify_stream(self, request: WebhookRequest) -> str | None:
        return None  # the upgrade is not signed as we ask for it; the call binding guards it

    def inbound_call(self, request: WebhookRequest) -> InboundCall:
        params = request.params
        call_uuid = params.get("uuid", "")
        # Signed calls are bound: then the uuid must be there (and always well-formed if sent).
        if (call_uuid or self.signed) and not is_call_uuid(call_uuid):
            raise CarrierRequestError("uuid is not a Vonage call uuid")
        return InboundCall(
            call_id=call_uuid.lower(),
            account_id=self._application_id or "",
            from_number=_e164(params.get("from", "")),
            to_number=_e164(params.get("to", "")),
        )

    def connect(self, stream_url: str, parameters: Mapping[str, str]) -> WebhookAnswer:
        answer = build_connect_ncco(stream_url, parameters, rate_hz=self.rate_hz)
        return WebhookAnswer(answer, "application/json")

    def refuse(self, message: str) -> WebhookAnswer:
        return WebhookAnswer(build_talk_ncco(message), "application/json")

    def hang_up_answer(self) -> WebhookAnswer:
        return WebhookAnswer("[]", "application/json")  # an NCCO that does nothing: it ends

    def codec(self, upgrade: WebhookRequest) -> VonageCodec:
        return VonageCodec(upgrade.params, account_id=self._application_id or "")

    def rest(self) -> CarrierRest | None:
        return self._rest
