"""Outbound calls on SignalWire, end to end on loopback: `POST /calls` with `carrier:
"signalwire"` places the call with a fake SignalWire LaML REST API (Twilio's Calls create on
the space, basic auth project ID : API token); this test plays SignalWire with what the gateway
asked for — status callbacks and the voice webhook signed with X-SignalWire-Signature, the
media stream opened by `SignalWirePhone` — and the Live emulator plays the agent."""

from __future__ import annotations

import base64
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl
from xml.etree import ElementTree

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from gateway.outbound.client import ApiError, GatewayClient, PlaceRequest
from gateway.recording.recorder import RECORDINGS
from gateway.server import CALLS
from gateway.telephony.signalwire_phone import SignalWirePhone
from tests.loopback_http import LoopbackHttp
from tests.outbound.test_end_to_end import ANA, VARIABLES, Gateway, real_gateway
from tests.outbound.test_outbound_calls_harness import (
    API_TOKEN,
    AUTH_TOKEN,
    LINE,
    RestCall,
    read_until,
)

PROJECT = "0d0c6d4c-2d0e-4f5e-9a55-7c1f3f0b7a11"
SW_TOKEN = "PTsignalwire-api-token-0123"
SIGNING_KEY = "PSKsignalwire-signing-key-0123"
_CREATE = re.compile(r"/api/laml/2010-04-01/Accounts/([0-9a-f-]{36})/Calls\.json")
_UPDATE = re.compile(r"/api/laml/2010-04-01/Accounts/([0-9a-f-]{36})/Calls/([0-9a-f-]{36})\.json")


class FakeSignalWire(LoopbackHttp):
    """A SignalWire space's LaML Calls resource on loopback: create (a fresh UUID) and
    update; refuses (401) requests without the project's basic auth."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[RestCall] = []
        self.created: list[str] = []

    async def _handle(self, request: web.Request) -> web.Response:
        form = parse_qsl((await request.read()).decode(), keep_blank_values=True)
        self.requests.append(RestCall(request.method, request.path, form))
        expected = "Basic " + base64.b64encode(f"{PROJECT}:{SW_TOKEN}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"message": "Unauthorized", "status": 401}, status=401)
        if (match := _CREATE.fullmatch(request.path)) is not None:
            call_id = str(uuid.uuid4())
            self.created.append(call_id)
            return web.json_response(
                {"sid": call_id, "account_sid": match.group(1), "status": "queued"}, status=201
            )
        if (match := _UPDATE.fullmatch(request.path)) is not None:
            return web.json_response({"sid": match.group(2), "status": dict(form).get("Status")})
        return web.json_response({"message": "not found", "status": 404}, status=404)


@dataclass
class SignalWireNetwork:
    gateway: Gateway
    space: FakeSignalWire
    session: aiohttp.ClientSession
    validator: RequestValidator = field(default_factory=lambda: RequestValidator(SIGNING_KEY))

    def create(self, index: int = -1) -> tuple[RestCall, str]:
        creates = [r for r in self.space.requests if r.path.endswith("/Calls.json")]
        return creates[index], self.space.created[index]

    def form(self, create: RestCall, call_id: str, **fields: str) -> dict[str, str]:
        return {
            "CallSid": call_id,
            "AccountSid": PROJECT,
            "From": create.one("From"),
            "To": create.one("To"),
            "Direction": "outbound-api",
            "ApiVersion": "2010-04-01",
            **fields,
        }

    async def post(
        self, url: str, form: dict[str, str], *, signed: bool = True, header: str | None = None
    ) -> tuple[int, str]:
        headers = (
            {header or "X-SignalWire-Signature": self.validator.compute_signature(url, form)}
            if signed else {}
        )
        async with self.session.post(url, data=form, headers=headers) as response:
            return response.status, await response.text()

    async def status(self, create: RestCall, call_id: str, call_status: str, **fields: str) -> int:
        url = create.one("StatusCallback")
        status, _ = await self.post(url, self.form(create, call_id, CallStatus=call_status,
                                                   **fields))
        return status

    async def answer(self, create: RestCall, call_id: str, answered_by: str) -> str:
        url = create.one("Url")
        form = self.form(create, call_id, CallStatus="in-progress", AnsweredBy=answered_by)
        status, cxml = await self.post(url, form)
        assert status == 200, cxml
        return cxml


@contextlib.asynccontextmanager
async def signalwire_gateway(
    tmp_path: Path, **overrides: str
) -> AsyncIterator[SignalWireNetwork]:
    space = FakeSignalWire()
    space_url = await space.start()
    try:
        async with (
            real_gateway(
                tmp_path,
                signalwire_space_url=space_url,
                signalwire_project_id=PROJECT,
                signalwire_api_token=SW_TOKEN,
                signalwire_signing_key=SIGNING_KEY,
                **overrides,
            ) as gw,
            aiohttp.ClientSession() as session,
        ):
            yield SignalWireNetwork(gw, space, session)
    finally:
        await space.stop()



async def test_a_signalwire_call_is_placed_answered_by_a_person_and_completes(
    tmp_path: Path,
) -> None:
    async with (
        signalwire_gateway(tmp_path, record_calls="all") as sw,
        GatewayClient(sw.gateway.url, API_TOKEN) as client,
    ):
        gw = sw.gateway
        placed = await client.place(
            PlaceRequest(agent="sales", to=ANA, carrier="signalwire", variables=VARIABLES)
        )
        create, call_id = sw.create()
        assert (placed.carrier, placed.carrier_call_id, placed.state) == (
            "signalwire", call_id, "queued",
        )  # fmt: skip
        assert create.method == "POST"
        assert create.path == f"/api/laml/2010-04-01/Accounts/{PROJECT}/Calls.json"
        assert (create.one("To"), create.one("From")) == (ANA, LINE)
        assert create.one("Url") == f"{gw.url}/signalwire/voice?outbound={placed.id}"
        assert create.one("StatusCallback") == f"{gw.url}/signalwire/status?outbound={placed.id}"
        assert create.all("StatusCallbackEvent") == ["initiated", "ringing", "answered",
                                                     "completed"]
        assert create.one("MachineDetection") == "DetectMessageEnd"
        assert gw.twilio.requests == []  # not Twilio's

        assert await sw.status(create, call_id, "ringing") == 204
        assert (await client.get(placed.id)).state == "ringing"

        cxml = await sw.answer(create, call_id, "human")
        phone = SignalWirePhone(SIGNING_KEY, PROJECT)
        phone.call_id = call_id
        order = phone.read_answer("application/xml", cxml)
        assert order.parameters["outbound"] == placed.id
        assert order.url == gw.url.replace("http://", "ws://") + "/signalwire/media"
        async with sw.session.ws_connect(
            order.url, headers=dict(phone.stream_headers(order.url))
        ) as ws:
            for frame in phone.opening(order.parameters):
                await ws.send_str(str(frame))
            events = await read_until(phone, ws, "mark")
            served = list(gw.app[CALLS])
            await ws.send_str(str(phone.mark_played(events[-1].name)))
            await ws.send_str(str(phone.stop()))
            events += await read_until(phone, ws, None)
        for call in served:
            await call.finished.wait()
        assert any(e.kind == "media" and e.audio for e in events)
        assert "You are calling Ana about your order." in str(gw.emulator.setups[0])
        assert "Hi Ana, this is Acme about your order." in gw.emulator.client_texts[0]

        assert await sw.status(create, call_id, "completed", CallDuration="15") == 204
        await gw.app[RECORDINGS].wait_idle()
        ended = await client.get(placed.id)
    assert ended.recording is not None and call_id in Path(ended.recording).name
    assert (ended.state, ended.duration_s, ended.answered_by, ended.end_reason) == (
        "completed", 15.0, "human", "caller_hung_up",
    )  # fmt: skip


async def test_signalwire_callbacks_must_be_signed_and_name_the_call(tmp_path: Path) -> None:
    async with (
        signalwire_gateway(tmp_path) as sw,
        GatewayClient(sw.gateway.url, API_TOKEN) as client,
    ):
        placed = await client.place(
            PlaceRequest(agent="sales", to=ANA, carrier="signalwire", variables=VARIABLES)
        )
        create, call_id = sw.create()
        url = create.one("StatusCallback")
        form = sw.form(create, call_id, CallStatus="busy")
        assert (await sw.post(url, form, signed=False))[0] == 403
        other = sw.form(create, str(uuid.uuid4()), CallStatus="busy")
        assert (await sw.post(url, other))[0] == 400  # another call's id
        unknown = url.replace(placed.id, "oc_" + "0" * 24)
        assert (await sw.post(unknown, form))[0] == 404
        # Twilio's route, signed with Twilio's token, cannot move a SignalWire call.
        twilio_url = url.replace("/signalwire/status", "/twilio/status")
        twilio = RequestValidator(AUTH_TOKEN).compute_signature(twilio_url, form)
        async with sw.session.post(
            twilio_url, data=form, headers={"X-Twilio-Signature": twilio}
        ) as response:
            assert response.status == 400
        twilio_voice = create.one("Url").replace("/signalwire/voice", "/twilio/voice")
        voice_form = sw.form(create, call_id, AnsweredBy="human")
        async with sw.session.post(
            twilio_voice,
            data=voice_form,
            headers={"X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(
                twilio_voice, voice_form
            )},
        ) as response:  # a SignalWire id is no Twilio CallSid: refused before the registry
            assert response.status == 400
        assert (await client.get(placed.id)).state == "queued"
        assert await sw.status(create, call_id, "busy", CallDuration="0") == 204
        ended = await client.get(placed.id)
    assert (ended.state, ended.end_reason) == ("busy", "busy")


async def test_a_signalwire_machine_is_hung_up_on_and_delete_hangs_up(tmp_path: Path) -> None:
    async with (
        signalwire_gateway(tmp_path) as sw,
        GatewayClient(sw.gateway.url, API_TOKEN) as client,
    ):
        machine = await client.place(
            PlaceRequest(agent="sales", to=ANA, carrier="signalwire", variables=VARIABLES)
        )
        create, call_id = sw.create()
        cxml = await sw.answer(create, call_id, "machine_end_beep")
        assert [e.tag for e in ElementTree.fromstring(cxml)] == ["Hangup"]
        assert (await client.get(machine.id)).state == "voicemail"
        assert await sw.status(create, call_id, "completed", CallDuration="4") == 204

        ringing = await client.place(
            PlaceRequest(agent="sales", to=ANA, carrier="signalwire", variables=VARIABLES)
        )
        create, call_id = sw.create()
        assert await sw.status(create, call_id, "ringing") == 204
        hung_up = await client.hangup(ringing.id)
        assert hung_up is not None and hung_up.state == "ringing"
        update = sw.space.requests[-1]
        assert update.path == f"/api/laml/2010-04-01/Accounts/{PROJECT}/Calls/{call_id}.json"
        assert update.one("Status") == "completed"
        assert await sw.status(create, call_id, "canceled") == 204
        machine_end = await client.get(machine.id)
        ringing_end = await client.get(ringing.id)
        assert sw.gateway.emulator.sessions_opened == 0
    assert (machine_end.state, machine_end.end_reason) == ("voicemail", "voicemail_hang_up")
    assert (ringing_end.state, ringing_end.end_reason) == ("canceled", "api_hang_up")


async def test_signalwire_refusing_the_call_is_a_502_and_unset_credentials_a_503(
    tmp_path: Path,
) -> None:
    for name in ("sw", "plain"):
        (tmp_path / name).mkdir()
    async with (
        signalwire_gateway(tmp_path / "sw") as sw,
        real_gateway(tmp_path / "plain") as plain,
    ):
        request = PlaceRequest(agent="sales", to=ANA, carrier="signalwire", variables=VARIABLES)
        async with GatewayClient(plain.url, API_TOKEN) as client:
            try:
                await client.place(request)
                raise AssertionError("placed without SignalWire credentials")
            except ApiError as exc:
                assert (exc.status, exc.field) == (503, "carrier")
                assert "SIGNALWIRE_SPACE_URL" in exc.message
        await sw.space.stop()  # the space is gone: SignalWire cannot be reached
        async with GatewayClient(sw.gateway.url, API_TOKEN) as client:
            try:
                await client.place(request)
                raise AssertionError("placed with no SignalWire")
            except ApiError as exc:
                assert exc.status == 502 and "cannot reach SignalWire" in exc.message
