"""Outbound calls end to end on loopback: placed through a fake Twilio REST API, answered by
a person (the stream connects with the outbound agent) or a machine (hang up, or leave a
message), hung up through the API."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import structlog

from gateway.recording.recorder import RECORDINGS
from gateway.server import OUTBOUND
from tests.outbound.test_outbound_calls_harness import (
    ACCOUNT_SID,
    AUTH,
    CALLEE,
    LINE,
    MESSAGE_YAML,
    PUBLIC_URL,
    SALES_YAML,
    outbound_gateway,
)
from tests.twilio_frames import parameters_of

VARIABLES = {"first_name": "Ana", "topic": "your order"}


def verbs(twiml: str) -> list[str]:
    return [element.tag for element in ElementTree.fromstring(twiml)]


async def test_placing_asks_twilio_to_call_back_this_gateway(tmp_path: Path) -> None:
    async with outbound_gateway(tmp_path) as gw:
        status, call = await gw.place(variables=VARIABLES, to=CALLEE)
        assert status == 201, call
        [create] = gw.twilio.requests
    assert create.method == "POST"
    assert create.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert create.one("To") == CALLEE
    assert create.one("From") == LINE  # the agent's first line: no `from`, no setting
    assert create.one("Url") == f"{PUBLIC_URL}/twilio/voice?outbound={call['id']}"
    assert create.one("StatusCallback") == f"{PUBLIC_URL}/twilio/status?outbound={call['id']}"
    assert create.all("StatusCallbackEvent") == ["initiated", "ringing", "answered", "completed"]
    assert create.one("MachineDetection") == "DetectMessageEnd"
    assert call["state"] == "queued"
    assert call["carrier_call_id"] == gw.twilio.created[0]
    assert call["id"].startswith("oc_") and len(call["id"]) == 27
    assert (call["agent"], call["to"], call["from"], call["carrier"]) == (
        "sales", CALLEE, LINE, "twilio",
    )  # fmt: skip
    assert call["variables"] == VARIABLES
    assert call["end_reason"] is call["answered_by"] is call["duration_s"] is None


async def test_the_from_number_setting_and_the_request_win_over_the_agents_line(
    tmp_path: Path,
) -> None:
    async with outbound_gateway(tmp_path, outbound_from_number="+15550001234") as gw:
        await gw.place(variables=VARIABLES)
        await gw.place(variables=VARIABLES, **{"from": "+15550005678"})
        first, second = gw.twilio.requests
    assert first.one("From") == "+15550001234"
    assert second.one("From") == "+15550005678"


async def test_a_person_answers_and_hears_the_outbound_greeting(tmp_path: Path) -> None:
    async with outbound_gateway(tmp_path) as gw:
        _, call = await gw.place(variables=VARIABLES)
        assert await gw.status(call["id"], "ringing") == 204
        assert (await gw.get(call["id"]))["state"] == "ringing"
        twiml = await gw.voice(call["id"], AnsweredBy="human")
        params = parameters_of(twiml)
        assert params["outbound"] == call["id"]
        assert params["agent"] == "sales"
        assert "answered_by" not in params
        async with gw.stream(call["id"], twiml) as phone:
            await gw.emulator.wait_client_texts(lambda texts: len(texts) >= 1)
            assert "Hi Ana, this is Acme about your order." in gw.emulator.client_texts[0]
            setup = str(gw.emulator.setups[0])
            assert "You are calling Ana about your order." in setup
            assert "Inbound: help whoever calls." not in setup
            greeting = await phone.until("mark")  # the greeting was spoken to the callee
            await phone.send(phone.twilio.mark(greeting[-1]["mark"]["name"]))  # and heard
        assert await gw.status(call["id"], "in-progress") == 204
        assert (await gw.get(call["id"]))["state"] == "in-progress"
        assert await gw.status(call["id"], "completed", CallDuration="42") == 204
        ended = await gw.get(call["id"])
    assert ended["state"] == "completed"
    assert ended["answered_by"] == "human"
    assert ended["duration_s"] == 42
    assert ended["end_reason"] == "caller_hung_up"  # the stream's end: not after the greeting


async def test_a_machine_is_hung_up_on_when_the_agent_says_so(tmp_path: Path) -> None:
    async with outbound_gateway(tmp_path) as gw:
        _, call = await gw.place(variables=VARIABLES)
        twiml = await gw.voice(call["id"], AnsweredBy="machine_end_beep")
        assert verbs(twiml) == ["Hangup"]
        assert (await gw.get(call["id"]))["state"] == "voicemail"
        assert await gw.status(call["id"], "completed", CallDuration="3") == 204
        ended = await gw.get(call["id"])
        metrics = await (await gw.client.get("/metrics")).text()
    assert gw.emulator.sessions_opened == 0
    assert (ended["state"], ended["end_reason"]) == ("voicemail", "voicemail_hang_up")
    assert ended["answered_by"] == "machine_end_beep"
    assert 'gateway_outbound_calls_total{state="voicemail"} 1.0' in metrics
    assert 'gateway_outbound_calls_total{state="completed"} 0.0' in metrics


async def test_a_machine_gets_the_voicemail_message_when_the_agent_leaves_one(
    tmp_path: Path,
) -> None:
    async with outbound_gateway(tmp_path, agents={"reminder": MESSAGE_YAML}) as gw:
        status, call = await gw.place(
            agent="reminder", variables={"first_name": "Bo"}, **{"from": LINE}
        )
        assert status == 201, call
        twiml = await gw.voice(call["id"], AnsweredBy="machine_end_beep")
        params = parameters_of(twiml)
        assert (params["outbound"], params["answered_by"]) == (call["id"], "machine")
        async with gw.stream(call["id"], twiml) as phone:
            await gw.emulator.wait_client_texts(lambda texts: len(texts) >= 1)
            assert "Hi Bo, Acme here: please call us back." in gw.emulator.client_texts[0]
            message = await phone.until("mark")
            await phone.send(phone.twilio.mark(message[-1]["mark"]["name"]))  # played out
            assert await phone.rest() == []  # so the gateway ends the call: nothing more
        assert await gw.status(call["id"], "completed", CallDuration="9") == 204
        ended = await gw.get(call["id"])
        record = gw.client.app[OUTBOUND].registry.get(call["id"])
    assert record is not None and record.stream_end_reason == "agent_ended"
    assert (ended["state"], ended["end_reason"]) == ("voicemail", "voicemail_left")


async def test_a_voice_webhook_for_another_call_or_an_unknown_one_hangs_up(
    tmp_path: Path,
) -> None:
    async with outbound_gateway(tmp_path) as gw:
        _, call = await gw.place(variables=VARIABLES)
        _, other = await gw.place(variables=VARIABLES)
        gw.calls["oc_" + "0" * 24] = gw.calls[call["id"]]
        with structlog.testing.capture_logs() as logs:
            assert verbs(await gw.voice("oc_" + "0" * 24)) == ["Hangup"]
            gw.calls[other["id"]], real = gw.calls[call["id"]], gw.calls[other["id"]]
            assert verbs(await gw.voice(other["id"])) == ["Hangup"]  # call's SID, other's id
            gw.calls[other["id"]] = real
        assert (await gw.get(other["id"]))["state"] == "queued"
        assert verbs(await gw.voice(other["id"], AnsweredBy="human")) == ["Connect"]
    refused = [line for line in logs if line["event"] == "outbound_voice_refused"]
    assert len(refused) == 2


async def test_a_stream_claiming_someone_elses_outbound_call_gets_the_plain_agent(
    tmp_path: Path,
) -> None:
    """The `outbound` stream parameter is not bound: the registered CallSid must be the
    stream's own (which the binding vouches for), else it is ignored."""
    async with outbound_gateway(tmp_path) as gw:
        _, victim = await gw.place(variables=VARIABLES)
        _, own = await gw.place(variables=VARIABLES)
        twiml = await gw.voice(own["id"], AnsweredBy="human")
        forged = twiml.replace(f'value="{own["id"]}"', f'value="{victim["id"]}"')
        assert forged != twiml
        with structlog.testing.capture_logs() as logs:
            async with gw.stream(own["id"], forged) as phone:
                await gw.emulator.wait_client_texts(lambda texts: len(texts) >= 1)
                await phone.until("mark")
        assert "Thanks for calling Acme." in gw.emulator.client_texts[0]
        assert "Ana" not in gw.emulator.client_texts[0]
    [mismatch] = [line for line in logs if line["event"] == "outbound_mismatch"]
    assert mismatch["outbound"] == victim["id"]


async def test_delete_hangs_up_through_twilio_and_the_end_says_so(tmp_path: Path) -> None:
    async with outbound_gateway(tmp_path) as gw:
        _, call = await gw.place(variables=VARIABLES)
        await gw.status(call["id"], "ringing")
        response = await gw.client.delete(f"/calls/{call['id']}", headers=AUTH)
        assert response.status == 200
        assert (await response.json())["state"] == "ringing"
        _, update = await gw.twilio.wait_requests(2)
        assert update.path.endswith(f"/Calls/{call['carrier_call_id']}.json")
        assert update.one("Status") == "completed"
        assert await gw.status(call["id"], "canceled") == 204
        ended = await gw.get(call["id"])
        again = await gw.client.delete(f"/calls/{call['id']}", headers=AUTH)
        assert again.status == 200
        assert len(gw.twilio.requests) == 2  # a call already over is not hung up again
    assert (ended["state"], ended["end_reason"]) == ("canceled", "api_hang_up")


async def test_a_person_answering_shows_in_the_post_call_webhook(tmp_path: Path) -> None:
    agent = SALES_YAML + '    post_call_webhook: "{receiver}/post-call"\n'
    async with outbound_gateway(tmp_path, agents={"sales": agent}) as gw:
        _, call = await gw.place(variables=VARIABLES)
        twiml = await gw.voice(call["id"], AnsweredBy="human")
        async with gw.stream(call["id"], twiml) as phone:
            await phone.until("mark")
        [summary] = await gw.receiver.wait("/post-call")
    assert summary["call_sid"] == call["carrier_call_id"]
    assert summary["outbound"]["id"] == call["id"]
    assert summary["outbound"]["state"] == "completed"
    assert summary["outbound"]["answered_by"] == "human"
    assert summary["outbound"]["variables"] == VARIABLES


async def test_the_recording_of_an_answered_call_is_on_the_call(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    async with outbound_gateway(
        tmp_path, record_calls="all", recordings_dir=str(recordings)
    ) as gw:
        _, call = await gw.place(variables=VARIABLES)
        twiml = await gw.voice(call["id"], AnsweredBy="human")
        async with gw.stream(call["id"], twiml) as phone:
            await phone.until("mark")
        await gw.client.app[RECORDINGS].wait_idle()
        recording = (await gw.get(call["id"]))["recording"]
    assert recording is not None
    assert Path(recording["jsonl"]).parent == recordings
    assert call["carrier_call_id"] in Path(recording["jsonl"]).name
    assert {Path(recording[kind]).name for kind in ("jsonl", "wav", "txt")} <= {
        path.name for path in recordings.iterdir()
    }
