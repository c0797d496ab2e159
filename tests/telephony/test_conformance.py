"""One set of call tests for every carrier (tests/telephony/cases.py): the real server on
loopback, the Live emulator, and each carrier's fake phone (`CarrierPhone`) — signed webhook,
bound stream, answer, barge-in with nothing stale after `clear`, marks, DTMF, a REST hang-up,
refused signatures and unbound streams, malformed frames."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.agents.config import AgentConfig, AgentSet
from gateway.audio.codec import PhoneAudio
from gateway.live.emulator.server import EmulatorScript, LiveEmulator
from gateway.server import create_app
from gateway.settings import load_settings
from gateway.telephony.carrier import MULAW
from gateway.telephony.phone import CarrierPhone, PhoneEvent, StreamOrder
from gateway.telephony.plivo import sign_v3
from tests.caller_audio import silence_frames, speech_frames
from tests.telephony.carrier_case import CarrierCase
from tests.telephony.cases import CASES
from tests.telephony.fake_rest import FakeCarrierRest

PUBLIC_URL = "https://gw.test"
LIMITED_LINE = "+15550003333"


@dataclass
class Line:
    case: CarrierCase
    client: TestClient[Any, Any]
    emulator: LiveEmulator
    rest: FakeCarrierRest


TRANSFER_SCRIPT = """turns:
  - say: "Let me put you through."
    tool_call: {name: transfer_call, args: {target: human}}
"""
DESK_LINE = "+15550004444"
DESK = {
    "name": "desk",
    "lines": [DESK_LINE],
    "transfer": {"human": {"number": "+15550100199", "description": "a person"}},
    "tools": [{"builtin": "transfer_call"}],
}


@pytest.fixture(params=CASES, ids=lambda case: "-".join(filter(None, (case.name, case.variant))))
async def line(request: pytest.FixtureRequest) -> AsyncIterator[Line]:
    case: CarrierCase = request.param
    rest = FakeCarrierRest(case.rest_reply)
    script = getattr(request, "function", None) is test_a_transfer_goes_through_the_rest_api
    emulator = LiveEmulator(
        EmulatorScript.from_yaml(TRANSFER_SCRIPT) if script else None, speed=50.0
    )
    live_url = await emulator.start("127.0.0.1", 0)
    base = await rest.start()
    settings = load_settings(
        env_file=None,
        live_url=live_url,
        public_url=PUBLIC_URL,
        record_calls="off",
        **case.settings,
        **case.rest_settings(base),
    )
    agents = AgentSet.from_agents(
        [
            AgentConfig(name="default", system_instruction="Be brief."),
            AgentConfig(name="limited", lines=(LIMITED_LINE,), max_call_duration_s=0.3),
            AgentConfig.model_validate(DESK),
        ]
    )
    client = TestClient(TestServer(create_app(settings, agents), host="127.0.0.1"))
    await client.start_server()
    try:
        yield Line(case, client, emulator, rest)
    finally:
        await client.close()
        await emulator.stop()
        await rest.stop()


async def answer(line: Line, phone: CarrierPhone, to: str = "+15550009999") -> StreamOrder:
    """The phone's voice webhook, sent to /{carrier}/voice; the stream it is told to open."""
    webhook = phone.voice_webhook(
        f"{PUBLIC_URL}/{line.case.name}/voice", from_number="+15551230000", to_number=to
    )
    path = webhook.url.removeprefix(PUBLIC_URL)
    response = await line.client.request(
        webhook.method, path, headers=dict(webhook.headers), data=webhook.body
    )
    assert response.status == 200, await response.text()
    return phone.read_answer(response.content_type, await response.text())


class Stream:
    """The phone's side of an open media stream."""

    def __init__(self, phone: CarrierPhone, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.phone = phone
        self.ws = ws
        encoding, rate_hz = phone.stream_format
        self.audio = PhoneAudio(encoding, rate_hz)
        self.frame_bytes = 160 if encoding == MULAW else 2 * rate_hz // 50  # 20 ms
        self.events: list[PhoneEvent] = []

    async def send(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    async def say(self, frames: list[bytes]) -> None:
        """μ-law frames, sent in the carrier's format."""
        for frame in frames:
            await self.send(self.phone.media(self.audio.to_stream(frame)))

    async def next(self) -> PhoneEvent | None:
        message = await self.ws.receive()
        if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            return None
        event = self.phone.read(message.data)
        self.events.append(event)
        return event

    async def until(self, kind: str) -> list[PhoneEvent]:
        got: list[PhoneEvent] = []
        while True:
            event = await self.next()
            assert event is not None, f"stream closed while waiting for {kind}: {got[-3:]}"
            got.append(event)
            if event.kind == kind:
                return got

    async def rest(self) -> list[PhoneEvent]:
        got = []
        while (event := await self.next()) is not None:
            got.append(event)
        return got


async def open_stream(line: Line, phone: CarrierPhone, order: StreamOrder) -> Stream:
    parts = urlsplit(order.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    ws = await line.client.ws_connect(path, headers=dict(phone.stream_headers(order.url)))
    stream = Stream(phone, ws)
    assert phone.stream_format == line.case.stream_format
    for frame in phone.opening(order.parameters):
        await stream.send(frame)
    return stream


async def test_a_signed_call_is_answered_with_speech_and_a_mark(line: Line) -> None:
    phone = line.case.make_phone()
    order = await answer(line, phone)
    assert urlsplit(order.url).scheme == "wss"
    stream = await open_stream(line, phone, order)
    await stream.say(speech_frames(600) + silence_frames(800))
    reply = await stream.until("mark")
    media = [e for e in reply if e.kind == "media"]
    assert len(media) >= 25 and all(len(e.audio) == stream.frame_bytes for e in media)
    assert reply[-1].name.startswith("turn-")
    await stream.send(phone.mark_played(reply[-1].name))
    await stream.send(phone.stop())
    assert [e.kind for e in await stream.rest() if e.kind != "other"] == []
    await line.emulator.wait_closed_sessions(1)


async def test_barge_in_clears_and_nothing_stale_follows(line: Line) -> None:
    phone = line.case.make_phone()
    stream = await open_stream(line, phone, await answer(line, phone))
    await stream.say(speech_frames(600) + silence_frames(800))
    await stream.until("media")
    await stream.say(speech_frames(400, fundamental_hz=140))  # the caller talks over it
    before = await stream.until("clear")
    assert {e.kind for e in before[:-1]} <= {"media", "other"}
    await stream.send(phone.stop())
    assert [e for e in await stream.rest() if e.kind in ("media", "mark")] == []


async def test_a_key_press_reaches_the_model(line: Line) -> None:
    phone = line.case.make_phone()
    stream = await open_stream(line, phone, await answer(line, phone))
    await stream.say(silence_frames(100))
    await stream.send(phone.dtmf("5"))
    await line.emulator.wait_client_texts(lambda texts: "The caller pressed 5." in texts)
    await stream.send(phone.stop())
    await stream.rest()


async def test_the_time_limit_hangs_up_through_the_carrier_rest_api(line: Line) -> None:
    phone = line.case.make_phone()
    stream = await open_stream(line, phone, await answer(line, phone, to=LIMITED_LINE))
    await stream.say(silence_frames(100))
    goodbye = await stream.until("mark")  # the goodbye the limit asks for, then its mark
    await stream.send(phone.mark_played(goodbye[-1].name))
    requests = await line.rest.wait_requests(1)
    actions = [line.case.rest_action(request) for request in requests]
    assert ("hang_up", phone.call_id, "") in actions, requests
    await stream.ws.close()


async def test_malformed_frames_do_not_end_the_call(line: Line) -> None:
    phone = line.case.make_phone()
    stream = await open_stream(line, phone, await answer(line, phone))
    for junk in ("not json", "{}", '{"event": 7}', "[" * 5000):
        await stream.send(junk)
    await stream.say(speech_frames(600) + silence_frames(800))
    reply = await stream.until("mark")
    assert sum(1 for e in reply if e.kind == "media") >= 25
    await stream.send(phone.stop())
    await stream.rest()


async def test_a_webhook_signed_with_another_key_is_refused(line: Line) -> None:
    if line.case.make_wrong_phone is None:
        pytest.skip(f"{line.case.name} has no signatures to get wrong")
    phone = line.case.make_wrong_phone()
    webhook = phone.voice_webhook(
        f"{PUBLIC_URL}/{line.case.name}/voice", from_number="+15551230000", to_number="+1555"
    )
    response = await line.client.request(
        webhook.method,
        webhook.url.removeprefix(PUBLIC_URL),
        headers=dict(webhook.headers),
        data=webhook.body,
    )
    assert response.status == 403


async def test_a_stream_without_the_webhooks_binding_never_reaches_live(line: Line) -> None:
    phone = line.case.make_phone()
    order = await answer(line, phone)
    # Wherever the carrier carries parameters (the stream's start, or its URL), none is there.
    parts = urlsplit(order.url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "binding"])
    url = urlunsplit(parts._replace(query=query))
    forged = StreamOrder(url, {k: v for k, v in order.parameters.items() if k != "binding"})
    stream = await open_stream(line, phone, forged)
    await stream.say(speech_frames(200))
    assert [e for e in await stream.rest() if e.kind == "media"] == []  # closed, unanswered
    assert line.emulator.sessions_opened == 0


async def test_a_transfer_goes_through_the_rest_api(line: Line) -> None:
    if not line.case.transfers:
        pytest.skip(f"{line.case.name}: transfers are not available through its REST API")
    phone = line.case.make_phone()
    stream = await open_stream(line, phone, await answer(line, phone, to=DESK_LINE))
    await stream.say(speech_frames(600) + silence_frames(800))  # the caller asks for a person
    said = await stream.until("mark")  # "Let me put you through.", played before the transfer
    await stream.send(phone.mark_played(said[-1].name))
    requests = await line.rest.wait_requests(1)
    actions = [line.case.rest_action(request) for request in requests]
    assert ("transfer", phone.call_id, "+15550100199") in actions, requests
    await stream.ws.close()


async def test_plivo_fetches_a_transfers_dial_only_when_signed(line: Line) -> None:
    """The `aleg_url` of a Plivo transfer: the gateway serves its `<Dial>`, to Plivo only."""
    if line.case.name != "plivo":
        pytest.skip("Plivo's transfers fetch their <Dial>; the other carriers take it inline")
    token = line.case.settings["plivo_auth_token"]
    path = "/plivo/dial?" + urlencode({"number": "+15550100199"})
    url = PUBLIC_URL + path
    signature = sign_v3(token, "GET", url, {}, "nonce-1")
    signed = {"X-Plivo-Signature-V3": signature, "X-Plivo-Signature-V3-Nonce": "nonce-1"}
    response = await line.client.get(path, headers=signed)
    assert response.status == 200
    assert "<Dial><Number>+15550100199</Number></Dial>" in await response.text()
    assert (await line.client.get(path)).status == 403  # anyone else: refused
    bad = "/plivo/dial?number=555"
    bad_signed = {
        "X-Plivo-Signature-V3": sign_v3(token, "GET", PUBLIC_URL + bad, {}, "n2"),
        "X-Plivo-Signature-V3-Nonce": "n2",
    }
    assert (await line.client.get(bad, headers=bad_signed)).status == 400
