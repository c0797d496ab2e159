"""Telnyx TeXML with a bidirectional `<Connect><Stream>` media stream, as a `Carrier` (sans-IO
apart from `TelnyxRest`).

* **Voice webhook**: a TeXML application fetches its instructions with a form POST (or GET)
  whose fields are Twilio's names: `CallSid` (the call's `call_control_id`, `v3:…`),
  `AccountSid` (the account's `user_id`, a UUID), `From`, `To`. It is signed with Ed25519:
  `telnyx-signature-ed25519` (base64) over `f"{telnyx-timestamp}|{raw body}"`, checked with the
  account's public key; a timestamp more than `SIGNATURE_TOLERANCE_S` away is refused (replay).
* **Answer**: `<Connect><Stream url=… bidirectionalMode="rtp" codec="PCMU" …>` streams both
  ways as 8 kHz PCMU; `<Parameter name value>` children come back in `start.custom_parameters`.
* **Stream frames**: snake_case JSON, ids at the top (`stream_id`, `sequence_number` as a
  decimal string), `start.call_control_id` / `start.user_id`, `start.media_format`
  (`encoding` "PCMU", `sample_rate` 8000). Outbound `media` / `mark` / `clear` carry no id (one
  bidirectional stream per call). The WebSocket upgrade is not signed: streams are protected
  by the call binding the server issues (`binding_secret`, the API key).
* **REST** (TeXML calls): `POST {base}/v2/texml/Accounts/{AccountSid}/Calls/{CallSid}`, bearer
  API key, form body: `Status=completed` hangs up, `Texml=<Response><Dial>…` transfers.

Docs relied on:
https://developers.telnyx.com/docs/voice/programmable-voice/texml-verbs/stream (attributes
url, track, codec, bidirectionalMode rtp, bidirectionalCodec, bidirectionalSamplingRate;
`<Parameter>` → start message),
https://developers.telnyx.com/docs/voice/texml/rest-api/streams/index (`<Connect><Stream>` is
synchronous: the call flow waits for the stream),
https://developers.telnyx.com/api-reference/websockets/stream-call-media-over-websocket (frames:
connected, start with custom_parameters and media_format, media, dtmf, mark, error, stop;
client media / mark / clear; mark echoes, clear returns queued marks),
https://developers.telnyx.com/api-reference/callbacks/texml-call-initiated (form fields,
AccountSid = user_id, CallSid = call_control_id, telnyx-timestamp / telnyx-signature-ed25519),
https://developers.telnyx.com/docs/development/api-fundamentals/webhooks (Ed25519 over
timestamp|body, replay window),
https://developers.telnyx.com/api-reference/texml-rest-commands/update-call (Status, Texml,
form-urlencoded, bearer auth),
https://developers.telnyx.com/docs/voice/programmable-voice/texml-twiml-compatibility
(`<Dial>`, `<Number>`, `<Sip>`, `<Say>`, `<Hangup>`).
"""

from __future__ import annotations

import asyncio
import binascii
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit
from xml.etree import ElementTree

import aiohttp

from gateway.telephony.base import (
    CarrierEvent,
    CarrierNotice,
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
    MULAW,
    CarrierRequestError,
    CarrierRest,
    CarrierRestError,
    InboundCall,
    WebhookAnswer,
    WebhookRequest,
)
from gateway.telephony.json_fields import json_object as _object
from gateway.telephony.json_fields import opt_str
from gateway.telephony.json_fields import show as _show
from gateway.telephony.json_fields import type_name as _type_name
from gateway.tools.spec import TransferTarget

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from gateway.settings import Settings

__all__ = [
    "DTMF_KEYS",
    "MAX_CUSTOM_PARAMETERS",
    "MAX_CUSTOM_PARAMETERS_CHARS",
    "MAX_MEDIA_PAYLOAD_BYTES",
    "MAX_START_FRAME_CHARS",
    "MAX_STREAMING_FRAME_CHARS",
    "REST_TIMEOUT_S",
    "SIGNATURE_HEADER",
    "SIGNATURE_TOLERANCE_S",
    "TIMESTAMP_HEADER",
    "TelnyxCarrier",
    "TelnyxCodec",
    "TelnyxRest",
    "TelnyxRestError",
    "build_connect_texml",
    "build_dial_texml",
    "build_hangup_texml",
    "build_say_hangup_texml",
    "is_account_id",
    "is_call_control_id",
    "load_public_key",
    "rest_error_detail",
    "signed_message",
]

SIGNATURE_HEADER: Final = "telnyx-signature-ed25519"
TIMESTAMP_HEADER: Final = "telnyx-timestamp"
SIGNATURE_TOLERANCE_S: Final = 300
"""Largest distance between `telnyx-timestamp` and our clock (either way) we accept."""
REST_TIMEOUT_S: Final = 10.0

MAX_MEDIA_PAYLOAD_BYTES: Final = 480
"""Largest decoded inbound payload: 60 ms of 8 kHz μ-law. Telnyx forwards the call's RTP
payloads (20 ms is usual, the docs give no size), so this bounds the longest common ptime."""
MAX_STREAMING_FRAME_CHARS: Final = 2048
"""Largest frame of any kind but `start` (a 60 ms media frame is ~800 chars)."""
MAX_START_FRAME_CHARS: Final = 32 * 1024
"""Largest `start` frame: custom parameters (≤ MAX_CUSTOM_PARAMETERS_CHARS), tags, escapes."""
MAX_CUSTOM_PARAMETERS: Final = 99
MAX_CUSTOM_PARAMETERS_CHARS: Final = 4000
"""Names and values of `start.custom_parameters` together (what our own answer puts there)."""
DTMF_KEYS: Final = frozenset("0123456789*#ABCD")
_MAX_ID_CHARS: Final = 256  # the patterns below are tighter still
_MAX_LABEL_CHARS: Final = 64
_MAX_MARK_NAME_CHARS: Final = 256
_MAX_INT_DIGITS: Final = 18
_MAX_ERROR_CHARS: Final = 200
_MAX_MEDIA_PAYLOAD_B64_CHARS: Final = 4 * -(-MAX_MEDIA_PAYLOAD_BYTES // 3)
_MULAW_NAMES: Final = frozenset({"pcmu", MULAW})  # current docs say PCMU; older ones x-mulaw
_SAMPLE_RATE_HZ: Final = 8000

_UUID: Final = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_CALL_CONTROL_ID: Final = re.compile(r"v[0-9]{1,2}:[A-Za-z0-9_-]{1,200}")
_STREAM_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")

_JsonObject = dict[str, Any]


def is_account_id(value: str) -> bool:
    """Telnyx accounts (`AccountSid`, `start.user_id`) are UUIDs: safe in a URL path."""
    return _UUID.fullmatch(value) is not None


def is_call_control_id(value: str) -> bool:
    """A call's `call_control_id` (TeXML's `CallSid`): `v2:`/`v3:` and base64url text."""
    return _CALL_CONTROL_ID.fullmatch(value) is not None


# ------------------------------------------------------------------------------ signatures


def load_public_key(text: str) -> Ed25519PublicKey:
    """The account's public key from its base64 form (Mission Control > Keys); ValueError
    naming TELNYX_PUBLIC_KEY when it is not 32 bytes of base64."""
    try:
        raw = binascii.a2b_base64(text.strip(), strict_mode=True)
    except ValueError:
        raise ValueError("TELNYX_PUBLIC_KEY is not base64") from None
    if len(raw) != 32:
        raise ValueError(f"TELNYX_PUBLIC_KEY is {len(raw)} bytes, not an Ed25519 key (32)")
    # cryptography (~8 MiB resident) is loaded only when Telnyx signatures are on.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(raw)


def signed_message(timestamp: str, body: bytes) -> bytes:
    """What Telnyx signs: the timestamp header, `|`, and the raw body as sent."""
    return timestamp.encode("ascii") + b"|" + body


# ------------------------------------------------------------------------------ media stream





def _opt_str(
    parent: _JsonObject, key: str, path: str, *, max_chars: int = _MAX_LABEL_CHARS
) -> str | None:
    return opt_str(parent, key, path, max_chars=max_chars)


def _str(parent: _JsonObject, key: str, path: str, *, max_chars: int = _MAX_LABEL_CHARS) -> str:
    value = _opt_str(parent, key, path, max_chars=max_chars)
    if value is None:
        raise TelephonyProtocolError(f"missing field {path}")
    return value


def _id(
    parent: _JsonObject, key: str, path: str, pattern: re.Pattern[str], kind: str
) -> str | None:
    """An id we may put in a log line or a URL path: absent, or of its documented form."""
    value = _opt_str(parent, key, path, max_chars=_MAX_ID_CHARS)
    if value is None:
        return None
    if pattern.fullmatch(value) is None:
        raise TelephonyProtocolError(f"{path} must be {kind}, got {_show(value)}")
    return value


def _int(parent: _JsonObject, key: str, path: str) -> int | None:
    """A non-negative integer, sent as a JSON number or (Telnyx's habit) a decimal string."""
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
    except ValueError as exc:
        raise TelephonyProtocolError(f"media.payload is not valid base64 ({exc})") from None


def _custom_parameters(start: _JsonObject) -> Mapping[str, str]:
    params = start.get("custom_parameters")
    if params is None:
        return MappingProxyType({})
    if type(params) is not dict:
        raise TelephonyProtocolError(
            f"start.custom_parameters must be an object, got {_type_name(params)}"
        )
    if len(params) > MAX_CUSTOM_PARAMETERS:
        raise TelephonyProtocolError(
            f"start.custom_parameters has {len(params)} entries, over the limit of "
            f"MAX_CUSTOM_PARAMETERS={MAX_CUSTOM_PARAMETERS}"
        )
    total = 0
    for name, value in params.items():
        if type(value) is not str:
            raise TelephonyProtocolError(
                f"start.custom_parameters[{_show(name)}] must be a string, got {_type_name(value)}"
            )
        total += len(name) + len(value)
    if total > MAX_CUSTOM_PARAMETERS_CHARS:
        raise TelephonyProtocolError(
            f"start.custom_parameters hold {total} chars of names and values, over the limit "
            f"of MAX_CUSTOM_PARAMETERS_CHARS={MAX_CUSTOM_PARAMETERS_CHARS}"
        )
    return MappingProxyType(dict(params))


def _decode(frame: str | bytes) -> _JsonObject:
    size = len(frame)
    if size > MAX_START_FRAME_CHARS:  # before any decoding work
        raise TelephonyProtocolError(
            f"frame is {size} chars, over the limit of {MAX_START_FRAME_CHARS} for any event"
        )
    try:
        msg = json.loads(frame)
    except UnicodeDecodeError as exc:
        raise TelephonyProtocolError(f"frame is not valid UTF-8 ({exc.reason})") from None
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


class TelnyxCodec:
    """MediaStreamCodec for one Telnyx stream (stateful: a fresh one per stream).

    It remembers the stream's `start` to fill in what later frames leave out (`stop` may lack
    ids, `dtmf` has no track) and refuses frames naming another stream. The same `start` may be
    parsed twice (the stream guard reads it before the call does); one for another call is
    refused.
    """

    name: Final = "telnyx"

    def __init__(self) -> None:
        self._start: StreamStart | None = None

    def parse(self, frame: str | bytes) -> CarrierEvent:
        msg = _decode(frame)
        event = msg["event"]
        if event == "media":
            return self._media(msg)
        if event == "start":
            return self._started(msg)
        if event == "connected":
            return Connected(
                protocol=_opt_str(msg, "protocol", "protocol") or "",
                version=_opt_str(msg, "version", "version") or "",
            )
        if event == "dtmf":
            return self._dtmf(msg)
        if event == "mark":
            mark = _object(msg, "mark", "mark")
            return MarkEcho(
                stream_sid=self._stream_sid(msg),
                name=_str(mark, "name", "mark.name", max_chars=_MAX_MARK_NAME_CHARS),
                sequence_number=_int(msg, "sequence_number", "sequence_number"),
            )
        if event == "stop":
            return self._stop(msg)
        if event == "error":
            return self._error(msg)
        return UnknownEvent(event=event, raw=MappingProxyType(msg))

    def _stream_sid(self, msg: _JsonObject) -> str:
        """The frame's stream id, which must be this stream's; the start's when it has none."""
        sid = _id(msg, "stream_id", "stream_id", _STREAM_ID, "a Telnyx stream id")
        start = self._start
        if start is None:
            if sid is None:
                raise TelephonyProtocolError("missing field stream_id")
            return sid
        if sid is not None and sid != start.stream_sid:
            raise TelephonyProtocolError(
                f"stream_id {_show(sid)} is not this stream's ({start.stream_sid})"
            )
        return start.stream_sid

    def _media(self, msg: _JsonObject) -> MediaFrame:
        media = _object(msg, "media", "media")
        return MediaFrame(
            stream_sid=self._stream_sid(msg),
            track=_opt_str(media, "track", "media.track") or "inbound",
            chunk=_int(media, "chunk", "media.chunk"),
            timestamp_ms=_int(media, "timestamp", "media.timestamp"),
            payload=_decode_payload(media),
            sequence_number=_int(msg, "sequence_number", "sequence_number"),
        )

    def _started(self, msg: _JsonObject) -> StreamStart:
        start = _object(msg, "start", "start")
        stream_sid = _id(msg, "stream_id", "stream_id", _STREAM_ID, "a Telnyx stream id")
        if stream_sid is None:
            raise TelephonyProtocolError("missing field stream_id")
        call_sid = _id(
            start,
            "call_control_id",
            "start.call_control_id",
            _CALL_CONTROL_ID,
            "a call_control_id (v3:…)",
        )
        if call_sid is None:
            raise TelephonyProtocolError("missing field start.call_control_id")
        account = _id(start, "user_id", "start.user_id", _UUID, "a UUID") or ""
        media_format = _object(start, "media_format", "start.media_format")
        encoding = _str(media_format, "encoding", "start.media_format.encoding")
        if encoding.lower() not in _MULAW_NAMES:  # the answer asks for PCMU both ways
            raise TelephonyProtocolError(
                f"start.media_format.encoding must be PCMU, got {_show(encoding)}"
            )
        rate = _int(media_format, "sample_rate", "start.media_format.sample_rate")
        if rate != _SAMPLE_RATE_HZ:
            raise TelephonyProtocolError(
                f"start.media_format.sample_rate must be {_SAMPLE_RATE_HZ}, got {_show(rate)}"
            )
        channels = _int(media_format, "channels", "start.media_format.channels")
        event = StreamStart(
            stream_sid=stream_sid,
            call_sid=call_sid,
            account_sid=account.lower(),  # UUIDs: the webhook's AccountSid may differ in case
            tracks=("inbound",),  # the answer streams the inbound track only
            custom_parameters=_custom_parameters(start),
            encoding=MULAW,
            sample_rate_hz=_SAMPLE_RATE_HZ,
            channels=1 if channels is None else channels,
            sequence_number=_int(msg, "sequence_number", "sequence_number"),
        )
        if self._start is None:
            self._start = event
        elif (self._start.stream_sid, self._start.call_sid) != (stream_sid, call_sid):
            raise TelephonyProtocolError("a second start, for another call, on one stream")
        return event

    def _dtmf(self, msg: _JsonObject) -> Dtmf:
        dtmf = _object(msg, "dtmf", "dtmf")
        digit = _str(dtmf, "digit", "dtmf.digit")
        if digit not in DTMF_KEYS:  # a "digit" reaches the model as text: only keys pass
            raise TelephonyProtocolError(
                f"dtmf.digit must be one key of 0-9, *, #, A-D, got {_show(digit)}"
            )
        return Dtmf(
            stream_sid=self._stream_sid(msg),
            digit=digit,
            track=_opt_str(dtmf, "track", "dtmf.track") or "inbound",
            sequence_number=_int(msg, "sequence_number", "sequence_number"),
        )

    def _stop(self, msg: _JsonObject) -> StreamStop:
        stop = msg.get("stop")
        if stop is None:
            stop = {}
        elif type(stop) is not dict:
            raise TelephonyProtocolError(f"stop must be an object, got {_type_name(stop)}")
        call = _id(
            stop,
            "call_control_id",
            "stop.call_control_id",
            _CALL_CONTROL_ID,
            "a call_control_id (v3:…)",
        )
        account = _id(stop, "user_id", "stop.user_id", _UUID, "a UUID")
        start = self._start
        return StreamStop(
            stream_sid=self._stream_sid(msg),
            call_sid=start.call_sid if start is not None else call or "",
            account_sid=start.account_sid if start is not None else (account or "").lower(),
            sequence_number=_int(msg, "sequence_number", "sequence_number"),
        )

    def _error(self, msg: _JsonObject) -> CarrierNotice:
        """Telnyx's report of a frame of ours it refused (malformed, invalid media, rate
        limit): a notice with what it said, which the call logs."""
        key = "error" if "error" in msg else "payload"  # old docs say error, new ones payload
        error = _object(msg, key, key)
        detail = {
            name: text
            for name in ("code", "title", "detail")
            if (text := _opt_str(error, name, f"{key}.{name}", max_chars=_MAX_ERROR_CHARS))
            is not None
        }
        stream_sid = self._stream_sid(msg) if "stream_id" in msg else ""
        text = " ".join(f"{name}={value}" for name, value in detail.items())
        return CarrierNotice(stream_sid=stream_sid, event="error", detail=text or "(no detail)")

    def build_media(self, stream_sid: str, mulaw: bytes) -> str:
        """A media frame of 8 kHz μ-law for playback (RTP mode: any 20 ms … 30 s chunk)."""
        payload = binascii.b2a_base64(mulaw, newline=False).decode("ascii")
        return f'{{"event":"media","media":{{"payload":"{payload}"}}}}'

    def build_mark(self, stream_sid: str, name: str) -> str:
        """A mark: Telnyx echoes it once the audio before it has played (or is cleared)."""
        return json.dumps({"event": "mark", "mark": {"name": name}}, separators=(",", ":"))

    def build_clear(self, stream_sid: str) -> str:
        """A clear: Telnyx drops queued audio at once and sends back the queued marks."""
        return '{"event":"clear"}'


# ------------------------------------------------------------------------------------ TeXML


def _texml(root: ElementTree.Element) -> str:
    body = ElementTree.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>{body}'


def build_connect_texml(stream_url: str, parameters: Mapping[str, str | None]) -> str:
    """TeXML that streams the call both ways as 8 kHz PCMU to `stream_url`, with `parameters`
    as `<Parameter>`s (they come back in `start.custom_parameters`; empty ones are skipped).
    Raises ValueError for a URL that is not ws(s)://."""
    parts = urlsplit(stream_url)
    if parts.scheme not in ("wss", "ws") or not parts.netloc:
        raise ValueError(f"stream_url must be an absolute wss:// URL, got {stream_url!r}")
    root = ElementTree.Element("Response")
    stream = ElementTree.SubElement(
        ElementTree.SubElement(root, "Connect"),
        "Stream",
        {
            "url": stream_url,
            "track": "inbound_track",
            "codec": "PCMU",
            "bidirectionalMode": "rtp",
            "bidirectionalCodec": "PCMU",
            "bidirectionalSamplingRate": str(_SAMPLE_RATE_HZ),
        },
    )
    for name, value in parameters.items():
        if value:
            ElementTree.SubElement(stream, "Parameter", {"name": name, "value": value})
    return _texml(root)


def build_say_hangup_texml(message: str) -> str:
    """TeXML that says `message` and hangs up (calls we turn away)."""
    root = ElementTree.Element("Response")
    ElementTree.SubElement(root, "Say").text = message
    ElementTree.SubElement(root, "Hangup")
    return _texml(root)


def build_hangup_texml() -> str:
    """TeXML that hangs up at once, saying nothing."""
    root = ElementTree.Element("Response")
    ElementTree.SubElement(root, "Hangup")
    return _texml(root)


def build_dial_texml(target: TransferTarget) -> str:
    """`<Response><Dial><Number>+1…</Number></Dial></Response>` (`<Sip>` for a sip: URI)."""
    root = ElementTree.Element("Response")
    dial = ElementTree.SubElement(root, "Dial")
    if target.caller_id:
        dial.set("callerId", target.caller_id)
    noun = "Sip" if target.number.startswith("sip:") else "Number"
    ElementTree.SubElement(dial, noun).text = target.number
    return _texml(root)


# ------------------------------------------------------------------------------------ REST


class TelnyxRestError(CarrierRestError):
    """A Telnyx REST request failed (HTTP error, network, timeout); the message says which."""


@dataclass(frozen=True, slots=True)
class TelnyxCredentials:
    """Who we are to Telnyx's REST API v2."""

    api_key: str = field(repr=False)
    base_url: str = "https://api.telnyx.com"
    """Without a trailing slash; the `/v2` prefix is added per request."""


class TelnyxRest:
    """Mid-call hang-up and transfer of TeXML calls (the call update resource); one HTTP
    session per request."""

    def __init__(self, credentials: TelnyxCredentials, *, timeout_s: float = REST_TIMEOUT_S):
        self.credentials = credentials
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> TelnyxRest | None:
        if not settings.telnyx_api_key:
            return None
        base_url = settings.telnyx_api_base_url.rstrip("/")
        return cls(TelnyxCredentials(settings.telnyx_api_key, base_url))

    async def hang_up(self, account_id: str | None, call_id: str) -> None:
        """End the call (`Status=completed`)."""
        await self._update(account_id, call_id, {"Status": "completed"})

    async def transfer(self, account_id: str | None, call_id: str, target: TransferTarget) -> None:
        """Replace the call's TeXML with a `<Dial>` to `target` (our stream ends)."""
        await self._update(account_id, call_id, {"Texml": build_dial_texml(target)})

    async def _update(self, account_id: str | None, call_id: str, form: dict[str, str]) -> None:
        # Never a URL path built from text that is not an id.
        if not account_id or not is_account_id(account_id):
            raise TelnyxRestError("not a Telnyx account id (AccountSid, a UUID)")
        if not is_call_control_id(call_id):
            raise TelnyxRestError("not a Telnyx call id (CallSid / call_control_id, v3:…)")
        url = f"{self.credentials.base_url}/v2/texml/Accounts/{account_id.lower()}/Calls/{call_id}"
        headers = {
            "Authorization": f"Bearer {self.credentials.api_key}",
            "Accept": "application/json",
        }
        try:
            async with asyncio.timeout(self.timeout_s), aiohttp.ClientSession() as http:
                async with http.post(url, data=form, headers=headers) as response:
                    if response.status >= 400:
                        detail = rest_error_detail(await response.content.read(4096))
                        raise TelnyxRestError(
                            f"Telnyx answered {response.status} to the call update: {detail}"
                        )
        except TimeoutError:
            raise TelnyxRestError(f"no answer from Telnyx within {self.timeout_s:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise TelnyxRestError(f"cannot reach Telnyx: {exc!r}") from None


def rest_error_detail(body: bytes) -> str:
    """Telnyx's `errors[0]` (`title: detail`, code), else the body, cut short."""
    text = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        words = [str(first[k]) for k in ("title", "detail") if first.get(k)]
        code = f" (code {first['code']})" if first.get("code") else ""
        detail = ": ".join(words) + code
    else:
        detail = text.strip()
    return (detail or "(no body)")[:_MAX_ERROR_CHARS]


# --------------------------------------------------------------------------------- carrier


class TelnyxCarrier:
    """Telnyx TeXML with a `<Connect><Stream>` media stream (bidirectional, RTP PCMU)."""

    name: Final = "telnyx"

    def __init__(
        self,
        public_key: str | None,
        *,
        api_key: str | None = None,
        rest: TelnyxRest | None = None,
        account_allowlist: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._public_key = load_public_key(public_key) if public_key else None
        self._api_key = api_key or None
        self._rest = rest
        self._account_allowlist = account_allowlist
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> TelnyxCarrier:
        return cls(
            settings.telnyx_public_key,
            api_key=settings.telnyx_api_key,
            rest=TelnyxRest.from_settings(settings),
        )

    @property
    def account_allowlist(self) -> frozenset[str]:
        return self._account_allowlist

    @property
    def signed(self) -> bool:
        return self._public_key is not None

    @property
    def binding_secret(self) -> str | None:
        return self._api_key

    @property
    def upgrade_vouches_call(self) -> bool:
        return False  # streams are vouched for by the webhook's binding

    def verify_webhook(self, request: WebhookRequest) -> str | None:
        key = self._public_key
        if key is None:
            return None
        signature = request.headers.get(SIGNATURE_HEADER, "")
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        if not signature or not timestamp:
            return "missing_signature"
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            return "invalid_signature"
        if abs(self._clock() - int(timestamp)) > SIGNATURE_TOLERANCE_S:
            return "stale_signature"
        from cryptography.exceptions import InvalidSignature

        try:
            raw = binascii.a2b_base64(signature, strict_mode=True)
            key.verify(raw, signed_message(timestamp, request.body))
        except (ValueError, InvalidSignature):
            return "invalid_signature"
        return None

    def verify_stream(self, request: WebhookRequest) -> str | None:
        return None  # Telnyx does not sign the upgrade; the call binding guards streams

    def inbound_call(self, request: WebhookRequest) -> InboundCall:
        params = request.params
        call_id = params.get("CallSid", "")
        account_id = params.get("AccountSid", "")
        # Bound calls must name both ids (and they are always well-formed if sent).
        required = self.signed or self._api_key is not None
        for name, value, valid, kind in (
            ("CallSid", call_id, is_call_control_id, "a Telnyx call_control_id (v3:…)"),
            ("AccountSid", account_id, is_account_id, "a Telnyx account id (a UUID)"),
        ):
            if (value or required) and not valid(value):
                raise CarrierRequestError(f"{name} is not {kind}")
        return InboundCall(
            call_id=call_id,
            account_id=account_id.lower(),
            from_number=params.get("From") or None,
            to_number=params.get("To") or None,
        )

    def connect(self, stream_url: str, parameters: Mapping[str, str]) -> WebhookAnswer:
        return WebhookAnswer(build_connect_texml(stream_url, parameters), "application/xml")

    def refuse(self, message: str) -> WebhookAnswer:
        return WebhookAnswer(build_say_hangup_texml(message), "application/xml")

    def hang_up_answer(self) -> WebhookAnswer:
        return WebhookAnswer(build_hangup_texml(), "application/xml")

    def codec(self, upgrade: WebhookRequest) -> TelnyxCodec:
        return TelnyxCodec()

    def rest(self) -> CarrierRest | None:
        return self._rest
