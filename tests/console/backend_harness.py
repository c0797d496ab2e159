"""A gateway with the console on, for the console's backend tests: the real app and the Live
emulator on loopback, recordings in a temporary RECORDINGS_DIR, and helpers to read the
console's event stream and to make calls."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from gateway.agents.config import AgentSet
from gateway.agents.store import AgentStore
from gateway.live.client import LiveConnector
from gateway.live.emulator.server import LiveEmulator
from gateway.recording.recorder import RECORDINGS
from gateway.server import create_app
from gateway.settings import Settings, load_settings
from tests.caller_audio import silence_frames, speech_frames
from tests.gateway_harness import sample_agents
from tests.test_integration import PhoneCall
from tests.twilio_frames import TwilioCaller

TOKEN = "console-test-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
FIXTURES = Path(__file__).parent.parent / "recordings"
WAIT_S = 20.0


@dataclass
class ConsoleGateway:
    client: TestClient[Any, Any]
    emulator: LiveEmulator
    settings: Settings

    async def get_json(self, path: str, status: int = 200, **params: Any) -> Any:
        response = await self.client.get(path, headers=BEARER, params=params)
        assert response.status == status, (path, response.status, await response.text())
        return await response.json()

    async def recordings_written(self) -> None:
        await self.client.app[RECORDINGS].wait_idle()


@contextlib.asynccontextmanager
async def console_gateway(
    tmp_path: Path,
    *,
    agents: AgentSet | AgentStore | None = None,
    **overrides: Any,
) -> AsyncIterator[ConsoleGateway]:
    emulator = LiveEmulator(speed=50.0)
    url = await emulator.start("127.0.0.1", 0)
    settings_fields: dict[str, Any] = {
        "live_backend": "emulator",
        "live_url": url,
        "console_token": TOKEN,
        "recordings_dir": tmp_path / "recordings",
        "record_calls": "all",
        **overrides,
    }
    settings = load_settings(env_file=None, **settings_fields)
    app = create_app(settings, agents or sample_agents(), LiveConnector(settings))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield ConsoleGateway(client, emulator, settings)
    finally:
        await client.close()
        await emulator.stop()


def copy_fixture(name: str, directory: Path, stem: str | None = None) -> Path:
    """tests/recordings/<name>.jsonl.gz (and its .audio.gz) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{stem or name}.jsonl.gz"
    shutil.copyfile(FIXTURES / f"{name}.jsonl.gz", target)
    audio = FIXTURES / f"{name}.audio.gz"
    if audio.is_file():
        shutil.copyfile(audio, directory / f"{stem or name}.audio.gz")
    txt = FIXTURES / f"{name}.txt"
    if txt.is_file():
        shutil.copyfile(txt, directory / f"{stem or name}.txt")
    return target


class EventStream:
    """The console's Server-Sent Events, one parsed event at a time."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.comments: list[str] = []

    async def next(self) -> tuple[str, dict[str, Any]]:
        event, data = "message", ""
        while True:
            raw = await self.response.content.readline()
            assert raw, "the event stream ended"
            line = raw.decode().rstrip("\n")
            if not line:
                if data:
                    parsed = (event, json.loads(data))
                    self.seen.append(parsed)
                    return parsed
                continue
            if line.startswith(":"):
                self.comments.append(line)
                continue
            name, _, value = line.partition(": ")
            if name == "event":
                event = value
            elif name == "data":
                data += value

    async def until(
        self, event: str, check: Callable[[dict[str, Any]], bool] = lambda _: True
    ) -> dict[str, Any]:
        async with asyncio.timeout(WAIT_S):
            while True:
                name, data = await self.next()
                if name == event and check(data):
                    return data

    async def comment(self) -> str:
        async with asyncio.timeout(WAIT_S):
            while not self.comments:
                raw = await self.response.content.readline()
                assert raw, "the event stream ended"
                if raw.startswith(b":"):
                    self.comments.append(raw.decode().rstrip("\n"))
            return self.comments[-1]


@contextlib.asynccontextmanager
async def event_stream(gateway: ConsoleGateway) -> AsyncIterator[EventStream]:
    response = await gateway.client.get("/console/api/events", headers=BEARER)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    try:
        yield EventStream(response)
    finally:
        response.close()


def caller(number: int) -> TwilioCaller:
    """A phone with its own ids (call `number`)."""
    return TwilioCaller(stream_sid=f"MZ{number:032d}", call_sid=f"CA{number:032d}")


async def question_call(gateway: ConsoleGateway, number: int = 1, **params: str) -> None:
    """A whole call: the caller asks, the agent answers, the caller hangs up."""
    async with gateway.client.ws_connect("/media") as ws:
        phone = PhoneCall(ws)
        phone.twilio = caller(number)
        await phone.start(**params)
        await phone.say(speech_frames(600) + silence_frames(800))
        await phone.until("mark")
        await phone.send(phone.twilio.stop())
        await phone.rest()


async def barge_in_call(gateway: ConsoleGateway, number: int = 1, **params: str) -> None:
    """A call where the caller talks over the answer, then hangs up."""
    async with gateway.client.ws_connect("/media") as ws:
        phone = PhoneCall(ws)
        phone.twilio = caller(number)
        await phone.start(**params)
        await phone.say(speech_frames(600) + silence_frames(800))
        await phone.until("media")
        await phone.say(speech_frames(500, fundamental_hz=140))
        await phone.until("clear")
        await phone.say(silence_frames(800))
        await phone.until("mark")
        await phone.send(phone.twilio.stop())
        await phone.rest()
