"""Exotel's Voicebot applet (App Bazaar, bidirectional AgentStream) as a `Carrier`.

Sans-IO apart from `ExotelRest` (aiohttp). What differs from Twilio, and how it is met here:

* **the voice webhook** is the Voicebot applet's *dynamic URL*: instead of a wss:// URL the
  applet is given `https://…/exotel/voice`, which Exotel fetches (GET, call details as query
  fields, like every Exotel applet URL: `CallSid`, `CallFrom`, `CallTo`, `From`, `To`,
  `Direction`, …) and which must answer JSON `{"url": "wss://…"}`. `connect` answers that,
  with the parameters (and `sample-rate=8000`) in the wss URL's query; `codec(upgrade)` reads
  them back from the upgrade's query (the applet's own custom parameters ride in the URL
  and arrive in `start.custom_parameters`; whether Exotel echoes a dynamic URL's query there
  too is not documented, so both are read and the query wins);
* **numbers** come in Indian national format (`09052161119`, `080XXXX2400`) or E.164;
  `inbound_call` turns `0` + 10 digits and `91` + 10 digits into `+91…`, keeps `+…`, and
  passes anything else through unchanged;
* **no signatures**: Exotel signs neither the applet's request nor the WebSocket upgrade (its
  options are IP allow-listing and Basic auth in the wss URL), so `signed` is False. Streams
  are bound to the webhook's call by the server's binding (`binding_secret`, the API token,
  when the Account SID is also set: the binding covers `start.account_sid`, which the
  webhook does not send, so it comes from settings);
* **audio** is raw/slin: 16-bit little-endian PCM, 8 kHz, mono, base64 in JSON
  (`StreamStart.encoding` = L16). Exotel sends ~100 ms per `media` frame; what it is sent
  must be a multiple of 320 bytes (else it waits 20 ms after the short tail: audible gaps) and
  it recommends ≥ 3200 bytes (100 ms) per frame against jitter. `build_media` refuses
  lengths that are not a multiple of 320 bytes; 20 ms frames (320 bytes) pass;
* **frames**: snake_case, numbers as decimal strings (`sequence_number`, `chunk`,
  `timestamp`, `sample_rate`); ids `stream_sid` (Exotel's own samples also write
  `streamSid`: both are read), `start.call_sid`, `start.account_sid`; in: `connected`,
  `start`, `media`, `dtmf`, `mark` (the echo of ours, once played), `stop`
  (`stop.reason`); out: `media`, `mark`, `clear`, each with `stream_sid`;
* **REST**: Voice v1 (what App Bazaar calls are) has no hang-up or transfer. Ending the
  stream moves the flow to its next applet (a Hangup applet ends the call). The only
  documented hang-up is the Legs API's `POST /v2/accounts/{sid}/legs/{leg_sid}/actions/hangup`
  (cpaas-api host, Basic auth API key : token), which `ExotelRest.hang_up` calls; a 404 (no
  such live leg: it has ended, or the call is not a Legs call) counts as done, since closing
  the stream ends the call through the flow. Transfers raise CarrierRestError (not
  supported): route to people with a Connect applet after the Voicebot applet.

Docs relied on:
https://developer.exotel.com/docs/agentstream/stream-voicebot-applet (URL or dynamic HTTPS
endpoint, Basic auth / IP allow-list, `?sample-rate=`, custom parameters in the URL, raw/slin
16-bit 8 kHz LE base64, chunk sizes: ≥ 3.2 KB, ≤ 100 KB, multiples of 320 bytes),
https://developer.exotel.com/docs/agentstream/websocket-protocol (events by applet; frames
connected, start with media_format, media with chunk/timestamp, dtmf with duration, mark),
https://support.exotel.com/support/solutions/articles/3000108630-working-with-the-stream-and-voicebot-applet
(the dynamic endpoint "must return a json with the key url"; chunk-size rules),
https://docs.exotel.com/exotel-agentstream/more (close the socket to let the flow proceed),
https://support.exotel.com/support/solutions/articles/48283-working-with-passthru-applet and
https://support.exotel.com/support/solutions/articles/3000096873-working-with-connect-applet-dynamic-url-
(applet URLs: GET with CallSid, CallFrom, CallTo, From, To, Direction, … as query fields),
https://developer.exotel.com/api-console/campaign-details-api-console/feed (Voice v1 API
list: connect, call details; no hang-up),
https://developer.exotel.com/docs/exoml/verbs/hangup (Legs API hangup action),
github.com/exotel/Agent-Stream docs/reference/WEBSOCKET_PROTOCOL.md and exotel/bridge.py
(outbound media/mark/clear with `stream_sid`, `stop.call_sid`/`account_sid`/`reason`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode, urlsplit

import aiohttp

from gateway.telephony.base import (
    CarrierEvent,
    Connected,
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
from gateway.telephony.json_fields import decimal_int, opt_str
from gateway.telephony.json_fields import json_object as _object
from gateway.telephony.json_fields import show as _show
from gateway.telephony.json_fields import type_name as _type_name
from gateway.tools.spec import TransferTarget

if TYPE_CHECKING:
    from gateway.settings import Settings

__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_API_BASE_URL",
    "DTMF_KEYS",
    "MAX_CUSTOM_PARAMETERS",
    "MAX_CUSTOM_PARAMETERS_CHARS",
    "MAX_MEDIA_PAYLOAD_BYTES",
    "MAX_START_FRAME_CHARS",
    "MAX_STREAMING_FRAME_CHARS",
    "REST_TIMEOUT_S",
    "SAMPLE_RATE_PARAMETER",
    "ExotelCarrier",
    "ExotelCodec",
    "ExotelRest",
    "build_connect_json",
    "e164",
    "is_exotel_id",
]

CHUNK_BYTES: Final = 320
"""Exotel plays what it is sent in 20 ms units: outbound audio must be a multiple of this."""
SAMPLE_RATE_HZ: Final = 8000
SAMPLE_RATE_PARAMETER: Final = "sample-rate"
"""The stream URL's query parameter that picks the stream's rate (8000, 16000, 24000)."""
MAX_MEDIA_PAYLOAD_BYTES: Final = 6400
"""Largest decoded inbound payload: 200 ms of 8 kHz L16, twice the ~100 ms Exotel sends."""
MAX_STREAMING_FRAME_CHARS: Final = 16 * 1024
"""Largest frame of any kind but `start` (a 200 ms media frame is ~8.7 K chars)."""
MAX_START_FRAME_CHARS: Final = 16 * 1024
MAX_CUSTOM_PARAMETERS: Final = 32
MAX_CUSTOM_PARAMETERS_CHARS: Final = 4000
"""Names and values of the stream's parameters together."""
DTMF_KEYS: Final = frozenset("0123456789*#ABCD")
DEFAULT_API_BASE_URL: Final = "https://cpaas-api.exotel.com"
"""The Legs API (Singapore); Mumbai accounts use https://cpaas-api.in.exotel.com."""
REST_TIMEOUT_S: Final = 10.0

_MAX_ID_CHARS: Final = 64
_MAX_LABEL_CHARS: Final = 64
_MAX_MARK_NAME_CHARS: Final = 256
_MAX_INT_DIGITS: Final = 18
_UNIX_MS_FLOOR: Final = 10**11  # a timestamp this large is Unix ms, not ms since the start
_MAX_MEDIA_PAYLOAD_B64_CHARS: Final = 4 * -(-MAX_MEDIA_PAYLOAD_BYTES // 3)
_EXOTEL_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_RAW_ENCODINGS: Final = frozenset(
    {"audio/x-raw", "raw", "slin", "linear16", "pcm", "pcm16", "audio/l16", L16}
)
_RATE: Final = re.compile(r"([0-9]{1,6})\s*(?:hz)?", re.IGNORECASE)

_JsonObject = dict[str, Any]


def is_exotel_id(value: str) -> bool:
    """An Exotel id we may put in a URL path or a log line: a Call SID (32 hex digits), a leg
    SID, an Account SID (`exotel1234`): letters, digits, `_` and `-`, at most 64."""
    return _EXOTEL_ID.fullmatch(value) is not None


_NATIONAL: Final = re.compile(r"0([1-9][0-9]{9})")
_WITH_COUNTRY: Final = re.compile(r"91([1-9][0-9]{9})")
_E164: Final = re.compile(r"\+[1-9][0-9]{1,14}")


def e164(value: str, country_code: str = "91") -> str | None:
    """A number as the gateway writes numbers: Exotel's `0XXXXXXXXXX` (trunk prefix + 10
    digits, mobile or STD code + landline) and `91XXXXXXXXXX` become `+91XXXXXXXXXX`; E.164
    is kept; anything else (a SIP URI, a short code) is passed through unchanged."""
    value = value.strip()
    if not value:
        return None
    if _E164.fullmatch(value):
        return value
    for pattern in (_NATIONAL, _WITH_COUNTRY):
        match = pattern.fullmatch(value)
        if match is not None:
            return f"+{country_code}{match.group(1)}"
    return value


# ---------------------------------------------------------------------- the webhook answer


def build_connect_json(stream_url: str, parameters: Mapping[str, str]) -> str:
    """`{"url": "wss://…?sample-rate=8000&…"}`: what the Voicebot applet's dynamic URL returns.

    Raises ValueError for a URL Exotel cannot use (not ws(s)://, or with a query of its own).
    """
    parts = urlsplit(stream_url)
    if parts.scheme not in ("wss", "ws") or not parts.netloc:
        raise ValueError(f"stream_url must be an absolute wss:// URL, got {stream_url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"stream_url must not have a query string, got {stream_url!r}")
    query = {SAMPLE_RATE_PARAMETER: str(SAMPLE_RATE_HZ), **dict(parameters)}
    return json.dumps({"url": f"{stream_url}?{urlencode(query)}"})


# ---------------------------------------------------------------------- the media stream





def _opt_str(
    parent: _JsonObject, key: str, path: str, *, max_chars: int = _MAX_LABEL_CHARS
) -> str | None:
    return opt_str(parent, key, path, max_chars=max_chars)


def _str(parent: _JsonObject, key: str, path: str, *, max_chars: int = _MAX_LABEL_CHARS) -> str:
    value = _opt_str(parent, key, path, max_chars=max_chars)
    if value is None:
        raise TelephonyProtocolError(f"missing field {path}")
    return value


def _id(parent: _JsonObject, key: str, path: str) -> str | None:
    """An id, absent or of Exotel's form (it reaches logs and REST paths)."""
    value = _opt_str(parent, key, path, max_chars=_MAX_ID_CHARS)
    if value is not None and not is_exotel_id(value):
        raise TelephonyProtocolError(f"{path} must be an Exotel id, got {_show(value)}")
    return value


def _int(parent: _JsonObject, key: str, path: str) -> int | None:
    return decimal_int(parent, key, path, max_digits=_MAX_INT_DIGITS)


def _rate(media_format: _JsonObject) -> int:
    """`media_format.sample_rate`: "8000" as documented (8000, a number, or "8000Hz" too)."""
    value = media_format.get("sample_rate")
    if value is None:
        raise TelephonyProtocolError("missing field start.media_format.sample_rate")
    if type(value) is int and 0 < value < 10**6:
        return value
    if type(value) is str and (match := _RATE.fullmatch(value.strip())) is not None:
        return int(match.group(1))
    raise TelephonyProtocolError(
        f"start.media_format.sample_rate must be a rate in Hz, got {_show(value)}"
    )


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
        payload = binascii.a2b_base64(text, strict_mode=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII text
        raise TelephonyProtocolError(f"media.payload is not valid base64 ({exc})") from None
    if len(payload) > MAX_MEDIA_PAYLOAD_BYTES:
        raise TelephonyProtocolError(
            f"media.payload decodes to {len(payload)} bytes, over the limit of "
            f"MAX_MEDIA_PAYLOAD_BYTES={MAX_MEDIA_PAYLOAD_BYTES}"
        )
    if len(payload) % 2:
        raise TelephonyProtocolError(
            f"media.payload decodes to {len(payload)} bytes, not whole 16-bit samples"
        )
    return payload


def _decode(frame: str | bytes) -> _JsonObject:
    size = len(frame)
    limit = max(MAX_START_FRAME_CHARS, MAX_STREAMING_FRAME_CHARS)
    if size > limit:  # before any decoding work
        raise TelephonyProtocolError(
            f"frame is {size} chars, over the limit of {limit} for any event"
        )
    if not isinstance(frame, str):  # json.loads would guess UTF-16/32 from the first bytes
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
    return msg


class ExotelCodec:
    """MediaStreamCodec for one Exotel Voicebot stream (stateful: a fresh one per stream).

    Keeps the stream's `start` (its ids complete `stop`, and frames naming another stream
    are refused) and the origin of Unix-ms media timestamps. `query` is the upgrade's query:
    the parameters `connect` put in the stream URL.
    """

    name: Final = "exotel"

    def __init__(self, query: Mapping[str, str] | None = None) -> None:
        self._query = {k: v for k, v in (query or {}).items() if k != SAMPLE_RATE_PARAMETER}
        self._start: StreamStart | None = None
        self._origin_ms: int | None = None

    def parse(self, frame: str | bytes) -> CarrierEvent:
        """One inbound frame as an event; TelephonyProtocolError names what is malformed."""
        msg = _decode(frame)
        event = msg["event"]
        parser = self._PARSERS.get(event)
        if parser is None:
            return UnknownEvent(event=event, raw=MappingProxyType(msg))
        return parser(self, msg)

    def _stream(self, msg: _JsonObject) -> str:
        """The frame's stream id, which must be this stream's; the start's when it has none."""
        sid = _id(msg, "stream_sid", "stream_sid")
        if sid is None:
            sid = _id(msg, "streamSid", "streamSid")
        start = self._start
        if start is None:
            if sid is None:
                raise TelephonyProtocolError("missing field stream_sid")
            return sid
        if sid is not None and sid != start.stream_sid:
            raise TelephonyProtocolError(
                f"stream_sid {_show(sid)} is not this stream's ({start.stream_sid})"
            )
        return start.stream_sid

    def _connected(self, msg: _JsonObject) -> Connected:
        return Connected(
            protocol=_opt_str(msg, "protocol", "protocol") or "",
            version=_opt_str(msg, "version", "version") or "",
        )

    def _started(self, msg: _JsonObject) -> StreamStart:
        start = _object(msg, "start", "start")
        inner = _id(start, "stream_sid", "start.stream_sid") or _id(
            start, "streamSid", "start.streamSid"
        )
        outer = _id(msg, "stream_sid", "stream_sid") or _id(msg, "streamSid", "streamSid")
        if inner is not None and outer is not None and inner != outer:
            raise TelephonyProtocolError(
                f"stream_sid {_show(outer)} does not match start.stream_sid {_show(inner)}"
            )
        stream_sid = inner or outer
        if stream_sid is None:
            raise TelephonyProtocolError("missing field start.stream_sid")
        call_sid = _id(start, "call_sid", "start.call_sid")
        if call_sid is None:
            raise TelephonyProtocolError("missing field start.call_sid")
        media_format = _object(start, "media_format", "start.media_format")
        encoding = _str(media_format, "encoding", "start.media_format.encoding").strip().lower()
        bits = _int(media_format, "bit_rate", "start.media_format.bit_rate")
        if encoding in _RAW_ENCODINGS and bits in (None, 16):
            encoding = L16
        parameters = {}
        custom = start.get("custom_parameters")
        if custom is not None:
            if type(custom) is not dict:
                raise TelephonyProtocolError(
                    f"start.custom_parameters must be an object, got {_type_name(custom)}"
                )
            parameters = _check_parameters(custom, "start.custom_parameters")
        parameters.pop(SAMPLE_RATE_PARAMETER, None)
        parameters.update(_check_parameters(self._query, "the stream URL's query"))
        event = StreamStart(
            stream_sid=stream_sid,
            call_sid=call_sid,
            account_sid=_id(start, "account_sid", "start.account_sid") or "",
            tracks=("inbound",),
            custom_parameters=MappingProxyType(parameters),
            encoding=encoding,
            sample_rate_hz=_rate(media_format),
            channels=1,
            sequence_number=_int(msg, "sequence_number", "sequence_number"),
        )
        previous = self._start
        if previous is not None and (previous.stream_sid, previous.call_sid) != (
            stream_sid,
            call_sid,
        ):
            raise TelephonyProtocolError("a second start names another stream or call")
        self._start = event  # the same start may be parsed twice (the guard, then the call)
        return event

    def _media(self, msg: _JsonObject) -> MediaFrame:
        media = _object(msg, "media", "media")
        timestamp = _int(media, "timestamp", "media.timestamp")
        if timestamp is not None and timestamp >= _UNIX_MS_FLOOR:
            if self._origin_ms is None:  # Unix ms: made relative to the first such frame
                self._origin_ms = timestamp
            timestamp = timestamp - self._origin_ms if timestamp >= self._origin_ms else None
        return MediaFrame(
            stream_sid=self._stream(msg),
            track=_opt_str(media, "track", "media.track") or "inbound",
            chunk=_int(media, "chunk", "media.chunk"),
            timestamp_ms=timestamp,
            payload=_decode_payload(media),
            sequence_number=_int(msg, "sequence_number", "sequence_number"),
        )

    def _dtmf(self, msg: _JsonObject) -> Dtmf:
        dtmf = _object(msg, "dtmf", "dtmf")
        digit = _str(dtmf, "digit", "dtmf.digit")
        if digit not in DTMF_KEYS:  # a "digit" reaches the model as text: only keys pass
            raise TelephonyProtocolError(
                f"dtmf.digit must be one key of 0-9, *, #, A-D, got {_show(digit)}"
            )
        _int(dtmf, "duration", "dtmf.duration")
        return Dtmf(
            stream_sid=self._stream(msg),
            digit=digit,
            track="inbound",
            sequence_number=_int(msg, "sequence_number", "sequence_number"),
        )

    def _mark(self, msg: _JsonObject) -> MarkEcho:
        mark = _object(msg, "mark", "mark")
        return MarkEcho(
            stream_sid=self._stream(msg),
            name=_str(mark, "name", "mark.name", max_chars=_MAX_MARK_NAME_CHARS),
            sequence_number=_int(msg, "sequence_number", "sequence_number"),
        )

    def _stop(self, msg: _JsonObject) -> StreamStop:
        stop = msg.get("stop")
        if stop is not None and type(stop) is not dict:
            raise TelephonyProtocolError(f"stop must be an object, got {_type_name(stop)}")
        stop = stop or {}
        _opt_str(stop, "reason", "stop.reason", max_chars=_MAX_MARK_NAME_CHARS)
        start = self._start
        call_sid = _id(stop, "call_sid", "stop.call_sid")
        account_sid = _id(stop, "account_sid", "stop.account_sid")
        if start is not None:
            if call_sid is not None and call_sid != start.call_sid:
                raise TelephonyProtocolError(
                    f"stop.call_sid {_show(call_sid)} is not this stream's ({start.call_sid})"
                )
            call_sid, account_sid = start.call_sid, start.account_sid
        return StreamStop(
            stream_sid=self._stream(msg),
            call_sid=call_sid or "",
            account_sid=account_sid or "",
            sequence_number=_int(msg, "sequence_number", "sequence_number"),
        )

    _PARSERS: Final[Mapping[str, Callable[[ExotelCodec, _JsonObject], CarrierEvent]]] = (
        MappingProxyType(
            {
                "connected": _connected,
                "start": _started,
                "media": _media,
                "dtmf": _dtmf,
                "mark": _mark,
                "stop": _stop,
            }
        )
    )

    def build_media(self, stream_sid: str, audio: bytes) -> str:
        """A `media` frame of 8 kHz L16 to play; ValueError unless whole 20 ms units (320
        bytes), as Exotel plays audio (100 ms or more per frame is what it recommends)."""
        if not audio or len(audio) % CHUNK_BYTES:
            raise ValueError(
                f"Exotel audio must be a multiple of {CHUNK_BYTES} bytes, got {len(audio)}"
            )
        payload = binascii.b2a_base64(audio, newline=False).decode("ascii")
        return _dump({"event": "media", "stream_sid": stream_sid, "media": {"payload": payload}})

    def build_mark(self, stream_sid: str, name: str) -> str:
        """A `mark`: Exotel echoes it once the audio sent before it has played."""
        return _dump({"event": "mark", "stream_sid": stream_sid, "mark": {"name": name}})

    def build_clear(self, stream_sid: str) -> str:
        """A `clear`: Exotel drops the audio it has queued (barge-in)."""
        return _dump({"event": "clear", "stream_sid": stream_sid})


def _dump(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


# ---------------------------------------------------------------------- REST


class ExotelRest:
    """Hang-up through the Legs API; each request uses its own session. Transfers are not
    supported (Exotel has no REST transfer of a flow call): they raise CarrierRestError."""

    def __init__(
        self,
        account_sid: str,
        api_key: str,
        api_token: str,
        *,
        base_url: str = DEFAULT_API_BASE_URL,
        timeout_s: float = REST_TIMEOUT_S,
    ) -> None:
        if not is_exotel_id(account_sid):
            raise ValueError("EXOTEL_ACCOUNT_SID is not an Exotel Account SID")
        self._account_sid = account_sid
        credentials = base64.b64encode(f"{api_key}:{api_token}".encode()).decode("ascii")
        self._authorization = f"Basic {credentials}"
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> ExotelRest | None:
        account_sid = getattr(settings, "exotel_account_sid", None)
        api_key = getattr(settings, "exotel_api_key", None)
        api_token = getattr(settings, "exotel_api_token", None)
        if not (account_sid and api_key and api_token):
            return None
        base_url = getattr(settings, "exotel_api_base_url", None) or DEFAULT_API_BASE_URL
        return cls(account_sid, api_key, api_token, base_url=base_url)

    async def hang_up(self, account_id: str | None, call_id: str) -> None:
        """End the call's leg (2xx; 404, no such live leg, counts as done: the stream's close
        ends a flow call through the flow's next applet)."""
        path = f"{self._leg_path(account_id, call_id)}/actions/hangup"
        await self._request("POST", path, {}, ok_404=True)

    async def transfer(self, account_id: str | None, call_id: str, target: TransferTarget) -> None:
        """Not supported: a Voicebot call moves on through its flow (a Connect applet)."""
        self._leg_path(account_id, call_id)
        raise CarrierRestError(
            "Exotel transfers are not supported over REST (route the call with a Connect "
            "applet after the Voicebot applet)"
        )

    def _leg_path(self, account_id: str | None, call_id: str) -> str:
        account = account_id or self._account_sid
        # A path built from anything else could name another resource.
        if not is_exotel_id(account):
            raise CarrierRestError("not an Exotel Account SID")
        if not is_exotel_id(call_id):
            raise CarrierRestError("not an Exotel call id")
        return f"/v2/accounts/{account}/legs/{call_id}"

    async def _request(
        self, method: str, path: str, body: Mapping[str, str], *, ok_404: bool = False
    ) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        headers = {"Authorization": self._authorization, "Accept": "application/json"}
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
                raise CarrierRestError(f"Exotel answered {response.status} to {method}: {detail}")
        except TimeoutError:
            raise CarrierRestError(f"no answer from Exotel within {self.timeout_s:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise CarrierRestError(f"cannot reach Exotel: {exc!r}") from None


def _error_detail(body: bytes) -> str:
    """A message from Exotel's JSON error (`message`, or `RestException.Message`), else the
    start of the body."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if isinstance(document, dict):
        nested = document.get("RestException")
        for source in (document, nested if isinstance(nested, dict) else {}):
            for key in ("message", "Message"):
                if isinstance(source.get(key), str):
                    return _show(source[key])
    return _show(body.decode("utf-8", "replace").strip()) if body else "(empty body)"


# ---------------------------------------------------------------------- Exotel as a Carrier


class ExotelCarrier:
    """Exotel's Voicebot applet with a dynamic stream URL (bidirectional, L16 8 kHz)."""

    name: Final = "exotel"

    def __init__(
        self,
        *,
        account_sid: str | None = None,
        api_key: str | None = None,
        api_token: str | None = None,
        api_base_url: str = DEFAULT_API_BASE_URL,
        country_code: str = "91",
        account_allowlist: frozenset[str] = frozenset(),
    ) -> None:
        self._account_sid = account_sid or None
        self._api_token = api_token or None
        self._country_code = country_code
        self._account_allowlist = account_allowlist
        self._rest = (
            ExotelRest(self._account_sid, api_key, self._api_token, base_url=api_base_url)
            if self._account_sid and api_key and self._api_token
            else None
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> ExotelCarrier:
        """Reads `exotel_*` settings that may not exist yet (getattr)."""
        return cls(
            account_sid=getattr(settings, "exotel_account_sid", None),
            api_key=getattr(settings, "exotel_api_key", None),
            api_token=getattr(settings, "exotel_api_token", None),
            api_base_url=getattr(settings, "exotel_api_base_url", None) or DEFAULT_API_BASE_URL,
        )

    @property
    def account_allowlist(self) -> frozenset[str]:
        return self._account_allowlist

    @property
    def signed(self) -> bool:
        return False  # Exotel signs nothing (IP allow-listing or Basic auth instead)

    @property
    def binding_secret(self) -> str | None:
        # The binding covers start.account_sid, which only settings can tell the webhook.
        return self._api_token if self._account_sid else None

    @property
    def upgrade_vouches_call(self) -> bool:
        return False  # streams are vouched for by the webhook's binding

    def verify_webhook(self, request: WebhookRequest) -> str | None:
        return None

    def verify_stream(self, request: WebhookRequest) -> str | None:
        return None

    def inbound_call(self, request: WebhookRequest) -> InboundCall:
        params = request.params
        call_sid = params.get("CallSid", "")
        # Bound calls must name the call (and a CallSid sent is always well-formed).
        if (call_sid or self.binding_secret is not None) and not is_exotel_id(call_sid):
            raise CarrierRequestError("CallSid is not an Exotel Call SID")
        account = self._account_sid or params.get("AccountSid", "")
        if account and not is_exotel_id(account):
            raise CarrierRequestError("AccountSid is not an Exotel Account SID")
        return InboundCall(
            call_id=call_sid,
            account_id=account,
            from_number=e164(params.get("CallFrom") or params.get("From", ""), self._country_code),
            to_number=e164(params.get("CallTo") or params.get("To", ""), self._country_code),
        )

    def connect(self, stream_url: str, parameters: Mapping[str, str]) -> WebhookAnswer:
        return WebhookAnswer(build_connect_json(stream_url, parameters), "application/json")

    def refuse(self, message: str) -> WebhookAnswer:
        """JSON without a `url`: the applet cannot stream, so the flow moves on (Exotel has no
        way to speak `message` from here; a Greeting + Hangup after the applet can)."""
        return WebhookAnswer(json.dumps({"error": message}), "application/json")

    def hang_up_answer(self) -> WebhookAnswer:
        """As `refuse`: the applet gets no stream and the flow moves on (to its Hangup)."""
        return self.refuse("hang up")

    def codec(self, upgrade: WebhookRequest) -> ExotelCodec:
        return ExotelCodec(upgrade.params)

    def rest(self) -> CarrierRest | None:
        return self._rest
