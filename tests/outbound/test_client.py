"""The call API's HTTP client against a fake API on loopback: the token is sent, the body
carries only what was given, errors keep their field, and failures say whether a call may
exist."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

from gateway.outbound.client import (
    ApiError,
    CallRecord,
    DeliveryUnknown,
    GatewayClient,
    NotSent,
    PlaceRequest,
)
from tests.outbound.test_campaign_fakes import TOKEN, HttpApi


async def test_place_sends_the_bearer_token_and_the_request() -> None:
    async with HttpApi(token="s3cret") as api, GatewayClient(api.url + "/", "s3cret") as client:
        call = await client.place(PlaceRequest(
            agent="reminders", to="+15550100001", from_="+15550109999", carrier="twilio",
            variables={"first_name": "Ana"}, callback_url="https://example.com/cb",
        ))
        assert call == CallRecord(
            id="CA0001", state="queued", agent="reminders", to="+15550100001",
            from_="+15550109999", carrier="twilio", variables={"first_name": "Ana"},
            created_at="2026-03-10T12:00:00.000Z",
        )
        [(method, path, headers, body)] = api.requests
        assert (method, path) == ("POST", "/calls")
        assert headers["Authorization"] == "Bearer s3cret"
        assert body == {
            "agent": "reminders", "to": "+15550100001", "from": "+15550109999",
            "carrier": "twilio", "variables": {"first_name": "Ana"},
            "callback_url": "https://example.com/cb",
        }
        await client.place(PlaceRequest(agent="reminders", to="+15550100002"))
        assert api.requests[-1][3] == {"agent": "reminders", "to": "+15550100002"}


async def test_get_follows_a_call_and_hangup_deletes_it() -> None:
    async with HttpApi() as api, GatewayClient(api.url, TOKEN) as client:
        placed = await client.place(PlaceRequest(agent="a", to="+15550100001"))
        states = [(await client.get(placed.id)).state for _ in range(3)]
        assert states == ["ringing", "in-progress", "completed"]
        final = await client.get(placed.id)
        assert final.terminal and final.duration_s == 42.5
        assert final.recording == "/recordings/CA0001.wav" and final.end_reason == "hangup"
        second = await client.place(PlaceRequest(agent="a", to="+15550100002"))
        hung_up = await client.hangup(second.id)
        assert hung_up is not None and hung_up.state == "canceled"
        assert api.requests[-1][:2] == ("DELETE", f"/calls/{second.id}")


async def test_an_error_keeps_its_status_field_and_message() -> None:
    async with HttpApi() as api:
        api.refuse["+15550100001"] = (422, {"field": "to", "message": "not a mobile number"})
        async with GatewayClient(api.url, TOKEN) as client:
            with pytest.raises(ApiError) as refused:
                await client.place(PlaceRequest(agent="a", to="+15550100001"))
            assert (refused.value.status, refused.value.field) == (422, "to")
            assert str(refused.value) == "HTTP 422: to: not a mobile number"
            with pytest.raises(ApiError) as missing:
                await client.get("CA9999")
            assert (missing.value.status, missing.value.field) == (404, "id")
        async with GatewayClient(api.url, "wrong") as client:
            with pytest.raises(ApiError) as unauthorised:
                await client.place(PlaceRequest(agent="a", to="+15550100001"))
            assert unauthorised.value.status == 401
            assert unauthorised.value.field == "Authorization"


async def test_a_gateway_that_is_not_there_is_not_sent() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    async with GatewayClient(f"http://127.0.0.1:{port}", "t") as client:
        with pytest.raises(NotSent, match="cannot reach the gateway"):
            await client.place(PlaceRequest(agent="a", to="+15550100001"))


async def _serve(handler: Callable[[web.Request], Awaitable[web.Response]]) -> web.AppRunner:
    app = web.Application()
    app.router.add_route("*", "/calls", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


async def test_an_answer_that_is_not_a_call_leaves_the_call_unknown() -> None:
    async def garbage(request: web.Request) -> web.Response:
        return web.Response(text="<html>proxy</html>", status=200)

    async def not_json_error(request: web.Request) -> web.Response:
        return web.Response(text="Bad Gateway from the proxy", status=502)

    for handler, expected in ((garbage, DeliveryUnknown), (not_json_error, ApiError)):
        runner = await _serve(handler)
        port = runner.addresses[0][1]
        try:
            async with GatewayClient(f"http://127.0.0.1:{port}", "t") as client:
                with pytest.raises(expected) as raised:
                    await client.place(PlaceRequest(agent="a", to="+15550100001"))
            if expected is ApiError:
                assert "Bad Gateway from the proxy" in str(raised.value)
        finally:
            await runner.cleanup()


async def test_a_call_object_without_id_or_state_is_refused() -> None:
    with pytest.raises(ValueError, match="id"):
        CallRecord.from_json({"state": "queued"})
    assert CallRecord.from_json({"id": "x", "state": "busy", "duration_s": True}).duration_s is None
