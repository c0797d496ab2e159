"""In-memory stand-ins for the carrier socket and the Live session, for unit tests of `Call`.

They are driven by queues and events, never by sleeps, so every test is deterministic.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from gateway.live.protocol import ServerMessage, SessionConfig


class FakeTransport:
    """The carrier side: tests push frames in and read what the gateway wrote."""

    def __init__(self) -> None:
        self.inbound: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.sent_queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.send_gate = asyncio.Event()
        self.send_gate.set()
        self.closed = asyncio.Event()
        self.idle = asyncio.Event()
        self.takes_bursts = False
        """Accept `send_now` (as the server's socket does when not backed up); off by default,
        so `send_gate` holds every frame."""
        self.bursts: list[int] = []
        """Frames of each `send_now` taken."""

    def push(self, message: Mapping[str, Any] | str | bytes | None) -> None:
        if message is None or isinstance(message, str | bytes):
            self.inbound.put_nowait(message)
        else:
            self.inbound.put_nowait(json.dumps(message))

    async def receive(self) -> str | bytes | None:
        if self.closed.is_set() and self.inbound.empty():
            return None
        if self.inbound.empty():
            self.idle.set()  # the gateway has handled every frame pushed so far
        frame = await self.inbound.get()
        self.idle.clear()
        return frame

    async def wait_idle(self) -> None:
        """Until the gateway has consumed every frame pushed so far and waits for more."""
        while not (self.idle.is_set() and self.inbound.empty()):
            self.idle.clear()
            await self.idle.wait()

    async def send(self, frame: str) -> None:
        await self.send_gate.wait()
        if self.closed.is_set():
            raise ConnectionResetError("closed")
        message = json.loads(frame)
        self.sent.append(message)
        self.sent_queue.put_nowait(message)

    def send_now(self, frames: Sequence[str]) -> bool:
        if not self.takes_bursts or not self.send_gate.is_set() or self.closed.is_set():
            return False
        for frame in frames:
            message = json.loads(frame)
            self.sent.append(message)
            self.sent_queue.put_nowait(message)
        self.bursts.append(len(frames))
        return True

    async def close(self) -> None:
        self.closed.set()
        self.inbound.put_nowait(None)

    async def next_sent(self, event: str | None = None) -> dict[str, Any]:
        """The next frame the gateway wrote (of kind `event`, skipping others)."""
        while True:
            message = await self.sent_queue.get()
            if event is None or message["event"] == event:
                return message


def text_of(message: Mapping[str, Any]) -> str | None:
    """The text of a text message to Live, whichever way it went (realtimeInput.text on the
    Developer API, a clientContent turn on Vertex), else None."""
    realtime = message.get("realtimeInput")
    if isinstance(realtime, Mapping) and isinstance(realtime.get("text"), str):
        return str(realtime["text"])
    content = message.get("clientContent")
    if isinstance(content, Mapping) and content.get("turnComplete"):
        return "".join(
            str(part.get("text", "")) for turn in content["turns"] for part in turn["parts"]
        )
    return None


class FakeLiveSession:
    """A Live session whose server side is a queue the test fills."""

    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        self.server: asyncio.Queue[ServerMessage | BaseException | asyncio.Event | None] = (
            asyncio.Queue()
        )
        self.sent: list[Mapping[str, Any]] = []
        self.audio: list[tuple[bytes, int]] = []
        self.audio_received = asyncio.Condition()
        self.message_received = asyncio.Event()
        self.closed = asyncio.Event()

    async def send(self, message: Mapping[str, Any]) -> None:
        self.sent.append(message)
        self.message_received.set()

    async def send_audio(self, pcm16le: bytes, rate_hz: int) -> None:
        async with self.audio_received:
            self.audio.append((pcm16le, rate_hz))
            self.audio_received.notify_all()

    async def wait_audio(self, count: int) -> None:
        async with self.audio_received:
            await self.audio_received.wait_for(lambda: len(self.audio) >= count)

    async def wait_sent(self, predicate: Any) -> Mapping[str, Any]:
        while True:
            for message in self.sent:
                if predicate(message):
                    return message
            self.message_received.clear()
            await self.message_received.wait()

    def __aiter__(self) -> AsyncIterator[ServerMessage]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[ServerMessage]:
        while True:
            item = await self.server.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, asyncio.Event):
                item.set()  # a barrier: everything queued before it has been handled
                continue
            yield item

    def barrier(self) -> asyncio.Event:
        """An event set once the gateway has handled every server message queued so far."""
        event = asyncio.Event()
        self.server.put_nowait(event)
        return event

    async def close(self) -> None:
        self.closed.set()
        self.server.put_nowait(None)


class FakeConnector:
    """Hands out FakeLiveSessions; `gate` holds `connect()` open to test buffering."""

    def __init__(self, *, fail: BaseException | None = None) -> None:
        self.sessions: list[FakeLiveSession] = []
        self.connected = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = fail

    async def connect(self, config: SessionConfig) -> FakeLiveSession:
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        session = FakeLiveSession(config)
        self.sessions.append(session)
        self.connected.set()
        return session

    async def session(self) -> FakeLiveSession:
        await self.connected.wait()
        return self.sessions[-1]
