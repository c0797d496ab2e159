"""Live calls in the console: the list, the event stream of a real call, hang-up."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar

from gateway.agents.config import AgentConfig
from gateway.call.outcome import EndReason
from gateway.console.live import (
    FLOOR_DBFS,
    ConsoleHub,
    SseClient,
    dbfs,
)
from gateway.console.routes import CONSOLE
from gateway.live.protocol import ServerMessage, SessionConfig
from gateway.telephony.base import StreamStart
from tests.caller_audio import silence_frames, speech_frames
from tests.console.backend_harness import (
    BEARER,
    caller,
    console_gateway,
    event_stream,
    question_call,
)
from tests.test_integration import PhoneCall


async def test_a_real_call_streams_started_transcript_levels_and_ended(tmp_path: Path) -> None:
    async with console_gateway(tmp_path) as gateway, event_stream(gateway) as events:
        call = asyncio.create_task(
            question_call(
                gateway, 7, agent="default", to="+15550009999", **{"from": "+15551230000"}
            )
        )
        started = await events.until("call_started")
        assert started["id"] == f"CA{7:032d}" and started["stream_sid"] == f"MZ{7:032d}"
        assert started["agent"] == "default" and started["carrier"] == "twilio"
        assert started["from"] == "+15551230000" and started["to"] == "+15550009999"
        assert started["state"] == "listening" and started["last_line"] is None
        assert started["started_at"].endswith("Z")
        levels = await events.until("levels")
        assert set(levels) == {"id", "caller_db", "agent_db"} and levels["id"] == started["id"]
        assert FLOOR_DBFS <= levels["caller_db"] <= 0
        line = await events.until("transcript")
        assert line["id"] == started["id"] and line["role"] in ("caller", "agent")
        assert line["text"] and line["t"] >= 0
        speaking = await events.until("call_updated", lambda c: c["state"] == "speaking")
        assert speaking["id"] == started["id"]
        ended = await events.until("call_ended")
        await call
        assert ended["id"] == started["id"] and ended["end_reason"] == "caller_hung_up"
        assert ended["duration_s"] >= 0
        assert await gateway.get_json("/console/api/calls") == {"calls": []}
    names = [name for name, _ in events.seen]
    assert names.index("call_started") < names.index("transcript") < names.index("call_ended")
    agent_lines = [d for n, d in events.seen if n == "transcript" and d["role"] == "agent"]
    assert agent_lines and all(d["line_text"].endswith(d["text"]) for d in agent_lines)


async def test_the_list_and_transcript_of_a_call_in_progress(tmp_path: Path) -> None:
    async with console_gateway(tmp_path) as gateway, event_stream(gateway) as events:
        async with gateway.client.ws_connect("/media") as ws:
            phone = PhoneCall(ws)
            phone.twilio = caller(3)
            await phone.start(agent="default")
            await phone.say(speech_frames(600) + silence_frames(800))
            await phone.until("mark")
            await events.until("transcript", lambda d: d["role"] == "agent")
            (live,) = (await gateway.get_json("/console/api/calls"))["calls"]
            assert live["id"] == f"CA{3:032d}" and live["duration_s"] >= 0
            assert live["last_line"] is not None
            transcript = await gateway.get_json(f"/console/api/calls/{live['id']}/transcript")
            roles = {line["role"] for line in transcript["lines"]}
            assert "agent" in roles
            assert all(set(line) == {"t", "role", "text"} for line in transcript["lines"])
            await phone.send(phone.twilio.stop())
            await phone.rest()
        await events.until("call_ended")
        await gateway.get_json("/console/api/calls/nope/transcript", status=404)


async def test_hang_up_ends_a_live_call(tmp_path: Path) -> None:
    async with console_gateway(tmp_path) as gateway, event_stream(gateway) as events:
        async with gateway.client.ws_connect("/media") as ws:
            phone = PhoneCall(ws)
            phone.twilio = caller(4)
            await phone.start()
            await phone.say(silence_frames(200))
            started = await events.until("call_started")
            response = await gateway.client.post(
                f"/console/api/calls/{started['id']}/hangup", headers=BEARER
            )
            assert response.status == 202 and await response.json() == {"ok": True}
            await phone.rest()  # returns because the gateway closed the stream
            assert ws.closed
        ended = await events.until("call_ended")
        assert ended["end_reason"] == EndReason.OPERATOR_HUNG_UP.value
        unknown = await gateway.client.post("/console/api/calls/CA404/hangup", headers=BEARER)
        assert unknown.status == 404
        anonymous = await gateway.client.post(f"/console/api/calls/{started['id']}/hangup")
        assert anonymous.status == 401


async def test_a_new_stream_first_hears_of_the_calls_in_progress(tmp_path: Path) -> None:
    async with console_gateway(tmp_path) as gateway, event_stream(gateway) as first:
        async with gateway.client.ws_connect("/media") as ws:
            phone = PhoneCall(ws)
            phone.twilio = caller(5)
            await phone.start()
            await phone.say(silence_frames(100))
            await first.until("call_started")
            async with event_stream(gateway) as second:
                assert (await second.until("call_started"))["id"] == f"CA{5:032d}"
            await phone.send(phone.twilio.stop())
            await phone.rest()


async def test_heartbeats_keep_an_idle_stream_open(tmp_path: Path) -> None:
    async with console_gateway(tmp_path) as gateway:
        gateway.client.app[CONSOLE].hub.heartbeat_s = 0.05
        async with event_stream(gateway) as events:
            assert await events.comment() == ": heartbeat"


async def test_a_slow_client_is_dropped_and_never_slows_calls(tmp_path: Path) -> None:
    hub = ConsoleHub(max_client_events=3)
    slow = hub.subscribe()
    fast = hub.subscribe()
    for n in range(3):
        hub.publish("levels", {"n": n})
        fast.take()
    assert not slow.dropped and len(slow.events) == 3
    hub.publish("levels", {"n": 3})
    assert slow.dropped and slow not in hub.clients and slow.wakeup.is_set()
    assert fast in hub.clients and hub.clients_dropped == 1
    # Over a real stream: the handler ends a dropped client's response.
    async with console_gateway(tmp_path) as gateway, event_stream(gateway) as events:
        console = gateway.client.app[CONSOLE]
        (client,) = console.hub.clients
        client.max_events = 0
        console.hub.publish("levels", {"id": "x"})
        assert client.dropped
        assert await events.response.content.read() == b"retry: 3000\n\n"


class _View:
    start = StreamStart("MZ1", "CA1", "AC1", ("inbound",), {}, "audio/x-mulaw", 8000, 1, None)
    agent: AgentConfig | None = None
    session: SessionConfig | None = None
    transcript: ClassVar[list[tuple[str, str]]] = []


def test_levels_are_at_most_five_a_second() -> None:
    hub = ConsoleHub()
    client: SseClient = hub.subscribe()
    observer = hub.observer("twilio")

    observer.call_started(_View())
    loud = speech_frames(20)[0] * 6  # bytes, not PCM, but loud enough for a level
    for _ in range(200):  # 4 s of 20 ms frames, sent within microseconds
        observer.live_audio_out(loud, 16000)
        observer.live_in(ServerMessage(audio=(loud,)))
    levels = [e for e in client.events if e.startswith(b"event: levels")]
    assert len(levels) == 1
    assert dbfs(b"") == FLOOR_DBFS and dbfs(bytes(320)) == FLOOR_DBFS
    assert -7 < dbfs((b"\xff\x7f" + b"\x01\x80") * 160) <= 0
