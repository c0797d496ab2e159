"""Calls that go silent end: no `start`, no media, no pongs, a caller who never speaks.

In-memory calls drive the event loop's clock; loopback calls use tiny timeouts and wait on
the stream closing, never on a sleep.
"""

from __future__ import annotations

import asyncio
import json
from functools import partial
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from gateway.agents.config import AgentConfig, AgentSet
from gateway.call.bridge import Call
from gateway.call.outcome import EndReason
from gateway.call.session_config import session_config_for
from gateway.server import CALLS
from gateway.telephony.twilio import TwilioCodec
from tests.caller_audio import silence_frames
from tests.fakes import FakeConnector, FakeTransport
from tests.gateway_harness import loopback_gateway
from tests.twilio_frames import TwilioCaller

CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


async def until_closed(ws: aiohttp.ClientWebSocketResponse) -> list[aiohttp.WSMessage]:
    """What the gateway sent until it closed the stream."""
    got = []
    async with asyncio.timeout(5):
        while (message := await ws.receive()).type not in CLOSED:
            got.append(message)
    return got


async def test_a_stream_without_media_ends_as_disconnected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    clock = [loop.time()]
    monkeypatch.setattr(loop, "time", lambda: clock[0])  # the test drives the loop's clock
    transport, caller, connector = FakeTransport(), TwilioCaller(), FakeConnector()
    call = Call(
        transport,
        TwilioCodec(),
        AgentSet.from_agents([AgentConfig(name="default")]),
        connector,
        partial(session_config_for, default_model="test-model"),
        carrier_idle_timeout_s=10.0,
    )
    transport.push(caller.connected())
    transport.push(caller.start())
    with capture_logs() as logs:
        task = asyncio.create_task(call.run())
        live = await connector.session()
        clock[0] += 9.0
        transport.push(caller.media(silence_frames(20)[0]))  # media 9 s in: still there
        await live.wait_audio(1)
        clock[0] += 2.0  # 11 s in: the first check finds media 2 s ago
        for _ in range(3):
            await asyncio.sleep(0)  # due timers run (the clock does not move)
        assert not task.done()
        clock[0] += 8.5  # 19.5 s in: 10.5 s without media
        assert await task is EndReason.CALLER_DISCONNECTED
    lost = [e for e in logs if e["event"] == "caller_disconnected"]
    assert [(e["reason"], e["call_sid"]) for e in lost] == [("carrier_idle", caller.call_sid)]


async def test_the_gateway_ends_a_call_whose_media_stops() -> None:
    async with loopback_gateway(carrier_idle_timeout_s=0.2) as gw:
        async with gw.client.ws_connect("/media") as ws:
            twilio = TwilioCaller()
            await ws.send_str(json.dumps(twilio.connected()))
            await ws.send_str(json.dumps(twilio.start()))
            await ws.send_str(json.dumps(twilio.media(silence_frames(20)[0])))
            await until_closed(ws)


async def test_a_stream_that_never_starts_is_closed_soon_and_frees_its_slot() -> None:
    async with loopback_gateway(start_timeout_s=0.2, max_concurrent_calls=1) as gw:
        twilio = TwilioCaller()
        async with gw.client.ws_connect("/media") as silent:
            await silent.send_str(json.dumps(twilio.connected()))  # and never `start`
            await until_closed(silent)
        await asyncio.gather(*(call.finished.wait() for call in gw.client.app[CALLS]))
        async with gw.client.ws_connect("/media") as ws:  # the one line is free again
            await ws.send_str(json.dumps(twilio.connected()))
            await ws.send_str(json.dumps(twilio.start()))
            await gw.emulator.wait_opened_sessions(1)
            await ws.send_str(json.dumps(twilio.stop()))
            await until_closed(ws)


async def test_a_peer_that_stops_answering_pings_is_closed() -> None:
    async with loopback_gateway(media_heartbeat_s=0.1, carrier_idle_timeout_s=0) as gw:
        async with gw.client.ws_connect("/media", autoping=False) as ws:
            twilio = TwilioCaller()
            await ws.send_str(json.dumps(twilio.connected()))
            await ws.send_str(json.dumps(twilio.start()))
            got = await until_closed(ws)  # pings go unanswered
            assert [m.type for m in got] == [aiohttp.WSMsgType.PING]


async def test_a_peer_that_answers_pings_stays_connected() -> None:
    async with loopback_gateway(media_heartbeat_s=0.1, carrier_idle_timeout_s=0) as gw:
        async with gw.client.ws_connect("/media", autoping=False) as ws:
            twilio = TwilioCaller()
            await ws.send_str(json.dumps(twilio.connected()))
            await ws.send_str(json.dumps(twilio.start()))
            async with asyncio.timeout(5):
                for _ in range(3):
                    message = await ws.receive()
                    assert message.type is aiohttp.WSMsgType.PING
                    await ws.pong(message.data)
            assert not ws.closed
            await ws.send_str(json.dumps(twilio.stop()))
            await until_closed(ws)


async def test_a_silent_caller_is_ended_although_each_reminder_is_interrupted() -> None:
    """The emulator (like Live) sends `interrupted` when our reminder cuts the model short;
    the caller said nothing, so the goodbye still comes after one reminder."""
    agents = AgentSet.from_agents(
        [AgentConfig(name="default", idle_timeout_s=0.2, idle_reminder="Still there?",
                     idle_goodbye="Say goodbye.")]
    )  # fmt: skip
    with capture_logs() as logs:
        async with loopback_gateway(agents=agents, carrier_idle_timeout_s=0) as gw:
            async with gw.client.ws_connect("/media") as ws:
                twilio = TwilioCaller()
                await ws.send_str(json.dumps(twilio.connected()))
                await ws.send_str(json.dumps(twilio.start()))
                interrupter = asyncio.create_task(interrupt_every_reminder(gw.emulator))
                try:
                    async with asyncio.timeout(10):
                        while (message := await ws.receive()).type not in CLOSED:
                            frame: dict[str, Any] = json.loads(message.data)
                            if frame["event"] == "mark":  # heard at once
                                await ws.send_str(json.dumps(twilio.mark(frame["mark"]["name"])))
                finally:
                    interrupter.cancel()
            texts = gw.emulator.client_texts
    assert texts == ["Still there?", "Say goodbye."]
    ended = [e["reason"] for e in logs if e["event"] == "call_ended"]
    assert ended == ["idle_timeout"]


async def interrupt_every_reminder(emulator: Any) -> None:
    seen = 0
    while True:
        await emulator.wait_client_texts(lambda texts, n=seen: texts.count("Still there?") > n)
        seen += 1
        await emulator.interrupt_sessions()
