"""Exotel: the Voicebot applet's dynamic URL, the AgentStream codec, the phone and the REST API.

Frames are those of Exotel's developer docs (gateway.telephony.exotel cites them).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.settings import load_settings
from gateway.telephony.base import (
    Connected,
    Dtmf,
    MarkEcho,
    MediaFrame,
    StreamStart,
    StreamStop,
    TelephonyProtocolError,
    UnknownEvent,
)
from gateway.telephony.carrier import L16, CarrierRequestError, CarrierRestError, WebhookRequest
from gateway.telephony.exotel import (
    MAX_MEDIA_PAYLOAD_BYTES,
    ExotelCarrier,
    ExotelCodec,
    ExotelRest,
    build_connect_json,
    e164,
)
from gateway.telephony.exotel_phone import ExotelPhone
from gateway.tools.spec import TransferTarget
from tests.telephony import exotel_case
from tests.telephony.carrier_case import RestRequest
from tests.telephony.fake_rest import FakeCarrierRest

ACCOUNT = "exotel1234"
CALL_SID = "80bfbec2d78bbbf10fb851f4fa165211"  # the shape of the docs' StatusCallback CallSid
STREAM_URL = "wss://gw.test/exotel/media"
PCM_20MS = bytes(range(256)) + bytes(64)  # 320 bytes: 160 samples of 8 kHz L16


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _request(params: dict[str, str], url: str = "https://gw.test/exotel/voice") -> WebhookRequest:
    return WebhookRequest("GET", url, {}, b"", params)


def _carrier(**kwargs: Any) -> ExotelCarrier:
    options: dict[str, Any] = {
        "account_sid": ACCOUNT,
        "api_key": "key",
        "api_token": "token",
    }
    options.update(kwargs)
    return ExotelCarrier(**options)


# The developer docs' frames (websocket-protocol), ids as given there.
DOCS_START = {
    "event": "start",
    "sequence_number": "1",
    "stream_sid": "MZxxxxxxxxxxxxxxxxxxxxxxxx",
    "start": {
        "stream_sid": "MZxxxxxxxxxxxxxxxxxxxxxxxx",
        "call_sid": "CAxxxxxxxxxxxxxxxxxxxxxxxx",
        "account_sid": "ACxxxxxxxxxxxxxxxxxxxxxxxx",
        "from": "+919876543210",
        "to": "+918047491899",
        "custom_parameters": {"key1": "value1"},
        "media_format": {"encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16"},
    },
}


def _started(query: dict[str, str] | None = None) -> ExotelCodec:
    codec = ExotelCodec(query)
    codec.parse(json.dumps(DOCS_START))
    return codec


def _media(payload: str, **media: Any) -> str:
    return json.dumps(
        {
            "event": "media",
            "sequence_number": "3",
            "stream_sid": "MZxxxxxxxxxxxxxxxxxxxxxxxx",
            "media": {"chunk": "2", "timestamp": "200", "payload": payload, **media},
        }
    )


# ---------------------------------------------------------------------- the docs' frames


def test_the_docs_connected_and_start_frames() -> None:
    codec = ExotelCodec()
    assert codec.parse('{"event": "connected"}') == Connected(protocol="", version="")
    start = codec.parse(json.dumps(DOCS_START))
    assert isinstance(start, StreamStart)
    assert (start.stream_sid, start.call_sid, start.account_sid) == (
        "MZxxxxxxxxxxxxxxxxxxxxxxxx",
        "CAxxxxxxxxxxxxxxxxxxxxxxxx",
        "ACxxxxxxxxxxxxxxxxxxxxxxxx",
    )
    assert (start.encoding, start.sample_rate_hz, start.channels) == (L16, 8000, 1)
    assert dict(start.custom_parameters) == {"key1": "value1"}
    assert start.sequence_number == 1


def test_the_docs_media_dtmf_mark_and_stop_frames() -> None:
    codec = _started()
    media = codec.parse(_media(_b64(PCM_20MS * 10)))
    assert isinstance(media, MediaFrame)
    assert (media.chunk, media.timestamp_ms, media.sequence_number) == (2, 200, 3)
    assert media.payload == PCM_20MS * 10  # 100 ms, what Exotel sends
    dtmf = codec.parse(
        '{"event": "dtmf", "sequence_number": "7", "stream_sid": "MZxxxxxxxxxxxxxxxxxxxxxxxx",'
        ' "dtmf": {"digit": "5", "duration": "100"}}'
    )
    assert dtmf == Dtmf("MZxxxxxxxxxxxxxxxxxxxxxxxx", "5", "inbound", 7)
    mark = codec.parse(
        '{"event": "mark", "sequence_number": "15", "stream_sid": "MZxxxxxxxxxxxxxxxxxxxxxxxx",'
        ' "mark": {"name": "turn-3"}}'
    )
    assert mark == MarkEcho("MZxxxxxxxxxxxxxxxxxxxxxxxx", "turn-3", 15)
    stop = codec.parse(
        '{"event": "stop", "sequence_number": "20", "stream_sid": "MZxxxxxxxxxxxxxxxxxxxxxxxx",'
        ' "stop": {"call_sid": "CAxxxxxxxxxxxxxxxxxxxxxxxx",'
        ' "account_sid": "ACxxxxxxxxxxxxxxxxxxxxxxxx", "reason": "callended"}}'
    )
    assert stop == StreamStop(
        "MZxxxxxxxxxxxxxxxxxxxxxxxx",
        "CAxxxxxxxxxxxxxxxxxxxxxxxx",
        "ACxxxxxxxxxxxxxxxxxxxxxxxx",
        20,
    )


def test_camel_case_ids_and_numbers_as_json_numbers_are_read() -> None:
    """Exotel's own samples write `streamSid`, numbers unquoted, rates as "8000Hz"."""
    start = json.loads(json.dumps(DOCS_START))
    del start["stream_sid"], start["start"]["stream_sid"]
    start["streamSid"] = "MZ1"
    start["sequence_number"] = 1
    start["start"]["media_format"] = {"encoding": "linear16", "sample_rate": "8000Hz"}
    codec = ExotelCodec()
    event = codec.parse(json.dumps(start))
    assert isinstance(event, StreamStart)
    assert (event.stream_sid, event.encoding, event.sample_rate_hz) == ("MZ1", L16, 8000)
    media = codec.parse(
        json.dumps({"event": "media", "streamSid": "MZ1", "media": {"chunk": 1, "payload": ""}})
    )
    assert isinstance(media, MediaFrame) and media.chunk == 1 and media.stream_sid == "MZ1"


def test_another_encoding_is_passed_on_for_the_call_to_refuse() -> None:
    start = json.loads(json.dumps(DOCS_START))
    start["start"]["media_format"] = {"encoding": "audio/x-mulaw", "sample_rate": "16000"}
    event = ExotelCodec().parse(json.dumps(start))
    assert isinstance(event, StreamStart)
    assert (event.encoding, event.sample_rate_hz) == ("audio/x-mulaw", 16000)


def test_the_url_parameters_come_back_with_the_query_winning() -> None:
    codec = ExotelCodec({"sample-rate": "8000", "agent": "sales", "key1": "from-query"})
    event = codec.parse(json.dumps(DOCS_START))
    assert isinstance(event, StreamStart)
    assert dict(event.custom_parameters) == {"key1": "from-query", "agent": "sales"}


def test_unix_millisecond_timestamps_are_made_relative() -> None:
    codec = _started()
    first = codec.parse(_media("", timestamp="1705312200000"))
    later = codec.parse(_media("", timestamp="1705312200100"))
    assert isinstance(first, MediaFrame) and isinstance(later, MediaFrame)
    assert (first.timestamp_ms, later.timestamp_ms) == (0, 100)


def test_stop_without_ids_takes_the_start_s() -> None:
    stop = _started().parse('{"event": "stop", "sequence_number": "9"}')
    assert stop == StreamStop(
        "MZxxxxxxxxxxxxxxxxxxxxxxxx",
        "CAxxxxxxxxxxxxxxxxxxxxxxxx",
        "ACxxxxxxxxxxxxxxxxxxxxxxxx",
        9,
    )


def test_an_unknown_event_is_kept() -> None:
    event = _started().parse('{"event": "clear", "stream_sid": "MZxxxxxxxxxxxxxxxxxxxxxxxx"}')
    assert isinstance(event, UnknownEvent)
    assert event.event == "clear" and event.raw["stream_sid"] == "MZxxxxxxxxxxxxxxxxxxxxxxxx"


def _start_with(**changes: Any) -> str:
    start = json.loads(json.dumps(DOCS_START))
    for key, value in changes.items():
        if value is None:
            del start["start"][key]
        else:
            start["start"][key] = value
    return json.dumps(start)


MALFORMED: list[tuple[str | bytes, str]] = [
    ("not json", "not valid JSON"),
    (b"\xff\xfe", "not valid UTF-8"),
    ("[1]", "must be a JSON object"),
    ("{}", "missing field event"),
    ('{"event": 7}', "event must be a string"),
    ("[" * 5000, "nested too deeply"),
    ('{"event": "start"}', "missing field start"),
    (_start_with(call_sid=None), "missing field start.call_sid"),
    (_start_with(call_sid="CA/../../x"), "start.call_sid must be an Exotel id"),
    (_start_with(media_format=None), "missing field start.media_format"),
    (_start_with(media_format={"encoding": "raw"}), "start.media_format.sample_rate"),
    (_start_with(media_format={"encoding": "raw", "sample_rate": "fast"}), "sample_rate"),
    (_start_with(custom_parameters=["a"]), "start.custom_parameters must be an object"),
    (_start_with(custom_parameters={"a": 1}), "start.custom_parameters['a']"),
    (_start_with(custom_parameters={f"k{i}": "v" for i in range(40)}), "MAX_CUSTOM_PARAMETERS"),
    ('{"event": "media", "media": {"payload": ""}}', "missing field stream_sid"),
]


@pytest.mark.parametrize(("frame", "field"), MALFORMED)
def test_malformed_frames_are_refused_with_the_field_named(frame: str | bytes, field: str) -> None:
    with pytest.raises(TelephonyProtocolError, match=field.replace("[", r"\[")):
        ExotelCodec().parse(frame)


STREAMING_MALFORMED: list[tuple[str, str]] = [
    ('{"event": "media", "stream_sid": "MZxxxxxxxxxxxxxxxxxxxxxxxx"}', "missing field media"),
    (_media("!!!!"), "media.payload is not valid base64"),
    (_media(_b64(b"\x01\x02\x03")), "not whole 16-bit samples"),
    (_media(_b64(bytes(MAX_MEDIA_PAYLOAD_BYTES + 2))), "MAX_MEDIA_PAYLOAD_BYTES"),
    (_media("", chunk="-1"), "media.chunk must be a non-negative integer"),
    (_media("", chunk=True), "media.chunk must be a non-negative integer"),
    (
        '{"event": "media", "stream_sid": "MZother", "media": {"payload": ""}}',
        "stream_sid 'MZother' is not this stream's",
    ),
    (
        '{"event": "dtmf", "stream_sid": "MZxxxxxxxxxxxxxxxxxxxxxxxx", "dtmf": {"digit": "55"}}',
        "dtmf.digit must be one key",
    ),
    ('{"event": "mark", "mark": {}}', "missing field mark.name"),
    ('{"event": "stop", "stop": "now"}', "stop must be an object"),
    ('{"event": "stop", "stop": {"call_sid": "CAother"}}', "stop.call_sid 'CAother'"),
    (
        json.dumps({"event": "media", "media": {"payload": "A" * 17000}}),
        "over the limit of 16384",
    ),
    (_start_with(stream_sid="MZother"), "does not match start.stream_sid"),
]


@pytest.mark.parametrize(("frame", "field"), STREAMING_MALFORMED)
def test_malformed_frames_mid_stream_are_refused(frame: str, field: str) -> None:
    with pytest.raises(TelephonyProtocolError, match=field):
        _started().parse(frame)


def test_a_second_start_for_another_call_is_refused_but_a_repeat_passes() -> None:
    codec = _started()
    assert isinstance(codec.parse(json.dumps(DOCS_START)), StreamStart)
    other = json.loads(json.dumps(DOCS_START))
    other["start"]["call_sid"] = "CAother"
    with pytest.raises(TelephonyProtocolError, match="second start"):
        codec.parse(json.dumps(other))


def test_a_payload_of_exactly_the_limit_passes() -> None:
    event = _started().parse(_media(_b64(bytes(MAX_MEDIA_PAYLOAD_BYTES))))
    assert isinstance(event, MediaFrame) and len(event.payload) == MAX_MEDIA_PAYLOAD_BYTES


# ---------------------------------------------------------------------- outbound frames


def test_the_builders_write_the_docs_frames() -> None:
    codec = _started()
    assert json.loads(codec.build_media("MZ1", PCM_20MS)) == {
        "event": "media",
        "stream_sid": "MZ1",
        "media": {"payload": _b64(PCM_20MS)},
    }
    assert json.loads(codec.build_mark("MZ1", "turn-1")) == {
        "event": "mark",
        "stream_sid": "MZ1",
        "mark": {"name": "turn-1"},
    }
    assert json.loads(codec.build_clear("MZ1")) == {"event": "clear", "stream_sid": "MZ1"}


@pytest.mark.parametrize("size", [0, 160, 321, 3000])
def test_audio_that_is_not_whole_320_byte_units_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="multiple of 320 bytes"):
        ExotelCodec().build_media("MZ1", bytes(size))


def test_the_builders_round_trip_through_the_phone() -> None:
    codec, phone = ExotelCodec(), ExotelPhone()
    assert phone.read(codec.build_media("MZ1", PCM_20MS * 10)).audio == PCM_20MS * 10
    mark = phone.read(codec.build_mark("MZ1", "turn-7"))
    assert (mark.kind, mark.name) == ("mark", "turn-7")
    assert phone.read(codec.build_clear("MZ1")).kind == "clear"
    assert phone.read('{"event": "whatever"}').kind == "other"


# ---------------------------------------------------------------------- the webhook


def test_the_dynamic_url_request_names_the_call_in_e164() -> None:
    call = _carrier().inbound_call(
        _request({"CallSid": CALL_SID, "CallFrom": "09052161119", "CallTo": "08088919888"})
    )
    assert call.call_id == CALL_SID and call.account_id == ACCOUNT
    assert (call.from_number, call.to_number) == ("+919052161119", "+918088919888")


def test_from_and_to_stand_in_for_callfrom_and_callto() -> None:
    call = _carrier().inbound_call(
        _request({"CallSid": CALL_SID, "From": "+14155550100", "To": "918047491899"})
    )
    assert (call.from_number, call.to_number) == ("+14155550100", "+918047491899")


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("09876543210", "+919876543210"),
        ("080XXXX2400".replace("X", "5"), "+918055552400"),
        ("919876543210", "+919876543210"),
        ("+6591234567", "+6591234567"),
        ("9876543210", "9876543210"),  # ambiguous without a trunk prefix: kept as sent
        ("sip:agent@example.com", "sip:agent@example.com"),
        ("", None),
    ],
)
def test_numbers_are_normalised_only_when_unambiguous(number: str, expected: str | None) -> None:
    assert e164(number) == expected


def test_a_bound_webhook_needs_a_well_formed_call_sid() -> None:
    with pytest.raises(CarrierRequestError, match="CallSid"):
        _carrier().inbound_call(_request({"CallFrom": "09052161119"}))
    with pytest.raises(CarrierRequestError, match="CallSid"):
        ExotelCarrier().inbound_call(_request({"CallSid": "../../calls"}))
    unbound = ExotelCarrier().inbound_call(_request({"CallFrom": "09052161119"}))
    assert (unbound.call_id, unbound.account_id) == ("", "")


def test_nothing_is_signed_and_streams_are_bound_with_the_token() -> None:
    carrier = _carrier()
    request = _request({"CallSid": CALL_SID})
    assert carrier.signed is False
    assert carrier.verify_webhook(request) is None and carrier.verify_stream(request) is None
    assert carrier.binding_secret == "token"
    assert carrier.account_allowlist == frozenset()
    # Without the Account SID the webhook cannot name the account the start event will.
    assert ExotelCarrier(api_key="key", api_token="token").binding_secret is None
    assert ExotelCarrier(api_key="key", api_token="token").rest() is None


def test_connect_answers_json_that_the_phone_reads_back() -> None:
    parameters = {"agent": "sales", "from": "+919052161119", "binding": "123.abc"}
    answer = _carrier().connect(STREAM_URL, parameters)
    assert answer.content_type == "application/json"
    url = json.loads(answer.body)["url"]
    assert url.startswith(STREAM_URL + "?")
    assert parse_qs(urlsplit(url).query)["sample-rate"] == ["8000"]
    order = ExotelPhone().read_answer(answer.content_type, answer.body)
    assert order.url == url and dict(order.parameters) == parameters


def test_the_stream_gets_the_parameters_back_from_the_upgrade_query() -> None:
    carrier, phone = _carrier(), ExotelPhone(ACCOUNT)
    order = phone.read_answer("application/json", carrier.connect(STREAM_URL, {"agent": "a"}).body)
    query = {k: v[0] for k, v in parse_qs(urlsplit(order.url).query).items()}
    codec = carrier.codec(WebhookRequest("GET", order.url, {}, b"", query))
    events = [codec.parse(frame) for frame in phone.opening({})]  # Exotel echoing nothing
    start = events[1]
    assert isinstance(events[0], Connected) and isinstance(start, StreamStart)
    assert dict(start.custom_parameters) == {"agent": "a"}


@pytest.mark.parametrize(
    "url", ["https://gw.test/exotel/media", "wss://gw.test/exotel/media?x=1", "wss:///media"]
)
def test_connect_refuses_a_url_exotel_cannot_use(url: str) -> None:
    with pytest.raises(ValueError, match="stream_url"):
        build_connect_json(url, {})


def test_refuse_answers_without_a_stream_url() -> None:
    answer = _carrier().refuse("All lines are busy.")
    assert json.loads(answer.body) == {"error": "All lines are busy."}
    with pytest.raises(ValueError, match="no"):
        ExotelPhone().read_answer(answer.content_type, answer.body)


# ---------------------------------------------------------------------- the phone


def test_the_phone_s_call_parses_end_to_end() -> None:
    phone, carrier = ExotelPhone(ACCOUNT), _carrier()
    webhook = phone.voice_webhook(
        "https://gw.test/exotel/voice", from_number="+919052161119", to_number="+918088919888"
    )
    assert webhook.method == "GET" and webhook.body == b""
    query = {k: v[0] for k, v in parse_qs(urlsplit(webhook.url).query).items()}
    assert query["CallFrom"] == "09052161119"  # Exotel's national format
    call = carrier.inbound_call(_request(query, webhook.url))
    assert (call.call_id, call.from_number) == (phone.call_id, "+919052161119")
    codec = carrier.codec(_request({}))
    opening = [codec.parse(frame) for frame in phone.opening({"agent": "a"})]
    start = opening[1]
    assert isinstance(start, StreamStart)
    assert (start.call_sid, start.account_sid) == (call.call_id, call.account_id)
    assert dict(start.custom_parameters) == {"agent": "a"}
    first, second = codec.parse(phone.media(PCM_20MS)), codec.parse(phone.media(PCM_20MS))
    assert isinstance(first, MediaFrame) and isinstance(second, MediaFrame)
    assert (first.payload, first.timestamp_ms, second.timestamp_ms) == (PCM_20MS, 0, 20)
    assert codec.parse(phone.dtmf("#")) == Dtmf(phone.stream_id, "#", "inbound", 4)
    played = codec.parse(phone.mark_played("turn-1"))
    assert isinstance(played, MarkEcho) and played.name == "turn-1"
    stop = codec.parse(phone.stop())
    assert isinstance(stop, StreamStop) and stop.call_sid == phone.call_id
    assert phone.stream_headers("wss://gw.test/exotel/media") == {}


# ---------------------------------------------------------------------- REST


@pytest.fixture
async def fake_exotel() -> AsyncIterator[FakeCarrierRest]:
    rest = FakeCarrierRest(exotel_case.rest_reply)
    await rest.start()
    try:
        yield rest
    finally:
        await rest.stop()


async def test_hang_up_posts_the_legs_hangup_action(fake_exotel: FakeCarrierRest) -> None:
    rest = ExotelRest(ACCOUNT, "key", "token", base_url=fake_exotel.url + "/")
    await rest.hang_up(None, CALL_SID)
    (request,) = fake_exotel.requests
    assert (request.method, request.path) == (
        "POST",
        f"/v2/accounts/{ACCOUNT}/legs/{CALL_SID}/actions/hangup",
    )
    assert request.headers["authorization"] == "Basic " + _b64(b"key:token")
    assert json.loads(request.body) == {}
    assert exotel_case.rest_action(request) == ("hang_up", CALL_SID, "")


async def test_the_stream_s_account_is_used_when_given(fake_exotel: FakeCarrierRest) -> None:
    await ExotelRest(ACCOUNT, "k", "t", base_url=fake_exotel.url).hang_up("other2", CALL_SID)
    assert fake_exotel.requests[0].path.startswith("/v2/accounts/other2/legs/")


async def test_transfer_is_not_supported_and_sends_nothing(fake_exotel: FakeCarrierRest) -> None:
    rest = ExotelRest(ACCOUNT, "key", "token", base_url=fake_exotel.url)
    with pytest.raises(CarrierRestError, match="not supported"):
        await rest.transfer(None, CALL_SID, TransferTarget(number="+919052161119"))
    assert fake_exotel.requests == []


@pytest.mark.parametrize(("account", "call_id"), [(None, "x/../y"), ("a/b", CALL_SID), (None, "")])
async def test_ids_are_checked_before_any_request(
    fake_exotel: FakeCarrierRest, account: str | None, call_id: str
) -> None:
    rest = ExotelRest(ACCOUNT, "key", "token", base_url=fake_exotel.url)
    with pytest.raises(CarrierRestError, match="not an Exotel"):
        await rest.hang_up(account, call_id)
    assert fake_exotel.requests == []


async def _serve(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> TestServer:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_an_error_status_is_a_rest_error() -> None:
    async def refuse(request: web.Request) -> web.Response:
        body = {"RestException": {"Status": 401, "Message": "Authentication is required"}}
        return web.json_response(body, status=401)

    server = await _serve(refuse)
    try:
        rest = ExotelRest(ACCOUNT, "key", "wrong", base_url=str(server.make_url("")))
        with pytest.raises(CarrierRestError, match="401 to POST: 'Authentication is required'"):
            await rest.hang_up(None, CALL_SID)
    finally:
        await server.close()


async def test_a_hang_up_of_a_leg_already_gone_succeeds() -> None:
    seen: list[str] = []

    async def gone(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"message": "leg not found"}, status=404)

    server = await _serve(gone)
    try:
        await ExotelRest(ACCOUNT, "k", "t", base_url=str(server.make_url(""))).hang_up(
            None, CALL_SID
        )
    finally:
        await server.close()
    assert seen == [f"/v2/accounts/{ACCOUNT}/legs/{CALL_SID}/actions/hangup"]


async def test_no_answer_in_time_is_a_rest_error() -> None:
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await never.wait()
        return web.Response()

    server = await _serve(hang)
    try:
        rest = ExotelRest(ACCOUNT, "k", "t", base_url=str(server.make_url("")), timeout_s=0.05)
        with pytest.raises(CarrierRestError, match=r"no answer from Exotel within 0\.05 s"):
            await rest.hang_up(None, CALL_SID)
    finally:
        never.set()
        await server.close()


async def test_an_unreachable_api_is_a_rest_error() -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response()

    server = await _serve(answer)
    url = str(server.make_url(""))
    await server.close()  # nothing listens there any more
    with pytest.raises(CarrierRestError, match="cannot reach Exotel"):
        await ExotelRest(ACCOUNT, "k", "t", base_url=url).hang_up(None, CALL_SID)


# ---------------------------------------------------------------------- settings


def test_from_settings_reads_the_exotel_fields_when_they_exist() -> None:
    settings: Any = SimpleNamespace(
        exotel_account_sid=ACCOUNT,
        exotel_api_key="key",
        exotel_api_token="token",
        exotel_api_base_url="https://cpaas-api.in.exotel.com",
    )
    carrier = ExotelCarrier.from_settings(settings)
    assert carrier.binding_secret == "token"
    rest = carrier.rest()
    assert isinstance(rest, ExotelRest) and rest.base_url == "https://cpaas-api.in.exotel.com"
    assert ExotelRest.from_settings(settings) is not None


def test_from_settings_without_exotel_fields_serves_unbound() -> None:
    carrier = ExotelCarrier.from_settings(load_settings(env_file=None))
    assert carrier.binding_secret is None and carrier.rest() is None
    assert ExotelRest.from_settings(load_settings(env_file=None)) is None


def test_the_conformance_case_fits_the_suite() -> None:
    case = exotel_case.case()
    assert case.name == ExotelCarrier.name == ExotelCodec.name == ExotelPhone.carrier
    assert case.make_wrong_phone is None  # Exotel signs nothing
    assert not set(case.settings) & set(case.rest_settings("http://127.0.0.1:1"))
    phone = case.make_phone()
    assert phone.call_id != case.make_phone().call_id
    hang_up = RestRequest(
        "POST",
        f"/v2/accounts/{exotel_case.ACCOUNT_SID}/legs/{phone.call_id}/actions/hangup",
        {},
        b"{}",
    )
    assert case.rest_action(hang_up) == ("hang_up", phone.call_id, "")
    assert case.rest_reply(hang_up)[0] == 200
    other = RestRequest("GET", "/v1/Accounts/x/Calls/y", {}, b"")
    assert case.rest_action(other) is None and case.rest_reply(other)[0] == 404
