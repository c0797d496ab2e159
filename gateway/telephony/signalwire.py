"""SignalWire's Compatibility API (cXML/LaML) as a `Carrier`: Twilio's wire, minus what differs.

SignalWire copies Twilio's voice webhook, its `<Connect><Stream>` document, its signatures and
its Calls REST resource, so this module reuses `gateway.telephony.twilio` and adds only:

* **ids are UUIDs** (call, project = account, stream), not `CA…`/`AC…` SIDs;
* **media frames are sparser**: `media` and `stop` carry no `streamSid`, `stop` no call ids,
  `dtmf` no track. `SignalWireCodec` remembers the stream's `start` and completes each frame
  before Twilio's parser (with its bounds) reads it;
* **the upgrade is not signed**, but `<Stream authBearerToken=…>` makes SignalWire send
  `Authorization: Bearer …` on it: we set a token derived from the signing key and check it;
* **REST** lives on the space: `{space}/api/laml/2010-04-01/Accounts/{project}/Calls/{call}.json`,
  basic auth project ID : API token (aiohttp here, not the twilio SDK).

Docs relied on:
https://developer.signalwire.com/compatibility-api/xml/voice/ (webhook: CallSid, AccountSid,
From, To), https://developer.signalwire.com/compatibility-api/cxml/voice/connect/ and
https://developer.signalwire.com/compatibility-api/cxml/voice/stream/ (bidirectional stream,
`<Parameter>` → `start.customParameters`, no query string on the URL, `authBearerToken`, the
frames and their UUID ids, default codec PCMU@8000 = `audio/x-mulaw`),
https://developer.signalwire.com/guides/webhook-security (X-SignalWire-Signature, signing key;
the form scheme is Twilio's base64 HMAC-SHA1 over URL + sorted fields, as in SignalWire's SDK
https://github.com/signalwire/signalwire-typescript/blob/main/src/WebhookValidator.ts),
https://developer.signalwire.com/compatibility-api/rest/update-a-call/ (Status=completed),
https://developer.signalwire.com/compatibility-api/rest/calls/create-a-call (outbound calls:
To, From, Url, StatusCallback + StatusCallbackEvent, MachineDetection).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final
from xml.etree import ElementTree

import aiohttp
from twilio.request_validator import RequestValidator

from gateway.settings import Settings
from gateway.telephony.base import (
    CarrierEvent,
    Dtmf,
    MarkEcho,
    MediaFrame,
    StreamStart,
    StreamStop,
    TelephonyProtocolError,
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
from gateway.telephony.twilio import (
    MAX_FRAME_CHARS,
    MAX_STREAMING_FRAME_CHARS,
    build_clear,
    build_connect_twiml,
    build_hangup_twiml,
    build_mark,
    build_media,
    build_say_hangup_twiml,
    parse_event_json,
)
from gateway.telephony.twilio_rest import build_dial_twiml
from gateway.tools.spec import TransferTarget

__all__ = [
    "REST_TIMEOUT_S",
    "SignalWireCarrier",
    "SignalWireCodec",
    "SignalWireCredentials",
    "SignalWirePlacedCall",
    "SignalWireRest",
    "SignalWireRestError",
    "build_connect_cxml",
    "is_signalwire_id",
    "stream_token",
]

ID_PATTERN: Final = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
SIGNATURE_HEADERS: Final = ("x-signalwire-signature", "x-twilio-signature")
"""SignalWire's header first; its SDKs accept Twilio's name as an alias for cXML webhooks."""
REST_TIMEOUT_S: Final = 10.0
_MAX_ERROR_CHARS: Final = 200
_MAX_ANY_FRAME_CHARS: Final = max(MAX_STREAMING_FRAME_CHARS, *MAX_FRAME_CHARS.values())
_STREAM_TOKEN_LABEL: Final = b"gateway signalwire stream token v1"
_COMPLETED_EVENTS: Final = frozenset({"media", "dtmf", "mark", "stop"})


def is_signalwire_id(value: str) -> bool:
    """SignalWire's ids (calls, projects, streams) are UUIDs: safe in a URL path as they are."""
    return ID_PATTERN.fullmatch(value) is not None


def stream_token(signing_key: str) -> str:
    """The bearer token our cXML asks SignalWire to send on the media upgrade: derived one-way
    from the signing key, so every instance checks what any of them issued."""
    digest = hmac.new(signing_key.encode("utf-8"), _STREAM_TOKEN_LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def build_connect_cxml(
    stream_url: str, parameters: Mapping[str, str | None], *, bearer_token: str | None = None
) -> str:
    """`<Connect><Stream>` as Twilio's (same URL rules, `<Parameter>`s), plus SignalWire's
    `authBearerToken` when given. Raises ValueError for a URL SignalWire cannot use."""
    twiml = build_connect_twiml(stream_url, parameters)
    if bearer_token is None:
        return twiml
    root = ElementTree.fromstring(twiml)
    stream = root.find("./Connect/Stream")
    assert stream is not None  # build_connect_twiml always writes one
    stream.set("authBearerToken", bearer_token)
    body = ElementTree.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>{body}'


# ------------------------------------------------------------------------------ media stream


def _json_object(frame: str | bytes) -> dict[str, Any] | None:
    """The frame's JSON object, or None when it is not one (Twilio's parser says why)."""
    if len(frame) > _MAX_ANY_FRAME_CHARS:
        return None
    try:
        msg = json.loads(frame)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError
        return None
    return msg if type(msg) is dict else None


class SignalWireCodec:
    """MediaStreamCodec for one SignalWire stream (stateful: a fresh one per stream).

    Frames after `start` are completed from it (the stream id, `stop`'s call ids, `dtmf`'s
    track) and then parsed by Twilio's parser, bounds and all. `start`'s ids must be UUIDs and
    later frames must name the same stream. The same `start` may be parsed twice (the stream
    guard reads it before the call does); a `start` for another call is refused.
    """

    name: Final = "signalwire"

    def __init__(self) -> None:
        self._start: StreamStart | None = None

    def parse(self, frame: str | bytes) -> CarrierEvent:
        start = self._start
        text = frame
        if start is not None:
            msg = _json_object(frame)
            if msg is not None and _complete(msg, start):
                text = json.dumps(msg, separators=(",", ":"))
        event = parse_event_json(text)
        if isinstance(event, StreamStart):
            return self._started(event)
        if start is None:
            return event
        if (
            isinstance(event, MediaFrame | Dtmf | MarkEcho | StreamStop)
            and event.stream_sid != start.stream_sid
        ):
            raise TelephonyProtocolError(
                f"streamSid {event.stream_sid[:40]!r} is not this stream's ({start.stream_sid})"
            )
        return event

    def _started(self, event: StreamStart) -> StreamStart:
        for path, value in (
            ("start.streamSid", event.stream_sid),
            ("start.callSid", event.call_sid),
            ("start.accountSid", event.account_sid),
        ):
            if not is_signalwire_id(value):
                raise TelephonyProtocolError(f"{path} must be a UUID, got {value[:40]!r}")
        encoding = event.encoding.lower()  # SignalWire writes audio/x-L16
        if encoding in (MULAW, L16) and encoding != event.encoding:
            event = replace(event, encoding=encoding)
        if self._start is None:
            self._start = event
        elif (self._start.stream_sid, self._start.call_sid) != (event.stream_sid, event.call_sid):
            raise TelephonyProtocolError("a second start, for another call, on one stream")
        return event

    def build_media(self, stream_sid: str, mulaw: bytes) -> str:
        return build_media(stream_sid, mulaw)

    def build_mark(self, stream_sid: str, name: str) -> str:
        return build_mark(stream_sid, name)

    def build_clear(self, stream_sid: str) -> str:
        return build_clear(stream_sid)


def _complete(msg: dict[str, Any], start: StreamStart) -> bool:
    """Fill in what SignalWire leaves out of a frame Twilio's parser needs; True if changed."""
    event = msg.get("event")
    if event not in _COMPLETED_EVENTS:
        return False
    changed = False
    if msg.get("streamSid") is None:
        msg["streamSid"] = start.stream_sid
        changed = True
    if event == "stop" and msg.get("stop") is None:
        msg["stop"] = {"callSid": start.call_sid, "accountSid": start.account_sid}
        changed = True
    elif event == "dtmf":
        dtmf = msg.get("dtmf")
        if type(dtmf) is dict and dtmf.get("track") is None:
            dtmf["track"] = "inbound"
            changed = True
    return changed


# ------------------------------------------------------------------------------------ REST


class SignalWireRestError(CarrierRestError):
    """A SignalWire REST request failed (HTTP error, network, timeout); the message says which."""


@dataclass(frozen=True, slots=True)
class SignalWirePlacedCall:
    """What SignalWire answered to a Calls create: the new call's id and its project."""

    call_id: str
    project_id: str


@dataclass(frozen=True, slots=True)
class SignalWireCredentials:
    """Who we are to a SignalWire space's Compatibility REST API."""

    space_url: str
    """e.g. https://example.signalwire.com (no trailing slash)."""
    project_id: str
    api_token: str = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> SignalWireCredentials | None:
        space, project, token = (
            settings.signalwire_space_url,
            settings.signalwire_project_id,
            settings.signalwire_api_token,
        )
        if not (space and project and token):
            return None
        return cls(space.rstrip("/"), project, token)


class SignalWireRest:
    """Mid-call hang-up and transfer (Calls resource update); one HTTP session per request."""

    def __init__(
        self, credentials: SignalWireCredentials, *, timeout_s: float = REST_TIMEOUT_S
    ) -> None:
        self.credentials = credentials
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> SignalWireRest | None:
        credentials = SignalWireCredentials.from_settings(settings)
        return cls(credentials) if credentials is not None else None

    async def hang_up(self, account_id: str | None, call_id: str) -> None:
        """End the call for every party (`Status=completed`)."""
        await self._update(account_id, call_id, {"Status": "completed"})

    async def transfer(self, account_id: str | None, call_id: str, target: TransferTarget) -> None:
        """Replace the call's cXML with a `<Dial>` to `target` (our stream ends)."""
        await self._update(account_id, call_id, {"Twiml": build_dial_twiml(target)})

    async def place_call(
        self,
        *,
        to: str,
        from_number: str,
        url: str,
        status_callback: str,
        status_callback_events: tuple[str, ...],
        machine_detection: str | None = None,
    ) -> SignalWirePlacedCall:
        """Start a call to `to` whose answer SignalWire fetches from `url` (Calls create:
        https://developer.signalwire.com/compatibility-api/rest/calls/create-a-call; AMD's
        `MachineDetection` as in
        https://developer.signalwire.com/guides/voice/answering-machine-detection)."""
        form: list[tuple[str, str]] = [
            ("To", to),
            ("From", from_number),
            ("Url", url),
            ("Method", "POST"),
            ("StatusCallback", status_callback),
            ("StatusCallbackMethod", "POST"),
            *(("StatusCallbackEvent", event) for event in status_callback_events),
        ]
        if machine_detection:
            form.append(("MachineDetection", machine_detection))
        answer = await self._post(self._calls_url(None), form, "the call create")
        call_id = answer.get("sid") if isinstance(answer, dict) else None
        if not isinstance(call_id, str) or not is_signalwire_id(call_id):
            raise SignalWireRestError("SignalWire answered without a call id (a UUID)")
        account = answer.get("account_sid") if isinstance(answer, dict) else None
        return SignalWirePlacedCall(
            call_id,
            account if isinstance(account, str) and is_signalwire_id(account)
            else self.credentials.project_id,
        )

    def _calls_url(self, account_id: str | None, call_id: str | None = None) -> str:
        account = account_id or self.credentials.project_id
        # Never a URL path built from text that is not an id.
        if not is_signalwire_id(account):
            raise SignalWireRestError("not a SignalWire project ID (a UUID)")
        if call_id is not None and not is_signalwire_id(call_id):
            raise SignalWireRestError("not a SignalWire call ID (a UUID)")
        calls = f"{self.credentials.space_url}/api/laml/2010-04-01/Accounts/{account}/Calls"
        return f"{calls}/{call_id}.json" if call_id is not None else f"{calls}.json"

    async def _update(self, account_id: str | None, call_id: str, form: dict[str, str]) -> None:
        await self._post(self._calls_url(account_id, call_id), list(form.items()),
                         "the call update")

    async def _post(self, url: str, form: list[tuple[str, str]], what: str) -> object:
        """POST `form` with the project's basic auth; the JSON answer (None if unreadable)."""
        auth = aiohttp.BasicAuth(self.credentials.project_id, self.credentials.api_token)
        try:
            async with asyncio.timeout(self.timeout_s), aiohttp.ClientSession(auth=auth) as http:
                async with http.post(url, data=form, headers={"Accept": "application/json"}) as r:
                    body = await r.content.read(64 * 1024)
                    if r.status >= 400:
                        raise SignalWireRestError(
                            f"SignalWire answered {r.status} to {what}: {_error_detail(body)}"
                        )
        except TimeoutError:
            raise SignalWireRestError(
                f"no answer from SignalWire within {self.timeout_s:g} s"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise SignalWireRestError(f"cannot reach SignalWire: {exc!r}") from None
        try:
            return json.loads(body)
        except ValueError:
            return None


def _error_detail(body: bytes) -> str:
    """SignalWire's error message (Twilio's `message`, or `errors[0].message`), else the body."""
    text = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    message: object = None
    if isinstance(parsed, dict):
        message = parsed.get("message")
        errors = parsed.get("errors")
        if message is None and isinstance(errors, list) and errors:
            first = errors[0]
            message = first.get("message") if isinstance(first, dict) else first
    detail = str(message) if message is not None else text.strip() or "(no body)"
    return detail[:_MAX_ERROR_CHARS]


# --------------------------------------------------------------------------------- carrier


class SignalWireCarrier:
    """SignalWire cXML with a `<Connect><Stream>` media stream (bidirectional)."""

    name: Final = "signalwire"

    def __init__(
        self,
        signing_key: str | None,
        *,
        rest: SignalWireRest | None = None,
        account_allowlist: frozenset[str] = frozenset(),
    ) -> None:
        self._signing_key = signing_key or None
        self._validator = RequestValidator(signing_key) if signing_key else None
        self._stream_token = stream_token(signing_key) if signing_key else None
        self._rest = rest
        self._account_allowlist = account_allowlist

    @classmethod
    def from_settings(cls, settings: Settings) -> SignalWireCarrier:
        return cls(settings.signalwire_signing_key, rest=SignalWireRest.from_settings(settings))

    @property
    def account_allowlist(self) -> frozenset[str]:
        return self._account_allowlist

    @property
    def signed(self) -> bool:
        return self._validator is not None

    @property
    def binding_secret(self) -> str | None:
        return self._signing_key

    @property
    def upgrade_vouches_call(self) -> bool:
        return False  # streams are vouched for by the webhook's binding

    def verify_webhook(self, request: WebhookRequest) -> str | None:
        if self._validator is None:
            return None
        signature = next((s for h in SIGNATURE_HEADERS if (s := request.headers.get(h))), None)
        if not signature:
            return "missing_signature"
        # A GET is signed over its URL alone (query included); a POST adds its form fields.
        fields = dict(request.params) if request.method.upper() == "POST" else {}
        if not self._validator.validate(request.url, fields, signature):
            return "invalid_signature"
        return None

    def verify_stream(self, request: WebhookRequest) -> str | None:
        if self._stream_token is None:
            return None
        authorization = request.headers.get("authorization", "")
        if not authorization:
            return "missing_signature"
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode("utf-8", "replace"), self._stream_token.encode("ascii")
        ):
            return "invalid_signature"
        return None

    def inbound_call(self, request: WebhookRequest) -> InboundCall:
        params = request.params
        call_id = params.get("CallSid", "")
        account_id = params.get("AccountSid", "")
        # Signed calls are bound: then the ids must be there (and always well-formed if sent).
        for name, value in (("CallSid", call_id), ("AccountSid", account_id)):
            if (value or self.signed) and not is_signalwire_id(value):
                raise CarrierRequestError(f"{name} is not a SignalWire id (a UUID)")
        return InboundCall(
            call_id=call_id,
            account_id=account_id,
            from_number=params.get("From") or None,
            to_number=params.get("To") or None,
        )

    def connect(self, stream_url: str, parameters: Mapping[str, str]) -> WebhookAnswer:
        cxml = build_connect_cxml(stream_url, parameters, bearer_token=self._stream_token)
        return WebhookAnswer(cxml, "application/xml")

    def refuse(self, message: str) -> WebhookAnswer:
        return WebhookAnswer(build_say_hangup_twiml(message), "application/xml")

    def hang_up_answer(self) -> WebhookAnswer:
        return WebhookAnswer(build_hangup_twiml(), "application/xml")  # cXML is TwiML

    def codec(self, upgrade: WebhookRequest) -> SignalWireCodec:
        return SignalWireCodec()

    def rest(self) -> CarrierRest | None:
        return self._rest
