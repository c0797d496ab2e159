"""Outbound WebSocket text frames coalesced into one socket write per event-loop step.

A 200 ms burst of agent audio becomes ten 20 ms `media` frames, queued by the call in one step.
Written one by one, each is a `send()` syscall and a TCP segment (on loopback the sender even
pays for the receiver's TCP work): ten times the kernel time of one write, and the largest
single cost of the outbound path (bench/RESULTS.md, Capacity). `FrameBatcher` frames them
itself (RFC 6455, server side: FIN + text opcode, no mask), writes the first frame of a step at
once (a lone `clear` or `mark` is not held back) and the rest of that step's frames in one
more `transport.write`, scheduled with `call_soon`: after the current task step, before
anything the loop runs later. Order is kept; the frames and bytes on the wire are exactly what
aiohttp would have sent.

It steps aside — flushing what it holds first, so order is kept — and lets aiohttp write when
the connection negotiated compression (permessage-deflate, e.g. a browser softphone) or the
socket is backed up (aiohttp's writer then applies its flow control).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from typing import Final

from aiohttp import web

__all__ = ["HIGH_WATER_BYTES", "FrameBatcher", "text_frame"]

HIGH_WATER_BYTES: Final = 64 * 1024
"""Past this many unsent bytes in the transport, frames go through aiohttp's flow control."""

_FIN_TEXT: Final = 0x81
_FIN_BINARY: Final = 0x82
_PACK_LEN2: Final = struct.Struct("!BBH").pack
_PACK_LEN8: Final = struct.Struct("!BBQ").pack


def text_frame(payload: bytes, first_byte: int = _FIN_TEXT) -> bytes:
    """One unmasked, unfragmented text frame (what a server sends) carrying `payload`
    (`first_byte` _FIN_BINARY: a binary frame)."""
    size = len(payload)
    if size < 126:
        return bytes((first_byte, size)) + payload
    if size < 65536:
        return _PACK_LEN2(first_byte, 126, size) + payload
    return _PACK_LEN8(first_byte, 127, size) + payload


def _frame(frame: str | bytes) -> bytes:
    """The wire bytes of a text (str) or binary (bytes) message."""
    if isinstance(frame, bytes):
        return text_frame(frame, _FIN_BINARY)
    return text_frame(frame.encode("utf-8"))


class FrameBatcher:
    """Sends text frames on `ws`, coalescing those of one event-loop step into one write.

    `transport` is the connection's transport (`request.transport`); without it every frame
    goes through `ws.send_str`. Call `flush()` before anything else writes on the socket
    outside this object (closing it, for one).
    """

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport | None) -> None:
        self._ws = ws
        self._transport = transport
        self._held: list[bytes] | None = None
        """None: nothing written this step; else the frames after the first, for `flush`."""

    async def send(self, frame: str | bytes) -> None:
        if not self.send_now((frame,)):
            self.flush()
            if isinstance(frame, bytes):
                await self._ws.send_bytes(frame)
            else:
                await self._ws.send_str(frame)

    def send_now(self, frames: Sequence[str | bytes]) -> bool:
        """Write `frames` now in one `transport.write` (held for the step's end if this step
        has written already). False, writing nothing, when aiohttp must write them itself."""
        held = self._held
        if held is not None:  # this step has written already, all checks passed: hold them
            held.extend(map(_frame, frames))
            return True
        transport = self._transport
        if (
            transport is None
            or self._ws.compress
            or transport.is_closing()
            or transport.get_write_buffer_size() > HIGH_WATER_BYTES
        ):
            return False
        if len(frames) == 1:
            transport.write(_frame(frames[0]))
        else:
            transport.write(b"".join(map(_frame, frames)))
        self._held = []
        asyncio.get_running_loop().call_soon(self.flush)
        return True

    def flush(self) -> None:
        """Write the frames held back this step (no-op when none, or the socket is closing)."""
        held = self._held
        self._held = None
        if not held:
            return
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(held[0] if len(held) == 1 else b"".join(held))
