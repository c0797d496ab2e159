"""A carrier's REST API faked by a real HTTP server on loopback: it records every request and
answers as the carrier's `CarrierCase.rest_reply` says."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from tests.loopback_http import LoopbackHttp
from tests.telephony.carrier_case import RestRequest


class FakeCarrierRest(LoopbackHttp):
    def __init__(self, reply: Callable[[RestRequest], tuple[int, str]]) -> None:
        super().__init__()
        self._reply = reply
        self.requests: list[RestRequest] = []
        self._changed = asyncio.Condition()

    async def wait_requests(self, count: int) -> list[RestRequest]:
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.requests) >= count)
        return self.requests

    async def _handle(self, request: web.Request) -> web.Response:
        recorded = RestRequest(
            request.method,
            request.path_qs,
            {name.lower(): value for name, value in request.headers.items()},
            await request.read(),
        )
        self.requests.append(recorded)
        async with self._changed:
            self._changed.notify_all()
        status, body = self._reply(recorded)
        return web.Response(status=status, text=body, content_type="application/json")
