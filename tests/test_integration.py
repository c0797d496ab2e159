"""A whole simulated Twilio call through the real server and the Live emulator, on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.agents.config import AgentConfig, AgentSet
from gateway.call.bridge import PROMPT_MARK
from gateway.live.emulator.server import LiveEmulator
from gateway.server import CALLS, create_app, drain
from gateway.settings import Settings, load_settings
from tests.caller_audio import rms_dbfs, silence_frames, speech_frames
from tests.generations import DEFAULT_GENERATION, GENERATIONS, Generation
from tests.twilio_frames import ACCOUNT_SID, CALL_SID, TwilioCaller


@dataclass
class Gateway:
    client: TestClient[Any, Any]
    emulator: LiveEmulator
    settings: Settings


def _agents() -> AgentSet:
    return AgentSet.from_agents(
        [
            AgentConfig(name="default", system_instruction="Be brief."),
            AgentConfig(
                name="greeter", lines=("+15550002222",), greeting="Welcome to Acme!", voice="Kore"
            ),
        ]
    )


@pytest.fixture
async def gateway(request: pytest.FixtureRequest) -> AsyncIterator[Gateway]:
    """The gateway and the emulator; `parametrize("gateway", GENERATIONS, indirect=True)`
    runs a test against each model generation × backend (default: gemini-3.8-live, Dev API)."""
    generation: Generation = getattr(request, "param", DEFAULT_GENERATION)
    emulator = LiveEmulator(speed=50.0)
    url = await emulator.start("127.0.0.1", 0)
    settings = load_settings(
        env_file=None,
        live_url=url,
        public_url="https://gw.test",
        **generation.settings_overrides(),
    )
    app = create_app(settings, _agents(), generation.connector(settings))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield Gateway(client, emulator, settings)
    finally:
        await client.close()
        await emulator.stop()


EVERY_GENERATION = pytest.mark.parametrize("gateway", GENERATIONS, indirect=True, ids=str)


class PhoneCall:
    """The Twilio side of one call: sends caller frames, collects what the gateway sends."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.twilio = TwilioCaller()
        self.received: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(message))

    async def start(self, **params: str) -> None:
        await self.send(self.twilio.connected())
        await self.send(self.twilio.start(**params))

    async def say(self, frames: list[bytes]) -> None:
        for frame in frames:
            await self.send(self.twilio.media(frame))

    async def next(self) -> dict[str, Any] | None:
        message = await self.ws.receive()
        if message.type is not aiohttp.WSMsgType.TEXT:
            return None
        data: dict[str, Any] = json.loads(message.data)
        self.received.append(data)
        return data

    async def until(self, event: str) -> list[dict[str, Any]]:
        """Everything received up to and including the next `event` frame."""
        got: list[dict[str, Any]] = []
        while True:
            message = await self.next()
            assert message is not None, f"stream closed while waiting for {event}: {got[-3:]}"
            got.append(message)
            if message["event"] == event:
                return got

    async def rest(self) -> list[dict[str, Any]]:
        """Everything received until the gateway closes the stream."""
        got = []
        while (message := await self.next()) is not None:
            got.append(message)
        return got


def payload(message: dict[str, Any]) -> bytes:
    return base64.b64decode(message["media"]["payload"])


@EVERY_GENERATION
async def test_a_question_gets_a_spoken_answer_as_valid_mulaw(gateway: Gateway) -> None:
    async with gateway.client.ws_connect("/media") as ws:
        phone = PhoneCall(ws)
        await phone.start(agent="default", to="+15550009999", **{"from": "+15551230000"})
        await phone.say(speech_frames(600) + silence_frames(800))
        answer = await phone.until("mark")
        media = [m for m in answer if m["event"] == "media"]
        assert len(media) >= 25  # at least half a second of reply
        for message in media:
            assert message["streamSid"] == phone.twilio.stream_sid
            assert len(payload(message)) == 160
        loudness = rms_dbfs(b"".join(payload(m) for m in media))
        assert -40 < loudness < -3  # audible speech, not silence and not clipping noise
        assert answer[-1]["mark"]["name"].startswith("turn-")
        await phone.send(phone.twilio.stop())
        assert [m["event"] for m in await phone.rest()] == []
    await gateway.emulator.wait_closed_sessions(1)
    assert gateway.emulator.sessions_closed == 1


@EVERY_GENERATION
async def test_barge_in_clears_the_caller_and_no_stale_frames_follow(gateway: Gateway) -> None:
    async with gateway.client.ws_connect("/media") as ws:
        phone = PhoneCall(ws)
        await phone.start()
        await phone.say(speech_frames(600) + silence_frames(800))
        first = await phone.next()
        assert first is not None and first["event"] == "media"
        # The caller talks over the answer (the answer lasts seconds of phone time).
        await phone.say(speech_frames(400, fundamental_hz=140))
        before_clear = await phone.until("clear")
        assert all(m["event"] == "media" for m in before_clear[:-1])
        await phone.send(phone.twilio.stop())
        after_clear = await phone.rest()
        assert [m for m in after_clear if m["event"] in ("media", "mark")] == []
    await gateway.emulator.wait_closed_sessions(1)


@EVERY_GENERATION
async def test_the_answer_after_a_barge_in_is_heard(gateway: Gateway) -> None:
    async with gateway.client.ws_connect("/media") as ws:
        phone = PhoneCall(ws)
        await phone.start()
        await phone.say(speech_frames(600) + silence_frames(800))
        await phone.until("media")
        await phone.say(speech_frames(500, fundamental_hz=140))
        await phone.until("clear")
        await phone.say(silence_frames(800))
        second = await phone.until("mark")
        assert sum(1 for m in second if m["event"] == "media") >= 25
        assert "clear" not in [m["event"] for m in second]
        await phone.send(phone.twilio.stop())
        await phone.rest()


@EVERY_GENERATION
async def test_greeting_agent_speaks_first_chosen_by_line(gateway: Gateway) -> None:
    async with gateway.client.ws_connect("/media") as ws:
        phone = PhoneCall(ws)
        await phone.start(to="+15550002222")
        greeting = await phone.until("mark")
        assert sum(1 for m in greeting if m["event"] == "media") > 10
        await phone.send(phone.twilio.stop())
        await phone.rest()
    setup = gateway.emulator.setups[-1]
    voice = setup["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]
    assert voice["voiceName"] == "Kore"


@EVERY_GENERATION
async def test_malformed_frames_do_not_end_the_call(gateway: Gateway) -> None:
    async with gateway.client.ws_connect("/media") as ws:
        phone = PhoneCall(ws)
        await phone.start()
        await ws.send_str("{definitely not json")
        await ws.send_bytes(b"\x00\xff\x10")
        await phone.send({"event": "media", "media": {"payload": "%%%"}})
        await phone.send({"event": "who_knows", "x": 1})
        await phone.say(speech_frames(600) + silence_frames(800))
        answer = await phone.until("mark")
        assert any(m["event"] == "media" for m in answer)
        await phone.send(phone.twilio.stop())
        await phone.rest()


@EVERY_GENERATION
async def test_two_calls_at_once_do_not_notice_each_other(gateway: Gateway) -> None:
    async def one_call(stream: str) -> int:
        async with gateway.client.ws_connect("/media") as ws:
            phone = PhoneCall(ws)
            phone.twilio = TwilioCaller(stream_sid=stream, call_sid="CA" + stream[2:])
            await phone.start()
            await phone.say(speech_frames(600) + silence_frames(800))
            answer = await phone.until("mark")
            assert all(m["streamSid"] == stream for m in answer)
            await phone.send(phone.twilio.stop())
            await phone.rest()
            return len(answer)

    results = await asyncio.gather(one_call("MZ" + "a" * 32), one_call("MZ" + "b" * 32))
    assert all(n > 25 for n in results)
    await gateway.emulator.wait_closed_sessions(2)


@EVERY_GENERATION
async def test_live_dropping_ends_the_call_with_the_stream_closed(gateway: Gateway) -> None:
    async with gateway.client.ws_connect("/media") as ws:
        phone = PhoneCall(ws)
        await phone.start()
        await phone.say(speech_frames(100))
        await gateway.emulator.stop()  # Live goes away mid-call
        apology = await phone.until("mark")  # the caller is told, not just cut off
        assert apology[-1]["mark"]["name"] == PROMPT_MARK
        assert sum(1 for m in apology if m["event"] == "media") >= 100
        await phone.send(phone.twilio.mark(PROMPT_MARK))  # played, as Twilio would echo
        await phone.rest()  # returns only because the gateway closed the stream
        assert ws.closed


async def test_twiml_connects_the_call_to_the_media_stream(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/twiml",
        data={
            "CallSid": CALL_SID,
            "From": "+15551230000",
            "To": "+15550002222",
            "AccountSid": ACCOUNT_SID,
        },
    )
    assert response.status == 200
    assert response.content_type == "application/xml"
    root = ElementTree.fromstring(await response.text())
    stream = root.find("./Connect/Stream")
    assert stream is not None and stream.get("url") == "wss://gw.test/media"
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params == {
        "agent": "greeter",
        "to": "+15550002222",
        "from": "+15551230000",
        "call_sid": CALL_SID,
    }


async def test_healthz(gateway: Gateway) -> None:
    response = await gateway.client.get("/healthz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok" and body["active_calls"] == 0


async def test_drain_refuses_new_calls_and_lets_live_calls_finish(gateway: Gateway) -> None:
    app = gateway.client.server.app
    async with gateway.client.ws_connect("/media") as ws:
        phone = PhoneCall(ws)
        await phone.start()
        await phone.say(speech_frames(600) + silence_frames(800))
        await phone.until("media")
        draining = asyncio.create_task(drain(app, timeout_s=30))
        health = await gateway.client.get("/healthz")
        assert health.status == 503
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await gateway.client.ws_connect("/media")
        # The live call still gets its whole answer.
        await phone.until("mark")
        await phone.send(phone.twilio.stop())
        await phone.rest()
    assert await draining == 0
    assert len(app[CALLS]) == 0


async def test_drain_timeout_ends_calls_that_go_on(gateway: Gateway) -> None:
    app = gateway.client.server.app
    async with gateway.client.ws_connect("/media") as ws:
        phone = PhoneCall(ws)
        await phone.start()
        await phone.say(speech_frames(100))
        assert await drain(app, timeout_s=0) == 1
        await phone.rest()
        assert ws.closed
