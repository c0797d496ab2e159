"""The real gateway on loopback with a scripted emulator and (optionally) a fake Twilio API."""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp.test_utils import TestClient, TestServer
from twilio.request_validator import RequestValidator

from gateway.agents.config import AgentSet, load_agents
from gateway.agents.store import AgentStore
from gateway.live.emulator.script import EmulatorScript, ScriptToolCall, ScriptTurn
from gateway.live.emulator.server import LiveEmulator
from gateway.server import create_app
from gateway.settings import Settings, load_settings
from tests.generations import DEFAULT_GENERATION, Generation
from tests.test_integration import PhoneCall
from tests.tools.fake_twilio import FakeTwilioApi
from tests.twilio_frames import ACCOUNT_SID, CALL_SID, stream_parameters

REST_ACCOUNT_SID = "AC" + "f" * 32
REST_AUTH_TOKEN = "rest-auth-token"
CALLER = "+15551230000"


@dataclass
class ToolGateway:
    client: TestClient[Any, Any]
    emulator: LiveEmulator
    settings: Settings
    twilio: FakeTwilioApi | None

    @contextlib.asynccontextmanager
    async def call(self, **params: str) -> AsyncIterator[PhoneCall]:
        """A connected, started phone call (params become the stream's customParameters)."""
        params.setdefault("from", CALLER)
        headers = {}
        token = self.settings.twilio_auth_token
        if token:  # as Twilio does: the voice webhook first, its binding in the stream's start
            query = f"?agent={quote(params['agent'])}" if "agent" in params else ""
            fields = {"From": params["from"], **({"To": params["to"]} if "to" in params else {})}
            issued = await stream_parameters(
                self.client, token=token, path=f"/twiml{query}", **fields
            )
            params = {**params, **issued}
            url = f"ws://127.0.0.1:{self.client.server.port}/media"
            headers["X-Twilio-Signature"] = RequestValidator(token).compute_signature(url, {})
        async with self.client.ws_connect("/media", headers=headers) as ws:
            phone = PhoneCall(ws)
            await phone.start(**params)
            yield phone


def script(
    *turns: tuple[str, dict[str, Any]], after_tool: str = "Done: {response}"
) -> EmulatorScript:
    """Caller turns 1, 2, … make the model call these tools, in order."""
    return EmulatorScript(
        turns=tuple(
            ScriptTurn(tool_call=ScriptToolCall(name=name, args=args), after_tool=after_tool)
            for name, args in turns
        )
    )


def write_agent(directory: Path, name: str, yaml_text: str, **files: str) -> Path:
    """`directory/name/agent.yaml` plus extra files (`tools_py=...` → tools.py)."""
    folder = directory / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "agent.yaml").write_text(textwrap.dedent(yaml_text))
    for filename, text in files.items():
        (folder / filename.replace("_py", ".py")).write_text(textwrap.dedent(text))
    return folder


@contextlib.asynccontextmanager
async def tool_gateway(
    agents: AgentSet | AgentStore | Path,
    emulator_script: EmulatorScript | None = None,
    *,
    data_dir: Path,
    twilio: FakeTwilioApi | None = None,
    api_key: bool = False,
    generation: Generation = DEFAULT_GENERATION,
    **overrides: Any,
) -> AsyncIterator[ToolGateway]:
    """Gateway + emulator (+ the fake Twilio API's URL and credentials when `twilio` is given),
    speaking `generation`'s model and dialect."""
    emulator = LiveEmulator(emulator_script, speed=200.0)
    url = await emulator.start("127.0.0.1", 0)
    if twilio is not None:
        overrides["twilio_api_base_url"] = await twilio.start()
        overrides["twilio_account_sid"] = REST_ACCOUNT_SID
        # The auth token signs Twilio's requests (and keys the call binding) either way; REST
        # authenticates with it, or with the API key when `api_key`.
        overrides.setdefault("twilio_auth_token", REST_AUTH_TOKEN)
        if api_key:
            overrides["twilio_api_key_sid"] = "SK" + "e" * 32
            overrides["twilio_api_key_secret"] = "api-key-secret"
    settings = load_settings(
        env_file=None,
        live_url=url,
        record_calls="off",
        data_dir=str(data_dir),
        **{**generation.settings_overrides(), **overrides},
    )
    if isinstance(agents, Path):
        agents = load_agents(agents, default_model=settings.model)
    app = create_app(settings, agents, generation.connector(settings))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield ToolGateway(client, emulator, settings, twilio)
    finally:
        await client.close()
        await emulator.stop()
        if twilio is not None:
            await twilio.stop()


__all__ = [
    "ACCOUNT_SID",
    "CALLER",
    "CALL_SID",
    "REST_ACCOUNT_SID",
    "REST_AUTH_TOKEN",
    "ToolGateway",
    "script",
    "tool_gateway",
    "write_agent",
]
