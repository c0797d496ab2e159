"""A gateway on loopback for tests: the real app and the Live emulator, both on 127.0.0.1."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from gateway.agents.config import AgentConfig, AgentSet
from gateway.call.ports import LiveConnectorLike
from gateway.live.client import LiveConnector
from gateway.live.emulator.server import LiveEmulator
from gateway.server import create_app
from gateway.settings import Settings, load_settings


@dataclass
class LoopbackGateway:
    client: TestClient[Any, Any]
    emulator: LiveEmulator
    settings: Settings

    @property
    def port(self) -> int:
        port = self.client.server.port
        assert port is not None
        return port


def sample_agents() -> AgentSet:
    return AgentSet.from_agents(
        [
            AgentConfig(name="default", system_instruction="Be brief."),
            AgentConfig(name="greeter", lines=("+15550002222",), greeting="Welcome to Acme!"),
        ]
    )


@contextlib.asynccontextmanager
async def loopback_gateway(
    *,
    agents: AgentSet | None = None,
    connector: LiveConnectorLike | None = None,
    speed: float = 50.0,
    **overrides: Any,
) -> AsyncIterator[LoopbackGateway]:
    """The gateway app (no recordings) bridged to a fresh emulator; `connector` defaults to a
    plain `LiveConnector` (no resumption) so Live failures are visible to the call."""
    emulator = LiveEmulator(speed=speed)
    url = await emulator.start("127.0.0.1", 0)
    settings = load_settings(
        env_file=None, live_backend="emulator", live_url=url, record_calls="off", **overrides
    )
    app = create_app(settings, agents or sample_agents(), connector or LiveConnector(settings))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield LoopbackGateway(client, emulator, settings)
    finally:
        await client.close()
        await emulator.stop()
