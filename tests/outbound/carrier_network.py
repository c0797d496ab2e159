"""What the Telnyx and Plivo outbound tests share: the real gateway on loopback with a fake
carrier REST API (tests/telephony/fake_rest.py), and a media stream played to its end."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from gateway.outbound.client import ApiError, GatewayClient, PlaceRequest
from gateway.server import CALLS
from gateway.telephony.phone import CarrierPhone, PhoneEvent, StreamOrder
from tests.outbound.test_end_to_end import Gateway, real_gateway
from tests.outbound.test_outbound_calls_harness import read_until
from tests.telephony.carrier_case import RestRequest
from tests.telephony.fake_rest import FakeCarrierRest


@dataclass
class CarrierNetwork:
    gateway: Gateway
    rest: FakeCarrierRest
    session: aiohttp.ClientSession

    async def post(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str]:
        headers = {"Content-Type": "application/x-www-form-urlencoded", **headers}
        async with self.session.post(url, data=body, headers=headers) as response:
            return response.status, await response.text()


@contextlib.asynccontextmanager
async def carrier_gateway(
    tmp_path: Path,
    reply: Callable[[RestRequest], tuple[int, str]],
    settings: Callable[[str], dict[str, Any]],
    *,
    agents: dict[str, str] | None = None,
    **overrides: Any,
) -> AsyncIterator[CarrierNetwork]:
    """The gateway with `settings(fake REST base URL)` (and `overrides`), its carrier REST
    faked by `reply`."""
    rest = FakeCarrierRest(reply)
    base_url = await rest.start()
    try:
        async with (
            real_gateway(tmp_path, agents=agents, **settings(base_url), **overrides) as gw,
            aiohttp.ClientSession() as session,
        ):
            yield CarrierNetwork(gw, rest, session)
    finally:
        await rest.stop()


async def refused(client: GatewayClient, request: PlaceRequest) -> ApiError:
    """The API's refusal of `request` (the test fails if the call is placed)."""
    try:
        await client.place(request)
    except ApiError as exc:
        return exc
    raise AssertionError("the call was placed")



async def stream_greeting(
    net: CarrierNetwork,
    phone: CarrierPhone,
    order: StreamOrder,
    *,
    hang_up: bool = True,
    during: Callable[[], Awaitable[object]] | None = None,
) -> list[PhoneEvent]:
    """Open the stream `order` names, hear the agent's first turn to its mark, run `during`
    (the carrier's callbacks while the call is up), echo the mark and (`hang_up`) hang up;
    returns once the gateway has closed the stream and the call has finished."""
    url = phone.stream_url(order.url, order.parameters)
    async with net.session.ws_connect(url, headers=dict(phone.stream_headers(url))) as ws:
        for frame in phone.opening(order.parameters):
            await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
        events = await read_until(phone, ws, "mark")
        served = list(net.gateway.app[CALLS])
        if during is not None:
            await during()
        mark = phone.mark_played(str(events[-1].name))
        await (ws.send_bytes(mark) if isinstance(mark, bytes) else ws.send_str(mark))
        if hang_up:
            stop = phone.stop()
            await (ws.send_bytes(stop) if isinstance(stop, bytes) else ws.send_str(stop))
        events += await read_until(phone, ws, None)
    for call in served:
        await call.finished.wait()
    return events
