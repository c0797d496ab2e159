"""Whole Asterisk calls through the real server and the Live emulator, on loopback: the
WebSocket channel at /asterisk/media (token, MEDIA_START, binary μ-law, marks) and AudioSocket
over TCP (UUID, L16 frames paced out, hang-up)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.agents.config import AgentConfig, AgentSet
from gateway.audio.codec import PhoneAudio
from gateway.audio.mulaw import decode_mulaw
from gateway.live.emulator.server import LiveEmulator
from gateway.server import STATE, create_app
from gateway.settings import load_settings
from gateway.telephony.asterisk_phone import AsteriskPhone
from gateway.telephony.audiosocket import HEADER, KIND_AUDIO, KIND_HANGUP, KIND_UUID, build_frame
from tests.caller_audio import silence_frames, speech_frames

TOKEN = "asterisk-conformance-token"


@pytest.fixture
async def gateway() -> AsyncIterator[TestClient[Any, Any]]:
    emulator = LiveEmulator(speed=50.0)
    live_url = await emulator.start("127.0.0.1", 0)
    settings = load_settings(
        env_file=None,
        live_url=live_url,
        record_calls="off",
        asterisk_stream_token=TOKEN,
        asterisk_audiosocket_port=0,
        asterisk_audiosocket_agent="pbx",
    )
    agents = AgentSet.from_agents(
        [AgentConfig(name="default"), AgentConfig(name="pbx", carriers=("asterisk",))]
    )
    client = TestClient(TestServer(create_app(settings, agents), host="127.0.0.1"))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
        await emulator.stop()


@pytest.mark.parametrize(("audio_format", "frame_bytes"), [("ulaw", 160), ("slin16", 640)])
async def test_the_websocket_channel_answers_with_speech_and_marks(
    gateway: TestClient[Any, Any], audio_format: Literal["ulaw", "slin16"], frame_bytes: int
) -> None:
    """μ-law, and wideband slin16 (straight into Live's 16 kHz input, 24 → 16 kHz back)."""
    phone = AsteriskPhone(token=TOKEN, audio_format=audio_format)
    audio_in = PhoneAudio(*phone.stream_format)
    url = phone.stream_url("/asterisk/media", {"agent": "pbx", "to": "+15550001111"})
    async with gateway.ws_connect(url) as ws:
        for frame in phone.opening({}):
            await ws.send_str(frame) if isinstance(frame, str) else await ws.send_bytes(frame)
        for audio in speech_frames(600) + silence_frames(800):
            await ws.send_bytes(phone.media(audio_in.to_stream(audio)))
        heard: list[bytes] = []
        while True:
            message = await ws.receive()
            assert message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), message
            event = phone.read(message.data)
            if event.kind == "media":
                heard.append(event.audio)
            elif event.kind == "mark":
                break
        assert len(heard) >= 25 and all(len(audio) == frame_bytes for audio in heard)
        level = decode_mulaw(PhoneAudio(*phone.stream_format).to_mulaw(b"".join(heard)))
        level = level.astype(float)
        assert (level**2).mean() ** 0.5 > 300  # speech, not silence
        await ws.send_str(phone.mark_played(event.name))


async def test_the_websocket_channel_needs_the_token(gateway: TestClient[Any, Any]) -> None:
    phone = AsteriskPhone(token="not-it")
    url = phone.stream_url("/asterisk/media", {"agent": "pbx"})
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await gateway.ws_connect(url)
    assert refused.value.status == 403


async def test_audiosocket_answers_an_l16_call_paced_in_20_ms_frames(
    gateway: TestClient[Any, Any],
) -> None:
    port = gateway.app[STATE].audiosocket_port
    assert port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(build_frame(KIND_UUID, uuid.uuid4().bytes))
    for audio in speech_frames(600) + silence_frames(800):
        pcm = decode_mulaw(audio).astype("<i2").tobytes()
        writer.write(build_frame(KIND_AUDIO, pcm))
    await writer.drain()
    heard = 0
    while heard < 25:  # half a second of the reply, paced by the gateway
        kind, length = HEADER.unpack(await reader.readexactly(HEADER.size))
        payload = await reader.readexactly(length)
        assert kind == KIND_AUDIO and length == 320, (kind, length)
        heard += 1
    writer.write(build_frame(KIND_HANGUP))
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    assert len(payload) == 320
