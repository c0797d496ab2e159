"""Twilio Media Streams, sans-IO: text frames in, CarrierEvents out; outbound frames and TwiML.

No sockets and no state here, so the WebSocket handler stays thin and every wire rule is
testable with plain strings. `parse_event` runs ~50 times a second per call, so it uses
json + binascii directly and only checks what the gateway relies on; unknown fields pass.

Everything in a frame is the caller's to choose, so every part has a size: a frame of each kind
(`MAX_FRAME_CHARS`), a media payload (20 ms, as Twilio sends), SIDs, mark names, the stream's
custom parameters (Twilio's 4000-char TwiML limit bounds them) and DTMF keys (one of 0-9*#A-D).
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, VoiceResponse

from gateway.security.call_binding import is_account_sid, is_call_sid
from gateway.telephony.base import (
    CarrierEvent,
    Connected,
    Dtmf,
    MarkEcho,
    MediaFrame,
    MediaStreamCodec,
    StreamStart,
    StreamStop,
    TelephonyProtocolError,
    UnknownEvent,
)
from gateway.telephony.carrier import (
    CarrierRequestError,
    CarrierRest,
    InboundCall,
    WebhookAnswer,
    WebhookRequest,
)
from gateway.telephony.json_fields import json_object as _object
from gateway.telephony.json_fields import show as _show
from gateway.telephony.json_fields import type_name as _type_name

if TYPE_CHECKING:
    from gateway.settings import Settings
    from gateway.telephony.twilio_rest import TwilioRest

__all__ = [
    "DTMF_KEYS",
    "MAX_CUSTOM_PARAMETERS",
    "MAX_CUSTOM_PARAMETERS_CHARS",
    "MAX_FRAME_CHARS",
    "MAX_MEDIA_PAYLOAD_BYTES",
    "MAX_STREAMING_FRAME_CHARS",
    "TwilioCarrier",
    "TwilioCodec",
    "build_clear",
    "build_connect_twiml",
    "build_hangup_twiml",
    "build_mark",
    "build_media",
    "build_say_hangup_twiml",
    "media_stream_url",
    "parse_event",
    "parse_event_json",
]

MAX_MEDIA_PAYLOAD_BYTES: Final = 160
"""Largest decoded inbound payload: 20 ms of 8 kHz μ-law, what Twilio sends in every frame.
A longer one is malformed, not split: nothing but a hostile peer sends it."""
MAX_STREAMING_FRAME_CHARS: Final = 2048
"""Largest frame of any kind but `start` (a Twilio media frame is ~350 chars); unknown kinds
too. Counted in chars of a text frame, bytes of a binary one."""
MAX_FRAME_CHARS: Final[Mapping[str, int]] = MappingProxyType(
    {"start": 32 * 1024}  # custom parameters (≤ 4000 chars) and JSON escapes
)
"""Largest frame per event kind, where it differs from MAX_STREAMING_FRAME_CHARS."""
_MAX_ANY_FRAME_CHARS: Final = max(MAX_STREAMING_FRAME_CHARS, *MAX_FRAME_CHARS.values())
MAX_CUSTOM_PARAMETERS: Final = 99
"""`start.customParameters` entries at most (Twilio's REST streams take parameter1…99)."""
MAX_CUSTOM_PARAMETERS_CHARS: Final = 4000
"""Names and values of `start.customParameters` together (Twilio caps TwiML at 4000 chars)."""
DTMF_KEYS: Final = frozenset("0123456789*#ABCD")
"""The keys of a telephone keypad; a `dtmf.digit` is exactly one of them."""
_MAX_SID_CHARS: Final = 64  # Twilio SIDs are 34
_MAX_MARK_NAME_CHARS: Final = 256  # we name marks `turn-N`; Twilio echoes what we sent
_MAX_LABEL_CHARS: Final = 64  # track, encoding, protocol, version
_MAX_TRACKS: Final = 4

# Base64 text longer than this cannot decode to <= MAX_MEDIA_PAYLOAD_BYTES: reject before decoding.
_MAX_MEDIA_PAYLOAD_B64_CHARS: Final = 4 * -(-MAX_MEDIA_PAYLOAD_BYTES // 3)
# Longest integer string we parse; bounds int() work on hostile input.
_MAX_INT_DIGITS: Final = 18

_JsonObject = dict[str, Any]





def _str(
    parent: _JsonObject,
    key: str,
    path: str,
    *,
    nonempty: bool = False,
    max_chars: int = _MAX_LABEL_CHARS,
) -> str:
    value = parent.get(key)
    if value is None:
        raise TelephonyProtocolError(f"missing field {path}")
    if type(value) is not str:
        raise TelephonyProtocolError(f"{path} must be a string, got {_type_name(value)}")
    if nonempty and not value:
        raise TelephonyProtocolError(f"{path} must not be empty")
    if len(value) > max_chars:
        raise TelephonyProtocolError(
            f"{path} is {len(value)} chars, over the limit of {max_chars}"
        )
    return value


def _sid(parent: _JsonObject, key: str, path: str) -> str:
    return _str(parent, key, path, nonempty=True, max_chars=_MAX_SID_CHARS)


def _int(parent: _JsonObject, key: str, path: str) -> int | None:
    """A non-negative integer sent as a JSON number or (Twilio's habit) a decimal string."""
    value = parent.get(key)
    if value is None:
        return None
    if type(value) is int and value >= 0:
        return value
    if (
        type(value) is str
        and 0 < len(value) <= _MAX_INT_DIGITS
        and value.isascii()
        and value.isdigit()
    ):
        return int(value)
    raise TelephonyProtocolError(
        f"{path} must be a non-negative integer or decimal string, got {_show(value)}"
    )


def _required_int(parent: _JsonObject, key: str, path: str) -> int:
    value = _int(parent, key, path)
    if value is None:
        raise TelephonyProtocolError(f"missing field {path}")
    return value


def _decode_payload(text: Any) -> bytes:
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
    return payload


def _parse_media(msg: _JsonObject) -> MediaFrame:
    media = _object(msg, "media", "media")
    return MediaFrame(
        stream_sid=_sid(msg, "streamSid", "streamSid"),
        track=_str(media, "track", "media.track"),
        chunk=_int(media, "chunk", "media.chunk"),
        timestamp_ms=_int(media, "timestamp", "media.timestamp"),
        payload=_decode_payload(media.get("payload")),
        sequence_number=_int(msg, "sequenceNumber", "sequenceNumber"),
    )


def _parse_connected(msg: _JsonObject) -> Connected:
    return Connected(
        protocol=_str(msg, "protocol", "protocol"),
        version=_str(msg, "version", "version"),
    )


def _parse_start(msg: _JsonObject) -> StreamStart:
    start = _object(msg, "start", "start")
    stream_sid = _sid(start, "streamSid", "start.streamSid")
    outer_sid = msg.get("streamSid")
    if outer_sid is not None and outer_sid != stream_sid:
        raise TelephonyProtocolError(
            f"streamSid {_show(outer_sid)} does not match start.streamSid {_show(stream_sid)}"
        )

    tracks = start.get("tracks")
    if tracks is None:
        raise TelephonyProtocolError("missing field start.tracks")
    if (
        type(tracks) is not list
        or len(tracks) > _MAX_TRACKS
        or not all(type(t) is str and len(t) <= _MAX_LABEL_CHARS for t in tracks)
    ):
        raise TelephonyProtocolError(
            f"start.tracks must be an array of at most {_MAX_TRACKS} short strings, "
            f"got {_show(tracks)}"
        )

    params = start.get("customParameters")
    if params is None:
        params = {}
    elif type(params) is not dict:
        raise TelephonyProtocolError(
            f"start.customParameters must be an object, got {_type_name(params)}"
        )
    if len(params) > MAX_CUSTOM_PARAMETERS:
        raise TelephonyProtocolError(
            f"start.customParameters has {len(params)} entries, over the limit of "
            f"MAX_CUSTOM_PARAMETERS={MAX_CUSTOM_PARAMETERS}"
        )
    total_chars = 0
    for name, value in params.items():
        if type(value) is not str:
            raise TelephonyProtocolError(
                f"start.customParameters[{_show(name)}] must be a string, got {_type_name(value)}"
            )
        total_chars += len(name) + len(value)
    if total_chars > MAX_CUSTOM_PARAMETERS_CHARS:
        raise TelephonyProtocolError(
            f"start.customParameters hold {total_chars} chars of names and values, over the "
            f"limit of MAX_CUSTOM_PARAMETERS_CHARS={MAX_CUSTOM_PARAMETERS_CHARS}"
        )

    media_format = _object(start, "mediaFormat", "start.mediaFormat")
    return StreamStart(
        stream_sid=stream_sid,
        call_sid=_sid(start, "callSid", "start.callSid"),
        account_sid=_sid(start, "accountSid", "start.accountSid"),
        tracks=tuple(tracks),
        custom_parameters=MappingProxyType(dict(params)),
        encoding=_str(media_format, "encoding", "start.mediaFormat.encoding"),
        sample_rate_hz=_required_int(media_format, "sampleRate", "start.mediaFormat.sampleRate"),
        channels=_required_int(media_format, "channels", "start.mediaFormat.channels"),
        sequence_number=_int(msg, "sequenceNumber", "sequenceNumber"),
    )


def _parse_dtmf(msg: _JsonObject) -> Dtmf:
    dtmf = _object(msg, "dtmf", "dtmf")
    digit = _str(dtmf, "digit", "dtmf.digit", nonempty=True)
    if digit not in DTMF_KEYS:  # a "digit" reaches the model as text: only keys pass
        raise TelephonyProtocolError(
            f"dtmf.digit must be one key of 0-9, *, #, A-D, got {_show(digit)}"
        )
    return Dtmf(
        stream_sid=_sid(msg, "streamSid", "streamSid"),
        digit=digit,
        track=_str(dtmf, "track", "dtmf.track"),
        sequence_number=_int(msg, "sequenceNumber", "sequenceNumber"),
    )


def _parse_mark(msg: _JsonObject) -> MarkEcho:
    mark = _object(msg, "mark", "mark")
    return MarkEcho(
        stream_sid=_sid(msg, "streamSid", "streamSid"),
        name=_str(mark, "name", "mark.name", max_chars=_MAX_MARK_NAME_CHARS),
        sequence_number=_int(msg, "sequenceNumber", "sequenceNumber"),
    )


def _parse_stop(msg: _JsonObject) -> StreamStop:
    stop = _object(msg, "stop", "stop")
    return StreamStop(
        stream_sid=_sid(msg, "streamSid", "streamSid"),
        call_sid=_sid(stop, "callSid", "stop.callSid"),
        account_sid=_sid(stop, "accountSid", "stop.accountSid"),
        sequence_number=_int(msg, "sequenceNumber", "sequenceNumber"),
    )


_PARSERS: Final[dict[str, Callable[[_JsonObject], CarrierEvent]]] = {
    "media": _parse_media,
    "connected": _parse_connected,
    "start": _parse_start,
    "dtmf": _parse_dtmf,
    "mark": _parse_mark,
    "stop": _parse_stop,
}


_MEDIA_FRAME: Final = re.compile(
    r'\{"event": ?"media", ?"sequenceNumber": ?"([0-9]{1,18})", ?'
    r'(?:"streamSid": ?"([A-Za-z0-9]{1,64})", ?)?'
    r'"media": ?\{"track": ?"([A-Za-z_]{0,64})", ?"chunk": ?"([0-9]{1,18})", ?'
    r'"timestamp": ?"([0-9]{1,18})", ?"payload": ?"([A-Za-z0-9+/]*={0,2})"\}'
    r'(?:, ?"streamSid": ?"([A-Za-z0-9]{1,64})")?\}'
)
"""A media frame exactly as Twilio writes it (compact or with a space after `:` and `,`; the
stream SID before or after `media`): plain values only, no escapes, so what the groups hold is
what json would decode. Anything else goes through json and the full checks."""


def _parse_media_fast(frame: str) -> MediaFrame | None:
    """The MediaFrame of a frame `_MEDIA_FRAME` matches, the same `parse_event` would give
    through json (tests check both agree), or None to take that slower path."""
    match = _MEDIA_FRAME.fullmatch(frame)
    if match is None:
        return None
    sequence, sid_before, track, chunk, timestamp, payload, sid_after = match.groups()
    stream_sid = sid_before or sid_after
    if stream_sid is None or (sid_before and sid_after):
        return None
    if len(payload) > _MAX_MEDIA_PAYLOAD_B64_CHARS:
        return None
    try:
        audio = binascii.a2b_base64(payload, strict_mode=True)
    except ValueError:
        return None
    if len(audio) > MAX_MEDIA_PAYLOAD_BYTES:
        return None
    return MediaFrame(
        stream_sid=stream_sid,
        track=track,
        chunk=int(chunk),
        timestamp_ms=int(timestamp),
        payload=audio,
        sequence_number=int(sequence),
    )


def parse_event(frame: str | bytes) -> CarrierEvent:
    """Turn one Twilio text frame into an event; unknown `event` values give UnknownEvent.

    Raises TelephonyProtocolError naming the offending field when the frame is malformed,
    including a frame over its kind's size (MAX_FRAME_CHARS, else MAX_STREAMING_FRAME_CHARS).
    A media frame as Twilio writes it takes a regex instead of json (a third of the time).
    """
    if type(frame) is str:
        media = _parse_media_fast(frame)
        if media is not None:
            return media
    return parse_event_json(frame)


def parse_event_json(frame: str | bytes) -> CarrierEvent:
    """`parse_event` through json and every check, for any frame (the reference path)."""
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
    limit = MAX_FRAME_CHARS.get(event, MAX_STREAMING_FRAME_CHARS)
    if size > limit:
        raise TelephonyProtocolError(
            f"{_show(event)} frame is {size} chars, over the limit of {limit}"
        )
    parser = _PARSERS.get(event)
    if parser is None:
        return UnknownEvent(event=event, raw=MappingProxyType(msg))
    return parser(msg)


def _dump(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


def build_media(stream_sid: str, mulaw: bytes) -> str:
    """Frame 8 kHz μ-law bytes for playback; Twilio queues it and plays in real time.

    Callers chunk the audio (160 bytes = 20 ms is the safe unit); any length is framed as given.
    """
    payload = binascii.b2a_base64(mulaw, newline=False).decode("ascii")
    # Hand-built: this is the outbound hot path, and base64 text needs no JSON escaping.
    return f'{_media_head(stream_sid)}{payload}"}}}}'


@lru_cache(maxsize=1024)
def _media_head(stream_sid: str) -> str:
    """Everything of a media frame before the payload; the same for every frame of a call."""
    return f'{{"event":"media","streamSid":{json.dumps(stream_sid)},"media":{{"payload":"'


def build_mark(stream_sid: str, name: str) -> str:
    """Frame a mark; Twilio echoes it once the audio sent before it has played (or is cleared)."""
    return _dump({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def build_clear(stream_sid: str) -> str:
    """Frame a clear: Twilio drops its queued audio at once and echoes every pending mark."""
    return _dump({"event": "clear", "streamSid": stream_sid})


class TwilioCodec:
    """MediaStreamCodec for Twilio Media Streams; stateless, one instance can serve every call."""

    name: Final = "twilio"

    def parse(self, frame: str | bytes) -> CarrierEvent:
        return parse_event(frame)

    def build_media(self, stream_sid: str, mulaw: bytes) -> str:
        return build_media(stream_sid, mulaw)

    def build_mark(self, stream_sid: str, name: str) -> str:
        return build_mark(stream_sid, name)

    def build_clear(self, stream_sid: str) -> str:
        return build_clear(stream_sid)


def build_connect_twiml(stream_url: str, parameters: Mapping[str, str | None]) -> str:
    """TwiML that connects the call to our media WebSocket, passing call context as <Parameter>s.

    Twilio ignores query strings on the stream URL, so context must travel as parameters; they
    come back in `start.customParameters`. Parameters with an empty or None value are skipped.
    Raises ValueError for a URL Twilio cannot use (not ws(s)://, or with a query string).
    """
    parts = urlsplit(stream_url)
    if parts.scheme not in ("wss", "ws") or not parts.netloc:
        raise ValueError(f"stream_url must be an absolute wss:// URL, got {stream_url!r}")
    if parts.query:
        raise ValueError(
            f"stream_url must not have a query string (Twilio drops it; use parameters), "
            f"got {stream_url!r}"
        )
    connect = Connect()
    stream = connect.stream(url=stream_url)
    for name, value in parameters.items():
        if value:
            stream.parameter(name=name, value=value)
    response = VoiceResponse()
    response.append(connect)
    return str(response)


def build_say_hangup_twiml(message: str) -> str:
    """TwiML that speaks `message` and hangs up, for calls we refuse (e.g. all lines busy)."""
    response = VoiceResponse()
    response.say(message)
    response.hangup()
    return str(response)


def build_hangup_twiml() -> str:
    """TwiML that hangs up at once, saying nothing (an answering machine the agent skips)."""
    response = VoiceResponse()
    response.hangup()
    return str(response)


_WS_SCHEMES: Final = {"https": "wss", "wss": "wss", "http": "ws", "ws": "ws"}


def media_stream_url(public_url: str, path: str = "/media") -> str:
    """The ws(s):// URL Twilio should dial for media, from the gateway's public base URL.

    `public_url` is what callers reach us at (http(s):// or ws(s)://, optional path prefix);
    https maps to wss and http to ws. Raises ValueError for other schemes or a query/fragment.
    """
    parts = urlsplit(public_url.strip())
    scheme = _WS_SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError(
            f"public_url must be an absolute http(s):// or ws(s):// URL, got {public_url!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"public_url must not have a query or fragment, got {public_url!r}")
    prefix = parts.path.rstrip("/")
    suffix = path.lstrip("/")
    full_path = f"{prefix}/{suffix}" if suffix else prefix or "/"
    return urlunsplit((scheme, parts.netloc, full_path, "", ""))


# ---------------------------------------------------------------------- Twilio as a Carrier

_SIGNATURE_HEADER: Final = "x-twilio-signature"
_CODEC: Final = TwilioCodec()  # stateless: one serves every stream


class TwilioCarrier:
    """Twilio Programmable Voice with a `<Connect><Stream>` media stream (bidirectional)."""

    name: Final = "twilio"

    def __init__(
        self,
        auth_token: str | None,
        *,
        rest: TwilioRest | None = None,
        account_allowlist: frozenset[str] = frozenset(),
    ) -> None:
        self._auth_token = auth_token
        self._validator = RequestValidator(auth_token) if auth_token else None
        self._rest = rest
        self._account_allowlist = account_allowlist

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioCarrier:
        from gateway.telephony.twilio_rest import TwilioRest  # aiohttp and the SDK: only here

        return cls(
            settings.twilio_auth_token,
            rest=TwilioRest.from_settings(settings),
            account_allowlist=settings.account_sid_allowlist,
        )

    @property
    def account_allowlist(self) -> frozenset[str]:
        return self._account_allowlist

    @property
    def signed(self) -> bool:
        return self._validator is not None

    @property
    def binding_secret(self) -> str | None:
        return self._auth_token

    @property
    def upgrade_vouches_call(self) -> bool:
        return False  # streams are vouched for by the webhook's binding

    def verify_webhook(self, request: WebhookRequest) -> str | None:
        return self._check(request.url, request.params, request.headers)

    def verify_stream(self, request: WebhookRequest) -> str | None:
        return self._check(request.url, {}, request.headers)  # Twilio signs the upgrade too

    def _check(
        self, url: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> str | None:
        if self._validator is None:
            return None
        signature = headers.get(_SIGNATURE_HEADER)
        if not signature:
            return "missing_signature"
        if not self._validator.validate(url, dict(params), signature):
            return "invalid_signature"
        return None

    def inbound_call(self, request: WebhookRequest) -> InboundCall:
        params = request.params
        call_sid = params.get("CallSid", "")
        account_sid = params.get("AccountSid", "")
        # Signed calls are bound: then the SIDs must be there (and always well-formed if sent).
        for name, value, valid in (
            ("CallSid", call_sid, is_call_sid),
            ("AccountSid", account_sid, is_account_sid),
        ):
            if (value or self.signed) and not valid(value):
                raise CarrierRequestError(f"{name} is not a Twilio {name[:-3]} SID")
        return InboundCall(
            call_id=call_sid,
            account_id=account_sid,
            from_number=params.get("From") or None,
            to_number=params.get("To") or None,
        )

    def connect(self, stream_url: str, parameters: Mapping[str, str]) -> WebhookAnswer:
        return WebhookAnswer(build_connect_twiml(stream_url, parameters), "application/xml")

    def refuse(self, message: str) -> WebhookAnswer:
        return WebhookAnswer(build_say_hangup_twiml(message), "application/xml")

    def hang_up_answer(self) -> WebhookAnswer:
        return WebhookAnswer(build_hangup_twiml(), "application/xml")

    def codec(self, upgrade: WebhookRequest) -> MediaStreamCodec:
        return _CODEC

    def rest(self) -> CarrierRest | None:
        return self._rest
