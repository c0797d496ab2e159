"""Plivo Voice as a `Carrier`: answer URL, Plivo XML, Audio Streams and the Call REST API.

Sans-IO apart from `PlivoRest` (aiohttp). What differs from Twilio, and how it is met here:

* **the answer URL** gets a form with `CallUUID`, `From`, `To`, `CallStatus`, `Direction` but no
  account: the call's account is the configured Auth ID (what the V3 signature and REST use),
  and the stream's `start.accountId` must equal it (the binding covers both). Numbers come in
  E.164 without the `+` (`14157654321`); `inbound_call` adds it;
* **signatures are V3**: `X-Plivo-Signature-V3` (one or more base64 signatures, comma-separated)
  and `X-Plivo-Signature-V3-Nonce`; HMAC-SHA256 with the Auth Token over, for a POST, the URL
  without query + `?` + its query re-sorted (`k=v&…`, then `.` if there was one) + the sorted
  form fields concatenated (`k` + `v`), then `.` + nonce; for a GET, the URL with its query
  re-sorted, then `.` + nonce (plivo-python `plivo/utils/signature_v3.py`). No timestamp: the
  nonce cannot go stale, and replays are stopped by the single-use stream binding;
* **the upgrade is not signed** (nothing in the docs says Plivo signs the WebSocket request),
  so streams are protected only by the binding the webhook issued;
* **parameters** travel in `<Stream extraHeaders>`, which Plivo sends back in the `start` event
  (`extra_headers`). It allows only `[A-Za-z0-9]` and 512 bytes, so all parameters ride in one
  header, `gwp=<base32 of their urlencoded form>`; if that does not fit, they go in the stream
  URL's query instead (`codec(upgrade)` reads `upgrade.params`);
* **media**: `playAudio` out (`media.contentType`, `sampleRate`, base64 `payload`),
  `checkpoint` for marks (echoed as `playedStream` once played, not after `clearAudio`),
  `clearAudio` (acknowledged by `clearedAudio`, passed on as a `CarrierNotice`). Media
  timestamps are Unix milliseconds; the codec makes them relative to the first frame;
* **REST**: `DELETE /v1/Account/{auth_id}/Call/{call_uuid}/` hangs up (204; 404, the call has
  already ended, counts as done; a `DELETE` without a call UUID hangs up every call of the
  account, so ids are checked before any path is built); transfer is `POST` to the same path
  with JSON `legs=aleg`, `aleg_url` (a URL we serve with `build_dial_xml`, fetched with
  `aleg_method=GET`) (202). Basic auth Auth ID : Auth Token.

Docs relied on:
https://www.plivo.com/docs/voice/xml/request/ (answer URL fields: CallUUID, From, To, …),
https://docs.plivo.com/docs/voice/api/call/make-a-call (E.164 without `+`: 14157654321),
https://docs.plivo.com/docs/voice/xml/request/validation and plivo-python
plivo/utils/signature_v3.py (V3 signatures),
https://docs.plivo.com/docs/voice/xml/audiostream (the Stream element: bidirectional,
keepCallAlive, contentType audio/x-mulaw;rate=8000 | audio/x-l16;rate=8000 | 16000,
extraHeaders ≤ 512 bytes of [A-Za-z0-9]),
https://plivo.com/docs/voice/audio-streaming/audio-streaming and
https://www.plivo.com/docs/voice-agents/audio-streaming/concepts/audio-streaming-reference
(start/media/dtmf/playedStream/clearedAudio in; playAudio/checkpoint/clearAudio out),
https://plivo.com/docs/voice/xml/the-stream-element/checkpoint-event,
https://support.plivo.com/hc/en-us/articles/32800291247001-Can-I-interrupt-and-clear-buffered-audio,
https://www.plivo.com/docs/voice/detailed-reference/api/call/hangup-a-call/,
https://plivo.com/docs/voice/api/call/transfer-a-call,
https://www.plivo.com/docs/voice/xml/dial/ and https://www.plivo.com/docs/voice/xml/dial/user/.
`stop` is not in the event docs; its shape (`streamId`, `reason`) is that of Plivo's own
stream SDK (github.com/plivo/plivo-stream-sdk-java, StopEvent).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import parse_qs, parse_qsl, urlencode, urlparse, urlsplit, urlunparse
from xml.etree import ElementTree

import aiohttp

from gateway.settings import Settings
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
    MULAW,
    CarrierRequestError,
    CarrierRest,
    CarrierRestError,
    InboundCall,
    WebhookAnswer,
    WebhookRequest,
)
from gateway.telephony.json_fields import decimal_int
from gateway.telephony.json_fields import json_object as _object
from gateway.telephony.json_fields import show as _show
from gateway.telephony.json_fields import type_name as _type_name
from gateway.telephony.numbers import E164, E164_PATTERN
from gateway.tools.spec import TransferTarget

__all__ = [
    "DIAL_TARGET_PARAMETER",
    "DTMF_KEYS",
    "EXTRA_HEADER_KEY",
    "MAX_CUSTOM_PARAMETERS",
    "MAX_CUSTOM_PARAMETERS_CHARS",
    "MAX_EXTRA_HEADERS_BYTES",
    "MAX_MEDIA_PAYLOAD_BYTES",
    "MAX_START_FRAME_CHARS",
    "MAX_STREAMING_FRAME_CHARS",
    "PlivoCarrier",
    "PlivoCodec",
    "PlivoRest",
    "build_dial_xml",
    "build_hangup_xml",
    "build_speak_hangup_xml",
    "build_stream_xml",
    "decode_extra_headers",
    "encode_extra_headers",
    "is_call_uuid",
    "sign_v3",
]

MAX_MEDIA_PAYLOAD_BYTES: Final = 3200
"""Largest decoded inbound payload: 100 ms of 16 kHz L16 (400 ms of μ-law). Plivo sends 20 ms
chunks (160 bytes of μ-law, 640 of 16 kHz L16); the margin is for a chunk size the docs do not
pin down, not for hostile peers."""
CONTENT_TYPES: Final = (
    "audio/x-mulaw;rate=8000",
    "audio/x-l16;rate=8000",
    "audio/x-l16;rate=16000",
)
"""The `<Stream contentType>` values Plivo streams bidirectionally (PLIVO_STREAM_CONTENT_TYPE)."""
DEFAULT_CONTENT_TYPE: Final = CONTENT_TYPES[0]
MAX_STREAMING_FRAME_CHARS: Final = 8192
"""Largest frame of any kind but `start` (media: a payload of up to 3200 bytes as base64, plus
the echoed `extra_headers`)."""
MAX_START_FRAME_CHARS: Final = 16 * 1024
MAX_CUSTOM_PARAMETERS: Final = 32
MAX_CUSTOM_PARAMETERS_CHARS: Final = 4000
"""Names and values of the stream's parameters together."""
MAX_EXTRA_HEADERS_BYTES: Final = 512
"""Plivo's limit on `<Stream extraHeaders>`."""
EXTRA_HEADER_KEY: Final = "gwp"
"""The one extra header that carries `connect`'s parameters (alphanumeric, as Plivo requires)."""
DIAL_TARGET_PARAMETER: Final = "number"
"""Query parameter of a transfer's `aleg_url` naming the target (what the server's dial URL
carries and the conformance suite reads)."""
DIAL_CALLER_ID_PARAMETER: Final = "caller_id"
DIAL_PATH: Final = "/plivo/dial"
"""Where Plivo fetches a transfer's `<Dial>` (the gateway serves `dial_answer` there)."""
_E164_OR_SIP: Final = re.compile(rf"{E164_PATTERN}|sip:[A-Za-z0-9._%+@:;=-]{{1,200}}")
DTMF_KEYS: Final = frozenset("0123456789*#ABCD")
DEFAULT_API_BASE_URL: Final = "https://api.plivo.com"
REST_TIMEOUT_S: Final = 10.0

_MAX_ID_CHARS: Final = 64  # UUIDs are 36, Auth IDs 20
_MAX_MARK_NAME_CHARS: Final = 256
_MAX_LABEL_CHARS: Final = 64
_MAX_TRACKS: Final = 4
_MAX_INT_DIGITS: Final = 18
_MAX_EXTRA_HEADERS_CHARS: Final = 2048  # what we accept back (we send ≤ 512)
_MAX_MEDIA_PAYLOAD_B64_CHARS: Final = 4 * -(-MAX_MEDIA_PAYLOAD_BYTES // 3)
_MAX_ANY_FRAME_CHARS: Final = max(MAX_STREAMING_FRAME_CHARS, MAX_START_FRAME_CHARS)
_CALL_UUID: Final = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_AUTH_ID: Final = re.compile(r"[A-Za-z0-9]{1,64}")
_ENCODINGS: Final = {"audio/x-mulaw": MULAW, "audio/x-l16": L16}

_JsonObject = dict[str, Any]


def is_call_uuid(value: str) -> bool:
    """Plivo's CallUUID format: a UUID (8-4-4-4-12 hex digits)."""
    return _CALL_UUID.fullmatch(value) is not None


# ---------------------------------------------------------------------- V3 signatures


def _sorted_query(query: str) -> str:
    fields = parse_qs(query, keep_blank_values=True)
    return "&".join(f"{name}={value}" for name in sorted(fields) for value in sorted(fields[name]))


def signed_text(method: str, url: str, params: Mapping[str, str]) -> str:
    """What V3 signs before `.nonce` (plivo-python's construct_get_url / construct_post_url)."""
    parts = urlparse(url)
    base = urlunparse((parts.scheme, parts.netloc, parts.path, "", "", ""))
    query = _sorted_query(parts.query)
    if method.upper() == "GET":
        return f"{base}?{query}" if query else base
    body = "".join(f"{name}{params[name]}" for name in sorted(params))
    if not params:
        return f"{base}?{query}" if query else base
    return f"{base}?{query}.{body}" if query else f"{base}?{body}"


def sign_v3(auth_token: str, method: str, url: str, params: Mapping[str, str], nonce: str) -> str:
    """`X-Plivo-Signature-V3` of a request: base64 HMAC-SHA256 of `signed_text` + `.` + nonce."""
    message = f"{signed_text(method, url, params)}.{nonce}".encode()
    digest = hmac.new(auth_token.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


# ---------------------------------------------------------------------- Plivo XML


def encode_extra_headers(parameters: Mapping[str, str]) -> str:
    """`gwp=<base32>`: every parameter in one alphanumeric header (base32 survives case
    changes; `=` padding is dropped)."""
    blob = base64.b32encode(urlencode(dict(parameters)).encode()).decode("ascii").rstrip("=")
    return f"{EXTRA_HEADER_KEY}={blob}"


def decode_extra_headers(text: str) -> dict[str, str] | None:
    """The parameters in an `extra_headers` string (items split by `,` or `;`, as the docs
    show both), or None without our header; TelephonyProtocolError when it is malformed."""
    if len(text) > _MAX_EXTRA_HEADERS_CHARS:
        raise TelephonyProtocolError(
            f"extra_headers is {len(text)} chars, over the limit of {_MAX_EXTRA_HEADERS_CHARS}"
        )
    for item in re.split(r"[,;]", text):
        name, _, value = item.partition("=")
        name = name.strip()
        if name[:5].lower() == "x-ph-":  # Plivo's prefix for custom SIP headers
            name = name[5:]
        if name.lower() != EXTRA_HEADER_KEY:
            continue
        blob = value.strip().upper()
        try:
            raw = base64.b32decode(blob + "=" * (-len(blob) % 8)).decode("utf-8")
            pairs = parse_qsl(
                raw,
                keep_blank_values=True,
                strict_parsing=bool(raw),
                max_num_fields=MAX_CUSTOM_PARAMETERS,
            )
        except ValueError as exc:  # binascii.Error, UnicodeDecodeError, too many fields
            raise TelephonyProtocolError(
                f"extra_headers {EXTRA_HEADER_KEY} is not valid ({_show(str(exc))})"
            ) from None
        return dict(pairs)
    return None


def build_stream_xml(
    stream_url: str, parameters: Mapping[str, str], *, content_type: str = DEFAULT_CONTENT_TYPE
) -> str:
    """`<Response><Stream bidirectional … keepCallAlive …>wss://…</Stream></Response>`.

    The parameters go in `extraHeaders` when they fit Plivo's 512 bytes, else in the URL's
    query. Raises ValueError for a URL Plivo cannot use (not ws(s)://, or with a query), or a
    `content_type` not in CONTENT_TYPES.
    """
    if content_type not in CONTENT_TYPES:
        raise ValueError(f"content_type must be one of {', '.join(CONTENT_TYPES)}")
    parts = urlsplit(stream_url)
    if parts.scheme not in ("wss", "ws") or not parts.netloc:
        raise ValueError(f"stream_url must be an absolute wss:// URL, got {stream_url!r}")
    if parts.query:
        raise ValueError(f"stream_url must not have a query string, got {stream_url!r}")
    attributes = {
        "bidirectional": "true",
        "keepCallAlive": "true",
        "audioTrack": "inbound",
        "contentType": content_type,
    }
    url = stream_url
    if parameters:
        extra = encode_extra_headers(parameters)
        if len(extra) <= MAX_EXTRA_HEADERS_BYTES:
            attributes["extraHeaders"] = extra
        else:
            url = f"{stream_url}?{urlencode(dict(parameters))}"
    response = ElementTree.Element("Response")
    ElementTree.SubElement(response, "Stream", attributes).text = url
    return _document(response)


def build_speak_hangup_xml(message: str) -> str:
    """Plivo XML that speaks `message` and hangs up, for calls we refuse."""
    response = ElementTree.Element("Response")
    ElementTree.SubElement(response, "Speak").text = message
    ElementTree.SubElement(response, "Hangup")
    return _document(response)


def build_hangup_xml() -> str:
    """Plivo XML that hangs up at once, saying nothing."""
    response = ElementTree.Element("Response")
    ElementTree.SubElement(response, "Hangup")
    return _document(response)


def build_dial_xml(target: TransferTarget) -> str:
    """`<Response><Dial callerId=…><Number>+1…</Number></Dial></Response>` (`<User>` for sip:)."""
    response = ElementTree.Element("Response")
    dial = ElementTree.SubElement(response, "Dial")
    if target.caller_id:
        dial.set("callerId", target.caller_id)
    kind = "User" if target.number.startswith("sip:") else "Number"
    ElementTree.SubElement(dial, kind).text = target.number
    return _document(response)


def _document(root: ElementTree.Element) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>' + ElementTree.tostring(root, encoding="unicode")


# ---------------------------------------------------------------------- the media stream


def _str(
    parent: _JsonObject,
    key: str,
    path: str,
    *,
    nonempty: bool = False,
    max_chars: int = _MAX_LABEL_CHARS,
    default: str | None = None,
) -> str:
    value = parent.get(key)
    if value is None:
        if default is not None:
            return default
        raise TelephonyProtocolError(f"missing field {path}")
    if type(value) is not str:
        raise TelephonyProtocolError(f"{path} must be a string, got {_type_name(value)}")
    if nonempty and not value:
        raise TelephonyProtocolError(f"{path} must not be empty")
    if len(value) > max_chars:
        raise TelephonyProtocolError(f"{path} is {len(value)} chars, over the limit of {max_chars}")
    return value


def _id(parent: _JsonObject, key: str, path: str, default: str | None = None) -> str:
    return _str(parent, key, path, nonempty=True, max_chars=_MAX_ID_CHARS, default=default)


def _int(parent: _JsonObject, key: str, path: str) -> int | None:
    return decimal_int(parent, key, path, max_digits=_MAX_INT_DIGITS)


def _decode_payload(media: _JsonObject) -> bytes:
    text = media.get("payload")
    if text is None:
        raise TelephonyProtocolError("missing field media.payload")
    if type(text) is not str:
        raise TelephonyProtocolError(f"media.payload must be a string, got {_type_name(text)}")
    if len(text) > _MAX_MEDIA_PAYLOAD_B64_CHARS:
        raise TelephonyProtocolError(
            f"media.payload is {len(text)} base64 chars, over the limit of "
            f"MAX_MEDIA_PAYLOAD_BYTES={MAX_MEDIA_PAYLOAD_BYTES} decoded bytes"
        )
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII text
        raise TelephonyProtocolError(f"media.payload is not valid base64 ({exc})") from None


def _check_parameters(params: Mapping[str, Any], path: str) -> dict[str, str]:
    if len(params) > MAX_CUSTOM_PARAMETERS:
        raise TelephonyProtocolError(
            f"{path} has {len(params)} entries, over the limit of "
            f"MAX_CUSTOM_PARAMETERS={MAX_CUSTOM_PARAMETERS}"
        )
    total = 0
    for name, value in params.items():
        if type(name) is not str or type(value) is not str:
            raise TelephonyProtocolError(f"{path}[{_show(name)}] must be a string")
        total += len(name) + len(value)
    if total > MAX_CUSTOM_PARAMETERS_CHARS:
        raise TelephonyProtocolError(
            f"{path} hold {total} chars of names and values, over the limit of "
            f"MAX_CUSTOM_PARAMETERS_CHARS={MAX_CUSTOM_PARAMETERS_CHARS}"
        )
    return dict(params)


class PlivoCodec:
    """MediaStreamCodec for one Plivo Audio Stream (bidirectional, μ-law 8 kHz or L16 8 / 16 kHz:
    what `start.mediaFormat` says, and `playAudio` answers in kind).

    Keeps the stream's `start` (its ids complete `stop`, which carries none) and the first
    media timestamp. `query` is the upgrade's query: the parameters when they did not fit
    `extraHeaders`.
    """

    name: Final = "plivo"

    def __init__(self, query: Mapping[str, str] | None = None) -> None:
        self._query = dict(query or {})
        self._stream_id = ""
        self._call_id = ""
        self._account_id = ""
        self._origin_ms: int | None = None
        self._media_format = '"contentType":"audio/x-mulaw","sampleRate":8000'
        """`playAudio`'s format: the stream's own (from `start`), as compact JSON members."""

    def parse(self, frame: str | bytes) -> CarrierEvent:
        """One inbound frame as an event; TelephonyProtocolError names what is malformed."""
        size = len(frame)
        if size > _MAX_ANY_FRAME_CHARS:  # before any decoding work
            raise TelephonyProtocolError(
                f"frame is {size} chars, over the limit of {_MAX_ANY_FRAME_CHARS} for any event"
            )
        if not isinstance(frame, str):
            try:
                frame = bytes(frame).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise TelephonyProtocolError(f"frame is not valid UTF-8 ({exc.reason})") from None
        try:
            msg = json.loads(frame)
        except json.JSONDecodeError as exc:
            raise TelephonyProtocolError(f"frame is not valid JSON ({exc})") from None
        except RecursionError:
            raise TelephonyProtocolError("frame is not valid JSON (nested too deeply)") from None
        if type(msg) is not dict:
            raise TelephonyProtocolError(f"frame must be a JSON object, got {_type_name(msg)}")
        event = _str(msg, "event", "event")
        limit = MAX_START_FRAME_CHARS if event == "start" else MAX_STREAMING_FRAME_CHARS
        if size > limit:
            raise TelephonyProtocolError(
                f"{_show(event)} frame is {size} chars, over the limit of {limit}"
            )
        parser = self._PARSERS.get(event)
        if parser is None:
            return UnknownEvent(event=event, raw=MappingProxyType(msg))
        return parser(self, msg)

    def _stream(self, msg: _JsonObject) -> str:
        return _id(msg, "streamId", "streamId", default=self._stream_id or None)

    def _start(self, msg: _JsonObject) -> StreamStart:
        start = _object(msg, "start", "start")
        stream_id = _id(start, "streamId", "start.streamId")
        outer = msg.get("streamId")
        if outer is not None and outer != stream_id:
            raise TelephonyProtocolError(
                f"streamId {_show(outer)} does not match start.streamId {_show(stream_id)}"
            )
        tracks = start.get("tracks", ["inbound"])
        if (
            type(tracks) is not list
            or len(tracks) > _MAX_TRACKS
            or not all(type(t) is str and len(t) <= _MAX_LABEL_CHARS for t in tracks)
        ):
            raise TelephonyProtocolError(
                f"start.tracks must be an array of at most {_MAX_TRACKS} short strings, "
                f"got {_show(tracks)}"
            )
        media_format = _object(start, "mediaFormat", "start.mediaFormat")
        encoding = _str(media_format, "encoding", "start.mediaFormat.encoding")
        encoding = encoding.partition(";")[0].strip().lower()
        rate = _int(media_format, "sampleRate", "start.mediaFormat.sampleRate")
        if rate is None:
            raise TelephonyProtocolError("missing field start.mediaFormat.sampleRate")
        call_id = _id(start, "callId", "start.callId")
        account_id = _id(start, "accountId", "start.accountId")
        event = StreamStart(
            stream_sid=stream_id,
            call_sid=call_id,
            account_sid=account_id,
            tracks=tuple(tracks),
            custom_parameters=MappingProxyType(self._parameters(msg, start)),
            encoding=_ENCODINGS.get(encoding, encoding),
            sample_rate_hz=rate,
            channels=1,
            sequence_number=_int(msg, "sequenceNumber", "sequenceNumber"),
        )
        self._stream_id, self._call_id, self._account_id = stream_id, call_id, account_id
        content_type = "audio/x-l16" if event.encoding == L16 else "audio/x-mulaw"
        self._media_format = f'"contentType":"{content_type}","sampleRate":{int(rate)}'
        return event

    def _parameters(self, msg: _JsonObject, start: _JsonObject) -> dict[str, str]:
        extra = msg.get("extra_headers", start.get("extra_headers"))
        if extra is not None:
            if type(extra) is not str:
                raise TelephonyProtocolError(
                    f"extra_headers must be a string, got {_type_name(extra)}"
                )
            decoded = decode_extra_headers(extra)
            if decoded is not None:
                return _check_parameters(decoded, "extra_headers")
        return _check_parameters(self._query, "the stream URL's query")

    def _media(self, msg: _JsonObject) -> MediaFrame:
        media = _object(msg, "media", "media")
        timestamp = _int(media, "timestamp", "media.timestamp")
        if timestamp is not None:  # Unix ms: made relative to the stream's first frame
            if self._origin_ms is None:
                self._origin_ms = timestamp
            timestamp = timestamp - self._origin_ms if timestamp >= self._origin_ms else None
        payload = _decode_payload(media)
        if len(payload) > MAX_MEDIA_PAYLOAD_BYTES:
            raise TelephonyProtocolError(
                f"media.payload decodes to {len(payload)} bytes, over the limit of "
                f"MAX_MEDIA_PAYLOAD_BYTES={MAX_MEDIA_PAYLOAD_BYTES}"
            )
        return MediaFrame(
            stream_sid=self._stream(msg),
            track=_str(media, "track", "media.track", default="inbound"),
            chunk=_int(media, "chunk", "media.chunk"),
            timestamp_ms=timestamp,
            payload=payload,
            sequence_number=_int(msg, "sequenceNumber", "sequenceNumber"),
        )

    def _dtmf(self, msg: _JsonObject) -> Dtmf:
        dtmf = _object(msg, "dtmf", "dtmf")
        digit = _str(dtmf, "digit", "dtmf.digit", nonempty=True)
        if digit not in DTMF_KEYS:  # a "digit" reaches the model as text: only keys pass
            raise TelephonyProtocolError(
                f"dtmf.digit must be one key of 0-9, *, #, A-D, got {_show(digit)}"
            )
        return Dtmf(
            stream_sid=self._stream(msg),
            digit=digit,
            track=_str(dtmf, "track", "dtmf.track", default="inbound"),
            sequence_number=_int(msg, "sequenceNumber", "sequenceNumber"),
        )

    def _played(self, msg: _JsonObject) -> MarkEcho:
        return MarkEcho(
            stream_sid=self._stream(msg),
            name=_str(msg, "name", "name", max_chars=_MAX_MARK_NAME_CHARS),
            sequence_number=_int(msg, "sequenceNumber", "sequenceNumber"),
        )

    def _cleared(self, msg: _JsonObject) -> CarrierNotice:
        """`clearedAudio` acknowledges our clear: nothing for the call to do."""
        stream_id = self._stream(msg)
        _int(msg, "sequenceNumber", "sequenceNumber")
        return CarrierNotice(stream_sid=stream_id, event="clearedAudio")

    def _stop(self, msg: _JsonObject) -> StreamStop:
        _str(msg, "reason", "reason", max_chars=_MAX_MARK_NAME_CHARS, default="")
        return StreamStop(
            stream_sid=self._stream(msg),
            call_sid=self._call_id,
            account_sid=self._account_id,
            sequence_number=_int(msg, "sequenceNumber", "sequenceNumber"),
        )

    _PARSERS: Final[Mapping[str, Callable[[PlivoCodec, _JsonObject], CarrierEvent]]] = (
        MappingProxyType(
            {
                "start": _start,
                "media": _media,
                "dtmf": _dtmf,
                "playedStream": _played,
                "played": _played,  # the name in Plivo's support article
                "clearedAudio": _cleared,
                "stop": _stop,
            }
        )
    )

    def build_media(self, stream_sid: str, audio: bytes) -> str:
        """`playAudio` in the stream's format: Plivo queues it and plays it in order."""
        payload = binascii.b2a_base64(audio, newline=False).decode("ascii")
        sid = json.dumps(stream_sid)
        return (
            f'{{"event":"playAudio","streamId":{sid},'
            f'"media":{{{self._media_format},"payload":"{payload}"}}}}'
        )

    def build_mark(self, stream_sid: str, name: str) -> str:
        """`checkpoint`: echoed as `playedStream` once the audio before it has played."""
        return _dump({"event": "checkpoint", "streamId": stream_sid, "name": name})

    def build_clear(self, stream_sid: str) -> str:
        """`clearAudio`: Plivo drops its queued audio (pending checkpoints are not echoed)."""
        return _dump({"event": "clearAudio", "streamId": stream_sid})


def _dump(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


# ---------------------------------------------------------------------- REST


class PlivoRest:
    """Hang-up and transfer through Plivo's Call API; each request uses its own session."""

    def __init__(
        self,
        auth_id: str,
        auth_token: str,
        *,
        base_url: str = DEFAULT_API_BASE_URL,
        dial_url: Callable[[TransferTarget], str] | None = None,
        timeout_s: float = REST_TIMEOUT_S,
    ) -> None:
        self._auth_id = auth_id
        credentials = base64.b64encode(f"{auth_id}:{auth_token}".encode()).decode("ascii")
        self._authorization = f"Basic {credentials}"
        self.base_url = base_url.rstrip("/")
        self.dial_url = dial_url
        """The URL (that we serve) of `build_dial_xml(target)`; None: no transfers."""
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(
        cls, settings: Settings, *, dial_url: Callable[[TransferTarget], str] | None = None
    ) -> PlivoRest | None:
        if not (settings.plivo_auth_id and settings.plivo_auth_token):
            return None
        return cls(
            settings.plivo_auth_id,
            settings.plivo_auth_token,
            base_url=settings.plivo_api_base_url,
            dial_url=dial_url,
        )

    async def hang_up(self, account_id: str | None, call_id: str) -> None:
        """End the call (204; 404 means it has already ended, which is what we want)."""
        await self._request("DELETE", self._call_path(account_id, call_id), None, ok_404=True)

    async def transfer(self, account_id: str | None, call_id: str, target: TransferTarget) -> None:
        """Point the call's A leg at our `<Dial>` XML (our stream ends, Plivo dials)."""
        path = self._call_path(account_id, call_id)
        if self.dial_url is None:
            raise CarrierRestError("Plivo transfers need a dial URL (PlivoRest.dial_url unset)")
        url = self.dial_url(target)
        if not url.startswith(("https://", "http://")):
            raise CarrierRestError("the dial URL must be an http(s):// URL")
        body = {"legs": "aleg", "aleg_url": url, "aleg_method": "GET"}
        await self._request("POST", path, body)

    def _call_path(self, account_id: str | None, call_id: str) -> str:
        account = account_id or self._auth_id
        # A path built from anything else could name another resource (or every call).
        if _AUTH_ID.fullmatch(account) is None:
            raise CarrierRestError("not a Plivo Auth ID (letters and digits)")
        if not is_call_uuid(call_id):
            raise CarrierRestError("not a Plivo CallUUID")
        return f"/v1/Account/{account}/Call/{call_id}/"

    async def _request(
        self, method: str, path: str, body: Mapping[str, str] | None, *, ok_404: bool = False
    ) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        headers = {"Authorization": self._authorization}
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.request(
                    method, self.base_url + path, json=body, headers=headers
                ) as response,
            ):
                if 200 <= response.status < 300 or (ok_404 and response.status == 404):
                    return
                detail = _error_detail(await response.content.read(4096))
                raise CarrierRestError(f"Plivo answered {response.status} to {method}: {detail}")
        except TimeoutError:
            raise CarrierRestError(f"no answer from Plivo within {self.timeout_s:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise CarrierRestError(f"cannot reach Plivo: {exc!r}") from None


def _error_detail(body: bytes) -> str:
    """Plivo's `error` field, else the start of the body."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        return _show(document["error"])
    return _show(body.decode("utf-8", "replace").strip()) if body else "(empty body)"


# ---------------------------------------------------------------------- Plivo as a Carrier

_PLIVO_NUMBER: Final = re.compile(r"[1-9][0-9]{1,14}")


def _e164(value: str) -> str | None:
    """`From`/`To` as the gateway writes numbers: Plivo's E.164 has no `+` (14157654321)."""
    if not value:
        return None
    return f"+{value}" if _PLIVO_NUMBER.fullmatch(value) else value


_SIGNATURE_HEADER: Final = "x-plivo-signature-v3"
_NONCE_HEADER: Final = "x-plivo-signature-v3-nonce"


class PlivoCarrier:
    """Plivo Voice with a bidirectional `<Stream>` (μ-law 8 kHz)."""

    name: Final = "plivo"

    def __init__(
        self,
        auth_token: str | None,
        *,
        auth_id: str | None = None,
        rest: PlivoRest | None = None,
        account_allowlist: frozenset[str] = frozenset(),
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> None:
        if content_type not in CONTENT_TYPES:
            raise ValueError(f"content_type must be one of {', '.join(CONTENT_TYPES)}")
        self.content_type: Final = content_type
        """What the `<Stream>` asks Plivo to stream both ways."""
        self._auth_token = auth_token or None
        self._auth_id = auth_id or None
        self._rest = rest
        self._account_allowlist = account_allowlist

    @classmethod
    def from_settings(cls, settings: Settings) -> PlivoCarrier:
        public_url = settings.public_url
        dial_url = None
        if public_url:  # Plivo fetches the transfer's <Dial> from us (`dial_answer`)

            def dial_url(target: TransferTarget) -> str:
                query = {DIAL_TARGET_PARAMETER: target.number}
                if target.caller_id:
                    query[DIAL_CALLER_ID_PARAMETER] = target.caller_id
                return f"{public_url.rstrip('/')}{DIAL_PATH}?{urlencode(query)}"

        return cls(
            settings.plivo_auth_token,
            auth_id=settings.plivo_auth_id,
            rest=PlivoRest.from_settings(settings, dial_url=dial_url),
            content_type=getattr(settings, "plivo_stream_content_type", DEFAULT_CONTENT_TYPE),
        )

    def dial_answer(self, request: WebhookRequest) -> WebhookAnswer:
        """The `<Dial>` XML a transfer's `aleg_url` (DIAL_PATH) serves Plivo; raises
        CarrierRequestError when its target is not a number or SIP URI."""
        number = request.params.get(DIAL_TARGET_PARAMETER, "")
        caller_id = request.params.get(DIAL_CALLER_ID_PARAMETER) or None
        good_caller_id = caller_id is None or E164.fullmatch(caller_id)
        if not (_E164_OR_SIP.fullmatch(number) and good_caller_id):
            raise CarrierRequestError(f"{DIAL_TARGET_PARAMETER} is not an E.164 number or sip: URI")
        target = TransferTarget(number=number, caller_id=caller_id)
        return WebhookAnswer(build_dial_xml(target), "application/xml")

    @property
    def account_allowlist(self) -> frozenset[str]:
        return self._account_allowlist

    @property
    def signed(self) -> bool:
        return self._auth_token is not None

    @property
    def binding_secret(self) -> str | None:
        return self._auth_token

    @property
    def upgrade_vouches_call(self) -> bool:
        return False  # streams are vouched for by the webhook's binding

    def verify_webhook(self, request: WebhookRequest) -> str | None:
        if self._auth_token is None:
            return None
        signatures = request.headers.get(_SIGNATURE_HEADER)
        nonce = request.headers.get(_NONCE_HEADER)
        if not signatures or not nonce:
            return "missing_signature"
        params = request.params if request.method.upper() == "POST" else {}
        expected = sign_v3(self._auth_token, request.method, request.url, params, nonce)
        for candidate in signatures.split(","):  # one per active auth token
            if hmac.compare_digest(candidate.strip().encode(), expected.encode()):
                return None
        return "invalid_signature"

    def verify_stream(self, request: WebhookRequest) -> str | None:
        return None  # Plivo does not sign the upgrade; the stream binding protects it

    def inbound_call(self, request: WebhookRequest) -> InboundCall:
        params = request.params
        call_uuid = params.get("CallUUID", "")
        # Signed calls are bound: then the UUID must be there (and always well-formed if sent).
        if (call_uuid or self.signed) and not is_call_uuid(call_uuid):
            raise CarrierRequestError("CallUUID is not a Plivo call UUID")
        return InboundCall(
            call_id=call_uuid,
            account_id=self._auth_id or "",
            from_number=_e164(params.get("From", "")),
            to_number=_e164(params.get("To", "")),
        )

    def connect(self, stream_url: str, parameters: Mapping[str, str]) -> WebhookAnswer:
        answer = build_stream_xml(stream_url, parameters, content_type=self.content_type)
        return WebhookAnswer(answer, "application/xml")

    def refuse(self, message: str) -> WebhookAnswer:
        return WebhookAnswer(build_speak_hangup_xml(message), "application/xml")

    def hang_up_answer(self) -> WebhookAnswer:
        return WebhookAnswer(build_hangup_xml(), "application/xml")

    def codec(self, upgrade: WebhookRequest) -> PlivoCodec:
        return PlivoCodec(upgrade.params)

    def rest(self) -> CarrierRest | None:
        return self._rest
