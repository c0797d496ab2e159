"""The Live end of a replayed call: a loopback WebSocket server speaking the Live wire protocol.

In *playback* mode it answers `setup` with `setupComplete` and then sends exactly the server
messages the replayer hands it (the recorded `live_in`), when the replayer decides. In *proxy*
mode it forwards everything to an upstream Live endpoint (the emulator). Either way it keeps
every client message the gateway sent after `setup`, in order: that is the `live_out` stream the
replayer compares with the recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from gateway.live.protocol import encode_message

__all__ = ["LiveSide"]

MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class LiveSide:
    """Playback (no `upstream_url`) or proxy (to `upstream_url`) Live server for a replay.

    Each accepted connection is a *session* (0, 1, … in order): the gateway opens a new one
    when it resumes after a drop or a `goAway`. With `max_sessions`, a connection beyond the
    sessions the recorded call had is refused before `setupComplete` (with `refusal_code`), as
    Live refused the recorded call's last resumption. `on_change` is called (synchronously) after
    every client message and connection change.
    """

    def __init__(
        self,
        upstream_url: str | None = None,
        *,
        on_change: Callable[[], None] = lambda: None,
        refuse_setup: bool = False,
        max_sessions: int | None = None,
        refusal_code: int = 1008,
    ) -> None:
        self.upstream_url = upstream_url
        self.refuse_setup = refuse_setup
        self.max_sessions = max_sessions
        """Connections beyond this many are refused (the recorded call could not resume)."""
        self.refusal_code = refusal_code
        self.client_frames: list[str | bytes] = []
        """Every client frame after `setup`, across sessions, in arrival order."""
        self.setups: list[dict[str, Any]] = []
        self.sessions: list[ServerConnection] = []
        self._on_change = on_change
        self._new_session = asyncio.Event()
        self._server: Server | None = None
        self.url = ""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._server = await serve(
            self._handle, host, port, compression=None, max_size=MAX_MESSAGE_BYTES
        )
        bound = self._server.sockets[0].getsockname()
        self.url = f"ws://{host}:{bound[1]}/replay-live"
        return self.url

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def session(self, index: int) -> ServerConnection:
        """Session `index`, once the gateway has opened it."""
        while len(self.sessions) <= index:
            self._new_session.clear()
            await self._new_session.wait()
        return self.sessions[index]

    async def send(self, message: Mapping[str, Any], session: int = 0) -> None:
        """Send one server message on `session` (dropped if that session is already closed)."""
        ws = await self.session(session)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(encode_message(message))

    async def close_session(self, session: int = 0, code: int = 1000, reason: str = "") -> None:
        """End `session` with `code` (1000: Live finished; 1011: Live failed)."""
        ws = await self.session(session)
        await ws.close(code, reason)

    async def _handle(self, ws: ServerConnection) -> None:
        try:
            first = await ws.recv()
            setup = json.loads(first)
            if not isinstance(setup, dict) or "setup" not in setup:
                await ws.close(1007, "the first message must be setup")
                return
            self.setups.append(setup)
            if self.refuse_setup:
                await ws.close(1011, "replay: the recorded call failed to connect to Live")
                return
            if self.max_sessions is not None and len(self.sessions) >= self.max_sessions:
                await ws.close(self.refusal_code, "replay: the recorded call could not resume")
                return
            if self.upstream_url is not None:
                await self._proxy(ws, first)
            else:
                await self._playback(ws)
        except ConnectionClosed:
            pass
        finally:
            self._on_change()

    def _opened(self, ws: ServerConnection) -> None:
        self.sessions.append(ws)
        self._new_session.set()
        self._on_change()

    async def _playback(self, ws: ServerConnection) -> None:
        await ws.send(encode_message({"setupComplete": {}}))
        self._opened(ws)
        async for frame in ws:
            self.client_frames.append(frame)
            self._on_change()

    async def _proxy(self, ws: ServerConnection, setup_frame: str | bytes) -> None:
        assert self.upstream_url is not None
        async with connect(
            self.upstream_url, compression=None, max_size=MAX_MESSAGE_BYTES
        ) as upstream:
            await upstream.send(setup_frame)
            self._opened(ws)
            down = asyncio.create_task(_forward(upstream, ws), name="replay-live-down")
            try:
                async for frame in ws:
                    self.client_frames.append(frame)
                    self._on_change()
                    await upstream.send(frame)
            finally:
                down.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await down


async def _forward(upstream: ClientConnection, ws: ServerConnection) -> None:
    """Upstream server messages to the gateway; an upstream close closes the gateway's side."""
    try:
        async for frame in upstream:
            await ws.send(frame)
    except ConnectionClosed:
        pass
    code = upstream.close_code or 1000
    await ws.close(code if code != 1006 else 1011, upstream.close_reason or "")
