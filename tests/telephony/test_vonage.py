"""Vonage: NCCO answers, HS256 webhook JWTs, the L16 WebSocket through the fake phone, and the
modify-call REST API against a fake on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.telephony.base import (
    CarrierNotice,
    Dtmf,
    MarkEcho,
    MediaFrame,
    StreamStart,
    StreamStop,
    TelephonyProtocolError,
    UnknownEvent,
)
from gateway.telephony.carrier import L16, CarrierRequestError, CarrierRestError, WebhookRequest
from gateway.telephony.vonage import (
    CONTENT_TYPE,
    MAX_MEDIA_PAYLOAD_BYTES,
    SIGNATURE_TOLERANCE_S,
    VonageCarrier,
    VonageCodec,
    VonageRest,
    build_connect_ncco,
    decode_hs256,
    encode_hs256,
)
from gateway.telephony.vonage_phone import VonagePhone
from gateway.tools.spec import TransferTarget
from tests.telephony import vonage_case
from tests.telephony.carrier_case import RestRequest
from tests.telephony.fake_rest import FakeCarrierRest
from tests.telephony.vonage_case import APPLICATION_ID, PRIVATE_KEY_PEM, SIGNATURE_SECRET

URL = "https://gw.test/vonage/voice"
STREAM_URL = "wss://gw.test/vonage/media"
NOW = 1_760_000_000.0
FRAME = bytes(range(256)) * 2 + bytes(128)  # 640 bytes: 20 ms of 16 kHz L16


def carrier(secret: str | None = SIGNATURE_SECRET, now: float = NOW) -> VonageCarrier:
    return VonageCarrier(secret, application_id=APPLICATION_ID, clock=lambda: now)


def phone(secret: str | None = SIGNATURE_SECRET, **kwargs: Any) -> VonagePhone:
    kwargs.setdefault("clock", lambda: NOW)
    return VonagePhone(secret, APPLICATION_ID, **kwargs)


def as_request(signed: Any) -> WebhookRequest:
    """What the server makes of the phone's request (params: query, or top-level JSON)."""
    if signed.method == "GET":
        params = dict(pair.split("=", 1) for pair in urlsplit(signed.url).query.split("&"))
    else:
        params = {k: v for k, v in json.loads(signed.body).items() if isinstance(v, str)}
    headers = {name.lower(): value for name, value in signed.headers.items()}
    return WebhookRequest(signed.method, signed.url, headers, signed.body, params)


def webhook(p: VonagePhone) -> WebhookRequest:
    return as_request(p.voice_webhook(URL, from_number="+15551230000", to_number="+15550009999"))


def started(p: VonagePhone, parameters: dict[str, str]) -> tuple[VonageCodec, StreamStart]:
    codec = VonageCodec(account_id=APPLICATION_ID)
    (opening,) = p.opening(parameters)
    start = codec.parse(opening)
    assert isinstance(start, StreamStart)
    return codec, start


# ------------------------------------------------------------------ webhook signatures


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_signed_answer_webhook_is_accepted_and_names_the_call(method: str) -> None:
    p = phone(method=method)
    request = webhook(p)
    vonage = carrier()
    assert vonage.signed and vonage.binding_secret == SIGNATURE_SECRET
    assert vonage.verify_webhook(request) is None
    call = vonage.inbound_call(request)
    assert call.call_id == p.call_id
    assert call.account_id == APPLICATION_ID
    assert (call.from_number, call.to_number) == ("+15551230000", "+15550009999")


def test_a_webhook_without_a_jwt_is_missing_its_signature() -> None:
    request = webhook(phone(None))
    assert "authorization" not in request.headers
    assert carrier().verify_webhook(request) == "missing_signature"


def test_a_webhook_signed_with_another_secret_is_invalid() -> None:
    assert carrier().verify_webhook(webhook(phone("not-the-secret"))) == "invalid_signature"


@pytest.mark.parametrize("skew", [SIGNATURE_TOLERANCE_S + 1, -(SIGNATURE_TOLERANCE_S + 1)])
def test_a_jwt_issued_too_long_ago_or_ahead_is_stale(skew: int) -> None:
    request = webhook(phone())
    assert carrier(now=NOW + skew).verify_webhook(request) == "stale_signature"
    assert carrier(now=NOW + skew // 2).verify_webhook(request) is None


def test_a_genuine_jwt_replayed_with_other_fields_is_invalid() -> None:
    request = webhook(phone())
    forged_url = request.url.replace("to=15550009999", "to=15550001234")
    assert forged_url != request.url
    forged = WebhookRequest("GET", forged_url, request.headers, b"", request.params)
    assert carrier().verify_webhook(forged) == "invalid_signature"


def test_a_post_body_changed_after_signing_is_invalid() -> None:
    request = webhook(phone(method="POST"))
    body = request.body.replace(b"15550009999", b"15550001234")
    forged = WebhookRequest("POST", request.url, request.headers, body, request.params)
    assert carrier().verify_webhook(forged) == "invalid_signature"


def test_a_jwt_without_payload_hash_or_with_alg_none_is_invalid() -> None:
    request = webhook(phone())
    no_hash = encode_hs256(SIGNATURE_SECRET, {"iat": int(NOW), "iss": "Vonage"})
    header = json.dumps({"alg": "none"}).encode()
    unsigned = base64.urlsafe_b64encode(header).rstrip(b"=").decode() + ".e30."
    for token in (no_hash, unsigned, "not.a-jwt", "x" * 5000):
        headers = {"authorization": f"Bearer {token}"}
        tampered = WebhookRequest("GET", request.url, headers, b"", request.params)
        assert carrier().verify_webhook(tampered) == "invalid_signature", token[:40]


def test_a_jwt_for_another_application_is_invalid() -> None:
    p = VonagePhone(SIGNATURE_SECRET, "bbbbbbbb-bbbb-cccc-dddd-0123456789ab", clock=lambda: NOW)
    assert carrier().verify_webhook(webhook(p)) == "invalid_signature"


def test_jwt_round_trip_and_claims() -> None:
    token = encode_hs256("s", {"iat": 5, "payload_hash": "ab", "application_id": "app"})
    claims = decode_hs256("s", token)
    assert (claims.issued_at, claims.payload_hash, claims.application_id) == (5, "ab", "app")
    with pytest.raises(ValueError, match="signature"):
        decode_hs256("t", token)
    with pytest.raises(ValueError, match="iat"):
        decode_hs256("s", encode_hs256("s", {"iat": "5"}))


def test_without_a_secret_nothing_is_checked_or_bound() -> None:
    vonage = carrier(None)
    assert not vonage.signed and vonage.binding_secret is None
    request = webhook(phone(None))
    assert vonage.verify_webhook(request) is None
    assert vonage.verify_stream(request) is None
    assert vonage.inbound_call(request).call_id


def test_a_call_uuid_must_be_a_uuid() -> None:
    request = webhook(phone())
    bad = WebhookRequest("GET", request.url, {}, b"", {**request.params, "uuid": "../calls"})
    with pytest.raises(CarrierRequestError, match="uuid"):
        carrier().inbound_call(bad)
    missing = WebhookRequest("GET", request.url, {}, b"", {"from": "1", "to": "2"})
    with pytest.raises(CarrierRequestError, match="uuid"):
        carrier().inbound_call(missing)  # signed calls are bound: the uuid must be there
    assert carrier(None).inbound_call(missing).call_id == ""


def test_non_numeric_callers_are_kept_as_sent() -> None:
    request = webhook(phone(None))
    params = {**request.params, "from": "Unknown", "to": ""}
    call = carrier(None).inbound_call(WebhookRequest("GET", URL, {}, b"", params))
    assert (call.from_number, call.to_number) == ("Unknown", None)


# ------------------------------------------------------------------ NCCO answers


def test_connect_asks_for_l16_16k_and_carries_the_parameters_as_headers() -> None:
    parameters = {"agent": "default", "call_sid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"}
    answer = carrier().connect(STREAM_URL, parameters)
    assert answer.content_type == "application/json"
    (action,) = json.loads(answer.body)
    (endpoint,) = action["endpoint"]
    assert action["action"] == "connect"
    assert endpoint == {
        "type": "websocket",
        "uri": STREAM_URL,
        "content-type": "audio/l16;rate=16000",
        "headers": parameters,
    }
    order = phone().read_answer(answer.content_type, answer.body)
    assert (order.url, dict(order.parameters)) == (STREAM_URL, parameters)


def test_narrowband_is_a_setting_and_the_stream_follows_the_content_type() -> None:
    narrow = VonageCarrier("s", rate_hz=8000)
    answer = narrow.connect(STREAM_URL, {"call_sid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"})
    (endpoint,) = json.loads(answer.body)[0]["endpoint"]
    assert endpoint["content-type"] == "audio/l16;rate=8000"
    p = phone()
    p.read_answer(answer.content_type, answer.body)
    assert p.rate_hz == 8000
    codec = narrow.codec(WebhookRequest("GET", STREAM_URL, {}, b"", {}))
    start = codec.parse(p.opening({"call_sid": p.call_id})[0])
    assert isinstance(start, StreamStart) and start.sample_rate_hz == 8000
    codec.parse(bytes(320))
    second = codec.parse(bytes(320))
    assert isinstance(second, MediaFrame) and second.timestamp_ms == 20  # 320 bytes at 8 kHz
    with pytest.raises(ValueError, match="8000 or 16000"):
        VonageCarrier("s", rate_hz=24000)
    with pytest.raises(ValueError, match="8000 or 16000"):
        build_connect_ncco(STREAM_URL, {}, rate_hz=11025)


def test_a_wideband_stream_is_16k_and_times_its_frames_by_it() -> None:
    codec = carrier().codec(WebhookRequest("GET", STREAM_URL, {}, b"", {}))
    start = codec.parse(connected())
    assert isinstance(start, StreamStart) and (start.encoding, start.sample_rate_hz) == (L16, 16000)
    codec.parse(bytes(640))
    second = codec.parse(bytes(640))
    assert isinstance(second, MediaFrame) and second.timestamp_ms == 20
    with pytest.raises(TelephonyProtocolError, match="another rate"):
        codec.parse(
            json.dumps({"event": "websocket:connected", "content-type": "audio/l16;rate=8000"})
        )


def test_parameters_over_512_bytes_go_in_the_stream_urls_query() -> None:
    parameters = {"agent": "a" * 600, "call_sid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"}
    answer = carrier().connect(STREAM_URL, parameters)
    (endpoint,) = json.loads(answer.body)[0]["endpoint"]
    assert "headers" not in endpoint and endpoint["uri"].startswith(STREAM_URL + "?")
    order = phone().read_answer(answer.content_type, answer.body)
    assert dict(order.parameters) == parameters
    query = dict(pair.split("=", 1) for pair in urlsplit(order.url).query.split("&"))
    upgrade = WebhookRequest("GET", order.url, {}, b"", query)
    codec = carrier().codec(upgrade)
    start = codec.parse(json.dumps({"event": "websocket:connected", "content-type": CONTENT_TYPE}))
    assert isinstance(start, StreamStart)
    assert start.custom_parameters == parameters
    assert start.call_sid == parameters["call_sid"]


def test_connect_refuses_a_url_vonage_cannot_use() -> None:
    for url in ("https://gw.test/media", "wss://gw.test/media?x=1"):
        with pytest.raises(ValueError, match="stream_url"):
            build_connect_ncco(url, {})


def test_refuse_says_the_message_and_ends() -> None:
    answer = carrier().refuse("All lines are busy.")
    assert json.loads(answer.body) == [{"action": "talk", "text": "All lines are busy."}]
    with pytest.raises(ValueError, match="websocket"):
        phone().read_answer(answer.content_type, answer.body)


# ------------------------------------------------------------------ the stream


def test_the_stream_round_trips_through_the_phone() -> None:
    p = phone()
    parameters = {"agent": "default", "call_sid": p.call_id, "binding": "123.abc"}
    codec, start = started(p, parameters)
    assert start.call_sid == p.call_id and start.account_sid == APPLICATION_ID
    assert (start.encoding, start.sample_rate_hz, start.channels) == (L16, 16000, 1)
    assert start.custom_parameters == parameters
    assert start.stream_sid.startswith("vonage-")
    assert VonageCodec().stream_id != codec.stream_id  # made up per stream

    frames = [codec.parse(p.media(FRAME)) for _ in range(3)]
    assert all(isinstance(f, MediaFrame) and f.payload == FRAME for f in frames)
    assert [f.timestamp_ms for f in frames if isinstance(f, MediaFrame)] == [0, 20, 40]
    assert [f.chunk for f in frames if isinstance(f, MediaFrame)] == [1, 2, 3]

    dtmf = codec.parse(p.dtmf("#"))
    assert isinstance(dtmf, Dtmf) and dtmf.digit == "#"
    echo = codec.parse(p.mark_played("turn-3"))
    assert isinstance(echo, MarkEcho) and echo.name == "turn-3"
    cleared = codec.parse(p.cleared())
    assert isinstance(cleared, CarrierNotice) and cleared.event == "websocket:cleared"
    stop = codec.parse(p.stop())
    assert isinstance(stop, StreamStop) and stop.call_sid == p.call_id

    out = codec.build_media(start.stream_sid, FRAME)
    assert isinstance(out, bytes)  # a binary message
    assert p.read(out).kind == "media" and p.read(out).audio == FRAME
    mark = p.read(codec.build_mark(start.stream_sid, "turn-4"))
    assert (mark.kind, mark.name) == ("mark", "turn-4")
    assert json.loads(codec.build_mark(start.stream_sid, "x")) == {
        "action": "notify",
        "payload": {"name": "x"},
    }
    assert p.read(codec.build_clear(start.stream_sid)).kind == "clear"
    assert json.loads(codec.build_clear(start.stream_sid)) == {"action": "clear"}


def test_the_same_connected_may_be_read_twice_but_not_for_another_call() -> None:
    p = phone()
    codec, start = started(p, {"call_sid": p.call_id})
    (again,) = p.opening({"call_sid": p.call_id})
    assert codec.parse(again) == start
    (other,) = phone().opening({"call_sid": phone().call_id})
    with pytest.raises(TelephonyProtocolError, match="another call"):
        codec.parse(other)


def connected(**fields: object) -> str:
    return json.dumps({"event": "websocket:connected", "content-type": CONTENT_TYPE, **fields})


@pytest.mark.parametrize(
    ("frame", "named"),
    [
        (bytes(MAX_MEDIA_PAYLOAD_BYTES + 2), "MAX_MEDIA_PAYLOAD_BYTES"),
        (bytes(321), "16-bit samples"),
        (b"", "16-bit samples"),
        ("x" * 9000, "over the limit"),
        ("not json", "not valid JSON"),
        ("[" * 5000, "JSON"),
        ("[]", "JSON object"),
        ("{}", "missing field event"),
        ('{"event": 7}', "event must be a string"),
        (json.dumps({"event": "websocket:connected"}), "missing field content-type"),
        (
            json.dumps({"event": "websocket:connected", "content-type": "audio/l16;rate=24000"}),
            "content-type must be one of audio/l16;rate=8000, audio/l16;rate=16000",
        ),
        (connected(call_sid="CA123"), "call_sid must be a Vonage call uuid"),
        (connected(**{f"k{i}": "v" for i in range(40)}), "MAX_CUSTOM_PARAMETERS"),
        (connected(big="v" * 4100), "MAX_CUSTOM_PARAMETERS_CHARS"),
        (json.dumps({"event": "websocket:dtmf"}), "missing field digit"),
        (json.dumps({"event": "websocket:dtmf", "digit": "12"}), "digit must be one key"),
        (json.dumps({"event": "websocket:notify"}), "payload must be an object"),
        (json.dumps({"event": "websocket:notify", "payload": {}}), "payload.name"),
        (
            json.dumps({"event": "websocket:notify", "payload": {"name": "n" * 300}}),
            "payload.name is 300 chars",
        ),
    ],
)
def test_malformed_frames_are_refused_naming_the_field(frame: str | bytes, named: str) -> None:
    with pytest.raises(TelephonyProtocolError, match=named):
        VonageCodec().parse(frame)


def test_unknown_events_are_kept_and_vonage_fields_that_are_not_strings_skipped() -> None:
    codec = VonageCodec()
    event = codec.parse(json.dumps({"event": "websocket:something", "x": 1}))
    assert isinstance(event, UnknownEvent) and event.event == "websocket:something"
    start = codec.parse(connected(agent="default", duration=5, nested={"a": "b"}))
    assert isinstance(start, StreamStart) and start.custom_parameters == {"agent": "default"}


# ------------------------------------------------------------------ REST


CALL_UUID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"


@pytest.fixture
async def fake_vonage() -> AsyncIterator[FakeCarrierRest]:
    rest = FakeCarrierRest(vonage_case.rest_reply)
    await rest.start()
    try:
        yield rest
    finally:
        await rest.stop()


def rest_for(base_url: str, **kwargs: Any) -> VonageRest:
    return VonageRest(APPLICATION_ID, PRIVATE_KEY_PEM, base_url=base_url, **kwargs)


async def test_hang_up_puts_hangup_with_an_application_jwt(fake_vonage: FakeCarrierRest) -> None:
    before = int(time.time())
    await rest_for(fake_vonage.url + "/").hang_up(None, CALL_UUID.upper())
    (request,) = fake_vonage.requests
    assert (request.method, request.path) == ("PUT", f"/v1/calls/{CALL_UUID}")
    assert json.loads(request.body) == {"action": "hangup"}
    claims = vonage_case.jwt_claims(request)
    assert claims is not None, request.headers.get("authorization")
    assert claims["application_id"] == APPLICATION_ID
    assert before <= claims["iat"] <= claims["exp"] - 60 and claims["jti"]
    assert vonage_case.rest_action(request) == ("hang_up", CALL_UUID, "")


async def test_transfer_connects_the_call_to_the_target(fake_vonage: FakeCarrierRest) -> None:
    rest = rest_for(fake_vonage.url)
    await rest.transfer(None, CALL_UUID, TransferTarget(number="+15550001111", caller_id="+1555"))
    await rest.transfer(None, CALL_UUID, TransferTarget(number="sip:desk@pbx.example"))
    phone_request, sip_request = fake_vonage.requests
    assert json.loads(phone_request.body) == {
        "action": "transfer",
        "destination": {
            "type": "ncco",
            "ncco": [
                {
                    "action": "connect",
                    "endpoint": [{"type": "phone", "number": "15550001111"}],
                    "from": "1555",
                }
            ],
        },
    }
    assert vonage_case.rest_action(phone_request) == ("transfer", CALL_UUID, "+15550001111")
    assert vonage_case.rest_action(sip_request) == ("transfer", CALL_UUID, "sip:desk@pbx.example")


async def test_a_request_vonage_refuses_is_a_rest_error(fake_vonage: FakeCarrierRest) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rest = VonageRest(APPLICATION_ID, other, base_url=fake_vonage.url)
    with pytest.raises(CarrierRestError, match=r"401 to hangup: Invalid Token"):
        await rest.hang_up(None, CALL_UUID)


async def test_ids_are_checked_before_any_request(fake_vonage: FakeCarrierRest) -> None:
    rest = rest_for(fake_vonage.url)
    for call_id in ("", "../../v2/applications", f"{CALL_UUID}/dtmf"):
        with pytest.raises(CarrierRestError, match="not a Vonage call uuid"):
            await rest.hang_up(None, call_id)
    assert fake_vonage.requests == []


async def _serve(handler: Any) -> TestServer:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_a_hang_up_of_a_call_already_over_succeeds() -> None:
    async def gone(request: web.Request) -> web.Response:
        return web.json_response({"title": "Not Found"}, status=404)

    server = await _serve(gone)
    try:
        rest = rest_for(str(server.make_url("")))
        await rest.hang_up(None, CALL_UUID)  # nothing raised: the call has ended
        with pytest.raises(CarrierRestError, match="404 to transfer: Not Found"):
            await rest.transfer(None, CALL_UUID, TransferTarget(number="+15550001111"))
    finally:
        await server.close()


async def test_no_answer_in_time_is_a_rest_error() -> None:
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await never.wait()
        return web.Response()

    server = await _serve(hang)
    try:
        rest = rest_for(str(server.make_url("")), timeout_s=0.05)
        with pytest.raises(CarrierRestError, match="no answer from Vonage"):
            await rest.hang_up(None, CALL_UUID)
    finally:
        never.set()
        await server.close()


async def test_an_unreachable_api_is_a_rest_error() -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response()

    server = await _serve(ok)
    url = str(server.make_url(""))
    await server.close()  # nothing listens there any more
    with pytest.raises(CarrierRestError, match="cannot reach Vonage"):
        await rest_for(url).hang_up(None, CALL_UUID)


def test_a_bad_private_key_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="VONAGE_PRIVATE_KEY"):
        VonageRest(APPLICATION_ID, "not a pem")
    escaped = PRIVATE_KEY_PEM.replace("\n", "\\n")  # one-line env-file form
    assert VonageRest(APPLICATION_ID, escaped).application_id == APPLICATION_ID


# ------------------------------------------------------------------ settings and the case


def test_from_settings_reads_the_vonage_fields_when_they_exist() -> None:
    settings: Any = SimpleNamespace(
        vonage_signature_secret=SIGNATURE_SECRET,
        vonage_application_id=APPLICATION_ID,
        vonage_private_key=PRIVATE_KEY_PEM,
        vonage_api_base_url="http://127.0.0.1:9/",
    )
    vonage = VonageCarrier.from_settings(settings)
    assert vonage.name == "vonage" and vonage.signed
    assert vonage.account_allowlist == frozenset()
    rest = vonage.rest()
    assert isinstance(rest, VonageRest) and rest.base_url == "http://127.0.0.1:9"
    bare = VonageCarrier.from_settings(SimpleNamespace())  # type: ignore[arg-type]
    assert not bare.signed and bare.rest() is None


def test_the_conformance_case_fits_the_suite() -> None:
    case = vonage_case.case()
    base = "http://127.0.0.1:9"
    assert not set(case.settings) & set(case.rest_settings(base))
    assert case.make_phone().call_id != case.make_phone().call_id
    signed = as_request(
        case.make_phone().voice_webhook(URL, from_number="+15551230000", to_number="+1555")
    )
    assert case.make_wrong_phone is not None
    wrong = as_request(
        case.make_wrong_phone().voice_webhook(URL, from_number="+15551230000", to_number="+1555")
    )
    vonage = VonageCarrier(SIGNATURE_SECRET, application_id=APPLICATION_ID)
    assert vonage.verify_webhook(signed) is None
    assert vonage.verify_webhook(wrong) == "invalid_signature"
    stray = RestRequest("GET", "/v1/calls", {}, b"")
    assert vonage_case.rest_action(stray) is None
    assert vonage_case.rest_reply(stray)[0] == 401
