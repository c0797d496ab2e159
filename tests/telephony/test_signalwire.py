"""SignalWire: its sparse stream frames, signatures, the cXML answer read back by the fake phone,
and the Compatibility REST API against a fake on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode
from xml.etree import ElementTree

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from twilio.request_validator import RequestValidator

from gateway.settings import load_settings
from gateway.telephony.base import (
    Connected,
    Dtmf,
    MarkEcho,
    MediaFrame,
    MediaStreamCodec,
    StreamStart,
    StreamStop,
    TelephonyProtocolError,
)
from gateway.telephony.carrier import (
    L16,
    MULAW,
    CarrierRequestError,
    CarrierRestError,
    WebhookRequest,
)
from gateway.telephony.signalwire import (
    SignalWireCarrier,
    SignalWireCodec,
    SignalWireCredentials,
    SignalWireRest,
    is_signalwire_id,
)
from gateway.telephony.signalwire_phone import SignalWirePhone
from gateway.telephony.twilio import parse_event
from gateway.tools.spec import TransferTarget
from tests.telephony import signalwire_case
from tests.telephony.carrier_case import RestRequest

KEY = signalwire_case.SIGNING_KEY
PROJECT = signalwire_case.PROJECT_ID
VOICE_URL = "https://gw.test/signalwire/voice"
STREAM_URL = "wss://gw.test/signalwire/media"
AUDIO = bytes(range(160))


def phone() -> SignalWirePhone:
    return SignalWirePhone(KEY, PROJECT)


def started(p: SignalWirePhone, **parameters: str) -> SignalWireCodec:
    """A codec that has read `p`'s opening frames."""
    codec = SignalWireCodec()
    for frame in p.opening(parameters):
        codec.parse(frame)
    return codec


def webhook(p: SignalWirePhone, url: str = VOICE_URL) -> WebhookRequest:
    """The phone's voice webhook as the server hands it to the carrier."""
    signed = p.voice_webhook(url, from_number="+15551230000", to_number="+15550009999")
    form = {k: v[0] for k, v in parse_qs(signed.body.decode()).items()}
    headers = {k.lower(): v for k, v in signed.headers.items()}
    return WebhookRequest(signed.method, signed.url, headers, signed.body, form)


def upgrade(headers: dict[str, str]) -> WebhookRequest:
    return WebhookRequest("GET", STREAM_URL, headers, b"", {})


# --- the media stream ----------------------------------------------------------------------


def test_opening_frames_parse_with_uuid_ids() -> None:
    p = phone()
    codec = SignalWireCodec()
    connected, start = (codec.parse(frame) for frame in p.opening({"agent": "acme"}))
    assert connected == Connected(protocol="Call", version="0.2.0")
    assert isinstance(start, StreamStart)
    assert (start.stream_sid, start.call_sid, start.account_sid) == (
        p.stream_sid,
        p.call_id,
        PROJECT,
    )
    assert all(is_signalwire_id(i) for i in (start.stream_sid, start.call_sid))
    assert dict(start.custom_parameters) == {"agent": "acme"}
    assert (start.encoding, start.sample_rate_hz, start.channels) == (MULAW, 8000, 1)


def test_media_without_stream_sid_is_this_streams() -> None:
    p = phone()
    codec = started(p)
    event = codec.parse(p.media(AUDIO))
    assert event == MediaFrame(
        stream_sid=p.stream_sid,
        track="inbound",
        chunk=1,
        timestamp_ms=0,
        payload=AUDIO,
        sequence_number=2,
    )


def test_twilios_parser_alone_refuses_signalwires_media_frame() -> None:
    """Why SignalWireCodec exists: SignalWire leaves streamSid out of media frames."""
    p = phone()
    started(p)
    with pytest.raises(TelephonyProtocolError, match="streamSid"):
        parse_event(p.media(AUDIO))


def test_dtmf_without_track_mark_and_bare_stop() -> None:
    p = phone()
    codec = started(p)
    assert codec.parse(p.dtmf("5")) == Dtmf(
        stream_sid=p.stream_sid, digit="5", track="inbound", sequence_number=2
    )
    assert codec.parse(p.mark_played("turn-1")) == MarkEcho(
        stream_sid=p.stream_sid, name="turn-1", sequence_number=None
    )
    assert codec.parse(p.stop()) == StreamStop(
        stream_sid=p.stream_sid, call_sid=p.call_id, account_sid=PROJECT, sequence_number=3
    )


def test_bytes_frames_parse_like_text() -> None:
    p = phone()
    codec = started(p)
    frame = p.media(AUDIO)
    assert isinstance(frame, str)
    assert codec.parse(frame.encode()) == codec.parse(frame)


def test_frames_naming_their_stream_pass_and_another_stream_is_refused() -> None:
    p = phone()
    codec = started(p)
    media = json.loads(p.media(AUDIO))
    assert isinstance(codec.parse(json.dumps({**media, "streamSid": p.stream_sid})), MediaFrame)
    other = "11111111-2222-4333-8444-555555555555"
    with pytest.raises(TelephonyProtocolError, match="not this stream's"):
        codec.parse(json.dumps({**media, "streamSid": other}))


def test_media_before_start_is_refused() -> None:
    with pytest.raises(TelephonyProtocolError, match="missing field streamSid"):
        SignalWireCodec().parse(phone().media(AUDIO))


@pytest.mark.parametrize("key", ["streamSid", "callSid", "accountSid"])
def test_start_ids_must_be_uuids(key: str) -> None:
    start = json.loads(phone().opening({})[1])
    start["start"][key] = "CA" + "0" * 32
    with pytest.raises(TelephonyProtocolError, match=f"start.{key} must be a UUID"):
        SignalWireCodec().parse(json.dumps(start))


def test_the_same_start_twice_is_fine_another_calls_is_refused() -> None:
    p = phone()
    codec = SignalWireCodec()
    opening = p.opening({})
    first = codec.parse(opening[1])
    assert codec.parse(opening[1]) == first  # the stream guard reads it, then the call does
    with pytest.raises(TelephonyProtocolError, match="another call"):
        codec.parse(phone().opening({})[1])
    assert codec.parse(p.stop()) == StreamStop(
        stream_sid=p.stream_sid, call_sid=p.call_id, account_sid=PROJECT, sequence_number=2
    )


def test_l16_encoding_is_named_as_the_gateway_names_it() -> None:
    start = json.loads(phone().opening({})[1])
    start["start"]["mediaFormat"] = {"encoding": "audio/x-L16", "sampleRate": 16000, "channels": 1}
    event = SignalWireCodec().parse(json.dumps(start))
    assert isinstance(event, StreamStart)
    assert (event.encoding, event.sample_rate_hz) == (L16, 16000)


def _media_with(**media: Any) -> str:
    frame: dict[str, Any] = {
        "event": "media",
        "sequenceNumber": "2",
        "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": "AAAA"},
    }
    frame["media"].update(media)
    return json.dumps(frame)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("not json", "not valid JSON"),
        ("{}", "missing field event"),
        ('{"event": 7}', "event must be a string"),
        ("[" * 5000, "nested too deeply"),
        ('{"event":"media","x":"' + "a" * 40_000 + '"}', "over the limit"),
        ("[1]", "must be a JSON object"),
        (_media_with(payload="!!!!"), "not valid base64"),
        (_media_with(payload=base64.b64encode(bytes(161)).decode()), "over the limit"),
        ('{"event":"dtmf","dtmf":{"digit":"55"}}', "dtmf.digit must be one key"),
        ('{"event":"stop","stop":[]}', "stop must be an object"),
        ('{"event":"mark","mark":{}}', "missing field mark.name"),
        (b"\xff\xfe", "not valid"),
    ],
)
def test_malformed_frames_are_refused_and_the_stream_goes_on(
    frame: str | bytes, message: str
) -> None:
    p = phone()
    codec = started(p)
    with pytest.raises(TelephonyProtocolError, match=message):
        codec.parse(frame)
    assert isinstance(codec.parse(p.media(AUDIO)), MediaFrame)


def test_builders_round_trip_through_the_phone() -> None:
    p = phone()
    codec: MediaStreamCodec = SignalWireCarrier(KEY).codec(upgrade({}))
    media = p.read(codec.build_media(p.stream_sid, AUDIO))
    assert (media.kind, media.audio) == ("media", AUDIO)
    mark = p.read(codec.build_mark(p.stream_sid, "turn-2"))
    assert (mark.kind, mark.name) == ("mark", "turn-2")
    assert p.read(codec.build_clear(p.stream_sid)).kind == "clear"
    assert json.loads(codec.build_clear(p.stream_sid)) == {
        "event": "clear",
        "streamSid": p.stream_sid,
    }
    assert p.read("not json").kind == "other"


def test_each_stream_gets_its_own_codec() -> None:
    carrier = SignalWireCarrier(KEY)
    first, second = carrier.codec(upgrade({})), carrier.codec(upgrade({}))
    assert first is not second
    a, b = phone(), phone()
    for frame in a.opening({}):
        first.parse(frame)
    for frame in b.opening({}):
        second.parse(frame)
    assert first.parse(a.stop()) != second.parse(b.stop())


# --- webhook, signatures, the answer -------------------------------------------------------


def test_a_signed_webhook_verifies_and_names_the_call() -> None:
    carrier, p = SignalWireCarrier(KEY), phone()
    request = webhook(p)
    assert carrier.signed and carrier.binding_secret == KEY
    assert carrier.verify_webhook(request) is None
    call = carrier.inbound_call(request)
    assert (call.call_id, call.account_id) == (p.call_id, PROJECT)
    assert (call.from_number, call.to_number) == ("+15551230000", "+15550009999")


def test_signatures_wrong_missing_tampered_and_twilios_header_name() -> None:
    carrier = SignalWireCarrier(KEY)
    assert carrier.verify_webhook(webhook(SignalWirePhone("PSK_other"))) == "invalid_signature"
    assert carrier.verify_webhook(webhook(SignalWirePhone(None))) == "missing_signature"
    good = webhook(phone())
    tampered = WebhookRequest(
        good.method, good.url, good.headers, good.body, {**good.params, "From": "+15550000000"}
    )
    assert carrier.verify_webhook(tampered) == "invalid_signature"
    other_url = WebhookRequest(good.method, VOICE_URL + "?agent=x", good.headers, b"", good.params)
    assert carrier.verify_webhook(other_url) == "invalid_signature"
    signature = good.headers["x-signalwire-signature"]
    alias = WebhookRequest(
        good.method, good.url, {"x-twilio-signature": signature}, good.body, good.params
    )
    assert carrier.verify_webhook(alias) is None


def test_a_get_webhook_is_signed_over_its_url() -> None:
    params = {"CallSid": phone().call_id, "AccountSid": PROJECT}
    url = f"{VOICE_URL}?{urlencode(params)}"
    signature = RequestValidator(KEY).compute_signature(url, {})
    request = WebhookRequest("GET", url, {"x-signalwire-signature": signature}, b"", params)
    assert SignalWireCarrier(KEY).verify_webhook(request) is None


def test_without_a_signing_key_nothing_is_checked_or_bound() -> None:
    carrier = SignalWireCarrier(None)
    assert not carrier.signed and carrier.binding_secret is None
    assert carrier.verify_webhook(webhook(SignalWirePhone("PSK_other"))) is None
    assert carrier.verify_stream(upgrade({})) is None
    answer = carrier.connect(STREAM_URL, {"agent": "acme"})
    assert "authBearerToken" not in answer.body
    assert (
        carrier.inbound_call(WebhookRequest("POST", VOICE_URL, {}, b"", {})).call_id == ""
    )  # unbound: an id-less test call is served


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"AccountSid": PROJECT}, "CallSid"),
        ({"CallSid": "CA" + "0" * 32, "AccountSid": PROJECT}, "CallSid"),
        ({"CallSid": "8c9e1c5e-3e4f-4a5b-9c6d-7e8f9a0b1c2d", "AccountSid": "AC1"}, "AccountSid"),
    ],
)
def test_a_signed_webhook_needs_uuid_ids(params: dict[str, str], message: str) -> None:
    request = WebhookRequest("POST", VOICE_URL, {}, b"", params)
    with pytest.raises(CarrierRequestError, match=message):
        SignalWireCarrier(KEY).inbound_call(request)


def test_the_connect_answer_reads_back_and_its_token_opens_the_stream() -> None:
    carrier, p = SignalWireCarrier(KEY), SignalWirePhone(None, PROJECT)  # keyless: token from
    answer = carrier.connect(STREAM_URL, {"agent": "acme", "binding": "123.abc"})  # the answer
    assert answer.content_type == "application/xml"
    stream = ElementTree.fromstring(answer.body).find("./Connect/Stream")
    assert stream is not None and stream.get("authBearerToken")
    order = p.read_answer(answer.content_type, answer.body)
    assert order.url == STREAM_URL
    assert dict(order.parameters) == {"agent": "acme", "binding": "123.abc"}
    headers = {k.lower(): v for k, v in p.stream_headers(order.url).items()}
    assert carrier.verify_stream(upgrade(headers)) is None
    assert headers == {k.lower(): v for k, v in phone().stream_headers(STREAM_URL).items()}


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing_signature"),
        ({"authorization": "Bearer not-the-token"}, "invalid_signature"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, "invalid_signature"),
        ({"authorization": "Bearer \u00e9"}, "invalid_signature"),
    ],
)
def test_an_upgrade_without_our_token_is_refused(headers: dict[str, str], reason: str) -> None:
    assert SignalWireCarrier(KEY).verify_stream(upgrade(headers)) == reason
    other_key = {
        k.lower(): v for k, v in SignalWirePhone("PSK_other").stream_headers(STREAM_URL).items()
    }
    assert SignalWireCarrier(KEY).verify_stream(upgrade(other_key)) == "invalid_signature"


def test_connect_refuses_a_stream_url_with_a_query() -> None:
    with pytest.raises(ValueError, match="query string"):
        SignalWireCarrier(KEY).connect(STREAM_URL + "?agent=x", {})


def test_refuse_says_and_hangs_up() -> None:
    answer = SignalWireCarrier(KEY).refuse("All lines are busy.")
    root = ElementTree.fromstring(answer.body)
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert root.findtext("Say") == "All lines are busy."
    with pytest.raises(ValueError, match="bidirectional"):
        phone().read_answer(answer.content_type, answer.body)


def test_a_one_way_start_stream_is_not_a_connect() -> None:
    body = '<Response><Start><Stream url="wss://gw.test/x"/></Start></Response>'
    with pytest.raises(ValueError, match="Connect"):
        phone().read_answer("application/xml", body)


# --- REST ----------------------------------------------------------------------------------


@dataclass
class FakeSpace:
    """A SignalWire space's REST API on loopback: records requests, answers as told."""

    reply: Callable[[RestRequest], tuple[int, str]] = signalwire_case.rest_reply
    requests: list[RestRequest] = field(default_factory=list)
    hold: asyncio.Event | None = None
    """Set: requests are held until it is (a space that does not answer)."""

    async def handle(self, request: web.Request) -> web.Response:
        recorded = RestRequest(
            request.method,
            request.path_qs,
            {k.lower(): v for k, v in request.headers.items()},
            await request.read(),
        )
        self.requests.append(recorded)
        if self.hold is not None:
            await self.hold.wait()
        status, body = self.reply(recorded)
        return web.Response(status=status, text=body, content_type="application/json")


@pytest.fixture
async def space() -> AsyncIterator[tuple[FakeSpace, str]]:
    fake = FakeSpace()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield fake, str(server.make_url("")).rstrip("/")
    finally:
        if fake.hold is not None:
            fake.hold.set()
        await server.close()


def rest_for(base_url: str, **overrides: Any) -> SignalWireRest | None:
    settings = load_settings(
        env_file=None, **{**signalwire_case.rest_settings(base_url), **overrides}
    )
    rest = SignalWireCarrier.from_settings(settings).rest()
    assert rest is None or isinstance(rest, SignalWireRest)
    return rest


@pytest.mark.parametrize(
    "unset", ["signalwire_space_url", "signalwire_project_id", "signalwire_api_token"]
)
def test_no_rest_without_space_project_and_token(unset: str) -> None:
    assert rest_for("https://example.signalwire.com", **{unset: None}) is None
    assert rest_for("https://example.signalwire.com") is not None


def test_credentials_keep_the_token_out_of_repr() -> None:
    credentials = SignalWireCredentials("https://x.signalwire.com", PROJECT, "PT_secret")
    assert "PT_secret" not in repr(credentials)


async def test_hang_up_posts_status_completed_with_basic_auth(
    space: tuple[FakeSpace, str],
) -> None:
    fake, base = space
    rest = rest_for(base)
    assert rest is not None
    call_id = phone().call_id
    await rest.hang_up(PROJECT, call_id)
    (request,) = fake.requests
    assert request.method == "POST"
    assert request.path == f"/api/laml/2010-04-01/Accounts/{PROJECT}/Calls/{call_id}.json"
    expected = base64.b64encode(f"{PROJECT}:{signalwire_case.API_TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert parse_qs(request.body.decode()) == {"Status": ["completed"]}
    assert signalwire_case.rest_action(request) == ("hang_up", call_id, "")


@pytest.mark.parametrize(
    ("target", "dialled"),
    [
        (TransferTarget(number="+15550001111", caller_id="+15550002222"), "+15550001111"),
        (TransferTarget(number="sip:desk@pbx.example.com"), "sip:desk@pbx.example.com"),
    ],
)
async def test_transfer_posts_a_dial(
    space: tuple[FakeSpace, str], target: TransferTarget, dialled: str
) -> None:
    fake, base = space
    rest = rest_for(base)
    assert rest is not None
    call_id = phone().call_id
    await rest.transfer(None, call_id, target)  # no account: the project's
    (request,) = fake.requests
    assert request.path == f"/api/laml/2010-04-01/Accounts/{PROJECT}/Calls/{call_id}.json"
    form = parse_qs(request.body.decode())
    assert list(form) == ["Twiml"]
    dial = ElementTree.fromstring(form["Twiml"][0]).find("Dial")
    assert dial is not None and dial.get("callerId") == target.caller_id
    assert signalwire_case.rest_action(request) == ("transfer", call_id, dialled)


async def test_an_error_status_is_a_carrier_rest_error(space: tuple[FakeSpace, str]) -> None:
    fake, base = space
    fake.reply = lambda _: (404, json.dumps({"code": 20404, "message": "Call not found"}))
    rest = rest_for(base)
    assert rest is not None
    with pytest.raises(CarrierRestError, match=r"404.*Call not found"):
        await rest.hang_up(PROJECT, phone().call_id)
    fake.reply = lambda _: (401, '{"errors":[{"code":"unauthorized","message":"Unauthorized"}]}')
    with pytest.raises(CarrierRestError, match=r"401.*Unauthorized") as raised:
        await rest.hang_up(PROJECT, phone().call_id)
    assert signalwire_case.API_TOKEN not in str(raised.value)


@pytest.mark.parametrize(
    ("account", "call", "message"),
    [
        (PROJECT, "../../Accounts", "call ID"),
        ("AC" + "0" * 32, "8c9e1c5e-3e4f-4a5b-9c6d-7e8f9a0b1c2d", "project ID"),
    ],
)
async def test_ids_are_checked_before_any_request(
    space: tuple[FakeSpace, str], account: str, call: str, message: str
) -> None:
    fake, base = space
    rest = rest_for(base)
    assert rest is not None
    with pytest.raises(CarrierRestError, match=message):
        await rest.hang_up(account, call)
    assert fake.requests == []


async def test_a_space_that_does_not_answer_times_out(space: tuple[FakeSpace, str]) -> None:
    fake, base = space
    fake.hold = asyncio.Event()
    credentials = SignalWireCredentials(base, PROJECT, signalwire_case.API_TOKEN)
    rest = SignalWireRest(credentials, timeout_s=0.2)
    with pytest.raises(CarrierRestError, match=r"no answer from SignalWire within 0\.2 s"):
        await rest.hang_up(PROJECT, phone().call_id)
    assert len(fake.requests) == 1


async def test_an_unreachable_space_is_a_carrier_rest_error() -> None:
    server = TestServer(web.Application(), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    await server.close()  # nothing listens there now
    rest = SignalWireRest(SignalWireCredentials(base, PROJECT, signalwire_case.API_TOKEN))
    with pytest.raises(CarrierRestError, match="cannot reach SignalWire"):
        await rest.hang_up(PROJECT, phone().call_id)
