"""What a call needs from its two ends: the carrier's socket and a Live session (protocols).

Production passes an aiohttp WebSocket (gateway.server) and a resilient Live session
(gateway.live.resilient); tests pass fakes. Nothing here imports the call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol

from gateway.live.protocol import ServerMessage, SessionConfig


class CallerTransport(Protocol):
    """The carrier side of a call: frames in and out (an aiohttp WebSocket in production)."""

    async def receive(self) -> str | bytes | None:
        """The next frame, or None once the carrier has closed the stream."""
        ...

    async def send(self, frame: str | bytes) -> None:
        """One frame: text, or bytes for a binary message (carriers that send raw audio)."""
        ...

    def send_now(self, frames: Sequence[str | bytes]) -> bool:
        """Write all `frames` at once, without waiting, when the socket allows it (one write
        for a burst of agent audio). False: nothing was written; `send` them one by one."""
        ...

    async def close(self) -> None: ...


class LiveSessionLike(Protocol):
    async def send(self, message: Mapping[str, Any]) -> None: ...

    async def send_audio(self, pcm16le: bytes, rate_hz: int) -> None: ...

    def __aiter__(self) -> AsyncIterator[ServerMessage]: ...

    async def close(self) -> None: ...


class LiveConnectorLike(Protocol):
    async def connect(self, config: SessionConfig) -> LiveSessionLike: ...
