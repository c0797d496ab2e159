"""A gateway with outbound calls on, on loopback: a fake Twilio REST API (Calls create and
update), signed Twilio webhooks (voice, status) and media streams, a JSON receiver for
callback_url and post-call webhooks. No tests here: the outbound tests import it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from twilio.request_validator import RequestValidator

from gateway.agents.config import load_agents
from gateway.live.client import LiveConnector
from gateway.live.emulator.server import LiveEmulator
from gateway.server import CALLS, create_app
from gateway.settings import Settings, load_settings
from gateway.telephony.phone import CarrierPhone, PhoneEvent
from tests.loopback_http import LoopbackHttp
from tests.test_integration import PhoneCall
from tests.twilio_frames import TwilioCaller, parameters_of

API_TOKEN = "outbound-api-token-0123456789"
AUTH_TOKEN = "outbound-twilio-auth-token"
ACCOUNT_SID = "AC" + "4" * 32
PUBLIC_URL = "https://gw.example.test"
CALLEE = "+15557770001"
LINE = "+15550009999"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
_CREATE = re.compile(r"/2010-04-01/Accounts/(AC[0-9a-f]{32})/Calls\.json")
_UPDATE = re.compile(r"/2010-04-01/Accounts/(AC[0-9a-f]{32})/Calls/(CA[0-9a-f]{32})\.json")

SALES_YAML = """
    name: sales
    lines: ["+15550009999"]
    system_instruction: "Inbound: help whoever calls."
    greeting: "Thanks for calling Acme."
    outbound_instructions: "You are calling {{first_name}} about {{topic}}."
    outbound_greeting: "Hi {{first_name}}, this is Acme about {{topic}}."
"""
MESSAGE_YAML = """
    name: reminder
    system_instruction: "Remind people of appointments."
    outbound_greeting: "Hello {{first_name}}, a reminder from Acme."
    voicemail: leave_message
    voicemail_message: "Hi {{first_name}}, Acme here: please call us back."
"""


@dataclass(frozen=True)
class RestCall:
    method: str
    path: str
    form: list[tuple[str, str]]

    def one(self, name: str) -> str:
        [value] = [v for k, v in self.form if k == name]
        return value

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.form if k == name]


class FakeTwilioCalls(LoopbackHttp):
    """Twilio's Calls resource on loopback: create (answers a fresh CA… SID) and update."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[RestCall] = []
        self.fail_with: int | None = None
        self.created: list[str] = []
        self._changed = asyncio.Condition()

    async def wait_requests(self, count: int) -> list[RestCall]:
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.requests) >= count)
        return self.requests

    async def _handle(self, request: web.Request) -> web.Response:
        form = parse_qsl((await request.read()).decode(), keep_blank_values=True)
        self.requests.append(RestCall(request.method, request.path, form))
        async with self._changed:
            self._changed.notify_all()
        if self.fail_with is not None:
            body = {"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400}
            return web.json_response(body, status=self.fail_with)
        if (match := _CREATE.fullmatch(request.path)) is not None:
            sid = "CA" + secrets.token_hex(16)
            self.created.append(sid)
            fields = dict(form)
            body = {
                "sid": sid,
                "account_sid": match.group(1),
                "status": "queued",
                "to": fields.get("To"),
                "from": fields.get("From"),
            }
            return web.json_response(body, status=201)
        if (match := _UPDATE.fullmatch(request.path)) is not None:
            return web.json_response({"sid": match.group(2), "status": dict(form).get("Status")})
        return web.json_response({"message": "not found", "status": 404}, status=404)


class JsonReceiver(LoopbackHttp):
    """Records JSON POSTed to it (callback_url, post-call webhooks)."""

    METHOD = "POST"

    def __init__(self) -> None:
        super().__init__()
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._changed = asyncio.Condition()

    async def wait(self, path: str, count: int = 1) -> list[dict[str, Any]]:
        def got() -> list[dict[str, Any]]:
            return [body for p, body in self.received if p == path]

        async with self._changed:
            await self._changed.wait_for(lambda: len(got()) >= count)
        return got()

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append((request.path, json.loads(await request.read())))
        async with self._changed:
            self._changed.notify_all()
        return web.Response(status=204)


def sign(url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, form)}


@dataclass
class OutboundGateway:
    client: TestClient[Any, Any]
    emulator: LiveEmulator
    settings: Settings
    twilio: FakeTwilioCalls
    receiver: JsonReceiver
    calls: dict[str, str] = field(default_factory=dict)
    """Our id → the CallSid the fake Twilio gave it."""

    async def place(self, **body: Any) -> tuple[int, dict[str, Any]]:
        body.setdefault("agent", "sales")
        body.setdefault("to", CALLEE)
        response = await self.client.post("/calls", json=body, headers=AUTH)
        document: dict[str, Any] = await response.json()
        if response.status == 201:
            self.calls[document["id"]] = document["carrier_call_id"]
        return response.status, document

    async def get(self, call_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/calls/{call_id}", headers=AUTH)
        assert response.status == 200, await response.text()
        document: dict[str, Any] = await response.json()
        return document

    def form(self, call_id: str, **fields: str) -> dict[str, str]:
        return {
            "CallSid": self.calls[call_id],
            "AccountSid": ACCOUNT_SID,
            "From": LINE,
            "To": CALLEE,
            **fields,
        }

    async def status(
        self, call_id: str, call_status: str, *, token: str = AUTH_TOKEN, **fields: str
    ) -> int:
        """Twilio's signed status callback for `call_id`; the HTTP status we answered."""
        path = f"/twilio/status?outbound={call_id}"
        form = self.form(call_id, CallStatus=call_status, **fields)
        headers = sign(PUBLIC_URL + path, form, token)
        response = await self.client.post(path, data=form, headers=headers)
        return response.status

    async def voice(self, call_id: str, **fields: str) -> str:
        """Twilio's signed voice webhook for the answered call; the TwiML we answered."""
        path = f"/twilio/voice?outbound={call_id}"
        form = self.form(call_id, CallStatus="in-progress", **fields)
        response = await self.client.post(path, data=form, headers=sign(PUBLIC_URL + path, form))
        assert response.status == 200, await response.text()
        return await response.text()

    @contextlib.asynccontextmanager
    async def stream(self, call_id: str, twiml: str) -> AsyncIterator[PhoneCall]:
        """The media stream Twilio opens after `twiml`, started with its parameters; on exit
        the callee hangs up (`stop`) and the gateway has finished the call (observers ran)."""
        headers = sign("wss://gw.example.test/media", {})
        async with self.client.ws_connect("/media", headers=headers) as ws:
            phone = PhoneCall(ws)
            phone.twilio = TwilioCaller(call_sid=self.calls[call_id], account_sid=ACCOUNT_SID)
            await phone.start(**parameters_of(twiml))
            calls = list(self.client.app[CALLS])
            yield phone
            if not ws.closed:
                await phone.send(phone.twilio.stop())
                await phone.rest()
        for call in calls:
            await call.finished.wait()  # set in the step that runs its observers' call_ended


def write_agents(directory: Path, **agents: str) -> Path:
    for name, text in agents.items():
        (directory / f"{name}.yaml").write_text(textwrap.dedent(text))
    return directory


@contextlib.asynccontextmanager
async def outbound_gateway(
    tmp_path: Path, *, agents: dict[str, str] | None = None, **overrides: Any
) -> AsyncIterator[OutboundGateway]:
    """The gateway (API_TOKEN, PUBLIC_URL, Twilio credentials pointing at the fake) with the
    sales agent, or `agents` (name → YAML; `{receiver}` in it is the JSON receiver's URL)."""
    twilio = FakeTwilioCalls()
    receiver = JsonReceiver()
    emulator = LiveEmulator(speed=200.0)
    base_url = await twilio.start()
    receiver_url = await receiver.start()
    live_url = await emulator.start("127.0.0.1", 0)
    folder = tmp_path / "agents"
    folder.mkdir()
    texts = agents or {"sales": SALES_YAML}
    write_agents(folder, **{n: t.replace("{receiver}", receiver_url) for n, t in texts.items()})
    settings_fields: dict[str, Any] = {
        "live_backend": "emulator",
        "live_url": live_url,
        "record_calls": "off",
        "data_dir": str(tmp_path / "data"),
        "public_url": PUBLIC_URL,
        "api_token": API_TOKEN,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_api_base_url": base_url,
        **overrides,
    }
    settings = load_settings(env_file=None, **settings_fields)
    app = create_app(settings, load_agents(folder), LiveConnector(settings))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield OutboundGateway(client, emulator, settings, twilio, receiver)
    finally:
        await client.close()
        await emulator.stop()
        await twilio.stop()
        await receiver.stop()


async def read_until(
    phone: CarrierPhone, ws: aiohttp.ClientWebSocketResponse, kind: str | None
) -> list[PhoneEvent]:
    """Frames the phone read until one of `kind` (None: until the gateway closes the stream)."""
    got: list[PhoneEvent] = []
    while True:
        message = await ws.receive()
        if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            assert kind is None, f"stream closed while waiting for {kind}: {got[-3:]}"
            return got
        got.append(phone.read(message.data))
        if got[-1].kind == kind:
            return got
