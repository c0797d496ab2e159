"""Telnyx: stream frames as Telnyx's docs show them, the bounds on everything a caller sends,
Ed25519 webhook signatures, the TeXML answer read back by the fake phone, and the TeXML REST
call update against a fake on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.settings import load_settings
from gateway.telephony.base import (
    CarrierNotice,
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
    MULAW,
    Carrier,
    CarrierRequestError,
    CarrierRestError,
    WebhookRequest,
)
from gateway.telephony.phone import CarrierPhone
from gateway.telephony.telnyx import (
    MAX_CUSTOM_PARAMETERS,
    MAX_MEDIA_PAYLOAD_BYTES,
    SIGNATURE_TOLERANCE_S,
    TelnyxCarrier,
    TelnyxCodec,
    TelnyxCredentials,
    TelnyxRest,
    is_call_control_id,
    load_public_key,
)
from gateway.telephony.telnyx_phone import TelnyxPhone
from gateway.tools.spec import TransferTarget
from tests.telephony import telnyx_case
from tests.telephony.carrier_case import RestRequest

NOW = 1_750_000_000.0
VOICE_URL = "https://gw.test/telnyx/voice"
STREAM_URL = "wss://gw.test/telnyx/media"
AUDIO = bytes(range(160))
ACCOUNT = telnyx_case.ACCOUNT_ID
STREAM_ID = "32DE0DEA-53CB-4B21-89A4-9E1819C043BC"
CALL_CONTROL_ID = "v2:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ"


def phone(key: Ed25519PrivateKey | None = telnyx_case.PRIVATE_KEY) -> TelnyxPhone:
    return TelnyxPhone(key, ACCOUNT, clock=lambda: NOW)


def carrier(clock: Callable[[], float] = lambda: NOW, **kwargs: Any) -> TelnyxCarrier:
    return TelnyxCarrier(telnyx_case.PUBLIC_KEY, api_key=telnyx_case.API_KEY, clock=clock, **kwargs)


def webhook(p: TelnyxPhone, url: str = VOICE_URL) -> WebhookRequest:
    """The phone's voice webhook as the server hands it to the carrier."""
    signed = p.voice_webhook(url, from_number="+15551230000", to_number="+15550009999")
    form = {k: v[0] for k, v in parse_qs(signed.body.decode()).items()}
    headers = {k.lower(): v for k, v in signed.headers.items()}
    return WebhookRequest(signed.method, signed.url, headers, signed.body, form)


def started(p: TelnyxPhone, **parameters: str) -> TelnyxCodec:
    codec = TelnyxCodec()
    for frame in p.opening(parameters):
        codec.parse(frame)
    return codec


def dump(message: dict[str, Any]) -> str:
    return json.dumps(message)


# --- frames as the docs show them ----------------------------------------------------------

DOC_START: dict[str, Any] = {
    "event": "start",
    "sequence_number": "1",
    "stream_id": STREAM_ID,
    "start": {
        "user_id": "3E6F995F-85F7-4705-9741-53B116D28237",
        "call_control_id": CALL_CONTROL_ID,
        "call_session_id": "ff55a038-6f5d-11ef-9692-02420aeffb1f",
        "from": "+13122010094",
        "to": "+13122123456",
        "tags": ["TAG1", "TAG2"],
        "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d",
        "custom_parameters": {"customer_id": "customer_123"},
        "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
    },
}


def doc_media(payload: str = base64.b64encode(AUDIO).decode()) -> dict[str, Any]:
    return {
        "event": "media",
        "sequence_number": "4",
        "media": {"track": "inbound", "chunk": "2", "timestamp": "5", "payload": payload},
        "stream_id": STREAM_ID,
    }


def doc_started() -> TelnyxCodec:
    codec = TelnyxCodec()
    codec.parse(dump({"event": "connected", "version": "1.0.0"}))
    codec.parse(dump(DOC_START))
    return codec


def test_the_documented_opening_frames() -> None:
    codec = TelnyxCodec()
    assert codec.parse(dump({"event": "connected", "version": "1.0.0"})) == Connected(
        protocol="", version="1.0.0"
    )
    start = codec.parse(dump(DOC_START))
    assert start == StreamStart(
        stream_sid=STREAM_ID,
        call_sid=CALL_CONTROL_ID,
        account_sid="3e6f995f-85f7-4705-9741-53b116d28237",  # UUIDs compare in lower case
        tracks=("inbound",),
        custom_parameters={"customer_id": "customer_123"},
        encoding=MULAW,
        sample_rate_hz=8000,
        channels=1,
        sequence_number=1,
    )


def test_the_older_documented_encoding_name_is_mulaw_too() -> None:
    frame = json.loads(dump(DOC_START))
    frame["start"]["media_format"]["encoding"] = "audio/x-mulaw"
    event = TelnyxCodec().parse(dump(frame))
    assert isinstance(event, StreamStart) and event.encoding == MULAW


def test_the_documented_stream_frames() -> None:
    codec = doc_started()
    assert codec.parse(dump(doc_media())) == MediaFrame(
        stream_sid=STREAM_ID,
        track="inbound",
        chunk=2,
        timestamp_ms=5,
        payload=AUDIO,
        sequence_number=4,
    )
    dtmf = {
        "event": "dtmf",
        "stream_id": STREAM_ID,
        "occurred_at": "2025-06-05T08:54:19.698408Z",
        "sequence_number": "5",
        "dtmf": {"digit": "1"},
    }
    assert codec.parse(dump(dtmf)) == Dtmf(
        stream_sid=STREAM_ID, digit="1", track="inbound", sequence_number=5
    )
    mark = {"event": "mark", "stream_id": STREAM_ID, "mark": {"name": "turn-1"}}
    assert codec.parse(dump(mark)) == MarkEcho(
        stream_sid=STREAM_ID, name="turn-1", sequence_number=None
    )
    stop = {
        "event": "stop",
        "sequence_number": "5",
        "stop": {"user_id": DOC_START["start"]["user_id"], "call_control_id": CALL_CONTROL_ID},
        "stream_id": STREAM_ID,
    }
    assert codec.parse(dump(stop)) == StreamStop(
        stream_sid=STREAM_ID,
        call_sid=CALL_CONTROL_ID,
        account_sid="3e6f995f-85f7-4705-9741-53b116d28237",
        sequence_number=5,
    )


@pytest.mark.parametrize("key", ["error", "payload"])
def test_a_stream_error_is_kept_as_an_unknown_event(key: str) -> None:
    codec = doc_started()
    frame = {
        "stream_id": STREAM_ID,
        "event": "error",
        "sequence_number": "6",
        key: {"title": "rate_limit_reached", "code": "100005", "detail": "Too many requests"},
    }
    event = codec.parse(dump(frame))
    assert isinstance(event, CarrierNotice) and event.event == "error"
    assert event.stream_sid == STREAM_ID
    assert event.detail == "code=100005 title=rate_limit_reached detail=Too many requests"


def test_an_unknown_kind_is_an_unknown_event() -> None:
    event = doc_started().parse(dump({"event": "transcription", "stream_id": STREAM_ID}))
    assert isinstance(event, UnknownEvent) and event.event == "transcription"


def test_a_stop_before_start_takes_its_own_ids() -> None:
    stop = {
        "event": "stop",
        "stop": {"call_control_id": CALL_CONTROL_ID, "user_id": ACCOUNT},
        "stream_id": STREAM_ID,
    }
    assert TelnyxCodec().parse(dump(stop)) == StreamStop(
        stream_sid=STREAM_ID, call_sid=CALL_CONTROL_ID, account_sid=ACCOUNT, sequence_number=None
    )


def test_bytes_frames_parse_like_text() -> None:
    codec = doc_started()
    assert codec.parse(dump(doc_media()).encode()) == codec.parse(dump(doc_media()))


def test_the_codec_is_a_media_stream_codec() -> None:
    assert isinstance(TelnyxCodec(), MediaStreamCodec)
    assert isinstance(carrier().codec(WebhookRequest("GET", STREAM_URL, {}, b"", {})), TelnyxCodec)


# --- what a caller may not send ------------------------------------------------------------


def _with(path: tuple[str, ...], value: Any, base: dict[str, Any] | None = None) -> str:
    frame = json.loads(dump(base if base is not None else DOC_START))
    target = frame
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return dump(frame)


_DELETE = object()


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"event": 7}', "event must be a string"),
        ("{}", "missing field event"),
        (b'{"event": "\xff"}', "not valid UTF-8"),
        ("[" * 5000, "not valid JSON"),
        (" " * 40_000, "over the limit of 32768"),
        (_with(("stream_id",), _DELETE), "missing field stream_id"),
        (_with(("stream_id",), "../../x"), "stream_id must be a Telnyx stream id"),
        (_with(("start",), "x"), "start must be an object"),
        (_with(("start", "call_control_id"), _DELETE), "missing field start.call_control_id"),
        (_with(("start", "call_control_id"), "v3:a/b"), "start.call_control_id must be"),
        (_with(("start", "user_id"), "AC" + "1" * 32), "start.user_id must be a UUID"),
        (_with(("start", "media_format"), _DELETE), "missing field start.media_format"),
        (_with(("start", "media_format", "encoding"), "PCMA"), "encoding must be PCMU"),
        (_with(("start", "media_format", "sample_rate"), 16000), "sample_rate must be 8000"),
        (_with(("start", "media_format", "sample_rate"), "8k"), "sample_rate must be a non-neg"),
        (_with(("sequence_number",), "-1"), "sequence_number must be a non-negative"),
        (_with(("start", "custom_parameters"), ["a"]), "custom_parameters must be an object"),
        (_with(("start", "custom_parameters"), {"n": 1}), r"custom_parameters\['n'\] must be"),
        (
            _with(
                ("start", "custom_parameters"),
                {f"p{i}": "v" for i in range(MAX_CUSTOM_PARAMETERS + 1)},
            ),
            "custom_parameters has 100 entries",
        ),
        (
            _with(("start", "custom_parameters"), {"big": "x" * 4000}),
            "custom_parameters hold 4003 chars",
        ),
    ],
)
def test_a_malformed_start_is_refused_naming_the_field(frame: str | bytes, field: str) -> None:
    with pytest.raises(TelephonyProtocolError, match=field):
        TelnyxCodec().parse(frame)


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        (_with(("media",), _DELETE, doc_media()), "missing field media"),
        (_with(("media", "payload"), _DELETE, doc_media()), "missing field media.payload"),
        (_with(("media", "payload"), 5, doc_media()), "media.payload must be a string"),
        (_with(("media", "payload"), "!!!!", doc_media()), "media.payload is not valid base64"),
        (
            _with(
                ("media", "payload"),
                base64.b64encode(bytes(MAX_MEDIA_PAYLOAD_BYTES + 3)).decode(),
                doc_media(),
            ),
            "media.payload is 644 base64 chars",
        ),
        (_with(("media", "chunk"), "two", doc_media()), "media.chunk must be"),
        (_with(("media", "track"), "t" * 65, doc_media()), "media.track is 65 chars"),
        (_with(("stream_id",), "another-stream", doc_media()), "is not this stream's"),
        (_with(("media", "pad"), "x" * 2100, doc_media()), "'media' frame is .* over the limit"),
        (dump({"event": "dtmf", "dtmf": {"digit": "55"}}), "dtmf.digit must be one key"),
        (dump({"event": "dtmf", "dtmf": {"digit": "x"}}), "dtmf.digit must be one key"),
        (dump({"event": "dtmf", "dtmf": {}}), "missing field dtmf.digit"),
        (dump({"event": "mark", "mark": {"name": "m" * 257}}), "mark.name is 257 chars"),
        (dump({"event": "mark"}), "missing field mark"),
        (dump({"event": "stop", "stop": "x"}), "stop must be an object"),
        (dump({"event": "stop", "stop": {"call_control_id": "1"}}), "stop.call_control_id"),
        (dump({"event": "error", "error": {"detail": "d" * 201}}), "error.detail is 201 chars"),
        (dump({"event": "error"}), "missing field payload"),
        (_with(("start", "call_control_id"), "v3:other"), "a second start, for another call"),
    ],
)
def test_a_malformed_stream_frame_is_refused_naming_the_field(
    frame: str | bytes, field: str
) -> None:
    with pytest.raises(TelephonyProtocolError, match=field):
        doc_started().parse(frame)


def test_the_largest_payload_passes_and_the_same_start_may_come_twice() -> None:
    codec = doc_started()
    assert codec.parse(dump(DOC_START)) == TelnyxCodec().parse(dump(DOC_START))
    biggest = base64.b64encode(bytes(MAX_MEDIA_PAYLOAD_BYTES)).decode()
    event = codec.parse(dump(doc_media(biggest)))
    assert isinstance(event, MediaFrame) and len(event.payload) == MAX_MEDIA_PAYLOAD_BYTES


# --- builders, read back by the phone ------------------------------------------------------


def test_outbound_frames_round_trip_through_the_phone() -> None:
    codec = TelnyxCodec()
    p = phone()
    media = codec.build_media(STREAM_ID, AUDIO)
    assert json.loads(media) == {
        "event": "media",
        "media": {"payload": base64.b64encode(AUDIO).decode()},
    }
    assert p.read(media).kind == "media" and p.read(media).audio == AUDIO
    mark = codec.build_mark(STREAM_ID, 'turn-"1"')
    assert json.loads(mark) == {"event": "mark", "mark": {"name": 'turn-"1"'}}
    assert (p.read(mark).kind, p.read(mark).name) == ("mark", 'turn-"1"')
    assert json.loads(codec.build_clear(STREAM_ID)) == {"event": "clear"}
    assert p.read(codec.build_clear(STREAM_ID)).kind == "clear"
    assert p.read("not json").kind == "other"
    assert p.read('{"event": "dtmf"}').kind == "other"


def test_the_phones_frames_parse_to_its_call() -> None:
    p = phone()
    as_phone: CarrierPhone = p  # mypy checks the protocol (it is not runtime-checkable)
    assert as_phone.carrier == "telnyx"
    codec = TelnyxCodec()
    connected, start = (codec.parse(frame) for frame in p.opening({"agent": "acme", "b": "1"}))
    assert isinstance(connected, Connected)
    assert isinstance(start, StreamStart)
    assert (start.stream_sid, start.call_sid, start.account_sid) == (
        p.stream_id,
        p.call_id,
        ACCOUNT,
    )
    assert dict(start.custom_parameters) == {"agent": "acme", "b": "1"}
    assert codec.parse(p.media(AUDIO)) == MediaFrame(
        stream_sid=p.stream_id, track="inbound", chunk=1, timestamp_ms=0, payload=AUDIO,
        sequence_number=2,
    )  # fmt: skip
    assert codec.parse(p.dtmf("#")) == Dtmf(p.stream_id, "#", "inbound", 3)
    assert codec.parse(p.mark_played("turn-2")) == MarkEcho(p.stream_id, "turn-2", 4)
    assert codec.parse(p.stop()) == StreamStop(p.stream_id, p.call_id, ACCOUNT, 5)


def test_every_phone_is_a_fresh_call() -> None:
    first, second = phone(), phone()
    assert first.call_id != second.call_id and first.stream_id != second.stream_id
    assert is_call_control_id(first.call_id)


# --- signatures ----------------------------------------------------------------------------


def test_a_signed_webhook_verifies() -> None:
    c: Carrier = carrier()  # mypy checks the protocol
    assert c.signed
    assert c.verify_webhook(webhook(phone())) is None


@pytest.mark.parametrize(
    "drop", ["telnyx-signature-ed25519", "telnyx-timestamp"], ids=["signature", "timestamp"]
)
def test_a_webhook_without_a_signature_header_is_refused(drop: str) -> None:
    request = webhook(phone())
    headers = {k: v for k, v in request.headers.items() if k != drop}
    unsigned = WebhookRequest(request.method, request.url, headers, request.body, request.params)
    assert carrier().verify_webhook(unsigned) == "missing_signature"
    assert carrier().verify_webhook(webhook(phone(key=None))) == "missing_signature"


def _tampered(request: WebhookRequest, **changes: Any) -> WebhookRequest:
    headers = {**request.headers, **changes.pop("headers", {})}
    body = changes.pop("body", request.body)
    return WebhookRequest(request.method, request.url, headers, body, request.params)


@pytest.mark.parametrize(
    "change",
    [
        {"body": b"CallSid=v3%3Aforged"},
        {"headers": {"telnyx-signature-ed25519": "not base64!"}},
        {"headers": {"telnyx-signature-ed25519": base64.b64encode(b"x" * 64).decode()}},
        {"headers": {"telnyx-timestamp": str(int(NOW) - 1)}},  # signed over another time
        {"headers": {"telnyx-timestamp": "17e8"}},
    ],
    ids=["body", "bad-base64", "wrong-signature", "other-timestamp", "not-a-number"],
)
def test_a_tampered_webhook_is_invalid(change: dict[str, Any]) -> None:
    assert carrier().verify_webhook(_tampered(webhook(phone()), **change)) == "invalid_signature"


def test_a_webhook_signed_with_another_key_is_invalid() -> None:
    request = webhook(phone(key=telnyx_case.OTHER_PRIVATE_KEY))
    assert carrier().verify_webhook(request) == "invalid_signature"


@pytest.mark.parametrize(
    ("offset", "problem"),
    [
        (SIGNATURE_TOLERANCE_S, None),
        (-SIGNATURE_TOLERANCE_S, None),
        (SIGNATURE_TOLERANCE_S + 1, "stale_signature"),
        (-SIGNATURE_TOLERANCE_S - 1, "stale_signature"),  # from the future
    ],
)
def test_a_webhook_older_or_newer_than_the_window_is_stale(
    offset: int, problem: str | None
) -> None:
    request = webhook(phone())  # signed at NOW
    assert carrier(clock=lambda: NOW + offset).verify_webhook(request) == problem


def test_without_a_public_key_nothing_is_checked() -> None:
    c = TelnyxCarrier(None)
    assert not c.signed and c.binding_secret is None and c.rest() is None
    assert c.verify_webhook(webhook(phone(key=None))) is None
    assert c.verify_webhook(webhook(phone(key=telnyx_case.OTHER_PRIVATE_KEY))) is None


def test_the_upgrade_is_never_signed() -> None:
    upgrade = WebhookRequest("GET", STREAM_URL, {}, b"", {})
    assert carrier().verify_stream(upgrade) is None
    assert phone().stream_headers(STREAM_URL) == {}


@pytest.mark.parametrize(
    ("key", "message"),
    [("not base64!", "not base64"), (base64.b64encode(b"short").decode(), "5 bytes")],
)
def test_a_public_key_that_is_not_one_is_a_startup_error(key: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_public_key(key)
    with pytest.raises(ValueError, match="TELNYX_PUBLIC_KEY"):
        TelnyxCarrier(key)


# --- the webhook and the answer ------------------------------------------------------------


def test_the_webhook_names_the_call() -> None:
    p = phone()
    call = carrier().inbound_call(webhook(p))
    assert (call.call_id, call.account_id) == (p.call_id, ACCOUNT)
    assert (call.from_number, call.to_number) == ("+15551230000", "+15550009999")
    shouted = WebhookRequest(
        "POST", VOICE_URL, {}, b"", {"CallSid": p.call_id, "AccountSid": ACCOUNT.upper()}
    )
    assert carrier().inbound_call(shouted).account_id == ACCOUNT  # as start.user_id reads


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"CallSid": "CA" + "0" * 32, "AccountSid": ACCOUNT}, "CallSid is not"),
        ({"CallSid": CALL_CONTROL_ID, "AccountSid": "../x"}, "AccountSid is not"),
        ({"AccountSid": ACCOUNT}, "CallSid is not"),
        ({"CallSid": CALL_CONTROL_ID}, "AccountSid is not"),
    ],
)
def test_a_bound_webhook_must_name_a_well_formed_call(params: dict[str, str], message: str) -> None:
    request = WebhookRequest("POST", VOICE_URL, {}, b"", params)
    with pytest.raises(CarrierRequestError, match=message):
        carrier().inbound_call(request)


def test_an_unbound_webhook_may_leave_the_ids_out_but_not_forge_them() -> None:
    c = TelnyxCarrier(None)
    call = c.inbound_call(WebhookRequest("POST", VOICE_URL, {}, b"", {"From": "+1555"}))
    assert (call.call_id, call.account_id, call.from_number) == ("", "", "+1555")
    with pytest.raises(CarrierRequestError, match="CallSid"):
        c.inbound_call(WebhookRequest("POST", VOICE_URL, {}, b"", {"CallSid": "x/../y"}))


def test_the_answer_streams_both_ways_and_carries_the_parameters() -> None:
    parameters = {"agent": "acme", "from": "+1555", "odd": 'a&b<c>"d"\n', "empty": ""}
    answer = carrier().connect(STREAM_URL, parameters)
    assert answer.content_type == "application/xml"
    order = phone().read_answer(answer.content_type, answer.body)
    assert order.url == STREAM_URL
    assert order.parameters == {k: v for k, v in parameters.items() if v}
    stream = ElementTree.fromstring(answer.body).find("./Connect/Stream")
    assert stream is not None
    assert {k: v for k, v in stream.attrib.items() if k != "url"} == {
        "track": "inbound_track",
        "codec": "PCMU",
        "bidirectionalMode": "rtp",
        "bidirectionalCodec": "PCMU",
        "bidirectionalSamplingRate": "8000",
    }


def test_the_answer_needs_a_websocket_url() -> None:
    with pytest.raises(ValueError, match="wss://"):
        carrier().connect("https://gw.test/telnyx/media", {})


def test_a_refusal_says_the_message_and_hangs_up() -> None:
    answer = carrier().refuse("All lines are busy & we're sorry.")
    root = ElementTree.fromstring(answer.body)
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert root[0].text == "All lines are busy & we're sorry."
    with pytest.raises(ValueError, match="no bidirectional"):
        phone().read_answer(answer.content_type, answer.body)


def test_a_one_way_stream_is_not_an_answer_the_phone_takes() -> None:
    body = f'<Response><Connect><Stream url="{STREAM_URL}"/></Connect></Response>'
    with pytest.raises(ValueError, match="no bidirectional"):
        phone().read_answer("application/xml", body)


# --- settings ------------------------------------------------------------------------------


def test_the_conformance_settings_load_together_and_configure_everything() -> None:
    case = telnyx_case.case()
    merged = {**case.settings, **case.rest_settings("http://127.0.0.1:9")}
    assert len(merged) == len(case.settings) + len(case.rest_settings("http://127.0.0.1:9"))
    c = TelnyxCarrier.from_settings(load_settings(env_file=None, **merged))
    assert c.name == "telnyx" and c.signed
    assert c.binding_secret == telnyx_case.API_KEY
    rest = c.rest()
    assert isinstance(rest, TelnyxRest)
    assert rest.credentials.base_url == "http://127.0.0.1:9"
    assert telnyx_case.API_KEY not in repr(rest.credentials)
    unkeyed = TelnyxCarrier.from_settings(load_settings(env_file=None))
    assert unkeyed.rest() is None and not unkeyed.signed


# --- REST ----------------------------------------------------------------------------------


@dataclass
class FakeTelnyx:
    """Telnyx's REST API on loopback: records requests, answers as told."""

    reply: Callable[[RestRequest], tuple[int, str]] = telnyx_case.rest_reply
    requests: list[RestRequest] = field(default_factory=list)
    hold: asyncio.Event | None = None
    """Set: requests are held until it is (an API that does not answer)."""

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
async def api() -> AsyncIterator[tuple[FakeTelnyx, TelnyxRest]]:
    fake = FakeTelnyx()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    try:
        yield fake, TelnyxRest(TelnyxCredentials(telnyx_case.API_KEY, base))
    finally:
        if fake.hold is not None:
            fake.hold.set()
        await server.close()


async def test_hang_up_posts_status_completed_with_the_bearer_key(
    api: tuple[FakeTelnyx, TelnyxRest],
) -> None:
    fake, rest = api
    call_id = phone().call_id
    await rest.hang_up(ACCOUNT, call_id)
    (request,) = fake.requests
    assert request.method == "POST"
    assert request.path == f"/v2/texml/Accounts/{ACCOUNT}/Calls/{call_id}"
    assert request.headers["authorization"] == f"Bearer {telnyx_case.API_KEY}"
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert parse_qs(request.body.decode()) == {"Status": ["completed"]}
    assert telnyx_case.rest_action(request) == ("hang_up", call_id, "")


@pytest.mark.parametrize(
    ("target", "noun"),
    [
        (TransferTarget(number="+15550001111", caller_id="+15550002222"), "Number"),
        (TransferTarget(number="sip:desk@pbx.example.com"), "Sip"),
    ],
)
async def test_transfer_replaces_the_texml_with_a_dial(
    api: tuple[FakeTelnyx, TelnyxRest], target: TransferTarget, noun: str
) -> None:
    fake, rest = api
    call_id = phone().call_id
    await rest.transfer(ACCOUNT.upper(), call_id, target)
    (request,) = fake.requests
    assert request.path == f"/v2/texml/Accounts/{ACCOUNT}/Calls/{call_id}"
    form = parse_qs(request.body.decode())
    assert list(form) == ["Texml"]
    dial = ElementTree.fromstring(form["Texml"][0]).find("Dial")
    assert dial is not None and dial.get("callerId") == target.caller_id
    assert [(child.tag, child.text) for child in dial] == [(noun, target.number)]
    assert telnyx_case.rest_action(request) == ("transfer", call_id, target.number)


async def test_an_error_status_is_a_carrier_rest_error(
    api: tuple[FakeTelnyx, TelnyxRest],
) -> None:
    fake, rest = api
    fake.reply = lambda _: (
        422,
        json.dumps({"errors": [{"code": "90018", "title": "Call has already ended"}]}),
    )
    with pytest.raises(CarrierRestError, match=r"422.*Call has already ended \(code 90018\)"):
        await rest.hang_up(ACCOUNT, phone().call_id)
    fake.reply = lambda _: (500, "upstream <html> trouble")
    with pytest.raises(CarrierRestError, match=r"500.*upstream <html> trouble") as raised:
        await rest.hang_up(ACCOUNT, phone().call_id)
    assert telnyx_case.API_KEY not in str(raised.value)


async def test_a_wrong_key_is_refused_as_telnyx_does(api: tuple[FakeTelnyx, TelnyxRest]) -> None:
    fake, rest = api
    wrong = TelnyxRest(TelnyxCredentials("KEY_wrong", rest.credentials.base_url))
    with pytest.raises(CarrierRestError, match=r"401.*Authentication failed"):
        await wrong.hang_up(ACCOUNT, phone().call_id)
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("account", "call", "message"),
    [
        (ACCOUNT, "../../Accounts", "call id"),
        (ACCOUNT, "v3:abc/../def", "call id"),
        ("AC" + "0" * 32, CALL_CONTROL_ID, "account id"),
        (None, CALL_CONTROL_ID, "account id"),
    ],
)
async def test_ids_are_checked_before_any_request(
    api: tuple[FakeTelnyx, TelnyxRest], account: str | None, call: str, message: str
) -> None:
    fake, rest = api
    with pytest.raises(CarrierRestError, match=message):
        await rest.hang_up(account, call)
    assert fake.requests == []


async def test_an_api_that_does_not_answer_times_out(api: tuple[FakeTelnyx, TelnyxRest]) -> None:
    fake, rest = api
    fake.hold = asyncio.Event()
    slow = TelnyxRest(rest.credentials, timeout_s=0.2)
    with pytest.raises(CarrierRestError, match=r"no answer from Telnyx within 0\.2 s"):
        await slow.hang_up(ACCOUNT, phone().call_id)
    assert len(fake.requests) == 1


async def test_an_unreachable_api_is_a_carrier_rest_error() -> None:
    server = TestServer(web.Application(), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    await server.close()  # nothing listens there now
    rest = TelnyxRest(TelnyxCredentials(telnyx_case.API_KEY, base))
    with pytest.raises(CarrierRestError, match="cannot reach Telnyx"):
        await rest.hang_up(ACCOUNT, phone().call_id)


def test_the_case_reads_only_call_updates() -> None:
    other = RestRequest("GET", f"/v2/texml/Accounts/{ACCOUNT}/Calls/{CALL_CONTROL_ID}", {}, b"")
    assert telnyx_case.rest_action(other) is None
    assert telnyx_case.rest_reply(other)[0] == 401  # no key
