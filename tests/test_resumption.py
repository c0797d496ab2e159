"""Long and unlucky calls on loopback: the real server (with its resuming connector) bridging
whole Twilio calls to the emulator while the emulator sends goAway, drops and refuses."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.agents.config import AgentConfig, AgentSet
from gateway.audio.codec import CallerAudioDecoder
from gateway.call.bridge import PROMPT_MARK
from gateway.live.emulator.server import LiveEmulator
from gateway.live.models import profile_for
from gateway.live.resilient import ResilientLiveConnector
from gateway.server import CALLS, CONNECTOR, create_app
from gateway.settings import Settings, load_settings
from tests.caller_audio import silence_frames, speech_frames
from tests.generations import EVERY_GENERATION, Generation
from tests.test_integration import PhoneCall


class Line:
    """A gateway wired as in production (a resilient connector, as server.py builds it) and its
    emulator, speaking the generation under test."""

    def __init__(
        self, client: TestClient[Any, Any], emulator: LiveEmulator, settings: Settings
    ) -> None:
        self.client = client
        self.emulator = emulator
        self.settings = settings

    @property
    def connector(self) -> ResilientLiveConnector:
        connector = self.client.server.app[CONNECTOR]
        assert isinstance(connector, ResilientLiveConnector)
        return connector

    async def call(self) -> PhoneCall:
        ws = await self.client.ws_connect("/media")
        phone = PhoneCall(ws)
        await phone.start()
        return phone


@pytest.fixture
async def line(generation: Generation) -> AsyncIterator[Line]:
    emulator = LiveEmulator(speed=50.0, record_frames=True)
    emulator.record_audio = True
    url = await emulator.start("127.0.0.1", 0)
    settings = load_settings(
        None,
        live_url=url,
        public_url="https://gw.test",
        live_resume_attempts=2,
        live_resume_backoff_ms=1,
        record_calls="off",
        **generation.settings_overrides(),
    )
    connector = ResilientLiveConnector.from_settings(generation.connector(settings), settings)
    app = create_app(settings, AgentSet.from_agents([AgentConfig(name="default")]), connector)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield Line(client, emulator, settings)
    finally:
        await client.close()
        await emulator.stop()


async def ask(phone: PhoneCall, settings: Settings) -> list[dict[str, Any]]:
    """One caller question and the whole spoken answer, up to its mark (extended thinking
    answers in two turns: "let me think", then the answer)."""
    await phone.say(speech_frames(600) + silence_frames(800))
    heard = await phone.until("mark")
    if profile_for(settings.model).interaction_status:
        heard += await phone.until("mark")
    return heard


async def hang_up(phone: PhoneCall) -> None:
    await phone.send(phone.twilio.stop())
    await phone.rest()
    await phone.ws.close()


def said(emulator: LiveEmulator) -> str:
    """Everything the emulator's model said (its output transcriptions)."""
    texts = []
    for frame in emulator.sent_frames:
        content = json.loads(frame).get("serverContent", {})
        texts.append(content.get("outputTranscription", {}).get("text", ""))
    return "".join(texts)


@EVERY_GENERATION
async def test_every_setup_asks_for_resumption_and_compression(line: Line) -> None:
    phone = await line.call()
    await ask(phone, line.settings)
    await line.emulator.go_away(30)
    await line.emulator.wait_opened_sessions(2)
    await ask(phone, line.settings)
    await hang_up(phone)
    setups = line.emulator.client_setups
    assert len(setups) == 2
    assert all(s.session_resumption and s.context_window_compression for s in setups)
    assert setups[0].resumption_handle is None and setups[1].resumption_handle is not None


@EVERY_GENERATION
async def test_go_away_moves_the_call_to_a_new_session_that_continues_the_conversation(
    line: Line,
) -> None:
    phone = await line.call()
    assert sum(1 for m in await ask(phone, line.settings) if m["event"] == "media") > 25
    (call,) = line.client.server.app[CALLS]
    await line.emulator.go_away(30)
    await line.emulator.wait_closed_sessions(1)  # the gateway left the old session itself
    second = await ask(phone, line.settings)
    assert sum(1 for m in second if m["event"] == "media") > 25
    assert "clear" not in [m["event"] for m in second]
    assert "This is reply number 2." in said(line.emulator)  # not a fresh conversation
    assert line.emulator.resumed_handles == [line.emulator.client_setups[1].resumption_handle]
    (resumed,) = line.connector.resumes
    assert resumed.reason == "go_away" and resumed.with_handle
    assert call.stats.live_reconnects == 1  # counted in the call's summary and metrics
    await hang_up(phone)
    assert line.emulator.sessions_opened == 2


@EVERY_GENERATION
@pytest.mark.parametrize("fault", ["drop", "close_1011"])
async def test_a_dropped_live_connection_loses_no_caller_audio(line: Line, fault: str) -> None:
    phone = await line.call()
    before = silence_frames(500)  # 25 frames
    await phone.say(before)
    await line.emulator.wait_audio_chunks(len(before))
    line.emulator.hold_setup()  # the new connection takes its time
    if fault == "drop":
        await line.emulator.drop_sessions()
    else:
        await line.emulator.close_sessions(1011, "internal error")
    await line.emulator.wait_opened_sessions(2)  # the gateway is reconnecting
    during = speech_frames(600)  # 30 frames the caller says meanwhile
    await phone.say(during)
    line.emulator.release_setup()
    after = silence_frames(400)
    await phone.say(after)
    total = len(before) + len(during) + len(after)
    await line.emulator.wait_audio_chunks(total)
    await hang_up(phone)
    assert line.emulator.audio_chunks_received == total  # none lost, none doubled
    decoder = CallerAudioDecoder(line.settings.live_input_rate_hz)  # what the call sends Live
    expected = b"".join(decoder.decode(frame) for frame in before + during + after)
    assert b"".join(pcm for _, pcm in line.emulator.received_audio) == expected  # in order
    assert {session for session, _ in line.emulator.received_audio} == {1, 2}
    (resumed,) = line.connector.resumes
    assert resumed.reason == ("closed_1006" if fault == "drop" else "closed_1011")
    assert resumed.dropped_audio_ms == 0
    assert len(line.emulator.resumed_handles) == 1


@EVERY_GENERATION
@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (1011, "deadline exceeded"),
        (1000, "The operation was cancelled."),  # the connection limit, no goAway first
        (1008, "policy violation"),
        (1007, "invalid argument"),
    ],
)
async def test_a_close_mid_call_is_survived_and_the_conversation_goes_on(
    line: Line, code: int, reason: str
) -> None:
    phone = await line.call()
    await ask(phone, line.settings)
    await line.emulator.close_sessions(code, reason)
    second = await ask(phone, line.settings)
    assert sum(1 for m in second if m["event"] == "media") > 25
    assert "This is reply number 2." in said(line.emulator)  # resumed with the handle
    (resumed,) = line.connector.resumes
    assert resumed.close_code == code and resumed.with_handle
    await hang_up(phone)


@EVERY_GENERATION
async def test_when_live_cannot_come_back_the_caller_hears_an_apology_then_the_call_ends(
    line: Line,
) -> None:
    phone = await line.call()
    await ask(phone, line.settings)
    line.emulator.refuse_next(5)
    await line.emulator.close_sessions(1011, "internal error")
    apology = await phone.until("mark")
    assert apology[-1]["mark"]["name"] == PROMPT_MARK
    assert sum(1 for m in apology if m["event"] == "media") >= 100  # seconds of speech
    await phone.send(phone.twilio.mark(PROMPT_MARK))  # Twilio: it has been played
    assert await phone.rest() == []
    assert phone.ws.closed
    assert line.emulator.refused_connections == 2  # LIVE_RESUME_ATTEMPTS=2
