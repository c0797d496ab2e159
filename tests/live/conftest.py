"""Fixtures for the Live tests: an emulator on loopback and a connector pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from gateway.live.client import LiveConnector, LiveSession
from gateway.live.emulator.server import LiveEmulator
from gateway.live.protocol import ServerMessage, SessionConfig
from gateway.settings import LiveBackend, Settings

FAST = 1000.0
"""Emulator speed for tests: replies stream ~1000x faster than real time."""


def emulator_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"live_backend": LiveBackend.EMULATOR, "live_url": None}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def emulator() -> AsyncIterator[LiveEmulator]:
    emu = LiveEmulator(speed=FAST, record_frames=True)
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
def connector(emulator: LiveEmulator) -> LiveConnector:
    return LiveConnector(emulator_settings(), url_override=emulator.url)


@pytest.fixture
async def open_session(
    connector: LiveConnector,
) -> AsyncIterator[Callable[..., Any]]:
    """`await open_session(**SessionConfig fields)` → a LiveSession closed after the test."""
    sessions: list[LiveSession] = []

    async def open_(**config: Any) -> LiveSession:
        config.setdefault("model", "gemini-test-model")
        session = await connector.connect(SessionConfig(**config))
        sessions.append(session)
        return session

    try:
        yield open_
    finally:
        for session in sessions:
            await session.close()


async def send_chunks(session: LiveSession, chunks: list[bytes], rate_hz: int = 24000) -> None:
    for chunk in chunks:
        await session.send_audio(chunk, rate_hz)


async def until(
    messages: AsyncIterator[ServerMessage], done: Callable[[ServerMessage], bool]
) -> list[ServerMessage]:
    """Messages up to and including the first one `done` accepts."""
    got: list[ServerMessage] = []
    async for message in messages:
        got.append(message)
        if done(message):
            return got
    raise AssertionError(f"session ended before the awaited message; got {got[-3:]}")


def turn_complete(message: ServerMessage) -> bool:
    return message.turn_complete
