"""The emulator's fault injection: drops, refusals, held setups, delays, and what it counts."""

from __future__ import annotations

import asyncio

import pytest

from gateway.live.client import LiveConnectionClosed, LiveConnector
from gateway.live.emulator.server import LiveEmulator
from gateway.live.protocol import SessionConfig
from tests.live.conftest import until


async def test_drop_cuts_the_socket_without_a_close_frame(
    emulator: LiveEmulator, connector: LiveConnector
) -> None:
    async with await connector.connect(SessionConfig(model="m")) as session:
        await emulator.drop_sessions()
        with pytest.raises(LiveConnectionClosed) as closed:
            await until(aiter(session), lambda m: False)
    assert closed.value.code == 1006
    await emulator.wait_closed_sessions(1)


async def test_refused_connections_get_http_503_then_connections_work_again(
    emulator: LiveEmulator, connector: LiveConnector
) -> None:
    emulator.refuse_next(2)
    for _ in range(2):
        with pytest.raises(LiveConnectionClosed, match="HTTP 503"):
            await connector.connect(SessionConfig(model="m"))
    async with await connector.connect(SessionConfig(model="m")):
        pass
    assert emulator.refused_connections == 2


async def test_refusal_by_close_code_after_the_setup(
    emulator: LiveEmulator, connector: LiveConnector
) -> None:
    emulator.refuse_next(1, close_code=1011)
    with pytest.raises(LiveConnectionClosed) as closed:
        await connector.connect(SessionConfig(model="m"))
    assert closed.value.code == 1011
    assert emulator.setups == []  # refused before the setup was accepted


async def test_held_setup_completes_only_when_released(
    emulator: LiveEmulator, connector: LiveConnector
) -> None:
    emulator.hold_setup()
    connecting = asyncio.create_task(connector.connect(SessionConfig(model="m")))
    await emulator.wait_opened_sessions(1)
    assert not connecting.done()
    emulator.release_setup()
    session = await connecting
    await session.close()


async def test_delays_slow_the_session_but_keep_it_working(
    emulator: LiveEmulator, connector: LiveConnector
) -> None:
    emulator.faults.setup_delay_s = 0.01
    emulator.faults.message_delay_s = 0.001
    async with await connector.connect(SessionConfig(model="m")) as session:
        await session.send({"realtimeInput": {"text": "hello"}})
        got = await until(aiter(session), lambda m: m.turn_complete)
    assert any(m.audio for m in got)


async def test_audio_is_counted_and_recorded_per_session(
    emulator: LiveEmulator, connector: LiveConnector
) -> None:
    emulator.record_audio = True
    async with await connector.connect(SessionConfig(model="m")) as session:
        for n in range(3):
            await session.send_audio(bytes([n, 0]) * 480, 24000)
        await emulator.wait_audio_chunks(3)
    assert emulator.audio_chunks_received == 3
    assert emulator.audio_bytes_received == 3 * 960
    assert emulator.received_audio == [(1, bytes([n, 0]) * 480) for n in range(3)]


async def test_resumed_handles_are_listed(emulator: LiveEmulator, connector: LiveConnector) -> None:
    async with await connector.connect(SessionConfig(model="m")) as first:
        update = await until(aiter(first), lambda m: m.resumption_handle is not None)
    handle = update[-1].resumption_handle
    assert handle is not None
    config = SessionConfig(model="m", resumption_handle=handle)
    async with await connector.connect(config):
        pass
    async with await connector.connect(SessionConfig(model="m", resumption_handle="nope")):
        pass
    assert emulator.resumed_handles == [handle]
