"""Asterisk (a self-hosted PBX) through its WebSocket channel driver, chan_websocket, as a
`Carrier` (sans-IO).

There is no voice webhook: the dialplan (or ARI) dials a WebSocket channel whose connection,
in `websocket_client.conf`, points at our `/asterisk/media`; Asterisk opens the socket and the
call runs on it. What the dialplan wants the call to know (agent, numbers) rides in the upgrade
URL's query, set per call with the dial string's `v(...)` option, and comes back in
`StreamStart.custom_parameters`.

* **Media**: BINARY messages, raw audio in the dial string's `c(codec)`: `ulaw` (160 bytes per
  20 ms), `slin` (16-bit little-endian PCM at 8 kHz, 320 bytes) or `slin16` (the same at 16
  kHz, 640 bytes: wideband, straight into Live's 16 kHz input); nothing else is accepted
  (`slin24` and up are rates no carrier needs). What we send is re-timed by Asterisk
  (its queue holds ~1000 frames; `MEDIA_XOFF` at 900, `MEDIA_XON` below 800); messages must be
  whole multiples of `optimal_frame_size` (a remainder is dropped) and at most 65500 bytes.
* **Control**: TEXT messages, either the default `plain-text` form (`MEDIA_START
  connection_id:… channel:… channel_id:… format:ulaw optimal_frame_size:160 ptime:20`,
  `DTMF_END digit:5 channel_id:…`, `MEDIA_MARK_PROCESSED <id>`, `ERROR channel_id:…
  error_text:…`) or JSON (`{"event": "MEDIA_START", "channel_id": …, …}`, chosen with
  `chan_websocket.conf` `control_message_format = json` or the dial option `f(json)`, Asterisk
  20.18 / 22.8 / 23.2 and later). Both are parsed; commands we send (`MARK_MEDIA <id>`,
  `FLUSH_MEDIA`, `HANGUP`, `ANSWER`) follow the form the stream's `MEDIA_START` came in, since
  Asterisk parses commands in its configured form only. Commands are case-sensitive and at most
  128 characters (longer ones are ignored by Asterisk).
* **Marks**: `MARK_MEDIA <id>` queues a marker behind the media sent so far; Asterisk answers
  `MEDIA_MARK_PROCESSED <id>` when it reaches the front of the queue (is about to be heard).
  `FLUSH_MEDIA` drops queued media *and* queued marks: marks cleared are never echoed.
* **Hang-up**: Asterisk sends no hang-up event; it closes the WebSocket (status = the hang-up
  cause, 1000 when normal). We hang up with `HANGUP` (or by closing). Mid-call hang-up and
  transfer by the call's id go through the Manager Interface when ASTERISK_AMI_* is set
  (`gateway.telephony.asterisk_ami`: `Redirect` of the caller to a transfer context).
* **Authentication**: `websocket_client.conf`'s `uri` is sent as configured, query included
  (the dial string's `v()` parameters are appended with `&`), so the stream token goes there:
  `uri = wss://gateway.example.com/asterisk/media?token=SECRET`. `Authorization: Bearer` (a
  proxy in front) and Basic with the token as password (the connection's `username` /
  `password`, Asterisk 22.5+) are accepted too.

Docs and source relied on:
https://docs.asterisk.org/Configuration/Channel-Drivers/WebSocket/ (Dial(WebSocket/…), options
c/n/v/p/f, MEDIA_START, DTMF_END, MEDIA_XOFF/XON, commands, 65500-byte limit, queue levels),
https://github.com/asterisk/asterisk/blob/master/channels/chan_websocket.c (exact event text:
`_create_event_MEDIA_START`, `_DTMF_END`, `_MEDIA_MARK_PROCESSED`, `_ERROR`; `handle_command`:
MARK_MEDIA queues a MEDIA_MARK_PROCESSED option frame, FLUSH_MEDIA frees the whole queue;
MAX_TEXT_MESSAGE_LEN 128; `webchan_hangup` closes the socket),
https://docs.asterisk.org/Latest_API/API_Documentation/Module_Configuration/chan_websocket
(`control_message_format` plain-text | json, since 20.18.0 / 22.8.0 / 23.2.0),
https://docs.asterisk.org/Latest_API/API_Documentation/Module_Configuration/res_websocket_client
(uri, protocols, username, password, connection_type per_call_config, tls_enabled, since 22.5),
https://github.com/asterisk/asterisk/blob/master/res/res_websocket_client.c
(`ast_websocket_client_connect`: URI parameters appended with `?` or `&`).

Dialplan (what README quotes)
-----------------------------

WebSocket channel, `websocket_client.conf`::

    [gateway]
    type = websocket_client
    uri = wss://gateway.example.com/asterisk/media?token=SECRET
    connection_type = per_call_config
    connection_timeout = 2000
    reconnect_attempts = 1
    tls_enabled = yes

`extensions.conf` (ulaw both ways; `slin` works too; each value URI-encoded on its own)::

    [from-trunk]
    exten => _X.,1,Dial(WebSocket/gateway/c(ulaw)v(agent=support,to=${URIENCODE(${EXTEN})},from=${URIENCODE(${CALLERID(num)})},call_id=${UNIQUEID}))
     same => n,Hangup()

AudioSocket (gateway.telephony.audiosocket; TCP, signed linear 8 kHz, no parameters but the
call's UUID: pick the agent by the listener's port)::

    [from-trunk]
    exten => _X.,1,Answer()
     same => n,AudioSocket(${UUID()},gateway.example.com:9092)
     same => n,Hangup()
"""  # noqa: E501

from __future__ import annotations

import binascii
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import quote

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
    InboundCall,
    WebhookAnswer,
    WebhookRequest,
)
from gateway.telephony.json_fields import show as _show

if TYPE_CHECKING:
    from gateway.settings import Settings

__all__ = [
    "CONNECTION_NAME",
    "DTMF_KEYS",
    "FORMATS",
    "MAX_COMMAND_CHARS",
    "MAX_CONTROL_FRAME_CHARS",
    "MAX_CUSTOM_PARAMETERS",
    "MAX_MEDIA_PAYLOAD_BYTES",
    "MAX_OUTBOUND_MEDIA_BYTES",
    "NO_WEBHOOK",
    "TOKEN_PARAMETER",
    "AsteriskCarrier",
    "AsteriskCodec",
    "AudioFormat",
    "build_dialplan",
    "stream_parameters",
]

ControlFormat = Literal["plain-text", "json"]

TOKEN_PARAMETER: Final = "token"
"""The upgrade query field that carries ASTERISK_STREAM_TOKEN (never a custom parameter)."""
CONNECTION_NAME: Final = "gateway"
"""The `websocket_client.conf` section our dialplan snippets dial."""
NO_WEBHOOK: Final = "Asterisk calls come from the dialplan; there is no voice webhook"

MAX_CONTROL_FRAME_CHARS: Final = 16 * 1024
"""Largest TEXT message: a JSON `MEDIA_START` carries the channel's variables."""
MAX_MEDIA_PAYLOAD_BYTES: Final = 3840
"""Largest inbound BINARY message: 120 ms of slin16 (240 ms of slin, 480 ms of ulaw); Asterisk
sends its own frame size, 20 ms as a rule."""
MAX_OUTBOUND_MEDIA_BYTES: Final = 65500
"""Asterisk closes the socket and hangs up on a larger message."""
MAX_COMMAND_CHARS: Final = 128
"""chan_websocket's MAX_TEXT_MESSAGE_LEN: a longer command is ignored, not refused."""
MAX_CUSTOM_PARAMETERS: Final = 32
_MAX_PARAMETER_NAME_CHARS: Final = 64
_MAX_PARAMETER_VALUE_CHARS: Final = 512
_MAX_MARK_NAME_CHARS: Final = 64
_MAX_REPR_CHARS: Final = 60
_MAX_ERROR_CHARS: Final = 200
DTMF_KEYS: Final = frozenset("0123456789*#ABCD")

_TOKEN: Final = re.compile(r"[\x21-\x7e]{1,256}")  # printable, no spaces: ids and names
_MARK_NAME: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_DIGITS: Final = re.compile(r"[0-9]{1,6}")


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """One stream format we accept: its `StreamStart.encoding` and 20 ms frame size."""

    name: str
    encoding: str
    frame_bytes: int
    rate_hz: int = 8000


FORMATS: Final[Mapping[str, AudioFormat]] = MappingProxyType(
    {
        "ulaw": AudioFormat("ulaw", MULAW, 160),
        "slin": AudioFormat("slin", L16, 320),
        "slin16": AudioFormat("slin16", L16, 640, 16000),
    }
)
"""Asterisk format names (`c(...)` in the dial string) the gateway can take: μ-law, and signed
linear at 8 kHz or 16 kHz (wideband, straight into Live's 16 kHz input)."""

_NOTICE_DETAIL: Final[Mapping[str, str]] = MappingProxyType(
    {
        "MEDIA_XOFF": "Asterisk's media queue is nearly full (~18 s queued): media sent now "
        "may be dropped until MEDIA_XON",
    }
)
_NOTICES: Final = frozenset(
    {"MEDIA_XOFF", "MEDIA_XON", "QUEUE_DRAINED", "MEDIA_BUFFERING_COMPLETED", "STATUS"}
)



# ------------------------------------------------------------------------ stream parameters


def stream_parameters(query: Mapping[str, str]) -> dict[str, str]:
    """The upgrade query as custom parameters: the token left out (it is a secret), bounded.
    Raises TelephonyProtocolError naming the parameter that breaks a bound."""
    parameters = {name: value for name, value in query.items() if name != TOKEN_PARAMETER}
    if len(parameters) > MAX_CUSTOM_PARAMETERS:
        raise TelephonyProtocolError(
            f"the stream URL has {len(parameters)} query parameters, over the limit of "
            f"{MAX_CUSTOM_PARAMETERS}"
        )
    for name, value in parameters.items():
        if not name or len(name) > _MAX_PARAMETER_NAME_CHARS:
            raise TelephonyProtocolError(
                f"query parameter name {_show(name)} must be 1-{_MAX_PARAMETER_NAME_CHARS} chars"
            )
        if len(value) > _MAX_PARAMETER_VALUE_CHARS:
            raise TelephonyProtocolError(
                f"query parameter {name!r} is {len(value)} chars, over the limit of "
                f"{_MAX_PARAMETER_VALUE_CHARS}"
            )
    return parameters


# ------------------------------------------------------------------------------ control frames


def _parse_json(text: str) -> tuple[str, dict[str, Any]]:
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TelephonyProtocolError(f"control message is not JSON: {exc.msg}") from None
    if type(message) is not dict:
        raise TelephonyProtocolError("control message must be a JSON object")
    event = message.get("event")
    if type(event) is not str or not event:
        raise TelephonyProtocolError(f"event must be a non-empty string, got {_show(event)}")
    return event, message


def _parse_plain(text: str) -> tuple[str, dict[str, Any]]:
    """`EVENT key:value key:value …` (ids in `MEDIA_MARK_PROCESSED <id>` are bare words,
    `error_text:` runs to the end of the line)."""
    event, _, rest = text.partition(" ")
    rest = rest.strip()
    fields: dict[str, Any] = {}
    if event in ("MEDIA_MARK_PROCESSED", "MEDIA_BUFFERING_COMPLETED"):
        fields["correlation_id"] = rest
        return event, fields
    if event == "ERROR":
        head, found, error_text = rest.partition("error_text:")
        if found:
            fields["error_text"] = error_text.strip()
        rest = head
    for word in rest.split():
        key, found, value = word.partition(":")
        if not found or not key:
            raise TelephonyProtocolError(f"{event} field {_show(word)} is not key:value")
        if key in fields:
            raise TelephonyProtocolError(f"{event} repeats field {key}")
        fields[key] = value
    return event, fields


def _opt_token(fields: Mapping[str, Any], key: str, event: str) -> str | None:
    value = fields.get(key)
    if value is None:
        return None
    if type(value) is not str or _TOKEN.fullmatch(value) is None:
        raise TelephonyProtocolError(
            f"{event}.{key} must be 1-256 printable characters without spaces, got {_show(value)}"
        )
    return value


def _token(fields: Mapping[str, Any], key: str, event: str) -> str:
    value = _opt_token(fields, key, event)
    if value is None:
        raise TelephonyProtocolError(f"missing field {event}.{key}")
    return value


def _opt_int(fields: Mapping[str, Any], key: str, event: str) -> int | None:
    """A small non-negative integer: a JSON number, or digits in plain text."""
    value = fields.get(key)
    if value is None:
        return None
    if type(value) is int and 0 <= value < 1_000_000:
        return value
    if type(value) is str and _DIGITS.fullmatch(value):
        return int(value)
    raise TelephonyProtocolError(
        f"{event}.{key} must be a non-negative integer, got {_show(value)}"
    )


def _text(fields: Mapping[str, Any], key: str, event: str) -> str:
    value = fields.get(key, "")
    if type(value) is not str:
        raise TelephonyProtocolError(f"{event}.{key} must be a string, got {_show(value)}")
    return value


# ------------------------------------------------------------------------------------- codec


class AsteriskCodec:
    """One chan_websocket stream: `MEDIA_START` → StreamStart, BINARY → MediaFrame, DTMF_END →
    Dtmf, MEDIA_MARK_PROCESSED → MarkEcho; flow control, status and ERROR → CarrierNotice."""

    name: Final = "asterisk"

    def __init__(self, query: Mapping[str, str] | None = None) -> None:
        self._query = dict(query or {})
        self._start: StreamStart | None = None
        self._format: AudioFormat | None = None
        self._control: ControlFormat = "plain-text"
        self._chunk = 0
        self._media_bytes = 0

    @property
    def control_format(self) -> ControlFormat:
        """The form of this stream's control messages (that of its MEDIA_START)."""
        return self._control

    def parse(self, frame: str | bytes) -> CarrierEvent:
        if isinstance(frame, bytes | bytearray | memoryview):
            return self._media(bytes(frame))
        if len(frame) > MAX_CONTROL_FRAME_CHARS:
            raise TelephonyProtocolError(
                f"control message is {len(frame)} chars, over the limit of "
                f"{MAX_CONTROL_FRAME_CHARS}"
            )
        text = frame.strip()
        if not text:
            raise TelephonyProtocolError("control message is empty")
        is_json = text.startswith("{")
        event, fields = _parse_json(text) if is_json else _parse_plain(text)
        if event == "MEDIA_START":
            return self._media_start(fields, "json" if is_json else "plain-text")
        if event == "DTMF_END":
            return self._dtmf(fields)
        if event == "MEDIA_MARK_PROCESSED":
            name = _text(fields, "correlation_id", event)
            return MarkEcho(stream_sid=self._stream_sid, name=name, sequence_number=None)
        if event == "ERROR":
            detail = _text(fields, "error_text", event)[:_MAX_ERROR_CHARS]
            return CarrierNotice(self._stream_sid, event, detail or "(no error_text)")
        if event in _NOTICES:
            return CarrierNotice(self._stream_sid, event, _NOTICE_DETAIL.get(event, ""))
        return UnknownEvent(event=event[:_MAX_REPR_CHARS], raw=MappingProxyType(dict(fields)))

    @property
    def _stream_sid(self) -> str:
        return self._start.stream_sid if self._start is not None else ""

    def _media_start(self, fields: Mapping[str, Any], control: ControlFormat) -> StreamStart:
        event = "MEDIA_START"
        channel = _token(fields, "channel", event)
        channel_id = _opt_token(fields, "channel_id", event)  # absent before 22.6 / 21.11
        _opt_token(fields, "connection_id", event)
        format_name = _token(fields, "format", event)
        audio = FORMATS.get(format_name)
        if audio is None:
            raise TelephonyProtocolError(
                f"{event}.format must be one of {', '.join(FORMATS)}, "
                f"got {_show(format_name)}"
            )
        frame_size = _opt_int(fields, "optimal_frame_size", event)
        if frame_size is not None and frame_size != audio.frame_bytes:
            # Our 20 ms frames must be whole multiples of it, or Asterisk drops them.
            raise TelephonyProtocolError(
                f"{event}.optimal_frame_size must be {audio.frame_bytes} for {audio.name} "
                f"(20 ms), got {frame_size}"
            )
        ptime = _opt_int(fields, "ptime", event)
        if ptime is not None and ptime != 20:
            raise TelephonyProtocolError(f"{event}.ptime must be 20, got {ptime}")
        start = StreamStart(
            stream_sid=channel,
            call_sid=channel_id or channel,
            account_sid="",
            tracks=("inbound",),
            custom_parameters=MappingProxyType(stream_parameters(self._query)),
            encoding=audio.encoding,
            sample_rate_hz=audio.rate_hz,
            channels=1,
            sequence_number=None,
        )
        if self._start is None:
            self._start, self._format, self._control = start, audio, control
        elif (self._start.stream_sid, self._start.encoding) != (channel, audio.encoding):
            raise TelephonyProtocolError("a second MEDIA_START, for another channel or format")
        return self._start

    def _media(self, payload: bytes) -> MediaFrame:
        start, audio = self._start, self._format
        if start is None or audio is None:
            raise TelephonyProtocolError("binary media before MEDIA_START")
        size = len(payload)
        if size == 0:
            raise TelephonyProtocolError("binary media message is empty")
        if size > MAX_MEDIA_PAYLOAD_BYTES:
            raise TelephonyProtocolError(
                f"binary media is {size} bytes, over the limit of "
                f"MAX_MEDIA_PAYLOAD_BYTES={MAX_MEDIA_PAYLOAD_BYTES}"
            )
        if audio.encoding == L16 and size % 2:
            raise TelephonyProtocolError(f"binary slin media is {size} bytes, not whole samples")
        timestamp_ms = self._media_bytes * 20 // audio.frame_bytes
        self._chunk += 1
        self._media_bytes += size
        return MediaFrame(
            stream_sid=start.stream_sid,
            track="inbound",
            chunk=self._chunk,
            timestamp_ms=timestamp_ms,
            payload=payload,
            sequence_number=None,
        )

    def _dtmf(self, fields: Mapping[str, Any]) -> Dtmf:
        digit = _text(fields, "digit", "DTMF_END")
        if digit not in DTMF_KEYS:  # it reaches the model as text: only keys pass
            raise TelephonyProtocolError(
                f"DTMF_END.digit must be one key of 0-9, *, #, A-D, got {_show(digit)}"
            )
        return Dtmf(stream_sid=self._stream_sid, digit=digit, track="inbound", sequence_number=None)

    def stop_on_close(self) -> StreamStop | None:
        """What the socket closing means here: the call hung up (Asterisk sends no event)."""
        start = self._start
        if start is None:
            return None
        return StreamStop(start.stream_sid, start.call_sid, start.account_sid, None)

    # -------------------------------------------------------------------------- outbound

    def _command(self, command: str, **fields: str) -> str:
        if self._control == "json":
            text = json.dumps({"command": command, **fields}, separators=(",", ":"))
        else:
            text = " ".join([command, *fields.values()])
        if len(text) > MAX_COMMAND_CHARS:  # Asterisk would ignore it without a word
            raise ValueError(f"{command} is {len(text)} chars, over Asterisk's {MAX_COMMAND_CHARS}")
        return text

    def build_media(self, stream_sid: str, audio: bytes) -> bytes:
        """Raw audio in the stream's format, one BINARY message (Asterisk re-times it)."""
        if len(audio) > MAX_OUTBOUND_MEDIA_BYTES:
            raise ValueError(
                f"media is {len(audio)} bytes, over Asterisk's {MAX_OUTBOUND_MEDIA_BYTES}"
            )
        return bytes(audio)

    def build_mark(self, stream_sid: str, name: str) -> str:
        """`MARK_MEDIA <name>`: echoed as MEDIA_MARK_PROCESSED when the media before it plays."""
        if _MARK_NAME.fullmatch(name) is None:
            raise ValueError(
                f"mark name must be 1-{_MAX_MARK_NAME_CHARS} of A-Z a-z 0-9 _ . : -, "
                f"got {_show(name)}"
            )
        return self._command("MARK_MEDIA", correlation_id=name)

    def build_clear(self, stream_sid: str) -> str:
        """`FLUSH_MEDIA`: Asterisk drops queued media and queued marks (none are echoed)."""
        return self._command("FLUSH_MEDIA")

    def build_hangup(self) -> str:
        """`HANGUP`: Asterisk hangs the channel up and closes the socket."""
        return self._command("HANGUP")

    def build_answer(self) -> str:
        """`ANSWER`: for channels dialled with `n` (no auto-answer)."""
        return self._command("ANSWER")


# ------------------------------------------------------------------------------------ carrier


def build_dialplan(stream_url: str, parameters: Mapping[str, str]) -> str:
    """The `websocket_client.conf` connection and the `Dial()` that stream a call to
    `stream_url` with `parameters` (each value URI-encoded, as `v()` requires)."""
    params = ",".join(
        f"{quote(name, safe='')}={quote(value, safe='')}"
        for name, value in parameters.items()
        if value
    )
    options = f"c(ulaw)v({params})" if params else "c(ulaw)"
    return (
        "; websocket_client.conf\n"
        f"[{CONNECTION_NAME}]\n"
        "type = websocket_client\n"
        f"uri = {stream_url}\n"
        "connection_type = per_call_config\n"
        "\n"
        "; extensions.conf\n"
        f"exten => _X.,1,Dial(WebSocket/{CONNECTION_NAME}/{options})\n"
        " same => n,Hangup()\n"
    )


class AsteriskCarrier:
    """Asterisk's chan_websocket: streams only, no webhook; hang-up and transfer through AMI
    (`gateway.telephony.asterisk_ami`) when it is configured."""

    name: Final = "asterisk"

    def __init__(self, stream_token: str | None = None, *, rest: CarrierRest | None = None) -> None:
        self._token = stream_token or None
        self._rest = rest

    @classmethod
    def from_settings(cls, settings: Settings) -> AsteriskCarrier:
        rest: CarrierRest | None = None
        if getattr(settings, "asterisk_ami_host", None):
            from gateway.telephony.asterisk_ami import AsteriskAmi  # only when configured

            rest = AsteriskAmi.from_settings(settings)
        return cls(getattr(settings, "asterisk_stream_token", None), rest=rest)

    @property
    def account_allowlist(self) -> frozenset[str]:
        return frozenset()

    @property
    def signed(self) -> bool:
        return self._token is not None

    @property
    def binding_secret(self) -> str | None:
        return None  # no webhook to bind a stream to: the token is the whole check

    @property
    def upgrade_vouches_call(self) -> bool:
        return self.signed  # only the PBX holds ASTERISK_STREAM_TOKEN (AMI requires it)

    def verify_webhook(self, request: WebhookRequest) -> str | None:
        return None  # `inbound_call` refuses every webhook

    def verify_stream(self, request: WebhookRequest) -> str | None:
        """With ASTERISK_STREAM_TOKEN: `?token=` (websocket_client.conf's uri), else
        `Authorization: Bearer <token>` or Basic with the token as password."""
        token = self._token
        if token is None:
            return None
        offered = request.params.get(TOKEN_PARAMETER) or _authorization_token(
            request.headers.get("authorization", "")
        )
        if not offered:
            return "missing_token"
        if not hmac.compare_digest(offered.encode(), token.encode()):
            return "invalid_token"
        return None

    def inbound_call(self, request: WebhookRequest) -> InboundCall:
        raise CarrierRequestError(NO_WEBHOOK)

    def connect(self, stream_url: str, parameters: Mapping[str, str]) -> WebhookAnswer:
        """Not an answer Asterisk reads: the configuration that would stream such a call."""
        return WebhookAnswer(build_dialplan(stream_url, parameters), "text/plain")

    def refuse(self, message: str) -> WebhookAnswer:
        return WebhookAnswer(
            f"{NO_WEBHOOK}.\nRefused: {message}\n; to turn calls away in the dialplan:\n"
            "exten => _X.,1,Answer()\n same => n,Playback(ss-noservice)\n same => n,Hangup()\n",
            "text/plain",
        )

    def hang_up_answer(self) -> WebhookAnswer:
        return self.refuse("the call is hung up")  # no webhook: the dialplan decides

    def codec(self, upgrade: WebhookRequest) -> AsteriskCodec:
        return AsteriskCodec(upgrade.params)

    def rest(self) -> CarrierRest | None:
        """AMI (`AsteriskAmi`) with ASTERISK_AMI_HOST / _USERNAME / _SECRET, else None (the
        call hangs up on the socket, `HANGUP`, and cannot be transferred)."""
        return self._rest


def _authorization_token(header: str) -> str:
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip()
    if scheme == "basic":
        try:
            decoded = binascii.a2b_base64(value.strip(), strict_mode=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return ""
