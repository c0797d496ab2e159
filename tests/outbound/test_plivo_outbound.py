"""Outbound calls on Plivo, end to end on loopback: `POST /calls` with `carrier: "plivo"` places
the call with a fake Plivo Call API (JSON, basic auth Auth ID : Auth Token; it answers a
`request_uuid`, not the call's UUID); this test plays Plivo with what the gateway asked for —
ring, answer, machine-detection and hang-up requests V3-signed with the Auth Token, the first
of them naming the CallUUID, the media stream opened by `PlivoPhone` — and the Live emulator
plays the agent."""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

from gateway.outbound.client import ApiError, GatewayClient, PlaceRequest
from gateway.recording.recorder import RECORDINGS
from gateway.telephony.plivo_phone import PlivoPhone
from tests.outbound.carrier_network import (
    CarrierNetwork,
    carrier_gateway,
    refused,
    stream_greeting,
)
from tests.outbound.test_end_to_end import ANA, VARIABLES, real_gateway
from tests.outbound.test_outbound_calls_harness import API_TOKEN, LINE, MESSAGE_YAML
from tests.telephony.carrier_case import RestRequest
from tests.telephony.plivo_case import AUTH_ID, AUTH_TOKEN, rest_reply

CREATE_PATH = f"/v1/Account/{AUTH_ID}/Call/"
_BASIC = "Basic " + base64.b64encode(f"{AUTH_ID}:{AUTH_TOKEN}".encode()).decode()


class FakePlivo:
    """Plivo's Call API: make a call answers `call fired` and a request UUID (or `fail`);
    hang-ups are answered as the conformance suite's fake does."""

    def __init__(self) -> None:
        self.fail: tuple[int, str] | None = None

    def reply(self, request: RestRequest) -> tuple[int, str]:
        if request.headers.get("authorization") != _BASIC:
            return 401, json.dumps({"error": "authentication failed"})
        if request.method == "POST" and request.path == CREATE_PATH:
            if self.fail is not None:
                return self.fail
            return 201, json.dumps(
                {"message": "call fired", "request_uuid": str(uuid.uuid4()), "api_id": "x"}
            )
        return rest_reply(request)


@contextlib.asynccontextmanager
async def plivo_gateway(
    tmp_path: Path, **kwargs: Any
) -> AsyncIterator[tuple[CarrierNetwork, FakePlivo]]:
    plivo = FakePlivo()

    def settings(base_url: str) -> dict[str, Any]:
        return {
            "plivo_auth_id": AUTH_ID,
            "plivo_auth_token": AUTH_TOKEN,
            "plivo_api_base_url": base_url,
        }

    async with carrier_gateway(tmp_path, plivo.reply, settings, **kwargs) as net:
        yield net, plivo


def create_body(net: CarrierNetwork, index: int = -1) -> dict[str, Any]:
    creates = [r for r in net.rest.requests if r.path == CREATE_PATH]
    body: dict[str, Any] = json.loads(creates[index].body)
    return body


async def callback(
    net: CarrierNetwork, url: str, phone: PlivoPhone, *, signed: bool = True, **fields: str
) -> tuple[int, str]:
    form = {
        "CallUUID": phone.call_id,
        "From": LINE.removeprefix("+"),
        "To": ANA.removeprefix("+"),
        "Direction": "outbound",
        **fields,
    }
    headers = phone.signed_headers("POST", url, form) if signed else {}
    return await net.post(url, urlencode(form).encode(), headers)


def place(agent: str = "sales") -> PlaceRequest:
    variables = VARIABLES if agent == "sales" else {"first_name": "Bo"}
    return PlaceRequest(agent=agent, to=ANA, from_=LINE, carrier="plivo", variables=variables)


async def test_a_plivo_call_is_placed_answered_by_a_person_and_completes(
    tmp_path: Path,
) -> None:
    async with plivo_gateway(tmp_path, record_calls="all") as (net, _), GatewayClient(
        net.gateway.url, API_TOKEN
    ) as client:
        gw = net.gateway
        placed = await client.place(place())
        assert (placed.carrier, placed.carrier_call_id, placed.state) == ("plivo", None, "queued")
        [create] = net.rest.requests
        assert (create.method, create.headers["authorization"]) == ("POST", _BASIC)
        status_url = f"{gw.url}/plivo/status?outbound={placed.id}"
        assert create_body(net) == {
            "from": LINE.removeprefix("+"),
            "to": ANA.removeprefix("+"),
            "answer_url": f"{gw.url}/plivo/voice?outbound={placed.id}",
            "answer_method": "POST",
            "ring_url": status_url,
            "ring_method": "POST",
            "hangup_url": status_url,
            "hangup_method": "POST",
            "machine_detection": "hangup",  # the agent hangs up on machines: Plivo does it
            "machine_detection_url": status_url,
            "machine_detection_method": "POST",
        }
        phone = PlivoPhone(AUTH_TOKEN, AUTH_ID)
        assert (await callback(net, status_url, phone, CallStatus="ringing"))[0] == 204
        ringing = await client.get(placed.id)  # the first signed callback named the call
        assert (ringing.state, ringing.carrier_call_id) == ("ringing", phone.call_id)

        status, xml = await callback(
            net, create_body(net)["answer_url"], phone, CallStatus="in-progress"
        )
        assert status == 200, xml
        order = phone.read_answer("application/xml", xml)
        assert order.parameters["outbound"] == placed.id
        assert order.url == gw.url.replace("http://", "ws://") + "/plivo/media"
        events = await stream_greeting(net, phone, order)
        assert any(e.kind == "media" and e.audio for e in events)
        assert "You are calling Ana about your order." in str(gw.emulator.setups[0])
        assert "Hi Ana, this is Acme about your order." in gw.emulator.client_texts[0]
        human = {"CallStatus": "in-progress", "Machine": "false", "Event": "MachineDetection"}
        assert (await callback(net, status_url, phone, **human))[0] == 204
        hangup = {"CallStatus": "completed", "Duration": "15", "HangupCause": "NORMAL_CLEARING"}
        assert (await callback(net, status_url, phone, **hangup))[0] == 204
        await gw.app[RECORDINGS].wait_idle()
        ended = await client.get(placed.id)
    assert ended.recording is not None and phone.call_id in Path(ended.recording).name
    assert (ended.state, ended.duration_s, ended.answered_by, ended.end_reason) == (
        "completed", 15.0, "human", "caller_hung_up",
    )  # fmt: skip


async def test_a_plivo_machine_is_hung_up_on_or_gets_the_message(tmp_path: Path) -> None:
    async with plivo_gateway(tmp_path, agents={"reminder": MESSAGE_YAML}) as (
        net,
        _,
    ), GatewayClient(net.gateway.url, API_TOKEN) as client:
        machine = {"CallStatus": "in-progress", "Machine": "true", "Event": "MachineDetection"}
        hangup = {"CallStatus": "completed", "Duration": "4", "HangupCause": "NORMAL_CLEARING"}
        # hang_up: Plivo hangs up itself on the machine; the call is voicemail at once.
        hung_up = await client.place(place())
        phone = PlivoPhone(AUTH_TOKEN, AUTH_ID)
        url = create_body(net)["machine_detection_url"]
        assert (await callback(net, url, phone, **machine))[0] == 204
        assert (await client.get(hung_up.id)).state == "voicemail"
        assert (await callback(net, url, phone, **hangup))[0] == 204
        first = await client.get(hung_up.id)
        assert net.gateway.emulator.sessions_opened == 0

        # leave_message, the machine named before the answer: the agent leaves its message.
        early = await client.place(place("reminder"))
        assert create_body(net)["machine_detection"] == "true"
        phone = PlivoPhone(AUTH_TOKEN, AUTH_ID)
        body = create_body(net)
        assert (await callback(net, body["machine_detection_url"], phone, **machine))[0] == 204
        status, xml = await callback(net, body["answer_url"], phone, CallStatus="in-progress")
        order = phone.read_answer("application/xml", xml)
        assert status == 200 and order.parameters["answered_by"] == "machine"
        await stream_greeting(net, phone, order, hang_up=False)  # the gateway ends it
        assert "Hi Bo, Acme here: please call us back." in net.gateway.emulator.client_texts[0]
        assert (await callback(net, body["hangup_url"], phone, **hangup))[0] == 204
        left = await client.get(early.id)

        # leave_message, the machine named once the agent has spoken: said as it is.
        late = await client.place(place("reminder"))
        phone = PlivoPhone(AUTH_TOKEN, AUTH_ID)
        body = create_body(net)
        status, xml = await callback(net, body["answer_url"], phone, CallStatus="in-progress")
        order = phone.read_answer("application/xml", xml)
        assert status == 200 and "answered_by" not in order.parameters
        statuses: list[int] = []

        async def detected() -> None:  # Plivo's verdict, while the agent is talking
            url = body["machine_detection_url"]
            statuses.append((await callback(net, url, phone, **machine))[0])

        await stream_greeting(net, phone, order, during=detected)
        assert statuses == [204]
        assert (await callback(net, body["hangup_url"], phone, **hangup))[0] == 204
        detected_late = await client.get(late.id)
    assert (first.state, first.end_reason, first.answered_by) == (
        "voicemail", "voicemail_hang_up", "machine",
    )  # fmt: skip
    assert (left.state, left.end_reason) == ("voicemail", "voicemail_left")
    assert (detected_late.state, detected_late.end_reason) == (
        "voicemail", "voicemail_detected_late",
    )  # fmt: skip


async def test_plivo_busy_no_answer_timeout_and_hang_up_through_rest(tmp_path: Path) -> None:
    async with plivo_gateway(tmp_path) as (net, _), GatewayClient(
        net.gateway.url, API_TOKEN
    ) as client:
        outcomes = []
        for call_status in ("busy", "no-answer", "timeout", "failed"):
            placed = await client.place(place())
            phone = PlivoPhone(AUTH_TOKEN, AUTH_ID)
            url = create_body(net)["hangup_url"]
            assert (await callback(net, url, phone, CallStatus="ringing"))[0] == 204
            hangup = {"CallStatus": call_status, "Duration": "0", "HangupCause": "X"}
            assert (await callback(net, url, phone, **hangup))[0] == 204
            outcomes.append(await client.get(placed.id))

        ringing = await client.place(place())
        phone = PlivoPhone(AUTH_TOKEN, AUTH_ID)
        url = create_body(net)["ring_url"]
        try:  # Plivo has not named the call yet: there is nothing to hang up
            await client.hangup(ringing.id)
            raise AssertionError("hung up a call Plivo has not named")
        except ApiError as exc:
            assert exc.status == 409
        assert (await callback(net, url, phone, CallStatus="ringing"))[0] == 204
        await client.hangup(ringing.id)
        delete = net.rest.requests[-1]
        assert (delete.method, delete.path) == ("DELETE", f"{CREATE_PATH}{phone.call_id}/")
        assert (await callback(net, url, phone, CallStatus="cancel"))[0] == 204
        canceled = await client.get(ringing.id)
    assert [(c.state, c.end_reason) for c in outcomes] == [
        ("busy", "busy"), ("no-answer", "no-answer"), ("no-answer", "no-answer"),
        ("failed", "failed"),
    ]  # fmt: skip
    assert (canceled.state, canceled.end_reason) == ("canceled", "api_hang_up")


async def test_plivo_callbacks_must_be_signed_and_name_the_call(tmp_path: Path) -> None:
    async with plivo_gateway(tmp_path) as (net, _), GatewayClient(
        net.gateway.url, API_TOKEN
    ) as client:
        placed = await client.place(place())
        url = create_body(net)["ring_url"]
        phone = PlivoPhone(AUTH_TOKEN, AUTH_ID)
        forged = PlivoPhone("not-the-token", AUTH_ID)
        forged.call_id = phone.call_id
        ringing = {"CallStatus": "ringing"}
        assert (await callback(net, url, phone, signed=False, **ringing))[0] == 403
        assert (await callback(net, url, forged, **ringing))[0] == 403
        assert (await client.get(placed.id)).carrier_call_id is None  # refused ones bind nothing
        assert (await callback(net, url, phone, **ringing))[0] == 204  # names the call
        other = PlivoPhone(AUTH_TOKEN, AUTH_ID)
        assert (await callback(net, url, other, CallStatus="busy"))[0] == 400  # another call
        unknown = url.replace(placed.id, "oc_" + "0" * 24)
        assert (await callback(net, unknown, phone, CallStatus="busy"))[0] == 404
        voice = create_body(net)["answer_url"]
        status, xml = await callback(net, voice, other, CallStatus="in-progress")
        assert status == 200 and [e.tag for e in ElementTree.fromstring(xml)] == ["Hangup"]
        assert (await client.get(placed.id)).state == "ringing"


async def test_plivo_refusing_is_a_502_and_unset_credentials_a_503(tmp_path: Path) -> None:
    for name in ("plivo", "plain"):
        (tmp_path / name).mkdir()
    async with (
        plivo_gateway(tmp_path / "plivo") as (net, plivo),
        real_gateway(tmp_path / "plain") as plain,
    ):
        plivo.fail = (400, json.dumps({"api_id": "x", "error": "invalid to number"}))
        async with GatewayClient(net.gateway.url, API_TOKEN) as client:
            error = await refused(client, place())
        async with GatewayClient(plain.url, API_TOKEN) as client:
            unset = await refused(client, place())
    assert error.status == 502 and "Plivo answered 400 to the call create: invalid to number" in (
        error.message
    )
    assert (unset.status, unset.field) == (503, "carrier")
    assert "PLIVO_AUTH_ID" in unset.message
