"""Asterisk's mid-call "REST": hang-up and transfer through the Asterisk Manager Interface (AMI).

AMI is a text protocol over TCP (port 5038): on connect Asterisk sends one banner line
(`Asterisk Call Manager/<version>`); then every message is `Key: Value` lines ended by a blank
line (CR LF throughout). An action carries `Action:` and our `ActionID:`; its answer is
`Response: Success` or `Response: Error` with a `Message:` and the same ActionID. A list action
(`CoreShowChannels`) answers `Response: Success` (`EventList: start`), then one event per item
and a closing `...Complete` event, all with the ActionID. Other events (none are asked for: we log
in with `Events: off`) are skipped.

`AsteriskAmi` is the `CarrierRest` of the Asterisk carrier. Each operation opens its own
connection: `Login`, `CoreShowChannels` (AMI acts on channel *names*, the gateway knows the
call by the WebSocket channel's uniqueid, `MEDIA_START`'s `channel_id`), the actions, `Logoff`,
all within one timeout. From the channel list:

* **our channel** is the one whose `Uniqueid` is the call id (or whose `Channel` name is: before
  Asterisk 22.6 / 21.11 `MEDIA_START` has no `channel_id`, and the gateway uses the name);
* **the caller's channel** is the other channel in our `BridgeId`, else the channel whose
  `Uniqueid` is our `Linkedid` (the channel that ran `Dial(WebSocket/…)`).

`hang_up` is `Hangup Channel=<ours>` (the caller's `Dial()` returns and its dialplan goes on,
`Hangup()` in ours). `transfer` sets `GATEWAY_TRANSFER_TO` (an E.164 number or a sip: URI) and,
when the target has one, `GATEWAY_TRANSFER_CALLER_ID` on the caller's channel (`Setvar`), then
`Redirect`s it to `ASTERISK_TRANSFER_CONTEXT` (default `gateway-transfer`), extension `s`,
priority 1: the caller leaves the bridge, our channel is hung up (our stream ends, as on other
carriers) and the context dials the target. Targets are checked strictly before anything is
sent (a comma or `&` would add Dial() options or devices).

AudioSocket calls (`AudioSocket(${UUID()},host:port)` in the dialplan) are found too: their call
id is the UUID, and the channel running the application shows it first in its
`ApplicationData` (`<uuid>,host:port`); that channel is also the caller (there is no bridge).

Dialplan (`extensions.conf`; `trunk` is your PJSIP endpoint towards the PSTN)::

    [gateway-transfer]
    exten => s,1,Set(CALLERID(num)=${IF($["${GATEWAY_TRANSFER_CALLER_ID}" != ""]?${GATEWAY_TRANSFER_CALLER_ID}:${CALLERID(num)})})
     same => n,GotoIf($["${GATEWAY_TRANSFER_TO:0:4}" = "sip:"]?uri)
     same => n,Dial(PJSIP/${GATEWAY_TRANSFER_TO}@trunk)
     same => n,Hangup()
     same => n(uri),Dial(PJSIP/trunk/${GATEWAY_TRANSFER_TO})
     same => n,Hangup()

`manager.conf` (the user's `write` classes: `call` for Setvar, Redirect and Hangup; `reporting`
for CoreShowChannels, which needs `system` or `reporting`; no `read` class: list answers
are not events)::

    [general]
    enabled = yes
    port = 5038
    bindaddr = 127.0.0.1

    [gateway]
    secret = A-LONG-RANDOM-SECRET
    deny = 0.0.0.0/0.0.0.0
    permit = 127.0.0.1/255.255.255.255
    read =
    write = call,reporting

Docs relied on:
https://docs.asterisk.org/Configuration/Interfaces/Asterisk-Manager-Interface-AMI/ (framing,
ActionID, Response, list actions),
https://docs.asterisk.org/Latest_API/API_Documentation/AMI_Actions/Login (Username, Secret,
Events), …/AMI_Actions/Logoff, …/AMI_Actions/CoreShowChannels and
…/AMI_Events/CoreShowChannel (Channel, Uniqueid, Linkedid "Uniqueid of the oldest channel
associated with this channel", BridgeId, Application, ApplicationData; class CALL),
…/AMI_Actions/Setvar (Channel, Variable, Value), …/AMI_Actions/Redirect (Channel, Context,
Exten, Priority), …/AMI_Actions/Hangup (Channel, Cause),
https://github.com/asterisk/asterisk/blob/master/main/manager.c (privileges: Setvar, Redirect
EVENT_FLAG_CALL; Hangup SYSTEM|CALL; CoreShowChannels SYSTEM|REPORTING, any one suffices).
"""  # noqa: E501

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import secrets
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from gateway.telephony.carrier import CarrierRestError
from gateway.telephony.numbers import E164
from gateway.tools.spec import TransferTarget

if TYPE_CHECKING:
    from gateway.settings import Settings

__all__ = [
    "BANNER_PREFIX",
    "DEFAULT_PORT",
    "DEFAULT_TRANSFER_CONTEXT",
    "MAX_CHANNELS",
    "MAX_FIELDS",
    "MAX_LINE_BYTES",
    "MAX_MESSAGE_BYTES",
    "TRANSFER_CALLER_ID_VARIABLE",
    "TRANSFER_TO_VARIABLE",
    "AmiChannel",
    "AmiCredentials",
    "AmiMessage",
    "AmiParser",
    "AmiProtocolError",
    "AsteriskAmi",
    "AsteriskAmiError",
    "encode_action",
    "find_call_channels",
    "transfer_destination",
]

AmiMessage = dict[str, str]
"""One AMI message: its fields by name, as Asterisk spelled them (the first of a repeated one)."""

DEFAULT_PORT: Final = 5038
DEFAULT_TRANSFER_CONTEXT: Final = "gateway-transfer"
TRANSFER_TO_VARIABLE: Final = "GATEWAY_TRANSFER_TO"
TRANSFER_CALLER_ID_VARIABLE: Final = "GATEWAY_TRANSFER_CALLER_ID"
BANNER_PREFIX: Final = "Asterisk Call Manager/"
REST_TIMEOUT_S: Final = 10.0

MAX_LINE_BYTES: Final = 8 * 1024
"""Longest line we read (an `ApplicationData` can be long; nothing we need is)."""
MAX_MESSAGE_BYTES: Final = 64 * 1024
MAX_FIELDS: Final = 256
MAX_CHANNELS: Final = 20_000
"""CoreShowChannel events we take in one list; a larger PBX is refused, not read forever."""
_MAX_VALUE_CHARS: Final = 1024
_MAX_SHOWN_CHARS: Final = 200

_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
"""Action and field names."""
_CHANNEL: Final = re.compile(r"[\x21-\x7e]{1,256}")
"""Channel names and uniqueids: printable, no spaces."""
_CONTEXT: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,78}")
"""A dialplan context name (Asterisk's AST_MAX_CONTEXT is 80 with the NUL)."""
_SIP_URI: Final = re.compile(
    r"sip:(?:[A-Za-z0-9._~+*#-]{1,64}@)?"  # user: digits, names; no , & ( ) $ { } | ! or space
    r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?"  # host name or IPv4 address
    r"(?::[0-9]{1,5})?"
    r"(?:;(?:transport=(?:udp|tcp|tls|ws|wss)|user=phone))?"
)
"""A sip: URI the dialplan can hand to Dial(PJSIP/trunk/…) as it is."""
_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class AsteriskAmiError(CarrierRestError):
    """An AMI operation failed (connection, login, an action Asterisk refused, no such channel,
    timeout); the message says which, never the secret."""


class AmiProtocolError(ValueError):
    """What Asterisk sent is not AMI (no banner, a line without `:`, over a bound)."""


def _show(value: str) -> str:
    return repr(value[:_MAX_SHOWN_CHARS])


# -------------------------------------------------------------------------------- sans-IO


def encode_action(
    action: str,
    fields: Mapping[str, str] | Sequence[tuple[str, str]],
    action_id: str,
) -> bytes:
    """`Action: <action>`, `ActionID: <action_id>`, then `fields` in order, and the blank line
    that ends the message. ValueError on a name that is not a word, or a CR, LF or NUL in a
    value (they would start another field or action: header injection)."""
    if not action or not action_id:
        raise ValueError("an AMI action needs its name and an ActionID")
    pairs = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
    lines: list[str] = []
    for name, value in [("Action", action), ("ActionID", action_id), *pairs]:
        if _NAME.fullmatch(name) is None:
            raise ValueError(f"AMI field name {_show(name)} must be a word (A-Z, 0-9, _, -)")
        if name.lower() in ("action", "actionid") and len(lines) >= 2:
            raise ValueError(f"AMI field {name} is set by encode_action, not by its fields")
        if any(c in value for c in "\r\n\0"):
            raise ValueError(f"AMI field {name} must not contain CR, LF or NUL")
        if len(value) > _MAX_VALUE_CHARS:
            raise ValueError(f"AMI field {name} is {len(value)} chars, over {_MAX_VALUE_CHARS}")
        lines.append(f"{name}: {value}\r\n")
    return ("".join(lines) + "\r\n").encode("utf-8")


class AmiParser:
    """Bytes from Asterisk in (`feed`), whole messages out: the banner line first (`banner`),
    then `Key: Value` blocks ended by a blank line. Bounded: a line over MAX_LINE_BYTES, a
    message over MAX_MESSAGE_BYTES or MAX_FIELDS fields raise AmiProtocolError."""

    def __init__(self, *, banner: bool = True) -> None:
        self.banner: str | None = None
        self._want_banner = banner
        self._buffer = bytearray()
        self._fields: AmiMessage = {}
        self._field_count = 0
        self._message_bytes = 0

    def feed(self, data: bytes) -> list[AmiMessage]:
        """The messages `data` completes (none, one or several)."""
        self._buffer += data
        messages: list[AmiMessage] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE_BYTES:
                    raise AmiProtocolError(f"an AMI line is over {MAX_LINE_BYTES} bytes")
                return messages
            if end > MAX_LINE_BYTES:
                raise AmiProtocolError(f"an AMI line is over {MAX_LINE_BYTES} bytes")
            raw = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            line = raw.removesuffix(b"\r").decode("utf-8", "replace")
            message = self._line(line, end + 1)
            if message is not None:
                messages.append(message)

    def _line(self, line: str, size: int) -> AmiMessage | None:
        if self._want_banner:
            if not line.startswith(BANNER_PREFIX):
                raise AmiProtocolError(f"not an AMI banner: {_show(line)}")
            self._want_banner = False
            self.banner = line
            return None
        if not line:
            if not self._fields:
                return None  # blank lines between messages
            message, self._fields = self._fields, {}
            self._field_count = self._message_bytes = 0
            return message
        self._message_bytes += size
        self._field_count += 1
        if self._message_bytes > MAX_MESSAGE_BYTES:
            raise AmiProtocolError(f"an AMI message is over {MAX_MESSAGE_BYTES} bytes")
        if self._field_count > MAX_FIELDS:
            raise AmiProtocolError(f"an AMI message has over {MAX_FIELDS} fields")
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise AmiProtocolError(f"AMI line {_show(line)} is not Key: Value")
        self._fields.setdefault(name.strip(), value.strip())
        return None


def _get(message: Mapping[str, str], name: str) -> str:
    """A field by name, whatever its case ("" when absent)."""
    value = message.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in message.items() if k.lower() == lowered), "")


@dataclass(frozen=True, slots=True)
class AmiChannel:
    """One `CoreShowChannel` event: what we need to know of a channel."""

    name: str
    uniqueid: str
    linkedid: str = ""
    bridge_id: str = ""
    application: str = ""
    application_data: str = ""

    @classmethod
    def from_event(cls, event: Mapping[str, str]) -> AmiChannel:
        return cls(
            name=_get(event, "Channel"),
            uniqueid=_get(event, "Uniqueid"),
            linkedid=_get(event, "Linkedid"),
            bridge_id=_get(event, "BridgeId"),
            application=_get(event, "Application"),
            application_data=_get(event, "ApplicationData"),
        )


def find_call_channels(
    channels: Iterable[AmiChannel], call_id: str
) -> tuple[AmiChannel, AmiChannel | None]:
    """Our channel (by uniqueid, else by name, else the AudioSocket application whose data
    starts with the call's UUID) and the caller's (the other one in our bridge, else the one
    whose uniqueid is our linkedid; for AudioSocket, our channel itself). AsteriskAmiError
    when our channel is not there (the call has ended, or the id is not Asterisk's)."""
    listed = list(channels)
    ours = next((c for c in listed if c.uniqueid == call_id), None)
    if ours is None:
        ours = next((c for c in listed if c.name == call_id), None)
    if ours is None and _UUID.fullmatch(call_id.lower()):
        ours = next((c for c in listed if _runs_audiosocket(c, call_id.lower())), None)
        if ours is not None:
            return ours, ours
    if ours is None:
        raise AsteriskAmiError(
            f"no Asterisk channel has the uniqueid or name {_show(call_id)} (has the call ended?)"
        )
    if ours.bridge_id:
        peers = [c for c in listed if c.bridge_id == ours.bridge_id and c.name != ours.name]
        linked = [c for c in peers if c.uniqueid == ours.linkedid]
        if len(peers) == 1:
            return ours, peers[0]
        if linked:
            return ours, linked[0]
    if ours.linkedid and ours.linkedid != ours.uniqueid:
        origin = next((c for c in listed if c.uniqueid == ours.linkedid), None)
        if origin is not None:
            return ours, origin
    return ours, None


def _runs_audiosocket(channel: AmiChannel, uuid: str) -> bool:
    data = channel.application_data.lower()
    return channel.application.lower() == "audiosocket" and (
        data == uuid or data.startswith(uuid + ",")
    )


def transfer_destination(target: TransferTarget) -> tuple[str, str | None]:
    """The values of GATEWAY_TRANSFER_TO and GATEWAY_TRANSFER_CALLER_ID for `target`, checked
    strictly (they reach Dial() in the dialplan); AsteriskAmiError when one does not pass."""
    number = target.number
    if E164.fullmatch(number) is None and _SIP_URI.fullmatch(number) is None:
        raise AsteriskAmiError(
            f"transfer target {_show(number)} is neither an E.164 number nor a plain sip: URI "
            "(sip:user@host[:port][;transport=…], no spaces, commas, & or parentheses)"
        )
    caller_id = target.caller_id
    if caller_id is not None and E164.fullmatch(caller_id) is None:
        raise AsteriskAmiError(f"transfer caller id {_show(caller_id)} is not an E.164 number")
    return number, caller_id


# ---------------------------------------------------------------------------------- client


@dataclass(frozen=True, slots=True)
class AmiCredentials:
    """Where the AMI is and who we are to it (manager.conf's user and its secret)."""

    host: str
    username: str
    secret: str = field(repr=False)
    port: int = DEFAULT_PORT


_ACTION_IDS: Final = itertools.count(1)


class _Session:
    """One logged-in AMI connection (a helper of AsteriskAmi)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = AmiParser()
        self._pending: list[AmiMessage] = []
        self._prefix = f"gw-{secrets.token_hex(4)}-"

    async def _next(self) -> AmiMessage:
        while not self._pending:
            data = await self._reader.read(4096)
            if not data:
                raise AsteriskAmiError("Asterisk closed the AMI connection")
            try:
                self._pending.extend(self._parser.feed(data))
            except AmiProtocolError as exc:
                raise AsteriskAmiError(f"Asterisk's AMI answer is malformed: {exc}") from None
        return self._pending.pop(0)

    async def send(self, action: str, fields: Mapping[str, str]) -> str:
        action_id = f"{self._prefix}{next(_ACTION_IDS)}"
        self._writer.write(encode_action(action, fields, action_id))
        await self._writer.drain()
        return action_id

    async def response(self, action_id: str) -> AmiMessage:
        """The `Response:` to our action (events and other answers are skipped)."""
        while True:
            message = await self._next()
            if _get(message, "ActionID") == action_id and _get(message, "Response"):
                return message

    async def call(self, action: str, fields: Mapping[str, str], what: str) -> AmiMessage:
        """Send `action`; its answer when it is `Success`, else AsteriskAmiError naming `what`."""
        action_id = await self.send(action, fields)
        answer = await self.response(action_id)
        if _get(answer, "Response").lower() != "success":
            detail = _get(answer, "Message") or "(no message)"
            raise AsteriskAmiError(f"Asterisk refused {what}: {detail[:_MAX_SHOWN_CHARS]}")
        return answer

    async def channels(self) -> list[AmiChannel]:
        """Every channel (`CoreShowChannels`: Success, CoreShowChannel events, Complete)."""
        action_id = await self.send("CoreShowChannels", {})
        answer = await self.response(action_id)
        if _get(answer, "Response").lower() != "success":
            detail = _get(answer, "Message") or "(no message)"
            raise AsteriskAmiError(
                f"Asterisk refused CoreShowChannels (the AMI user needs write = reporting): "
                f"{detail[:_MAX_SHOWN_CHARS]}"
            )
        channels: list[AmiChannel] = []
        while True:
            message = await self._next()
            if _get(message, "ActionID") != action_id:
                continue
            event = _get(message, "Event")
            if event == "CoreShowChannelsComplete":
                return channels
            if event == "CoreShowChannel":
                if len(channels) >= MAX_CHANNELS:
                    raise AsteriskAmiError(f"Asterisk lists over {MAX_CHANNELS} channels")
                channels.append(AmiChannel.from_event(message))

    async def logoff(self) -> None:
        """`Logoff`, not waited for: the operation has already succeeded or failed, and
        Asterisk closes the connection when it reads it."""
        with contextlib.suppress(OSError, ValueError):
            await self.send("Logoff", {})


class AsteriskAmi:
    """`CarrierRest` for Asterisk calls: hang-up and transfer through AMI, one TCP connection
    (login, list, actions, logoff) per operation, within `timeout_s`."""

    def __init__(
        self,
        credentials: AmiCredentials,
        *,
        transfer_context: str = DEFAULT_TRANSFER_CONTEXT,
        timeout_s: float = REST_TIMEOUT_S,
    ) -> None:
        if _CONTEXT.fullmatch(transfer_context) is None:
            raise ValueError(f"transfer context {_show(transfer_context)} is not a context name")
        self.credentials = credentials
        self.transfer_context = transfer_context
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> AsteriskAmi | None:
        """From ASTERISK_AMI_HOST / _PORT / _USERNAME / _SECRET (None unless all are set) and
        ASTERISK_TRANSFER_CONTEXT."""
        host = settings.asterisk_ami_host
        username = settings.asterisk_ami_username
        secret = settings.asterisk_ami_secret
        if not (host and username and secret):
            return None
        credentials = AmiCredentials(host, username, secret, settings.asterisk_ami_port)
        return cls(credentials, transfer_context=settings.asterisk_transfer_context)

    async def hang_up(self, account_id: str | None, call_id: str) -> None:
        """`Hangup` our channel (the call's; the caller's dialplan goes on after its Dial)."""
        _check_call_id(call_id)
        async with self._session() as session:
            ours, _ = find_call_channels(await session.channels(), call_id)
            await session.call("Hangup", {"Channel": _channel_name(ours)}, "Hangup")

    async def transfer(self, account_id: str | None, call_id: str, target: TransferTarget) -> None:
        """Set GATEWAY_TRANSFER_TO (and _CALLER_ID) on the caller's channel and `Redirect` it
        to the transfer context, which dials the target; our channel is hung up."""
        number, caller_id = transfer_destination(target)
        _check_call_id(call_id)
        async with self._session() as session:
            ours, caller = find_call_channels(await session.channels(), call_id)
            if caller is None:
                raise AsteriskAmiError(
                    f"the caller's channel of {_show(ours.name)} is not found (not bridged, "
                    "no channel with its Linkedid)"
                )
            name = _channel_name(caller)
            variables = [(TRANSFER_TO_VARIABLE, number)]
            if caller_id:
                variables.append((TRANSFER_CALLER_ID_VARIABLE, caller_id))
            for variable, value in variables:
                fields = {"Channel": name, "Variable": variable, "Value": value}
                await session.call("Setvar", fields, f"Setvar {variable}")
            redirect = {
                "Channel": name,
                "Context": self.transfer_context,
                "Exten": "s",
                "Priority": "1",
            }
            await session.call("Redirect", redirect, f"Redirect to {self.transfer_context}")

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[_Session]:
        credentials = self.credentials
        where = f"{credentials.host}:{credentials.port}"
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(self.timeout_s):
                reader, writer = await asyncio.open_connection(credentials.host, credentials.port)
                session = _Session(reader, writer)
                login = {
                    "Username": credentials.username,
                    "Secret": credentials.secret,
                    "Events": "off",
                }
                try:
                    await session.call("Login", login, f"the AMI login of {credentials.username!r}")
                except ValueError:  # CR/LF in the username or secret
                    raise AsteriskAmiError("the AMI username or secret is not one line") from None
                try:
                    yield session
                finally:
                    await session.logoff()
        except TimeoutError:
            raise AsteriskAmiError(
                f"no answer from Asterisk AMI at {where} within {self.timeout_s:g} s"
            ) from None
        except OSError as exc:
            raise AsteriskAmiError(f"cannot reach Asterisk AMI at {where}: {exc!r}") from None
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()


def _check_call_id(call_id: str) -> None:
    if _CHANNEL.fullmatch(call_id) is None:
        raise AsteriskAmiError(
            "not an Asterisk call id (a channel's uniqueid or name: printable, no spaces)"
        )


def _channel_name(channel: AmiChannel) -> str:
    """A channel name as AMI actions take it (a leading `/` would make Hangup read a regex)."""
    name = channel.name
    if _CHANNEL.fullmatch(name) is None or name.startswith("/"):
        raise AsteriskAmiError(f"Asterisk listed a channel name we will not use: {_show(name)}")
    return name
