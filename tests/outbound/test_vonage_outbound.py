"""Outbound calls on Vonage, end to end on loopback: `POST /calls` with `carrier: "vonage"`
places the call with a fake Vonage Voice API (create a call: JSON, an RS256 application JWT);
this test plays Vonage with what the gateway asked for — call events (JSON) and the answer
webhook signed as Vonage signs webhooks (an HS256 JWT with the payload's hash), the media
stream opened by `VonagePhone` — and the Live emulator plays the agent."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from gateway.outbound.client import GatewayClient, PlaceRequest
from gateway.telephony.vonage_phone import VonagePhone
from tests.outbound.carrier_network import (
    CarrierNetwork,
    carrier_gateway,
    refused,
    stream_greeting,
)
from tests.outbound.test_end_to_end import ANA, VARIABLES, real_gateway
from tests.outbound.test_outbound_calls_harness import API_TOKEN, LINE, MESSAGE_YAML
from tests.telephony.carrier_case import RestRequest
from tests.telephony.vonage_case import (
    APPLICATION_ID,
    PRIVATE_KEY_PEM,
    SIGNATURE_SECRET,
    jwt_claims,
    rest_reply,
)


class FakeVonage:
    """The Voice API: create answers a fresh call uuid (or `fail`); hang-ups are answered as
    the conformance suite's fake does; 401 without the application's JWT."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.fail: tuple[int, str] | None = None

    def reply(self, request: RestRequest) -> tuple[int, str]:
        claims = jwt_claims(request)
        if claims is None or claims.get("application_id") != APPLICATION_ID:
            return 401, json.dumps({"title": "Unauthorized", "detail": "bad JWT"})
        if request.method == "POST" and request.path == "/v1/calls":
            if self.fail is not None:
                return self.fail
            call_id = str(uuid.uuid4())
            self.created.append(call_id)
            return 201, json.dumps(
                {
                    "uuid": call_id,
                    "status": "started",
                    "direction": "outbound",
                    "conversation_uuid": f"CON-{uuid.uuid4()}",
                }
            )
        return rest_reply(request)


@contextlib.asynccontextmanager
async def vonage_gateway(
    tmp_path: Path, **kwargs: Any
) -> AsyncIterator[tuple[CarrierNetwork, FakeVonage]]:
    vonage = FakeVonage()

    def settings(base_url: str) -> dict[str, Any]:
        return {
            "vonage_signature_secret": SIGNATURE_SECRET,
            "vonage_application_id": APPLICATION_ID,
            "vonage_private_key": PRIVATE_KEY_PEM,
            "vonage_api_base_url": base_url,
        }

    async with carrier_gateway(tmp_path, vonage.reply, settings, **kwargs) as net:
        yield net, vonage


def create_body(net: CarrierNetwork, index: int = -1) -> dict[str, Any]:
    creates = [r for r in net.rest.requests if r.path == "/v1/calls"]
    body: dict[str, Any] = json.loads(creates[index].body)
    return body


def phone_for(call_id: str, secret: str = SIGNATURE_SECRET) -> VonagePhone:
    phone = VonagePhone(secret, APPLICATION_ID)
    phone.call_id = call_id
    return phone


async def event(
    net: CarrierNetwork, phone: VonagePhone, status: str, *, signed: bool = True, **fields: str
) -> int:
    """A call event to the event_url the gateway gave (JSON, a signed webhook)."""
    url = create_body(net)["event_url"][0]
    document = {
        "uuid": phone.call_id,
        "conversation_uuid": phone.conversation_id,
        "status": status,
        "direction": "outbound",
        "from": LINE.removeprefix("+"),
        "to": ANA.removeprefix("+"),
        "timestamp": "2026-12-03T15:00:00.000Z",
        **fields,
    }
    body = json.dumps(document, separators=(",", ":"))
    headers = {"Content-Type": "application/json", **(phone.sign(body) if signed else {})}
    status_code, _ = await net.post(url, body.encode(), headers)
    return status_code


async def answer(net: CarrierNetwork, phone: VonagePhone) -> tuple[int, str]:
    """The answer webhook (GET, signed over its query)."""
    url = create_body(net)["answer_url"][0]
    request = phone.voice_webhook(url, from_number=LINE, to_number=ANA)
    async with net.session.request(
        request.method, request.url, headers=dict(request.headers)
    ) as response:
        return response.status, await response.text()


def place(agent: str = "sales") -> PlaceRequest:
    variables = VARIABLES if agent == "sales" else {"first_name": "Bo"}
    return PlaceRequest(agent=agent, to=ANA, from_=LINE, carrier="vonage", variables=variables)


async def test_a_vonage_call_is_placed_answered_by_a_person_and_completes(
    tmp_path: Path,
) -> None:
    async with vonage_gateway(tmp_path) as (net, vonage), GatewayClient(
        net.gateway.url, API_TOKEN
    ) as client:
        gw = net.gateway
        placed = await client.place(place())
        [call_id] = vonage.created
        assert (placed.carrier, placed.carrier_call_id, placed.state) == (
            "vonage", call_id, "queued",
        )  # fmt: skip
        assert create_body(net) == {
            "to": [{"type": "phone", "number": ANA.removeprefix("+")}],
            "from": {"type": "phone", "number": LINE.removeprefix("+")},
            "answer_url": [f"{gw.url}/vonage/voice?outbound={placed.id}"],
            "answer_method": "GET",
            "event_url": [f"{gw.url}/vonage/status?outbound={placed.id}"],
            "event_method": "POST",
            "advanced_machine_detection": {"behavior": "hangup", "mode": "detect"},
        }
        phone = phone_for(call_id)
        assert await event(net, phone, "started") == 204
        assert await event(net, phone, "ringing") == 204
        assert (await client.get(placed.id)).state == "ringing"
        assert await event(net, phone, "answered") == 204
        assert await event(net, phone, "human", call_type="phone") == 204
        status, ncco = await answer(net, phone)
        assert status == 200, ncco
        order = phone.read_answer("application/json", ncco)
        assert order.parameters["outbound"] == placed.id
        assert order.url == gw.url.replace("http://", "ws://") + "/vonage/media"
        events = await stream_greeting(net, phone, order)
        assert any(e.kind == "media" and e.audio for e in events)
        assert "Hi Ana, this is Acme about your order." in gw.emulator.client_texts[0]
        assert await event(net, phone, "disconnected") == 204  # says nothing of the state
        assert await event(net, phone, "completed", duration="15") == 204
        ended = await client.get(placed.id)
    assert (ended.state, ended.duration_s, ended.answered_by) == ("completed", 15.0, "human")


async def test_a_vonage_machine_is_hung_up_on_or_gets_the_message(tmp_path: Path) -> None:
    async with vonage_gateway(tmp_path, agents={"reminder": MESSAGE_YAML}) as (
        net,
        vonage,
    ), GatewayClient(net.gateway.url, API_TOKEN) as client:
        hung_up = await client.place(place())
        phone = phone_for(vonage.created[-1])
        assert await event(net, phone, "answered") == 204
        assert await event(net, phone, "machine") == 204  # Vonage hangs up itself
        assert (await client.get(hung_up.id)).state == "voicemail"
        assert await event(net, phone, "completed", duration="4") == 204
        first = await client.get(hung_up.id)
        assert net.gateway.emulator.sessions_opened == 0

        message = await client.place(place("reminder"))
        assert create_body(net)["advanced_machine_detection"] == {
            "behavior": "continue",
            "mode": "detect_beep",
        }
        phone = phone_for(vonage.created[-1])
        assert await event(net, phone, "answered") == 204
        assert await event(net, phone, "machine") == 204  # synchronous: before the NCCO runs
        status, ncco = await answer(net, phone)
        order = phone.read_answer("application/json", ncco)
        assert status == 200 and order.parameters["answered_by"] == "machine"
        await stream_greeting(net, phone, order, hang_up=False)  # the gateway ends it
        assert "Hi Bo, Acme here: please call us back." in net.gateway.emulator.client_texts[0]
        assert await event(net, phone, "completed", duration="9") == 204
        left = await client.get(message.id)
    assert (first.state, first.end_reason, first.answered_by) == (
        "voicemail", "voicemail_hang_up", "machine",
    )  # fmt: skip
    assert (left.state, left.end_reason) == ("voicemail", "voicemail_left")


async def test_vonage_busy_unanswered_timeout_and_hang_up_through_rest(tmp_path: Path) -> None:
    async with vonage_gateway(tmp_path) as (net, vonage), GatewayClient(
        net.gateway.url, API_TOKEN
    ) as client:
        outcomes = []
        for status in ("busy", "unanswered", "timeout", "rejected", "failed"):
            placed = await client.place(place())
            phone = phone_for(vonage.created[-1])
            assert await event(net, phone, "ringing") == 204
            assert await event(net, phone, status) == 204
            outcomes.append(await client.get(placed.id))

        ringing = await client.place(place())
        phone = phone_for(vonage.created[-1])
        assert await event(net, phone, "ringing") == 204
        await client.hangup(ringing.id)
        hang_up = net.rest.requests[-1]
        assert (hang_up.method, hang_up.path) == ("PUT", f"/v1/calls/{phone.call_id}")
        assert json.loads(hang_up.body) == {"action": "hangup"}
        assert await event(net, phone, "cancelled") == 204
        canceled = await client.get(ringing.id)
    assert [(c.state, c.end_reason) for c in outcomes] == [
        ("busy", "busy"), ("no-answer", "no-answer"), ("no-answer", "no-answer"),
        ("busy", "busy"), ("failed", "failed"),
    ]  # fmt: skip
    assert (canceled.state, canceled.end_reason) == ("canceled", "api_hang_up")


async def test_vonage_events_must_be_signed_and_name_the_call(tmp_path: Path) -> None:
    async with vonage_gateway(tmp_path) as (net, vonage), GatewayClient(
        net.gateway.url, API_TOKEN
    ) as client:
        placed = await client.place(place())
        phone = phone_for(vonage.created[-1])
        forged = phone_for(phone.call_id, "not-the-secret")
        assert await event(net, phone, "busy", signed=False) == 403
        assert await event(net, forged, "busy") == 403
        other = phone_for(str(uuid.uuid4()))
        assert await event(net, other, "busy") == 400  # another call's uuid
        status, ncco = await answer(net, other)  # its answer webhook, for another call
        assert (status, json.loads(ncco)) == (200, [])
        assert (await client.get(placed.id)).state == "queued"
        assert await event(net, phone, "busy") == 204
        assert (await client.get(placed.id)).state == "busy"


async def test_vonage_refusing_is_a_502_and_unset_credentials_a_503(tmp_path: Path) -> None:
    for name in ("vonage", "plain"):
        (tmp_path / name).mkdir()
    async with (
        vonage_gateway(tmp_path / "vonage") as (net, vonage),
        real_gateway(tmp_path / "plain") as plain,
    ):
        vonage.fail = (400, json.dumps({"title": "Bad Request", "detail": "invalid to"}))
        async with GatewayClient(net.gateway.url, API_TOKEN) as client:
            error = await refused(client, place())
        async with GatewayClient(plain.url, API_TOKEN) as client:
            unset = await refused(client, place())
    assert error.status == 502
    assert "Vonage answered 400 to the call create: Bad Request: invalid to" in error.message
    assert (unset.status, unset.field) == (503, "carrier")
    assert "VONAGE_APPLICATION_ID" in unset.message
