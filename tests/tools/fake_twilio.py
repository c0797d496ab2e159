"""Twilio's REST API faked by a real HTTP server on loopback: it records what it is sent."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.loopback_http import LoopbackHttp


@dataclass(frozen=True)
class RestRequest:
    method: str
    path: str
    username: str | None
    password: str | None
    form: dict[str, str]


class FakeTwilioApi(LoopbackHttp):
    """`POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`, answered like Twilio.

    `status` is the HTTP status it answers with (set 500 to make requests fail).
    """

    def __init__(self, *, status: int = 200) -> None:
        super().__init__()
        self.status = status
        self.requests: list[RestRequest] = []
        self._changed = asyncio.Condition()

    async def wait_requests(self, count: int) -> list[RestRequest]:
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.requests) >= count)
        return self.requests

    async def _handle(self, request: web.Request) -> web.Response:
        username = password = None
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            username, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        form = {key: str(value) for key, value in (await request.post()).items()}
        self.requests.append(RestRequest(request.method, request.path, username, password, form))
        async with self._changed:
            self._changed.notify_all()
        if self.status >= 400:
            body: dict[str, Any] = {"code": 20500, "message": "Internal error", "status": 500}
            return web.json_response(body, status=self.status)
        call_sid = request.path.rsplit("/", 1)[-1].removesuffix(".json")
        return web.json_response({"sid": call_sid, "status": form.get("Status", "in-progress")})
