"""LiveSession.send_audio's own frame writer: what reaches a real websockets server is exactly
what `ws.send` would have sent, at every length encoding, in order with other messages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.server import ServerConnection, serve

from gateway.live.client import LiveConnectionClosed, LiveConnector, _masked_text_frame
from gateway.live.protocol import (
    SessionConfig,
    build_audio_input,
    build_text_input,
    encode_audio_input,
    encode_audio_input_utf8,
)
from tests.live.conftest import emulator_settings


@asynccontextmanager
async def recording_server(
    expected: int,
) -> AsyncIterator[tuple[str, list[str | bytes], asyncio.Event]]:
    """A Live-like server that answers setup and keeps the next `expected` messages; the event
    is set once it has them all."""
    received: list[str | bytes] = []
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send('{"setupComplete": {}}')
        while len(received) < expected:
            received.append(await ws.recv())
        done.set()
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws", received, done


@pytest.mark.parametrize("pcm_bytes", [0, 960, 60_000])  # 7-bit, 16-bit and 64-bit lengths
async def test_audio_frames_arrive_as_ws_send_would_send_them(pcm_bytes: int) -> None:
    pcm = bytes(range(256)) * (pcm_bytes // 256) + bytes(pcm_bytes % 256)
    async with recording_server(3) as (url, received, got_all):
        connector = LiveConnector(emulator_settings(), url_override=url)
        session = await connector.connect(SessionConfig(model="m"))
        await session.send_audio(pcm, 24000)
        await session.send(build_text_input("between"))
        await session.send_audio(pcm, 16000)
        await asyncio.wait_for(got_all.wait(), 5)
        await session.close()
    assert received[0] == encode_audio_input(pcm, 24000)  # a text frame, byte for byte
    assert json.loads(received[1]) == build_text_input("between")
    assert json.loads(received[2]) == build_audio_input(pcm, 16000)


def test_utf8_encoding_matches_the_text_encoding() -> None:
    pcm = bytes(range(200))
    assert encode_audio_input_utf8(pcm, 8000) == encode_audio_input(pcm, 8000).encode()


def test_frames_are_masked_with_a_fresh_key() -> None:
    payload = b'{"realtimeInput":{}}'
    first, second = _masked_text_frame(payload), _masked_text_frame(payload)
    assert first[:2] == bytes((0x81, 0x80 | len(payload)))
    assert first[2:6] != second[2:6]  # 2**-32 chance of a false failure
    key = first[2:6]
    assert bytes(b ^ key[i % 4] for i, b in enumerate(first[6:])) == payload


async def test_after_the_server_closes_send_audio_raises_connection_closed() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send('{"setupComplete": {}}')
        await ws.close(1011, "gone")

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        connector = LiveConnector(emulator_settings(), url_override=f"ws://127.0.0.1:{port}/")
        session = await connector.connect(SessionConfig(model="m"))
        with pytest.raises(LiveConnectionClosed):
            async for _ in session:
                pass
        with pytest.raises(LiveConnectionClosed):
            await session.send_audio(b"\x00\x00" * 480, 24000)
