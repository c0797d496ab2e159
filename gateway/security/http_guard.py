"""Slow clients cannot tie up the HTTP server: a request deadline and a per-IP pending limit.

aiohttp's server never times out a request that is still arriving, so sockets dripping header
bytes hold connections open for as long as they like. `GuardedSite` listens like
`web.TCPSite`, but each connection is a `GuardedRequestHandler`:

* a request — head and body, WebSocket upgrades included — must have arrived
  `header_timeout_s` after its first byte (after the connection opened, for its first
  request), else the connection is closed;
* one IP may have `max_pending_per_ip` connections with a request still arriving; further
  ones are closed as they come (one warning per episode, the rest at debug).

A connection is *pending* only while a request is arriving: idle keep-alive connections
between requests (aiohttp's `keepalive_timeout`), requests being handled and upgraded
WebSockets are not. A client gone mid-request is one debug line, not an error traceback.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web, web_protocol
from aiohttp.streams import StreamReader
from aiohttp.web_request import BaseRequest

__all__ = ["GuardedRequestHandler", "GuardedSite", "PendingRequests"]

log = structlog.get_logger("gateway.http_guard")


@dataclass
class PendingRequests:
    """Requests still arriving, per peer IP, and the limits on them (0: no limit)."""

    header_timeout_s: float
    max_per_ip: int
    _by_ip: dict[str, int] = field(default_factory=dict)
    _refusing: set[str] = field(default_factory=set)
    """IPs at the limit that were already warned about (until their count drops to 0)."""

    def begin(self, ip: str) -> bool:
        """A request from `ip` starts arriving; False if `ip` has too many already."""
        count = self._by_ip.get(ip, 0)
        if self.max_per_ip and count >= self.max_per_ip:
            if ip in self._refusing:
                log.debug("http_pending_limit", ip=ip, limit=self.max_per_ip)
            else:
                self._refusing.add(ip)
                log.warning("http_pending_limit", ip=ip, limit=self.max_per_ip)
            return False
        self._by_ip[ip] = count + 1
        return True

    def end(self, ip: str) -> None:
        """A request from `ip` has arrived (or its connection is gone)."""
        count = self._by_ip.get(ip, 0) - 1
        if count > 0:
            self._by_ip[ip] = count
        else:
            self._by_ip.pop(ip, None)
            self._refusing.discard(ip)

    def pending(self, ip: str) -> int:
        return self._by_ip.get(ip, 0)


class GuardedRequestHandler(web_protocol.RequestHandler):
    """aiohttp's connection handler, with a deadline on each request's arrival."""

    def __init__(self, manager: web.Server, *, guard: PendingRequests, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._peer_ip = ""
        self._pending = False
        self._heads_before = 0
        """Request heads parsed on this connection before the pending request began."""
        self._body: StreamReader | None = None
        """The pending request's body, while it is still arriving."""
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self._peer_ip = str(peer[0]) if isinstance(peer, tuple) and peer else "local"
        self._begin()  # the first request is pending from the start

    def data_received(self, data: bytes) -> None:
        if data and not self._pending and self._waiting_for_request():
            if not self._begin():
                return
        super().data_received(data)
        if not self._pending:
            return
        if self._request_count > self._heads_before and self._body is None:
            payload = self._messages[-1][1] if self._messages else None
            if isinstance(payload, StreamReader) and not payload.is_eof() and not self._upgraded:
                self._body = payload
            else:
                self._end()
                return
        if self._body is not None and self._body.is_eof():
            self._end()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._end()
        super().connection_lost(exc)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        transport = request.transport
        if isinstance(exc, ConnectionError) and (transport is None or transport.is_closing()):
            log.debug("http_client_gone", path=request.path, error=repr(exc))
            response = web.Response(status=status)
            response.force_close()
            return response
        return super().handle_error(request, status, exc, message)

    def _waiting_for_request(self) -> bool:
        """aiohttp waits for the next request on this connection (idle or keep-alive)."""
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def _begin(self) -> bool:
        if not self._guard.begin(self._peer_ip):
            self.force_close()
            return False
        self._pending = True
        self._heads_before = self._request_count
        self._body = None
        timeout_s = self._guard.header_timeout_s
        if timeout_s > 0:
            loop = asyncio.get_running_loop()
            self._deadline = loop.call_later(timeout_s, self._on_deadline)
        return True

    def _end(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._pending:
            self._pending = False
            self._body = None
            self._guard.end(self._peer_ip)

    def _on_deadline(self) -> None:
        self._deadline = None
        waiting_for = "body" if self._request_count > self._heads_before else "head"
        log.debug(
            "http_request_timeout",
            ip=self._peer_ip,
            waiting_for=waiting_for,
            timeout_s=self._guard.header_timeout_s,
        )
        self._end()
        self.force_close()


class GuardedSite(web.BaseSite):
    """A TCP site like `web.TCPSite` whose connections are `GuardedRequestHandler`s."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str | None,
        port: int,
        *,
        header_timeout_s: float,
        max_pending_per_ip: int,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self.pending = PendingRequests(header_timeout_s, max_pending_per_ip)

    @property
    def name(self) -> str:
        return f"http://{self._host or '0.0.0.0'}:{self._port}"

    @property
    def port(self) -> int:
        """The bound port (the requested one before `start`)."""
        sockets = getattr(self._server, "sockets", None)
        return int(sockets[0].getsockname()[1]) if sockets else self._port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        guard = self.pending
        kwargs: dict[str, Any] = dict(server._kwargs)  # the runner's handler arguments

        def protocol() -> GuardedRequestHandler:
            return GuardedRequestHandler(server, loop=loop, guard=guard, **kwargs)

        self._server = await loop.create_server(
            protocol, self._host, self._port, backlog=self._backlog
        )
