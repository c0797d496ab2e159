"""Outbound calls on Telnyx, end to end on loopback: `POST /calls` with `carrier: "telnyx"`
places the call with a fake Telnyx TeXML REST API (initiate: JSON, bearer API key); this test
plays Telnyx with what the gateway asked for — status callbacks and the instructions' request
signed with Ed25519 (`telnyx-signature-ed25519` over `timestamp|body`), the media stream opened
by `TelnyxPhone` — and the Live emulator plays the agent."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

from gateway.outbound.client import GatewayClient, PlaceRequest
from gateway.recording.recorder import RECORDINGS
from gateway.telephony.telnyx_phone import TelnyxPhone, new_call_control_id
from tests.outbound.carrier_network import (
    CarrierNetwork,
    carrier_gateway,
    refused,
    stream_greeting,
)
from tests.outbound.test_end_to_end import ANA, VARIABLES, real_gateway
from tests.outbound.test_outbound_calls_harness import API_TOKEN, LINE, MESSAGE_YAML
from tests.telephony.carrier_case import RestRequest
from tests.telephony.telnyx_case import (
    ACCOUNT_ID,
    API_KEY,
    OTHER_PRIVATE_KEY,
    PRIVATE_KEY,
    PUBLIC_KEY,
    rest_reply,
)

APPLICATION_ID = "1293384261075731499"
CREATE_PATH = f"/v2/texml/Accounts/{ACCOUNT_ID}/Calls"


class FakeTelnyx:
    """The TeXML Calls resource: initiate answers a fresh CallSid (or `fail` with Telnyx's
    error body); updates are answered as the conformance suite's fake does."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.fail: tuple[int, str] | None = None

    def reply(self, request: RestRequest) -> tuple[int, str]:
        if request.method == "POST" and request.path == CREATE_PATH:
            if request.headers.get("authorization") != f"Bearer {API_KEY}":
                return 401, json.dumps({"errors": [{"code": "10009", "title": "Auth failed"}]})
            if self.fail is not None:
                return self.fail
            call_sid = new_call_control_id()
            self.created.append(call_sid)
            body = json.loads(request.body)
            return 200, json.dumps(
                {"call_sid": call_sid, "from": body["From"], "to": body["To"], "status": "queued"}
            )
        return rest_reply(request)


@contextlib.asynccontextmanager
async def telnyx_gateway(
    tmp_path: Path, **kwargs: Any
) -> AsyncIterator[tuple[CarrierNetwork, FakeTelnyx]]:
    telnyx = FakeTelnyx()

    def settings(base_url: str) -> dict[str, Any]:
        return {
            "telnyx_public_key": PUBLIC_KEY,
            "telnyx_api_key": API_KEY,
            "telnyx_api_base_url": base_url,
            "telnyx_account_sid": ACCOUNT_ID,
            "telnyx_texml_application_id": APPLICATION_ID,
        }

    async with carrier_gateway(tmp_path, telnyx.reply, settings, **kwargs) as net:
        yield net, telnyx


def create_body(net: CarrierNetwork, index: int = -1) -> dict[str, Any]:
    creates = [r for r in net.rest.requests if r.path == CREATE_PATH]
    body: dict[str, Any] = json.loads(creates[index].body)
    return body


def phone_for(call_sid: str, key: Any = PRIVATE_KEY) -> TelnyxPhone:
    phone = TelnyxPhone(key, ACCOUNT_ID)
    phone.call_id = call_sid
    return phone


async def callback(
    net: CarrierNetwork, url: str, phone: TelnyxPhone, *, signed: bool = True, **fields: str
) -> tuple[int, str]:
    form = {
        "AccountSid": ACCOUNT_ID,
        "CallSid": phone.call_id,
        "CallSidLegacy": phone.call_id,
        "ConnectionId": APPLICATION_ID,
        "Direction": "outbound-api",
        "From": LINE,
        "To": ANA,
        **fields,
    }
    body = urlencode(form).encode()
    return await net.post(url, body, phone.sign(body) if signed else {})


def place(carrier: str = "telnyx", agent: str = "sales") -> PlaceRequest:
    variables = VARIABLES if agent == "sales" else {"first_name": "Bo"}
    return PlaceRequest(agent=agent, to=ANA, from_=LINE, carrier=carrier, variables=variables)


async def test_a_telnyx_call_is_placed_answered_by_a_person_and_completes(
    tmp_path: Path,
) -> None:
    async with telnyx_gateway(tmp_path, record_calls="all") as (net, telnyx), GatewayClient(
        net.gateway.url, API_TOKEN
    ) as client:
        gw = net.gateway
        placed = await client.place(place())
        [call_sid] = telnyx.created
        assert (placed.carrier, placed.carrier_call_id, placed.state) == (
            "telnyx", call_sid, "queued",
        )  # fmt: skip
        [create] = net.rest.requests
        assert create.headers["authorization"] == f"Bearer {API_KEY}"
        assert create_body(net) == {
            "ApplicationSid": APPLICATION_ID,
            "To": ANA,
            "From": LINE,
            "Url": f"{gw.url}/telnyx/voice?outbound={placed.id}",
            "UrlMethod": "POST",
            "StatusCallback": f"{gw.url}/telnyx/status?outbound={placed.id}",
            "StatusCallbackMethod": "POST",
            "StatusCallbackEvent": "initiated ringing answered completed",
            "MachineDetection": "DetectMessageEnd",
        }
        assert gw.twilio.requests == []  # not Twilio's
        status_url = create_body(net)["StatusCallback"]
        phone = phone_for(call_sid)
        assert (await callback(net, status_url, phone, CallStatus="ringing"))[0] == 204
        assert (await client.get(placed.id)).state == "ringing"

        status, texml = await callback(
            net, create_body(net)["Url"], phone, CallStatus="in-progress", AnsweredBy="human"
        )
        assert status == 200, texml
        order = phone.read_answer("application/xml", texml)
        assert order.parameters["outbound"] == placed.id
        assert order.url == gw.url.replace("http://", "ws://") + "/telnyx/media"
        events = await stream_greeting(net, phone, order)
        assert any(e.kind == "media" and e.audio for e in events)
        assert "You are calling Ana about your order." in str(gw.emulator.setups[0])
        assert "Hi Ana, this is Acme about your order." in gw.emulator.client_texts[0]

        done = await callback(net, status_url, phone, CallStatus="completed", CallDuration="15")
        assert done[0] == 204
        await gw.app[RECORDINGS].wait_idle()
        ended = await client.get(placed.id)
    assert ended.recording is not None and call_sid[3:] in Path(ended.recording).name
    assert (ended.state, ended.duration_s, ended.answered_by, ended.end_reason) == (
        "completed", 15.0, "human", "caller_hung_up",
    )  # fmt: skip


async def test_a_telnyx_machine_is_hung_up_on_or_gets_the_message(tmp_path: Path) -> None:
    async with telnyx_gateway(tmp_path, agents={"reminder": MESSAGE_YAML}) as (
        net,
        telnyx,
    ), GatewayClient(net.gateway.url, API_TOKEN) as client:
        machine = await client.place(place())
        phone = phone_for(telnyx.created[-1])
        body = create_body(net)
        status, texml = await callback(
            net, body["Url"], phone, CallStatus="in-progress", AnsweredBy="machine"
        )
        assert status == 200 and [e.tag for e in ElementTree.fromstring(texml)] == ["Hangup"]
        assert (await client.get(machine.id)).state == "voicemail"
        completed = {"CallStatus": "completed", "CallDuration": "4", "AnsweredBy": "machine"}
        assert (await callback(net, body["StatusCallback"], phone, **completed))[0] == 204
        hung_up = await client.get(machine.id)
        assert net.gateway.emulator.sessions_opened == 0

        message = await client.place(place(agent="reminder"))
        phone = phone_for(telnyx.created[-1])
        body = create_body(net)
        status, texml = await callback(
            net, body["Url"], phone, CallStatus="in-progress", AnsweredBy="machine"
        )
        order = phone.read_answer("application/xml", texml)
        assert (order.parameters["outbound"], order.parameters["answered_by"]) == (
            message.id, "machine",
        )  # fmt: skip
        await stream_greeting(net, phone, order, hang_up=False)  # the gateway ends it
        texts = net.gateway.emulator.client_texts
        assert "Hi Bo, Acme here: please call us back." in texts[0]
        completed["CallDuration"] = "9"
        assert (await callback(net, body["StatusCallback"], phone, **completed))[0] == 204
        left = await client.get(message.id)
    assert (hung_up.state, hung_up.end_reason, hung_up.answered_by) == (
        "voicemail", "voicemail_hang_up", "machine",
    )  # fmt: skip
    assert (left.state, left.end_reason) == ("voicemail", "voicemail_left")


async def test_telnyx_busy_no_answer_and_hang_up_through_rest(tmp_path: Path) -> None:
    async with telnyx_gateway(tmp_path) as (net, telnyx), GatewayClient(
        net.gateway.url, API_TOKEN
    ) as client:
        outcomes = {}
        for call_status in ("busy", "no-answer"):
            placed = await client.place(place())
            phone = phone_for(telnyx.created[-1])
            url = create_body(net)["StatusCallback"]
            assert (await callback(net, url, phone, CallStatus="ringing"))[0] == 204
            assert (await callback(net, url, phone, CallStatus=call_status))[0] == 204
            outcomes[call_status] = await client.get(placed.id)

        ringing = await client.place(place())
        phone = phone_for(telnyx.created[-1])
        url = create_body(net)["StatusCallback"]
        assert (await callback(net, url, phone, CallStatus="ringing"))[0] == 204
        await client.hangup(ringing.id)
        update = net.rest.requests[-1]
        assert update.path == f"/v2/texml/Accounts/{ACCOUNT_ID}/Calls/{phone.call_id}"
        assert update.body == b"Status=completed"
        assert (await callback(net, url, phone, CallStatus="canceled"))[0] == 204
        canceled = await client.get(ringing.id)
    assert [(c.state, c.end_reason) for c in outcomes.values()] == [
        ("busy", "busy"), ("no-answer", "no-answer"),
    ]  # fmt: skip
    assert (canceled.state, canceled.end_reason) == ("canceled", "api_hang_up")


async def test_telnyx_callbacks_must_be_signed_and_name_the_call(tmp_path: Path) -> None:
    async with telnyx_gateway(tmp_path) as (net, telnyx), GatewayClient(
        net.gateway.url, API_TOKEN
    ) as client:
        placed = await client.place(place())
        url = create_body(net)["StatusCallback"]
        phone = phone_for(telnyx.created[-1])
        forged = phone_for(phone.call_id, OTHER_PRIVATE_KEY)
        assert (await callback(net, url, phone, signed=False, CallStatus="busy"))[0] == 403
        assert (await callback(net, url, forged, CallStatus="busy"))[0] == 403
        other = phone_for(new_call_control_id())
        assert (await callback(net, url, other, CallStatus="busy"))[0] == 400  # another call
        unknown = url.replace(placed.id, "oc_" + "0" * 24)
        assert (await callback(net, unknown, phone, CallStatus="busy"))[0] == 404
        # Its voice webhook, forged or for another call, never connects it.
        voice = create_body(net)["Url"]
        assert (await callback(net, voice, forged, AnsweredBy="human"))[0] == 403
        status, texml = await callback(net, voice, other, AnsweredBy="human")
        assert status == 200 and [e.tag for e in ElementTree.fromstring(texml)] == ["Hangup"]
        # SignalWire's route (unsigned here: no signing key) cannot move a Telnyx call.
        sw = url.replace("/telnyx/status", "/signalwire/status")
        assert (await callback(net, sw, phone, CallStatus="busy"))[0] == 400
        assert (await client.get(placed.id)).state == "queued"
        assert (await callback(net, url, phone, CallStatus="busy"))[0] == 204
        assert (await client.get(placed.id)).state == "busy"


async def test_telnyx_refusing_is_a_502_and_unset_settings_a_503(tmp_path: Path) -> None:
    for name in ("telnyx", "plain", "half"):
        (tmp_path / name).mkdir()
    async with (
        telnyx_gateway(tmp_path / "telnyx") as (net, telnyx),
        real_gateway(tmp_path / "plain") as plain,
        real_gateway(
            tmp_path / "half", telnyx_api_key=API_KEY, telnyx_account_sid=ACCOUNT_ID
        ) as half,
    ):
        telnyx.fail = (
            422,
            json.dumps({"errors": [{"code": "10015", "title": "Invalid To", "detail": "nope"}]}),
        )
        async with GatewayClient(net.gateway.url, API_TOKEN) as client:
            error = await refused(client, place())
            auth = {"Authorization": f"Bearer {API_TOKEN}"}
            async with net.session.get(f"{net.gateway.url}/calls", headers=auth) as response:
                [failed] = (await response.json())["calls"]
        async with GatewayClient(plain.url, API_TOKEN) as client:
            unset = await refused(client, place())
        async with GatewayClient(half.url, API_TOKEN) as client:
            partly = await refused(client, place())
    assert error.status == 502 and "Telnyx answered 422" in error.message
    assert "Invalid To: nope" in error.message
    assert (failed["state"], failed["end_reason"]) == ("failed", "carrier_rest_failed")
    assert (unset.status, unset.field) == (503, "carrier")
    assert "TELNYX_API_KEY" in unset.message and "TELNYX_TEXML_APPLICATION_ID" in unset.message
    assert (partly.status, partly.field) == (503, "carrier")
    assert "TELNYX_TEXML_APPLICATION_ID, TELNYX_PUBLIC_KEY" in partly.message
    assert "TELNYX_API_KEY" not in partly.message


async def test_a_telnyx_machine_named_only_once_the_agent_talks_is_said_as_it_is(
    tmp_path: Path,
) -> None:
    async with telnyx_gateway(tmp_path) as (net, telnyx), GatewayClient(
        net.gateway.url, API_TOKEN
    ) as client:
        placed = await client.place(place())
        phone = phone_for(telnyx.created[-1])
        body = create_body(net)
        status, texml = await callback(net, body["Url"], phone, CallStatus="in-progress")
        order = phone.read_answer("application/xml", texml)
        assert status == 200 and "answered_by" not in order.parameters
        statuses: list[int] = []

        async def verdict() -> None:  # AnsweredBy in a status callback, the stream under way
            fields = {"CallStatus": "in-progress", "AnsweredBy": "machine"}
            statuses.append((await callback(net, body["StatusCallback"], phone, **fields))[0])

        await stream_greeting(net, phone, order, during=verdict)
        assert statuses == [204]
        done = {"CallStatus": "completed", "CallDuration": "6"}
        assert (await callback(net, body["StatusCallback"], phone, **done))[0] == 204
        ended = await client.get(placed.id)
    # Telnyx was not asked to hang up on machines: the agent talked, no message was left.
    assert (ended.state, ended.end_reason, ended.answered_by) == (
        "voicemail", "voicemail_detected_late", "machine",
    )  # fmt: skip
