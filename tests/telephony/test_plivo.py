"""Plivo: V3 signatures, the answer URL, Plivo XML, the Audio Stream codec and the Call API.

Frames are those of Plivo's Stream Event Protocol docs (gateway.telephony.plivo cites them).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from xml.etree import ElementTree

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.settings import SettingsError, load_settings
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
from gateway.telephony.carrier import (
    L16,
    MULAW,
    CarrierRequestError,
    CarrierRestError,
    WebhookRequest,
)
from gateway.telephony.plivo import (
    DIAL_TARGET_PARAMETER,
    MAX_CUSTOM_PARAMETERS,
    MAX_EXTRA_HEADERS_BYTES,
    MAX_MEDIA_PAYLOAD_BYTES,
    PlivoCarrier,
    PlivoCodec,
    PlivoRest,
    build_dial_xml,
    encode_extra_headers,
    sign_v3,
    signed_text,
)
from gateway.telephony.plivo_phone import PlivoPhone
from gateway.tools.spec import TransferTarget
from tests.telephony import plivo_case
from tests.telephony.carrier_case import RestRequest
from tests.telephony.fake_rest import FakeCarrierRest

TOKEN = plivo_case.AUTH_TOKEN
AUTH_ID = plivo_case.AUTH_ID
VOICE_URL = "https://gw.test/plivo/voice"
STREAM_URL = "wss://gw.test/plivo/media"
CALL_UUID = "1ed7fd89-df77-4ebf-8196-d5cf7222c918"
PARAMETERS = {
    "agent": "default",
    "to": "+15550009999",
    "from": "+15551230000",
    "call_sid": CALL_UUID,
    "binding": "1712345678.AbCdEf-_0123456789abcdefghijklmnopqrstuvwxyzABC",
}

# The start and media examples of https://plivo.com/docs/voice/audio-streaming/audio-streaming
# (the media payload, elided there, is a real one here).
DOCS_START: dict[str, Any] = {
    "event": "start",
    "sequenceNumber": 1,
    "start": {
        "callId": "12345678-1234-1234-1234-123456789abc",
        "streamId": "87654321-4321-4321-4321-cba987654321",
        "accountId": "MAXXXXXXXXXXXXXXXXXX",
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
    },
    "extra_headers": "userId=12345;sessionId=abc-xyz",
}
AUDIO = bytes(range(160))
DOCS_MEDIA: dict[str, Any] = {
    "event": "media",
    "sequenceNumber": 42,
    "streamId": "87654321-4321-4321-4321-cba987654321",
    "media": {
        "track": "inbound",
        "timestamp": "1705312200000",
        "chunk": 41,
        "payload": base64.b64encode(AUDIO).decode(),
    },
    "extra_headers": "userId=12345;sessionId=abc-xyz",
}


def webhook(signed: Any, method: str = "POST") -> WebhookRequest:
    """The WebhookRequest the server builds from a SignedRequest (form fields as params)."""
    params = {k: v[0] for k, v in parse_qs(signed.body.decode()).items()}
    headers = {name.lower(): value for name, value in signed.headers.items()}
    return WebhookRequest(method, signed.url, headers, signed.body, params)


def started_codec(query: dict[str, str] | None = None) -> PlivoCodec:
    codec = PlivoCodec(query)
    codec.parse(json.dumps(DOCS_START))
    return codec


# ---------------------------------------------------------------------- V3 signatures

# A reference pair for Plivo's V3 algorithm (plivo-python construct_post_url/get_signature_v3),
# published with openHAB's Plivo binding tests (PlivoSignatureValidatorTest).
VECTOR_PARAMS = {"From": "+14156667777", "To": "+14158889999", "CallUUID": "abcd-1234"}


def test_the_signed_text_is_plivo_python_s() -> None:
    assert (
        signed_text("POST", "https://example.com/answer", VECTOR_PARAMS)
        == "https://example.com/answer?CallUUIDabcd-1234From+14156667777To+14158889999"
    )
    assert (
        signed_text("POST", "https://example.com/answer?token=xyz", VECTOR_PARAMS)
        == "https://example.com/answer?token=xyz.CallUUIDabcd-1234From+14156667777To+14158889999"
    )
    assert signed_text("GET", "https://x.test/a?b=2&a=1&a=0", {}) == "https://x.test/a?a=0&a=1&b=2"
    assert signed_text("POST", "https://x.test/a", {}) == "https://x.test/a"


def test_a_known_v3_vector() -> None:
    url = "https://example.com/answer"
    assert (
        sign_v3("my_auth_token", "POST", url, VECTOR_PARAMS, "12345")
        == "QUFNUHBhaE5m20p3UFtVHCb66PSliiukfx8M6MyiJwk="
    )
    assert (
        sign_v3("my_auth_token", "POST", url + "?token=xyz", VECTOR_PARAMS, "12345")
        == "IryQ8ucGk4J35wJRxh5K0iVvDCSZpHflFICcZxwx7Cc="
    )


def test_a_webhook_signed_with_the_token_verifies() -> None:
    carrier = PlivoCarrier(TOKEN, auth_id=AUTH_ID)
    request = PlivoPhone(TOKEN).voice_webhook(VOICE_URL, from_number="+1555", to_number="+1666")
    assert carrier.signed
    assert carrier.verify_webhook(webhook(request)) is None


def test_a_webhook_signed_with_another_token_or_altered_is_refused() -> None:
    carrier = PlivoCarrier(TOKEN, auth_id=AUTH_ID)
    wrong = PlivoPhone("not-the-token").voice_webhook(
        VOICE_URL, from_number="+1555", to_number="+1666"
    )
    assert carrier.verify_webhook(webhook(wrong)) == "invalid_signature"
    good = webhook(PlivoPhone(TOKEN).voice_webhook(VOICE_URL, from_number="1", to_number="2"))
    altered = WebhookRequest(
        good.method, good.url, good.headers, good.body, {**good.params, "To": "3"}
    )
    assert carrier.verify_webhook(altered) == "invalid_signature"
    other_url = WebhookRequest(good.method, VOICE_URL + "?agent=x", good.headers, b"", good.params)
    assert carrier.verify_webhook(other_url) == "invalid_signature"


def test_a_webhook_without_the_v3_headers_is_refused() -> None:
    carrier = PlivoCarrier(TOKEN, auth_id=AUTH_ID)
    good = webhook(PlivoPhone(TOKEN).voice_webhook(VOICE_URL, from_number="1", to_number="2"))
    for dropped in ("x-plivo-signature-v3", "x-plivo-signature-v3-nonce"):
        headers = {k: v for k, v in good.headers.items() if k != dropped}
        request = WebhookRequest(good.method, good.url, headers, good.body, good.params)
        assert carrier.verify_webhook(request) == "missing_signature"


def test_any_of_several_signatures_may_match() -> None:
    """Plivo sends one signature per active auth token, comma-separated."""
    carrier = PlivoCarrier(TOKEN, auth_id=AUTH_ID)
    good = webhook(PlivoPhone(TOKEN).voice_webhook(VOICE_URL, from_number="1", to_number="2"))
    listed = f"bm90LWl0,{good.headers['x-plivo-signature-v3']}"
    headers = {**good.headers, "x-plivo-signature-v3": listed}
    request = WebhookRequest(good.method, good.url, headers, good.body, good.params)
    assert carrier.verify_webhook(request) is None


def test_a_get_webhook_is_signed_over_its_sorted_query() -> None:
    carrier = PlivoCarrier(TOKEN, auth_id=AUTH_ID)
    url = f"{VOICE_URL}?To=2&CallUUID={CALL_UUID}&From=1"
    headers = PlivoPhone(TOKEN).signed_headers("GET", url, {}, nonce="0042")
    request = WebhookRequest(
        "GET", url, {k.lower(): v for k, v in headers.items()}, b"", {"To": "2"}
    )
    assert carrier.verify_webhook(request) is None


def test_without_a_token_nothing_is_checked() -> None:
    carrier = PlivoCarrier(None)
    unsigned = webhook(PlivoPhone().voice_webhook(VOICE_URL, from_number="1", to_number="2"))
    assert not carrier.signed and carrier.binding_secret is None
    assert carrier.verify_webhook(unsigned) is None
    assert carrier.rest() is None


def test_the_upgrade_is_not_signature_checked() -> None:
    carrier = PlivoCarrier(TOKEN, auth_id=AUTH_ID)
    upgrade = WebhookRequest("GET", STREAM_URL, {}, b"", {})
    assert carrier.verify_stream(upgrade) is None
    assert carrier.binding_secret == TOKEN  # streams are bound instead


# ---------------------------------------------------------------------- the answer URL


def test_the_answer_url_names_the_call() -> None:
    carrier = PlivoCarrier(TOKEN, auth_id=AUTH_ID)
    phone = PlivoPhone(TOKEN, AUTH_ID)
    request = phone.voice_webhook(VOICE_URL, from_number="+15551230000", to_number="+15550009999")
    call = carrier.inbound_call(webhook(request))
    assert call.call_id == phone.call_id
    assert call.account_id == AUTH_ID
    assert (call.from_number, call.to_number) == ("+15551230000", "+15550009999")


def test_a_sip_caller_is_kept_as_sent() -> None:
    carrier = PlivoCarrier(None)
    request = WebhookRequest(
        "POST", VOICE_URL, {}, b"", {"CallUUID": CALL_UUID, "From": "sip:bob@phone.plivo.com"}
    )
    call = carrier.inbound_call(request)
    assert call.from_number == "sip:bob@phone.plivo.com" and call.to_number is None


@pytest.mark.parametrize("call_uuid", ["", "../Call", "1ed7fd89df774ebf8196d5cf7222c918"])
def test_a_signed_webhook_needs_a_call_uuid(call_uuid: str) -> None:
    carrier = PlivoCarrier(TOKEN, auth_id=AUTH_ID)
    request = WebhookRequest("POST", VOICE_URL, {}, b"", {"CallUUID": call_uuid})
    with pytest.raises(CarrierRequestError, match="CallUUID"):
        carrier.inbound_call(request)


# ---------------------------------------------------------------------- Plivo XML


def test_connect_streams_both_ways_with_the_parameters_in_extra_headers() -> None:
    answer = PlivoCarrier(TOKEN, auth_id=AUTH_ID).connect(STREAM_URL, PARAMETERS)
    stream = ElementTree.fromstring(answer.body).find("./Stream")
    assert answer.content_type == "application/xml"
    assert stream is not None and stream.text == STREAM_URL
    assert stream.get("bidirectional") == "true"
    assert stream.get("keepCallAlive") == "true"
    assert stream.get("contentType") == "audio/x-mulaw;rate=8000"
    extra = stream.get("extraHeaders", "")
    assert len(extra.encode()) <= MAX_EXTRA_HEADERS_BYTES
    key, _, value = extra.partition("=")
    assert key.isalnum() and value.isalnum()  # Plivo allows only [A-Za-z0-9]
    order = PlivoPhone(TOKEN).read_answer(answer.content_type, answer.body)
    assert order.url == STREAM_URL
    assert order.parameters == PARAMETERS


def test_parameters_too_long_for_extra_headers_go_in_the_query() -> None:
    parameters = {**PARAMETERS, "from": "sip:" + "a" * 300 + "@phone.plivo.com"}
    answer = PlivoCarrier(TOKEN).connect(STREAM_URL, parameters)
    stream = ElementTree.fromstring(answer.body).find("./Stream")
    assert stream is not None and stream.get("extraHeaders") is None
    order = PlivoPhone(TOKEN).read_answer(answer.content_type, answer.body)
    assert urlsplit(order.url).path == "/plivo/media"
    assert order.parameters == parameters
    codec = PlivoCarrier(TOKEN).codec(WebhookRequest("GET", order.url, {}, b"", parameters))
    start = codec.parse(json.dumps({**DOCS_START, "extra_headers": ""}))
    assert isinstance(start, StreamStart) and dict(start.custom_parameters) == parameters


def test_connect_refuses_a_url_plivo_cannot_use() -> None:
    carrier = PlivoCarrier(TOKEN)
    for url in ("https://gw.test/plivo/media", "wss://gw.test/plivo/media?a=1"):
        with pytest.raises(ValueError, match="stream_url"):
            carrier.connect(url, PARAMETERS)


def test_read_answer_refuses_a_one_way_stream() -> None:
    body = "<Response><Stream>wss://gw.test/plivo/media</Stream></Response>"
    with pytest.raises(ValueError, match="bidirectional"):
        PlivoPhone().read_answer("application/xml", body)


def test_refuse_speaks_then_hangs_up() -> None:
    answer = PlivoCarrier(None).refuse("All lines are busy & sorry.")
    root = ElementTree.fromstring(answer.body)
    assert [child.tag for child in root] == ["Speak", "Hangup"]
    assert root[0].text == "All lines are busy & sorry."


def test_the_dial_xml_for_a_number_and_a_sip_uri() -> None:
    number = ElementTree.fromstring(
        build_dial_xml(TransferTarget(number="+15550001111", caller_id="+15550002222"))
    )
    dial = number.find("./Dial")
    assert dial is not None and dial.get("callerId") == "+15550002222"
    assert [(e.tag, e.text) for e in dial] == [("Number", "+15550001111")]
    sip = ElementTree.fromstring(build_dial_xml(TransferTarget(number="sip:desk@example.com")))
    dial = sip.find("./Dial")
    assert dial is not None and dial.get("callerId") is None
    assert [(e.tag, e.text) for e in dial] == [("User", "sip:desk@example.com")]


# ---------------------------------------------------------------------- the media stream


def test_the_docs_start_frame() -> None:
    codec = PlivoCodec({"agent": "default"})
    start = codec.parse(json.dumps(DOCS_START))
    assert start == StreamStart(
        stream_sid="87654321-4321-4321-4321-cba987654321",
        call_sid="12345678-1234-1234-1234-123456789abc",
        account_sid="MAXXXXXXXXXXXXXXXXXX",
        tracks=("inbound",),
        custom_parameters=start.custom_parameters,  # type: ignore[union-attr]
        encoding=MULAW,
        sample_rate_hz=8000,
        channels=1,
        sequence_number=1,
    )
    # Extra headers without ours: the parameters are the stream URL's query.
    assert isinstance(start, StreamStart) and dict(start.custom_parameters) == {"agent": "default"}


def test_the_parameters_come_back_from_extra_headers() -> None:
    phone = PlivoPhone(TOKEN, AUTH_ID)
    [frame] = phone.opening(PARAMETERS)
    start = PlivoCodec({"agent": "forged"}).parse(frame)
    assert isinstance(start, StreamStart)
    assert dict(start.custom_parameters) == PARAMETERS
    assert (start.call_sid, start.account_sid) == (phone.call_id, AUTH_ID)


def test_the_docs_media_frame_and_relative_timestamps() -> None:
    codec = started_codec()
    first = codec.parse(json.dumps(DOCS_MEDIA))
    later = {**DOCS_MEDIA, "media": {**DOCS_MEDIA["media"], "timestamp": "1705312200020"}}
    second = codec.parse(json.dumps(later))
    assert first == MediaFrame(
        stream_sid="87654321-4321-4321-4321-cba987654321",
        track="inbound",
        chunk=41,
        timestamp_ms=0,
        payload=AUDIO,
        sequence_number=42,
    )
    assert isinstance(second, MediaFrame) and second.timestamp_ms == 20


def test_dtmf_played_cleared_and_stop() -> None:
    phone = PlivoPhone(TOKEN, AUTH_ID)
    codec = PlivoCodec()
    codec.parse(phone.opening(PARAMETERS)[0])
    dtmf = codec.parse(phone.dtmf("#"))
    assert isinstance(dtmf, Dtmf) and (dtmf.digit, dtmf.track) == ("#", "inbound")
    assert dtmf.stream_sid == phone.stream_id
    checkpoint = {
        "event": "playedStream",
        "streamId": "20170ada-f610-433b-8758-c02a2aab3662",
        "name": "customer greeting audio",
    }  # https://plivo.com/docs/voice/xml/the-stream-element/checkpoint-event
    assert codec.parse(json.dumps(checkpoint)) == MarkEcho(
        "20170ada-f610-433b-8758-c02a2aab3662", "customer greeting audio", None
    )
    played = codec.parse(json.dumps({**checkpoint, "event": "played"}))  # support article
    assert isinstance(played, MarkEcho) and played.name == "customer greeting audio"
    cleared = codec.parse(
        '{"sequenceNumber": 0, "event": "clearedAudio",'
        ' "streamId": "20170ada-f610-433b-8758-c02a2aab3662"}'
    )
    assert isinstance(cleared, CarrierNotice) and cleared.event == "clearedAudio"
    stop = codec.parse(phone.stop())
    assert stop == StreamStop(phone.stream_id, phone.call_id, AUTH_ID, stop.sequence_number)  # type: ignore[union-attr]


def test_an_unknown_event_is_kept() -> None:
    event = started_codec().parse('{"event": "degradedStream", "streamId": "s"}')
    assert isinstance(event, UnknownEvent) and event.event == "degradedStream"


def _media_with(**media: Any) -> str:
    return json.dumps({**DOCS_MEDIA, "media": {**DOCS_MEDIA["media"], **media}})


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ("not json", "not valid JSON"),
        ("[1]", "JSON object"),
        ("[" * 5000, "JSON"),
        ('{"event": 7}', "event must be a string"),
        (b"\xff\xfe", "UTF-8"),
        ("{}", "missing field event"),
        ('{"event": "media", "pad": "' + "x" * 9000 + '"}', "'media' frame is"),
        (" " * 20000, "for any event"),
        (json.dumps({**DOCS_START, "start": "x"}), "start must be an object"),
        (
            json.dumps({**DOCS_START, "start": {**DOCS_START["start"], "mediaFormat": None}}),
            "missing field start.mediaFormat",
        ),
        (
            json.dumps({**DOCS_START, "start": {**DOCS_START["start"], "callId": ""}}),
            "start.callId must not be empty",
        ),
        (
            json.dumps({**DOCS_START, "start": {**DOCS_START["start"], "accountId": "A" * 65}}),
            "start.accountId is 65 chars",
        ),
        (json.dumps({**DOCS_START, "streamId": "other"}), "does not match start.streamId"),
        (json.dumps({**DOCS_START, "extra_headers": 5}), "extra_headers must be a string"),
        (json.dumps({**DOCS_START, "extra_headers": "gwp=!!!"}), "extra_headers gwp"),
        (json.dumps({**DOCS_START, "sequenceNumber": -1}), "sequenceNumber must be"),
        (_media_with(payload=None), "missing field media.payload"),
        (_media_with(payload="***"), "media.payload is not valid base64"),
        (
            _media_with(payload=base64.b64encode(bytes(MAX_MEDIA_PAYLOAD_BYTES + 3)).decode()),
            "media.payload is",
        ),
        (_media_with(chunk="4x"), "media.chunk must be"),
        (_media_with(track=["inbound"]), "media.track must be a string"),
        (json.dumps({"event": "dtmf", "dtmf": {"digit": "12"}}), "dtmf.digit must be one key"),
        (json.dumps({"event": "dtmf", "dtmf": {"digit": "x"}}), "dtmf.digit"),
        (json.dumps({"event": "dtmf"}), "missing field dtmf"),
        (json.dumps({"event": "playedStream", "name": 3}), "name must be a string"),
        (json.dumps({"event": "playedStream", "name": "n" * 300}), "name is 300 chars"),
        (json.dumps({"event": "clearedAudio", "streamId": 1}), "streamId must be a string"),
    ],
)
def test_malformed_frames_are_refused_with_the_field_named(frame: str | bytes, field: str) -> None:
    with pytest.raises(TelephonyProtocolError, match=field.replace("[", r"\[")):
        started_codec().parse(frame)


def test_a_payload_of_exactly_the_limit_passes() -> None:
    frame = _media_with(payload=base64.b64encode(bytes(MAX_MEDIA_PAYLOAD_BYTES)).decode())
    event = started_codec().parse(frame)
    assert isinstance(event, MediaFrame) and len(event.payload) == MAX_MEDIA_PAYLOAD_BYTES


def test_too_many_or_too_long_parameters_are_refused() -> None:
    many = {f"p{i}": "v" for i in range(MAX_CUSTOM_PARAMETERS + 1)}
    with pytest.raises(TelephonyProtocolError, match="stream URL's query has 33 entries"):
        PlivoCodec(many).parse(json.dumps(DOCS_START))
    long = {"binding": "x" * 5000}
    with pytest.raises(TelephonyProtocolError, match="MAX_CUSTOM_PARAMETERS_CHARS"):
        PlivoCodec(long).parse(json.dumps(DOCS_START))
    smuggled = {**DOCS_START, "extra_headers": encode_extra_headers(many)}
    with pytest.raises(TelephonyProtocolError, match="extra_headers gwp"):
        PlivoCodec().parse(json.dumps(smuggled))


def test_the_builders_round_trip_through_the_phone() -> None:
    codec, phone = started_codec(), PlivoPhone()
    media = json.loads(codec.build_media("s-1", AUDIO))
    assert media["event"] == "playAudio" and media["streamId"] == "s-1"
    assert (media["media"]["contentType"], media["media"]["sampleRate"]) == ("audio/x-mulaw", 8000)
    assert phone.read(codec.build_media("s-1", AUDIO)).audio == AUDIO
    mark = phone.read(codec.build_mark("s-1", "turn-3"))
    assert (mark.kind, mark.name) == ("mark", "turn-3")
    assert json.loads(codec.build_mark("s-1", "turn-3")) == {
        "event": "checkpoint",
        "streamId": "s-1",
        "name": "turn-3",
    }
    assert phone.read(codec.build_clear("s-1")).kind == "clear"
    assert json.loads(codec.build_clear("s-1")) == {"event": "clearAudio", "streamId": "s-1"}
    assert phone.read('{"event": "sendDTMF", "dtmf": "1"}').kind == "other"


def test_the_phone_s_frames_parse() -> None:
    phone = PlivoPhone(TOKEN, AUTH_ID)
    codec = PlivoCodec()
    assert isinstance(codec.parse(phone.opening({})[0]), StreamStart)
    frame = codec.parse(phone.media(AUDIO))
    assert isinstance(frame, MediaFrame) and (frame.payload, frame.timestamp_ms) == (AUDIO, 0)
    played = codec.parse(phone.mark_played("turn-1"))
    assert isinstance(played, MarkEcho) and played.name == "turn-1"
    assert isinstance(codec.parse(phone.cleared()), CarrierNotice)
    assert PlivoPhone().call_id != phone.call_id  # a fresh call each phone


# ---------------------------------------------------------------------- REST


@pytest.fixture
async def fake_plivo() -> AsyncIterator[FakeCarrierRest]:
    rest = FakeCarrierRest(plivo_case.rest_reply)
    await rest.start()
    yield rest
    await rest.stop()


def _basic(auth_id: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{auth_id}:{token}".encode()).decode()


async def test_hang_up_deletes_the_call(fake_plivo: FakeCarrierRest) -> None:
    rest = PlivoRest(AUTH_ID, TOKEN, base_url=fake_plivo.url)
    await rest.hang_up(None, CALL_UUID)
    [request] = fake_plivo.requests
    assert (request.method, request.path) == ("DELETE", f"/v1/Account/{AUTH_ID}/Call/{CALL_UUID}/")
    assert request.headers["authorization"] == _basic(AUTH_ID, TOKEN)
    assert plivo_case.rest_action(request) == ("hang_up", CALL_UUID, "")


async def test_transfer_points_the_a_leg_at_the_dial_url(fake_plivo: FakeCarrierRest) -> None:
    def dial_url(target: TransferTarget) -> str:
        return "https://gw.test/plivo/dial?" + urlencode({DIAL_TARGET_PARAMETER: target.number})

    rest = PlivoRest(AUTH_ID, TOKEN, base_url=fake_plivo.url + "/", dial_url=dial_url)
    await rest.transfer(AUTH_ID, CALL_UUID, TransferTarget(number="+15550001111"))
    [request] = fake_plivo.requests
    assert (request.method, request.path) == ("POST", f"/v1/Account/{AUTH_ID}/Call/{CALL_UUID}/")
    assert request.headers["authorization"] == _basic(AUTH_ID, TOKEN)
    assert json.loads(request.body) == {
        "legs": "aleg",
        "aleg_url": "https://gw.test/plivo/dial?number=%2B15550001111",
        "aleg_method": "GET",
    }
    assert plivo_case.rest_action(request) == ("transfer", CALL_UUID, "+15550001111")


async def test_transfer_without_a_dial_url_fails(fake_plivo: FakeCarrierRest) -> None:
    rest = PlivoRest(AUTH_ID, TOKEN, base_url=fake_plivo.url)
    with pytest.raises(CarrierRestError, match="dial URL"):
        await rest.transfer(None, CALL_UUID, TransferTarget(number="+15550001111"))
    assert fake_plivo.requests == []


@pytest.mark.parametrize(
    ("account", "call_id", "problem"),
    [
        (None, "", "CallUUID"),  # DELETE …/Call/ would hang up every call of the account
        (None, "../../Account", "CallUUID"),
        ("MA/../x", CALL_UUID, "Auth ID"),
    ],
)
async def test_ids_are_checked_before_any_request(
    fake_plivo: FakeCarrierRest, account: str | None, call_id: str, problem: str
) -> None:
    rest = PlivoRest(AUTH_ID, TOKEN, base_url=fake_plivo.url)
    with pytest.raises(CarrierRestError, match=problem):
        await rest.hang_up(account, call_id)
    assert fake_plivo.requests == []


async def _serve(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> TestServer:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_an_error_status_is_a_rest_error() -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"api_id": "x", "error": "authentication failed"}, status=401)

    server = await _serve(refuse)
    try:
        rest = PlivoRest(AUTH_ID, "wrong", base_url=str(server.make_url("")))
        with pytest.raises(CarrierRestError, match=r"401.*authentication failed"):
            await rest.hang_up(None, CALL_UUID)
    finally:
        await server.close()


async def test_a_hang_up_of_a_call_already_over_succeeds() -> None:
    async def gone(request: web.Request) -> web.Response:
        return web.json_response({"error": "call not found"}, status=404)

    server = await _serve(gone)
    try:
        rest = PlivoRest(AUTH_ID, TOKEN, base_url=str(server.make_url("")))
        await rest.hang_up(None, CALL_UUID)  # nothing raised: the call has ended
        target = TransferTarget(number="+15550001111")
        rest.dial_url = lambda target: "https://gw.test/plivo/dial"
        with pytest.raises(CarrierRestError, match="404"):
            await rest.transfer(None, CALL_UUID, target)
    finally:
        await server.close()


async def test_no_answer_in_time_is_a_rest_error() -> None:
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await never.wait()
        return web.Response()

    server = await _serve(hang)
    try:
        rest = PlivoRest(AUTH_ID, TOKEN, base_url=str(server.make_url("")), timeout_s=0.05)
        with pytest.raises(CarrierRestError, match="no answer from Plivo"):
            await rest.hang_up(None, CALL_UUID)
    finally:
        never.set()
        await server.close()


def test_from_settings() -> None:
    settings = load_settings(
        env_file=None,
        plivo_auth_id=AUTH_ID,
        plivo_auth_token=TOKEN,
        plivo_api_base_url="http://127.0.0.1:9/",
    )
    carrier = PlivoCarrier.from_settings(settings)
    assert carrier.name == "plivo" and carrier.signed
    rest = carrier.rest()
    assert isinstance(rest, PlivoRest) and rest.base_url == "http://127.0.0.1:9"
    with pytest.raises(SettingsError, match="PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN go together"):
        load_settings(env_file=None, plivo_auth_token=TOKEN)  # its binding could never verify


def test_the_conformance_case_fits_the_suite() -> None:
    """The suite merges `settings` and `rest_settings` into one load_settings call."""
    case = plivo_case.case()
    base = "http://127.0.0.1:9"
    assert not set(case.settings) & set(case.rest_settings(base))
    settings = load_settings(env_file=None, **case.settings, **case.rest_settings(base))
    assert PlivoCarrier.from_settings(settings).rest() is not None
    assert case.make_phone().call_id != case.make_phone().call_id
    stray = RestRequest("GET", "/v1/Account/", {}, b"")
    assert plivo_case.rest_action(stray) is None
    assert plivo_case.rest_reply(stray)[0] == 404


def test_a_wideband_stream_is_answered_in_its_own_format() -> None:
    """`PLIVO_STREAM_CONTENT_TYPE=audio/x-l16;rate=16000`: the `<Stream>` asks for it, the
    stream's start says it, and `playAudio` is labelled with it (Plivo plays it as such)."""
    carrier = PlivoCarrier(None, content_type="audio/x-l16;rate=16000")
    answer = carrier.connect("wss://gw.test/plivo/media", {"agent": "default"})
    phone = PlivoPhone()
    phone.read_answer(answer.content_type, answer.body)
    assert phone.stream_format == (L16, 16000)
    codec = carrier.codec(WebhookRequest("GET", "wss://gw.test/plivo/media", {}, b"", {}))
    start = codec.parse(phone.opening({"agent": "default"})[0])
    assert isinstance(start, StreamStart)
    assert (start.encoding, start.sample_rate_hz) == (L16, 16000)
    play = json.loads(codec.build_media(start.stream_sid, bytes(640)))
    assert play["media"]["contentType"] == "audio/x-l16" and play["media"]["sampleRate"] == 16000
    assert base64.b64decode(play["media"]["payload"]) == bytes(640)
    with pytest.raises(ValueError, match="content_type must be one of"):
        PlivoCarrier(None, content_type="audio/x-l16;rate=24000")
