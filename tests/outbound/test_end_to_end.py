"""Outbound calls end to end: the campaign side (`GatewayClient`, `CampaignEngine`, `gateway
dial`, `gateway campaign`) against the real gateway app, whose PUBLIC_URL is its own loopback
address; a fake Twilio REST API on loopback records the Calls create requests, and this test
plays Twilio's network with what the gateway asked for: signed status callbacks to the
`StatusCallback` it gave, the signed voice webhook to its `Url`, and the media stream the
TwiML names, opened by `TwilioPhone` — the Live emulator plays the agent.

Nothing sleeps to synchronise: the Twilio side waits on the fake REST API's condition, the
campaign runs on a virtual clock whose every sleep lets Twilio's network take one step."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from gateway.agents.config import load_agents
from gateway.live.client import LiveConnector
from gateway.live.emulator.server import LiveEmulator
from gateway.outbound.campaign import CampaignAborted, CampaignEngine, CampaignSettings
from gateway.outbound.campaign_rules import (
    CallingWindow,
    RetryPolicy,
    load_do_not_call,
    load_numbers,
)
from gateway.outbound.campaign_store import CampaignStore
from gateway.outbound.client import (
    NON_TERMINAL_STATES,
    TERMINAL_STATES,
    ApiError,
    CallRecord,
    GatewayClient,
    PlaceRequest,
)
from gateway.outbound.states import FINAL_STATES, CallState
from gateway.recording.recorder import RECORDINGS
from gateway.server import CALLS, create_app
from gateway.settings import load_settings
from gateway.telephony.phone import PhoneEvent, StreamOrder
from gateway.telephony.twilio_caller import TwilioPhone
from tests.outbound.test_campaign_fakes import START, FakeClock
from tests.outbound.test_outbound_calls_harness import (
    ACCOUNT_SID,
    API_TOKEN,
    AUTH_TOKEN,
    LINE,
    SALES_YAML,
    FakeTwilioCalls,
    RestCall,
    read_until,
    write_agents,
)

T = TypeVar("T")
ANA = "+15557770001"
BO = "+15557770002"
CY = "+15557770003"
VARIABLES = {"first_name": "Ana", "topic": "your order"}
CONTRACT_FIELDS = {
    "id", "state", "agent", "to", "from", "carrier", "variables", "created_at",
    "carrier_call_id", "end_reason", "answered_by", "duration_s", "recording",
}  # fmt: skip
"""README's call object."""


def test_the_client_knows_every_state_the_server_reports() -> None:
    assert NON_TERMINAL_STATES | TERMINAL_STATES == {state.value for state in CallState}
    assert TERMINAL_STATES == {state.value for state in FINAL_STATES}


# ---------------------------------------------------------------------- the gateway


@dataclass
class Gateway:
    """The real app on loopback (PUBLIC_URL = its own address), its Live emulator, the fake
    Twilio REST API it places calls with."""

    url: str
    app: web.Application
    emulator: LiveEmulator
    twilio: FakeTwilioCalls
    recordings: Path


@contextlib.asynccontextmanager
async def real_gateway(
    tmp_path: Path, *, agents: dict[str, str] | None = None, **overrides: Any
) -> AsyncIterator[Gateway]:
    twilio = FakeTwilioCalls()
    emulator = LiveEmulator(speed=200.0)
    twilio_url = await twilio.start()
    live_url = await emulator.start("127.0.0.1", 0)
    folder = tmp_path / "agents"
    folder.mkdir()
    write_agents(folder, sales=SALES_YAML, **(agents or {}))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))  # bound before the settings: PUBLIC_URL is its address
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    recordings = tmp_path / "recordings"
    fields: dict[str, Any] = {
        "live_backend": "emulator",
        "live_url": live_url,
        "data_dir": str(tmp_path / "data"),
        "record_calls": "off",
        "recordings_dir": str(recordings),
        "public_url": url,
        "api_token": API_TOKEN,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_api_base_url": twilio_url,
        **overrides,
    }
    settings = load_settings(env_file=None, **fields)
    app = create_app(settings, load_agents(folder), LiveConnector(settings))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, listener).start()
    try:
        yield Gateway(url, app, emulator, twilio, recordings)
    finally:
        await runner.cleanup()
        await emulator.stop()
        await twilio.stop()


# ---------------------------------------------------------------------- Twilio's network


@dataclass
class PlacedByTwilio:
    """One Calls create the fake REST API accepted: what the gateway asked, the SID given."""

    request: RestCall
    call_sid: str

    @property
    def to(self) -> str:
        return self.request.one("To")

    def form(self, **fields: str) -> dict[str, str]:
        return {
            "CallSid": self.call_sid,
            "AccountSid": ACCOUNT_SID,
            "From": self.request.one("From"),
            "To": self.to,
            "Direction": "outbound-api",
            **fields,
        }


@dataclass
class Heard:
    """What the callee got on the media stream."""

    events: list[PhoneEvent]

    @property
    def audio_bytes(self) -> int:
        return sum(len(e.audio) for e in self.events if e.kind == "media")


@dataclass
class TwilioNetwork:
    """Twilio's side of the calls the gateway places: it sends what Twilio would, where the
    Calls create said, signed with the account's auth token."""

    gateway: Gateway
    session: aiohttp.ClientSession
    validator: RequestValidator = field(default_factory=lambda: RequestValidator(AUTH_TOKEN))

    def placed(self) -> list[PlacedByTwilio]:
        creates = [
            r for r in self.gateway.twilio.requests
            if r.method == "POST" and r.path.endswith("/Calls.json")
        ]
        sids = self.gateway.twilio.created  # one per create answered (none while failing)
        return [PlacedByTwilio(r, sid) for r, sid in zip(creates, sids, strict=False)]

    async def wait_placed(self, count: int) -> list[PlacedByTwilio]:
        await self.gateway.twilio.wait_requests(count)
        return self.placed()

    async def _post(self, url: str, form: dict[str, str]) -> aiohttp.ClientResponse:
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, form)}
        async with self.session.post(url, data=form, headers=headers) as response:
            await response.read()
            return response

    async def status(self, call: PlacedByTwilio, call_status: str, **fields: str) -> int:
        """A status callback to the call's StatusCallback; the HTTP status answered."""
        url = call.request.one("StatusCallback")
        response = await self._post(url, call.form(CallStatus=call_status, **fields))
        return response.status

    async def answer(self, call: PlacedByTwilio, answered_by: str) -> tuple[str, str]:
        """The callee picked up: the voice webhook to the call's Url (with AMD's verdict);
        the answer's content type and TwiML."""
        url = call.request.one("Url")
        form = call.form(CallStatus="in-progress", AnsweredBy=answered_by)
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, form)}
        async with self.session.post(url, data=form, headers=headers) as response:
            assert response.status == 200, await response.text()
            return response.content_type, await response.text()

    async def converse(self, call: PlacedByTwilio) -> tuple[StreamOrder, Heard]:
        """A person answers, hears the agent's greeting to its end and hangs up; returns once
        the gateway has finished the call (its observers ran)."""
        phone = TwilioPhone(AUTH_TOKEN, ACCOUNT_SID, call_sid=call.call_sid)
        order = phone.read_answer(*await self.answer(call, "human"))
        assert order.url == self.gateway.url.replace("http://", "ws://") + "/media"
        async with self.session.ws_connect(
            order.url, headers=dict(phone.stream_headers(order.url))
        ) as ws:
            for frame in phone.opening(order.parameters):
                await ws.send_str(str(frame))
            events = await read_until(phone, ws, "mark")
            calls = list(self.gateway.app[CALLS])
            await ws.send_str(str(phone.mark_played(events[-1].name)))  # the greeting played
            await ws.send_str(str(phone.stop()))  # and the callee hangs up
            events += await read_until(phone, ws, None)
        for served in calls:
            await served.finished.wait()
        return order, Heard(events)



@contextlib.asynccontextmanager
async def twilio_network(gateway: Gateway) -> AsyncIterator[TwilioNetwork]:
    async with aiohttp.ClientSession() as session:
        yield TwilioNetwork(gateway, session)


async def first(work: Awaitable[T], process: asyncio.Task[tuple[int, str, str]]) -> T:
    """`work`'s result, unless `process` ends first (then its output is the failure)."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task, process}, return_when=asyncio.FIRST_COMPLETED)
    if task not in done:
        task.cancel()
        raise AssertionError(f"the command ended first: {process.result()}")
    return task.result()


# ---------------------------------------------------------------------- a. one call


async def test_a_call_placed_by_the_client_is_answered_by_a_person_and_completes(
    tmp_path: Path,
) -> None:
    async with (
        real_gateway(tmp_path, record_calls="all") as gw,
        twilio_network(gw) as twilio,
        GatewayClient(gw.url, API_TOKEN) as client,
    ):
        placed = await client.place(PlaceRequest(agent="sales", to=ANA, variables=VARIABLES))
        [call] = twilio.placed()
        assert set(placed.raw) == CONTRACT_FIELDS
        assert placed.id.startswith("oc_") and placed.state == "queued"
        assert (placed.agent, placed.to, placed.from_, placed.carrier) == (
            "sales", ANA, LINE, "twilio",
        )  # fmt: skip
        assert placed.variables == VARIABLES
        assert placed.carrier_call_id == call.call_sid
        assert placed.created_at is not None
        assert datetime.fromisoformat(placed.created_at).tzinfo is not None
        assert (placed.end_reason, placed.answered_by, placed.duration_s) == (None, None, None)
        assert call.request.one("Url") == f"{gw.url}/twilio/voice?outbound={placed.id}"
        assert call.request.one("StatusCallback") == f"{gw.url}/twilio/status?outbound={placed.id}"
        assert (await client.get(placed.id)).state == "queued"

        assert await twilio.status(call, "initiated") == 204
        assert (await client.get(placed.id)).state == "queued"
        assert await twilio.status(call, "ringing") == 204
        assert (await client.get(placed.id)).state == "ringing"

        order, heard = await twilio.converse(call)
        assert order.parameters["outbound"] == placed.id
        assert heard.audio_bytes > 0  # the greeting was spoken to the callee
        [setup] = gw.emulator.setups
        assert "You are calling Ana about your order." in str(setup)
        assert "Inbound: help whoever calls." not in str(setup)
        assert "Hi Ana, this is Acme about your order." in gw.emulator.client_texts[0]
        assert "{{" not in str(setup) + gw.emulator.client_texts[0]
        during = await client.get(placed.id)
        assert (during.state, during.answered_by) == ("in-progress", "human")

        assert await twilio.status(call, "in-progress") == 204
        assert await twilio.status(call, "completed", CallDuration="42") == 204
        await gw.app[RECORDINGS].wait_idle()
        ended = await client.get(placed.id)
    assert ended.state == "completed" and ended.terminal
    assert ended.duration_s == 42.0
    assert ended.answered_by == "human"
    assert ended.end_reason == "caller_hung_up"
    assert ended.recording is not None and ended.recording.endswith(".wav")
    wav = Path(ended.recording)
    assert wav.parent == gw.recordings and call.call_sid in wav.name
    assert wav.name in os.listdir(gw.recordings)


async def test_the_client_sees_the_apis_refusals_with_their_fields(tmp_path: Path) -> None:
    async with real_gateway(tmp_path) as gw, twilio_network(gw) as twilio:
        async with GatewayClient(gw.url, "not-the-api-token-at-all") as wrong:
            try:
                await wrong.place(PlaceRequest(agent="sales", to=ANA, variables=VARIABLES))
                raise AssertionError("a wrong token placed a call")
            except ApiError as exc:
                assert (exc.status, exc.field) == (401, "Authorization")
        async with GatewayClient(gw.url, None) as anonymous:
            try:
                await anonymous.get("oc_" + "0" * 24)
                raise AssertionError("no token, yet an answer")
            except ApiError as exc:
                assert (exc.status, exc.field) == (401, "Authorization")
        async with GatewayClient(gw.url, API_TOKEN) as client:
            refusals: list[tuple[int, str | None]] = []
            for request in (
                PlaceRequest(agent="sales", to="5557770001", variables=VARIABLES),
                PlaceRequest(agent="nobody", to=ANA, variables=VARIABLES),
                PlaceRequest(agent="sales", to=ANA, variables={"first_name": "Ana"}),
                PlaceRequest(agent="sales", to=ANA, carrier="pigeon", variables=VARIABLES),
            ):
                try:
                    await client.place(request)
                    raise AssertionError(f"placed {request}")
                except ApiError as exc:
                    refusals.append((exc.status, exc.field))
            assert refusals == [(400, "to"), (400, "agent"), (422, "variables"), (400, "carrier")]
            try:
                await client.get("oc_" + "0" * 24)
                raise AssertionError("an unknown call was found")
            except ApiError as exc:
                assert (exc.status, exc.field) == (404, "id")
            gw.twilio.fail_with = 400  # Twilio refuses the number
            try:
                await client.place(PlaceRequest(agent="sales", to=ANA, variables=VARIABLES))
                raise AssertionError("Twilio refused, yet a call")
            except ApiError as exc:
                assert exc.status == 502 and "Invalid 'To' Phone Number" in exc.message
            gw.twilio.fail_with = None
            assert len(twilio.placed()) == 0  # only the refused request reached Twilio
            assert len(gw.twilio.requests) == 1


async def test_the_client_hangs_up_a_ringing_call_through_twilio(tmp_path: Path) -> None:
    async with (
        real_gateway(tmp_path) as gw,
        twilio_network(gw) as twilio,
        GatewayClient(gw.url, API_TOKEN) as client,
    ):
        placed = await client.place(PlaceRequest(agent="sales", to=ANA, variables=VARIABLES))
        [call] = twilio.placed()
        assert await twilio.status(call, "ringing") == 204
        hung_up = await client.hangup(placed.id)
        assert hung_up is not None and hung_up.state == "ringing"
        update = gw.twilio.requests[-1]
        assert update.path.endswith(f"/Calls/{call.call_sid}.json")
        assert update.one("Status") == "completed"
        assert await twilio.status(call, "canceled") == 204
        ended = await client.get(placed.id)
    assert (ended.state, ended.end_reason, ended.terminal) == ("canceled", "api_hang_up", True)


# ---------------------------------------------------------------------- b. a campaign


SCRIPTS: dict[str, list[list[str]]] = {
    ANA: [["ringing", "answer", "completed"]],
    BO: [["ringing", "busy"], ["ringing", "answer", "completed"]],
}
"""Per number, what Twilio's network does on each attempt, one step per campaign sleep."""


@dataclass
class ScriptedTwilio:
    network: TwilioNetwork
    clock: FakeClock
    scripts: dict[str, list[list[str]]]
    running: dict[str, list[str]] = field(default_factory=dict)
    """CallSid → the steps left."""
    seen: int = 0
    created_at: dict[str, datetime] = field(default_factory=dict)
    """CallSid → the virtual time its Calls create was seen."""

    async def step(self) -> None:
        placed = self.network.placed()
        for index, call in enumerate(placed[self.seen:], start=self.seen):
            attempt = sum(1 for c in placed[: index + 1] if c.to == call.to)
            self.running[call.call_sid] = list(self.scripts[call.to][attempt - 1])
            self.created_at[call.call_sid] = self.clock.now()
        self.seen = len(placed)
        by_sid = {call.call_sid: call for call in placed}
        for sid, steps in list(self.running.items()):
            if not steps:
                del self.running[sid]
                continue
            action, call = steps.pop(0), by_sid[sid]
            if action == "answer":
                _, twiml = await self.network.answer(call, "human")
                assert "<Connect>" in twiml
                assert await self.network.status(call, "in-progress") == 204
            elif action == "completed":
                assert await self.network.status(call, "completed", CallDuration="30") == 204
            else:
                assert await self.network.status(call, action, CallDuration="0") == 204


class TwilioClock(FakeClock):
    """Virtual time; each sleep lets Twilio's network take one step first."""

    twilio: ScriptedTwilio

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        await self.twilio.step()


async def test_a_campaign_runs_against_the_real_api(tmp_path: Path) -> None:
    numbers = tmp_path / "numbers.csv"
    numbers.write_text(
        "to,first_name,topic\n"
        f"{ANA},Ana,your order\n"
        "+1 (555) 777-0002,Bo,your invoice\n"
        f"{CY},Cy,your parcel\n"
    )
    dnc = tmp_path / "dnc.txt"
    dnc.write_text("# asked not to be called\n+1 555 777 0003\n")
    clock = TwilioClock(START)
    settings = CampaignSettings(
        agent="sales",
        calls_per_minute=10,
        max_concurrent=2,
        window=CallingWindow.parse("09:00-21:00"),
        default_timezone="Europe/London",
        retry=RetryPolicy(2, 600.0),
        do_not_call=load_do_not_call(dnc),
        poll_interval_s=2.0,
    )
    async with (
        real_gateway(tmp_path) as gw,
        twilio_network(gw) as network,
        GatewayClient(gw.url, API_TOKEN) as client,
    ):
        clock.twilio = ScriptedTwilio(network, clock, SCRIPTS)
        loaded = load_numbers(numbers, default_timezone=settings.default_timezone)
        store = CampaignStore.open(tmp_path / "numbers.sqlite", loaded, now=clock.now())
        status = await CampaignEngine(store, settings, client, clock).run()
        store.write_results(tmp_path / "results.csv")
        store.close()
        placed = network.placed()
        records = {c.call_sid: await client.get(_outbound_id(c)) for c in placed}
    assert status.done == 3 and status.in_flight == 0
    assert status.outcomes == {"answered": 2, "do-not-call": 1}

    # Twilio was asked exactly: Ana once, Bo twice (busy, then the retry), Cy never.
    assert [c.to for c in placed] == [ANA, BO, BO]
    assert Counter(r.method for r in gw.twilio.requests) == Counter({"POST": 3})
    for call in placed:
        assert call.request.one("From") == LINE
        assert call.request.one("MachineDetection") == "DetectMessageEnd"
    first_bo, retry_bo = (c.call_sid for c in placed[1:])
    waited = clock.twilio.created_at[retry_bo] - clock.twilio.created_at[first_bo]
    assert waited >= timedelta(seconds=600)

    with (tmp_path / "results.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    ana, bo, cy = rows
    assert (ana["line"], ana["number"], ana["outcome"], ana["state"]) == (
        "2", ANA, "answered", "completed",
    )  # fmt: skip
    assert (ana["duration_s"], ana["attempts"], ana["answered_by"]) == ("30", "1", "human")
    assert ana["end_reason"] == "completed"  # no media stream: Twilio's own status
    assert ana["call_ids"] == records[placed[0].call_sid].id
    assert (bo["number"], bo["outcome"], bo["state"], bo["attempts"]) == (
        BO, "answered", "completed", "2",
    )  # fmt: skip
    assert bo["call_ids"].split(";") == [records[first_bo].id, records[retry_bo].id]
    assert records[first_bo].state == "busy" and records[retry_bo].state == "completed"
    assert (cy["number"], cy["outcome"], cy["attempts"], cy["call_ids"]) == (
        CY, "do-not-call", "0", "",
    )  # fmt: skip
    assert (ana["topic"], bo["topic"], cy["topic"]) == ("your order", "your invoice", "your parcel")


def _outbound_id(call: PlacedByTwilio) -> str:
    return call.request.one("Url").rsplit("outbound=", 1)[1]


async def test_a_campaign_stops_when_the_gateway_refuses_its_agent(tmp_path: Path) -> None:
    """A refusal every row would get (400 on `agent`) stops the campaign, resumable; it does
    not mark each row `rejected` in turn."""
    numbers = tmp_path / "numbers.csv"
    numbers.write_text(f"to,first_name,topic\n{ANA},Ana,x\n{BO},Bo,y\n")
    clock = FakeClock(START)
    settings = CampaignSettings(agent="nobody", window=CallingWindow.parse("00:00-24:00"))
    async with real_gateway(tmp_path) as gw, GatewayClient(gw.url, API_TOKEN) as client:
        loaded = load_numbers(numbers, default_timezone="UTC")
        store = CampaignStore.open(tmp_path / "numbers.sqlite", loaded, now=clock.now())
        try:
            await CampaignEngine(store, settings, client, clock).run()
            raise AssertionError("the campaign went on")
        except CampaignAborted as exc:
            assert "agent" in str(exc)
        assert all(row.status == "pending" for row in store.rows())
        store.close()
        assert gw.twilio.requests == []


# ---------------------------------------------------------------------- c. the commands


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("LIVE_", "GEMINI_", "GOOGLE_", "TWILIO_"))
        and k not in ("API_TOKEN", "GATEWAY_URL", "PUBLIC_URL")
    }
    return {**env, **extra}


async def command(*args: str, cwd: Path, **env: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, cwd=cwd, env=_env(**env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_gateway_dial_wait_follows_a_real_call_to_its_end(tmp_path: Path) -> None:
    async with real_gateway(tmp_path) as gw, twilio_network(gw) as twilio:
        dial = asyncio.create_task(command(
            "dial", "--agent", "sales", "--to", ANA, "--var", "first_name=Ana",
            "--var", "topic=your order", "--wait", "--poll-s", "0.02", "--json",
            cwd=tmp_path, GATEWAY_URL=gw.url, API_TOKEN=API_TOKEN,
        ))
        [call] = await first(twilio.wait_placed(1), dial)
        outbound_id = _outbound_id(call)
        assert await twilio.status(call, "ringing") == 204
        await twilio.converse(call)
        assert await twilio.status(call, "completed", CallDuration="7") == 204
        code, out, err = await dial
    assert code == 0, err
    document = json.loads(out)
    assert set(document) == CONTRACT_FIELDS  # --json: the API's own call object
    record = CallRecord.from_json(document)
    assert (record.id, record.state, record.duration_s) == (outbound_id, "completed", 7.0)
    assert (record.answered_by, record.end_reason) == ("human", "caller_hung_up")
    assert record.carrier_call_id == call.call_sid
    assert err.splitlines()[0] == f"{outbound_id} queued"
    assert "Hi Ana, this is Acme about your order." in gw.emulator.client_texts[0]


async def test_gateway_dial_reports_the_real_apis_refusals(tmp_path: Path) -> None:
    async with real_gateway(tmp_path) as gw:
        wrong = await command(
            "dial", "--agent", "sales", "--to", ANA, cwd=tmp_path,
            GATEWAY_URL=gw.url, API_TOKEN="not-the-api-token-at-all",
        )
        missing = await command(
            "dial", "--agent", "sales", "--to", ANA, "--var", "first_name=Ana", cwd=tmp_path,
            GATEWAY_URL=gw.url, API_TOKEN=API_TOKEN,
        )
        assert gw.twilio.requests == []
    code, _, err = wrong
    assert code == 2
    assert "HTTP 401: Authorization: wrong bearer token (give --token or set API_TOKEN)" in err
    code, _, err = missing
    assert code == 2
    assert "HTTP 422: variables: agent 'sales' needs: topic" in err


async def test_gateway_campaign_calls_a_row_through_the_real_api(tmp_path: Path) -> None:
    numbers = tmp_path / "numbers.csv"
    numbers.write_text(f"to,first_name,topic\n{BO},Bo,your invoice\n")
    async with real_gateway(tmp_path) as gw, twilio_network(gw) as twilio:
        campaign = asyncio.create_task(command(
            "campaign", str(numbers), "--agent", "sales", "--window", "00:00-24:00",
            "--default-timezone", "UTC", "--poll-s", "0.02", "--calls-per-minute", "600",
            cwd=tmp_path, GATEWAY_URL=gw.url, API_TOKEN=API_TOKEN,
        ))
        [call] = await first(twilio.wait_placed(1), campaign)
        assert await twilio.status(call, "ringing") == 204
        await twilio.converse(call)
        assert await twilio.status(call, "completed", CallDuration="12") == 204
        code, out, err = await campaign
    assert code == 0, err
    assert "1/1 done: answered 1" in out
    with (tmp_path / "numbers.results.csv").open(newline="") as handle:
        [row] = list(csv.DictReader(handle))
    assert (row["outcome"], row["state"], row["duration_s"]) == ("answered", "completed", "12")
    assert (row["call_ids"], row["end_reason"]) == (_outbound_id(call), "caller_hung_up")
    assert len(gw.twilio.requests) == 1
