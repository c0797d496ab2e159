"""HTTP tools against a real server on loopback: replies, failures, the signature, and what may
leave (no redirects to another site) and be read (a capped reply)."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from gateway.tools import HttpToolConfig, ToolContext, ToolError, ToolResult
from gateway.tools.http_tool import MAX_REPLY_BYTES, http_invoker
from gateway.tools.signing import sign, verify

REPLIES: dict[str, tuple[int, Any]] = {
    "contract_ok": (200, {"status": "ok", "message": "Balance found.", "result": {"usd": 1}}),
    "contract_fields": (200, {"status": "ok", "usd": 3}),
    "contract_nothing": (200, {"status": "no_results", "message": "No such account."}),
    "contract_busy": (200, {"status": "unavailable", "message": "The ledger is busy."}),
    "contract_refused": (
        200,
        {"status": "permission_denied", "error": "not your account", "retryable": False},
    ),
    "not_found_404": (404, {"status": "not_found", "message": "There is no account 77-12."}),
    "busy_503": (503, {"status": "error", "message": "Maintenance until noon."}),
    "ok_but_500": (500, {"status": "ok", "result": 1}),
    "domain_status": (200, {"status": "shipped", "eta": "2026-11-28"}),
}


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

    async def canned(request: web.Request) -> web.Response:
        status, reply = REPLIES[request.match_info["name"]]
        return web.json_response(reply, status=status)

    async def plain_error(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["status"]), text=" upstream exploded ")

    app = web.Application()
    app.router.add_post("/json", json_reply)
    app.router.add_post("/canned/{name}", canned)
    app.router.add_post("/status/{status}", plain_error)
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
    with pytest.raises(ToolError, match="the reply is not JSON") as caught:
        await invoke({}, CONTEXT)
    assert (caught.value.status, caught.value.retryable) == ("error", False)


async def test_a_missing_route_is_an_error_with_the_status(server: str) -> None:
    invoke = http_invoker("t", HttpToolConfig(url=f"{server}/gone"), None)
    with pytest.raises(ToolError, match="HTTP 404") as caught:
        await invoke({}, CONTEXT)
    assert (caught.value.status, caught.value.retryable) == ("error", False)


@pytest.mark.parametrize(
    ("status", "expected", "retryable", "message"),
    [
        (500, "unavailable", True, "The service behind t is unavailable right now (HTTP 500: "
         "upstream exploded); you may try once more."),
        (502, "unavailable", True, "is unavailable right now (HTTP 502"),
        (429, "unavailable", True, "is unavailable right now (HTTP 429"),
        (400, "error", False, "The service behind t refused the request (HTTP 400: upstream "
         "exploded); trying again will not help."),
        (403, "error", False, "refused the request (HTTP 403"),
    ],
)  # fmt: skip
async def test_5xx_is_unavailable_and_retryable_4xx_is_an_error(
    server: str, status: int, expected: str, retryable: bool, message: str
) -> None:
    invoke = http_invoker("t", HttpToolConfig(url=f"{server}/status/{status}"), None)
    with pytest.raises(ToolError) as caught:
        await invoke({}, CONTEXT)
    assert (caught.value.status, caught.value.retryable) == (expected, retryable)
    assert message in str(caught.value)


async def test_a_service_that_cannot_be_reached_is_unavailable_and_retryable() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    invoke = http_invoker("t", HttpToolConfig(url=f"http://127.0.0.1:{port}/x"), None)
    with pytest.raises(ToolError) as caught:
        await invoke({}, CONTEXT)
    assert (caught.value.status, caught.value.retryable) == ("unavailable", True)
    assert str(caught.value) == (
        "The service behind t cannot be reached right now; you may try once more."
    )


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("contract_ok", ToolResult({"usd": 1}, message="Balance found.", status="ok")),
        ("contract_fields", ToolResult({"usd": 3}, status="ok")),
        ("contract_nothing", ToolResult(None, message="No such account.", status="no_results")),
        ("domain_status", {"status": "shipped", "eta": "2026-11-28"}),  # not the contract's
    ],
)
async def test_a_reply_with_its_own_status_is_passed_through(
    server: str, name: str, answer: Any
) -> None:
    invoke = http_invoker("t", HttpToolConfig(url=f"{server}/canned/{name}"), None)
    assert await invoke({}, CONTEXT) == answer


@pytest.mark.parametrize(
    ("name", "status", "retryable", "message"),
    [
        ("contract_busy", "unavailable", True, "The ledger is busy."),
        ("contract_refused", "permission_denied", False, "not your account"),
        ("not_found_404", "not_found", False, "There is no account 77-12."),
        ("busy_503", "error", True, "Maintenance until noon."),  # retryable: it is a 503
        ("ok_but_500", "unavailable", True,
         'The service behind t is unavailable right now (HTTP 500: {"status": "ok", '),
    ],
)  # fmt: skip
async def test_a_failure_the_reply_explains_keeps_its_status_and_message(
    server: str, name: str, status: str, retryable: bool, message: str
) -> None:
    invoke = http_invoker("t", HttpToolConfig(url=f"{server}/canned/{name}"), None)
    with pytest.raises(ToolError) as caught:
        await invoke({}, CONTEXT)
    assert (caught.value.status, caught.value.retryable) == (status, retryable)
    assert str(caught.value).startswith(message)


def test_signatures() -> None:
    body = b'{"a":1}'
    signature = sign("k", body, 1_700_000_000)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify("k", body, "1700000000", signature, now=1_700_000_100)
    assert not verify("k", body + b" ", "1700000000", signature, now=1_700_000_100)
    assert not verify("other", body, "1700000000", signature, now=1_700_000_100)
    assert not verify("k", body, "1700000000", signature, now=1_700_009_000)  # too old
    assert not verify("k", body, "soon", signature)


# --------------------------------------------------------------------------- what leaves, is read


class Site:
    """A loopback HTTP server that records what reached it (`seen`: method, path, headers, body)."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.app.router.add_route("*", "/{path:.*}", self._handle)
        self.routes: dict[str, Any] = {}
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self.url = ""

    def route(self, path: str, reply: Any) -> None:
        """`reply`: a function making the response, or a coroutine function of the request."""
        self.routes[path] = reply

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(
            (request.method, request.path_qs, dict(request.headers), await request.read())
        )
        reply = self.routes.get(request.path)
        if reply is None:
            return web.Response(status=404)
        if asyncio.iscoroutinefunction(reply):
            streamed: web.StreamResponse = await reply(request)
            return streamed
        made: web.StreamResponse = reply()
        return made


@pytest.fixture
async def sites() -> AsyncIterator[tuple[Site, Site]]:
    """The tool's own site, and another one (another port: another origin)."""
    pair = (Site(), Site())
    runners = []
    for site in pair:
        runner = web.AppRunner(site.app, access_log=None)
        await runner.setup()
        tcp = web.TCPSite(runner, "127.0.0.1", 0)
        await tcp.start()
        site.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        runners.append(runner)
    yield pair
    for runner in runners:
        await runner.cleanup()


def redirect(status: int, location: str) -> Any:
    return lambda: web.Response(status=status, headers={"Location": location})


SECRET_HEADERS = {"X-Api-Key": "k-123"}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_to_another_site_is_refused_and_nothing_is_sent_there(
    sites: tuple[Site, Site], status: int
) -> None:
    home, elsewhere = sites
    elsewhere.route("/steal", lambda: web.json_response({"stolen": True}))
    home.route("/tool", redirect(status, f"{elsewhere.url}/steal?token=t-456"))
    config = HttpToolConfig(url=f"{home.url}/tool", headers=SECRET_HEADERS)
    invoke = http_invoker("balance", config, "hmac-secret")
    with capture_logs() as logs, pytest.raises(ToolError) as caught:
        await invoke({"account": "77-12"}, ToolContext(call_sid="CA1", agent="a"))
    assert str(caught.value) == (
        "The service behind balance redirected the request to another site, where it is not "
        "sent; trying again will not help."
    )
    assert (caught.value.status, caught.value.retryable) == ("error", False)
    assert elsewhere.seen == [] and len(home.seen) == 1
    [refused] = [entry for entry in logs if entry["event"] == "http_tool_redirect_refused"]
    assert refused["location"] == f"{elsewhere.url}/steal"  # no query: it may carry a token
    assert refused["http_status"] == status and refused["tool"] == "balance"


async def test_same_origin_redirects_are_followed_with_the_same_request(
    sites: tuple[Site, Site],
) -> None:
    home, _ = sites
    home.route("/v1/tool", redirect(308, "/v2/tool"))
    home.route("/v2/tool", redirect(307, f"{home.url}/v3/tool"))
    home.route("/v3/tool", lambda: web.json_response({"usd": 5}))
    config = HttpToolConfig(url=f"{home.url}/v1/tool", headers=SECRET_HEADERS)
    invoke = http_invoker("balance", config, "hmac-secret")
    assert await invoke({"account": "77-12"}, CONTEXT) == {"usd": 5}
    assert [(method, path) for method, path, _, _ in home.seen] == [
        ("POST", "/v1/tool"), ("POST", "/v2/tool"), ("POST", "/v3/tool"),
    ]  # fmt: skip
    first, *_, last = home.seen
    assert last[3] == first[3] == b'{"account":"77-12"}'
    for name in ("X-Api-Key", "X-Gateway-Signature", "X-Gateway-Timestamp"):
        assert last[2][name] == first[2][name]
    assert verify("hmac-secret", last[3], last[2]["X-Gateway-Timestamp"],
                  last[2]["X-Gateway-Signature"])  # fmt: skip


async def test_see_other_is_fetched_and_a_redirect_loop_is_an_error(
    sites: tuple[Site, Site],
) -> None:
    home, _ = sites
    home.route("/jobs", redirect(303, "/jobs/1"))
    home.route("/jobs/1", lambda: web.json_response({"done": True}))
    home.route("/loop", redirect(307, "/loop"))
    assert await http_invoker("t", HttpToolConfig(url=f"{home.url}/jobs"), None)({}, CONTEXT) == {
        "done": True
    }
    assert [(m, p) for m, p, _, _ in home.seen] == [("POST", "/jobs"), ("GET", "/jobs/1")]
    with pytest.raises(ToolError, match="redirected the request more than 5 times"):
        await http_invoker("t", HttpToolConfig(url=f"{home.url}/loop"), None)({}, CONTEXT)


async def test_a_reply_over_the_cap_is_an_error_however_it_is_sent(
    sites: tuple[Site, Site],
) -> None:
    home, _ = sites
    at_cap = json.dumps("x" * (MAX_REPLY_BYTES - 2)).encode()
    over = json.dumps("x" * (MAX_REPLY_BYTES - 1)).encode()
    bomb = gzip.compress(json.dumps([0] * 2_000_000).encode())  # 6 MB of JSON, ~10 KB gzipped

    async def streamed(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # chunked: no Content-Length to go by
        await response.prepare(request)
        for _ in range(64):
            await response.write(b" " * 65536)
        return response

    home.route("/at-cap", lambda: web.Response(body=at_cap, content_type="application/json"))
    home.route("/over", lambda: web.Response(body=over, content_type="application/json"))
    home.route("/bomb", lambda: web.Response(body=bomb, headers={"Content-Encoding": "gzip"}))
    home.route("/streamed", streamed)
    assert len(at_cap) == MAX_REPLY_BYTES
    at_cap_tool = http_invoker("t", HttpToolConfig(url=f"{home.url}/at-cap"), None)
    assert await at_cap_tool({}, CONTEXT) == "x" * (MAX_REPLY_BYTES - 2)
    for path in ("/over", "/bomb", "/streamed"):
        invoke = http_invoker("t", HttpToolConfig(url=f"{home.url}{path}"), None)
        with pytest.raises(ToolError) as caught:
            await invoke({}, CONTEXT)
        assert str(caught.value) == (
            "The service behind t answered with more than 256 KiB, which is not read; trying "
            "again will not help."
        ), path
        assert (caught.value.status, caught.value.retryable) == ("error", False)
