"""gateway.frame_batcher through the server's WebSocketTransport, on loopback: frames sent in one
step arrive whole, separate and in order, also with compression and when closing at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.frame_batcher import HIGH_WATER_BYTES, FrameBatcher, text_frame
from gateway.server import WebSocketTransport

FRAMES = [f'{{"event":"media","n":{n},"payload":"{"A" * (n * 7)}"}}' for n in range(12)]
"""Lengths from 30 to ~110 and one of 200+ bytes cover the 7- and 16-bit length headers."""
FRAMES.append('{"event":"mark","big":"' + "x" * 70_000 + '"}')  # a 64-bit length header


@asynccontextmanager
async def gateway_like_server(*, close_after: bool, burst: bool = False) -> AsyncIterator[str]:
    """On "go": every frame of FRAMES sent in one step through a WebSocketTransport (with
    `burst`, as the call's writer sends a queue: `send_now`, else `send` one by one)."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        transport = WebSocketTransport(ws, request.transport)
        assert await transport.receive() == "go"
        if burst:
            half = len(FRAMES) // 2
            for part in (FRAMES[:half], FRAMES[half:]):
                if not transport.send_now(part):
                    assert ws.compress  # the only reason on an open, idle socket
                    for frame in part:
                        await transport.send(frame)
        else:
            for frame in FRAMES:
                await transport.send(frame)
        if close_after:
            await transport.close()  # must flush the held frames before the close frame
        else:
            await transport.send('{"event":"clear"}')  # a later step: written at once
            assert await transport.receive() is None
        return ws

    app = web.Application()
    app.router.add_get("/media", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}/media"
    finally:
        await server.close()


@pytest.mark.parametrize("burst", [False, True])
@pytest.mark.parametrize("compress", [0, 15])
@pytest.mark.parametrize("close_after", [False, True])
async def test_frames_of_one_step_arrive_whole_separate_and_in_order(
    compress: int, close_after: bool, burst: bool
) -> None:
    async with (
        gateway_like_server(close_after=close_after, burst=burst) as url,
        aiohttp.ClientSession() as session,
        session.ws_connect(url, compress=compress, max_msg_size=0) as ws,
    ):
        await ws.send_str("go")
        received = []
        expected = len(FRAMES) + (0 if close_after else 1)
        while len(received) < expected:
            message = await ws.receive()
            assert message.type is aiohttp.WSMsgType.TEXT, message
            received.append(message.data)
        if close_after:
            assert (await ws.receive()).type is aiohttp.WSMsgType.CLOSE
    assert received[: len(FRAMES)] == FRAMES
    if not close_after:
        assert received[-1] == '{"event":"clear"}'


def test_text_frame_headers() -> None:
    assert text_frame(b"hi") == b"\x81\x02hi"
    assert text_frame(b"x" * 126)[:4] == b"\x81\x7e\x00\x7e"
    assert text_frame(b"x" * 65536)[:10] == b"\x81\x7f" + (65536).to_bytes(8, "big")


class _CountingTransport:
    """Enough of an asyncio transport for FrameBatcher: records each write."""

    def __init__(self, buffered: int = 0) -> None:
        self.writes: list[bytes] = []
        self.buffered = buffered

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return self.buffered


class _Ws:
    compress = 0


async def test_a_burst_is_one_write_and_later_frames_of_the_step_one_more() -> None:
    transport = _CountingTransport()
    batcher = FrameBatcher(_Ws(), transport)  # type: ignore[arg-type]
    assert batcher.send_now(FRAMES[:10])
    assert transport.writes == [b"".join(text_frame(f.encode()) for f in FRAMES[:10])]
    await batcher.send(FRAMES[10])  # same step: held, not a write of its own
    assert len(transport.writes) == 1
    batcher.flush()
    assert transport.writes[1] == text_frame(FRAMES[10].encode())


def test_a_backed_up_socket_refuses_the_burst_and_writes_nothing() -> None:
    transport = _CountingTransport(buffered=HIGH_WATER_BYTES + 1)
    batcher = FrameBatcher(_Ws(), transport)  # type: ignore[arg-type]
    assert not batcher.send_now(FRAMES[:3])
    assert transport.writes == []
