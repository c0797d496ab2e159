"""Slow and never-finished HTTP requests (gateway.security.http_guard) on real loopback sockets.

The gateway app runs behind `GuardedSite` as `serve()` runs it (an `AppRunner`, no handler
cancellation); one test runs `gateway serve` itself. Deadlines are tiny; every wait is on
EOF or an event, never a sleep.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import web

from gateway.security.http_guard import GuardedSite
from gateway.server import create_app
from gateway.settings import load_settings
from tests.fakes import FakeConnector
from tests.gateway_harness import sample_agents
from tests.test_cli import REPO, _env

HEAD_START = b"GET /healthz HTTP/1.1\r\nHost: gw.test\r\n"
"""An unfinished request head: no blank line yet."""


@dataclass
class Guarded:
    site: GuardedSite
    app: web.Application

    @property
    def port(self) -> int:
        return self.site.port


@contextlib.asynccontextmanager
async def guarded_gateway(
    *,
    header_timeout_s: float = 30.0,
    max_pending_per_ip: int = 0,
    middleware: Any = None,
    on_prepare: Any = None,
    **overrides: Any,
) -> AsyncIterator[Guarded]:
    settings = load_settings(
        env_file=None, live_backend="emulator", record_calls="off", **overrides
    )
    app = create_app(settings, sample_agents(), FakeConnector())  # no Live side needed
    if middleware is not None:
        app.middlewares.append(middleware)
    if on_prepare is not None:
        app.on_response_prepare.append(on_prepare)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = GuardedSite(
        runner,
        "127.0.0.1",
        0,
        header_timeout_s=header_timeout_s,
        max_pending_per_ip=max_pending_per_ip,
    )
    await site.start()
    try:
        yield Guarded(site, app)
    finally:
        await runner.cleanup()


async def healthz(port: int, *, source: str = "127.0.0.1") -> int:
    """GET /healthz on a fresh connection from `source`; the status code."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n")
    status = int((await reader.readline()).split()[1])
    writer.close()
    return status


async def dripper(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEAD_START)
    await writer.drain()
    return reader, writer


async def test_an_unfinished_request_head_is_closed_after_the_header_timeout() -> None:
    async with guarded_gateway(header_timeout_s=0.2) as gw:
        reader, writer = await dripper(gw.port)
        async with asyncio.timeout(5):
            assert await reader.read() == b""  # closed, without an answer
        writer.close()
        assert gw.site.pending.pending("127.0.0.1") == 0


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout() -> None:
    async with guarded_gateway(header_timeout_s=0.2) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        writer.close()


async def test_a_slow_body_is_cut_off_too() -> None:
    async with guarded_gateway(header_timeout_s=0.2) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(
            b"POST /twiml HTTP/1.1\r\nHost: gw.test\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nTo="
        )
        async with asyncio.timeout(5):
            answer = await reader.read()
        assert b"200 OK" not in answer  # never answered as if the form had arrived
        writer.close()


async def test_keep_alive_requests_are_not_cut_off_between_them() -> None:
    """The deadline runs from a request's first byte, not from the previous request."""
    async with guarded_gateway(header_timeout_s=0.2) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        for _ in range(2):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: gw.test\r\n\r\n")
            assert (await reader.readline()).startswith(b"HTTP/1.1 200")
            length = 0
            while (line := await reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
        assert gw.site.pending.pending("127.0.0.1") == 0  # idle keep-alive is not pending
        writer.close()


async def test_healthz_answers_while_drippers_hang_and_one_ip_cannot_hold_more() -> None:
    limit = 5
    async with guarded_gateway(max_pending_per_ip=limit) as gw:
        drippers = [await dripper(gw.port) for _ in range(limit)]
        assert gw.site.pending.pending("127.0.0.1") == limit
        refused_reader, refused_writer = await asyncio.open_connection("127.0.0.1", gw.port)
        async with asyncio.timeout(5):
            assert await refused_reader.read() == b""  # over the limit: closed at once
        assert await healthz(gw.port, source="127.0.0.2") == 200  # other IPs are served
        for reader, writer in drippers:  # the drippers themselves are still waiting
            assert not reader.at_eof()
            writer.close()
        refused_writer.close()


def sets_when_handled(handled: asyncio.Event) -> Any:
    """A middleware that sets `handled` once the handler has finished, however it ended."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        finally:
            handled.set()

    return middleware


async def test_a_client_closing_mid_handshake_is_one_debug_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handled = asyncio.Event()

    async def hang_up(request: web.Request, response: web.StreamResponse) -> None:
        if request.transport is not None:  # the caller is gone before the 101 goes out
            request.transport.close()

    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        async with guarded_gateway(middleware=sets_when_handled(handled), on_prepare=hang_up) as gw:
            _, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(upgrade_request())
            async with asyncio.timeout(5):
                await handled.wait()
            writer.close()
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert errors == [], [r.getMessage() for r in errors]
    assert [(e["event"], e["log_level"]) for e in logs] == [("media_upgrade_aborted", "debug")]


async def test_a_client_closing_right_after_the_handshake_logs_no_warning() -> None:
    handled = asyncio.Event()
    with structlog.testing.capture_logs() as logs:
        async with guarded_gateway(middleware=sets_when_handled(handled)) as gw:
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(upgrade_request())
            assert (await reader.readline()).startswith(b"HTTP/1.1 101")
            writer.transport.abort()
            async with asyncio.timeout(5):
                await handled.wait()
    loud = [e for e in logs if e["log_level"] in ("warning", "error", "critical")]
    assert loud == []
    ended = [e for e in logs if e["event"] == "call_ended"]
    assert [e["reason"] for e in ended] == ["no_start"]


def upgrade_request() -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        "GET /media HTTP/1.1\r\nHost: gw.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def test_serve_cuts_off_slow_requests(tmp_path: Path) -> None:
    """`gateway serve` itself: a dripper is closed, /healthz still answers."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve",
        cwd=REPO,
        env=_env(PORT="0", HOST="127.0.0.1", HEADER_TIMEOUT_S="0.2", RECORD_CALLS="off",
                 DATA_DIR=str(tmp_path / "data")),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        port = None
        while port is None:
            line = await proc.stderr.readline()
            assert line, "gateway exited before listening"
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == "gateway_listening":
                    port = int(event["port"])
        reader, writer = await dripper(port)
        async with asyncio.timeout(10):
            assert await reader.read() == b""
        writer.close()
        assert await healthz(port) == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.communicate()
