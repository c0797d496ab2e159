"""HTTP tools against a real server on loopback: replies, failures, and the signature."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from gateway.tools import HttpToolConfig, ToolContext, ToolError
from gateway.tools.http_tool import http_invoker
from gateway.tools.signing import sign, verify


@pytest.fixture
async def server() -> AsyncIterator[str]:
    seen: list[web.Request] = []

    async def json_reply(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response({"ok": True, "echo": await request.json()})

    async def text_reply(request: web.Request) -> web.Response:
        return web.Response(text="<html>not json</html>")

    async def empty_reply(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/json", json_reply)
    app.router.add_post("/text", text_reply)
    app.router.add_post("/empty", empty_reply)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


CONTEXT = ToolContext(call_sid="CA1", agent="a", from_number="+15551230000")


async def test_json_reply_goes_back(server: str) -> None:
    invoke = http_invoker("t", HttpToolConfig(url=f"{server}/json"), None)
    assert await invoke({"q": "é"}, CONTEXT) == {"ok": True, "echo": {"q": "é"}}


async def test_empty_reply_is_none(server: str) -> None:
    invoke = http_invoker("t", HttpToolConfig(url=f"{server}/empty"), None)
    assert await invoke({}, CONTEXT) is None


async def test_a_reply_that_is_not_json_is_an_error(server: str) -> None:
    invoke = http_invoker("t", HttpToolConfig(url=f"{server}/text"), None)
    with pytest.raises(ToolError, match="the reply is not JSON"):
        await invoke({}, CONTEXT)


async def test_a_missing_route_is_an_error_with_the_status(server: str) -> None:
    invoke = http_invoker("t", HttpToolConfig(url=f"{server}/gone"), None)
    with pytest.raises(ToolError, match="HTTP 404"):
        await invoke({}, CONTEXT)


def test_signatures() -> None:
    body = b'{"a":1}'
    signature = sign("k", body, 1_700_000_000)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify("k", body, "1700000000", signature, now=1_700_000_100)
    assert not verify("k", body + b" ", "1700000000", signature, now=1_700_000_100)
    assert not verify("other", body, "1700000000", signature, now=1_700_000_100)
    assert not verify("k", body, "1700000000", signature, now=1_700_009_000)  # too old
    assert not verify("k", body, "soon", signature)
