"""Observers see the call's events; a failing observer is switched off, the call goes on."""

from __future__ import annotations

import asyncio
import base64
import json
from functools import partial

from gateway.agents.config import AgentConfig, AgentSet
from gateway.call.bridge import Call
from gateway.call.hooks import CallObserver, ObserverSet
from gateway.call.outcome import CallStats, EndReason
from gateway.call.session_config import session_config_for
from gateway.live.protocol import ServerMessage
from gateway.telephony.twilio import TwilioCodec
from tests.fakes import FakeConnector, FakeTransport
from tests.test_call import MULAW_FRAME, tone_pcm16
from tests.twilio_frames import TwilioCaller


class Collector(CallObserver):
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.out: list[str] = []
        self.last_out = ""
        self.ended: EndReason | None = None

    def call_started(self, call: Call) -> None:
        self.seen.append("started")

    def carrier_in(self, frame: str | bytes) -> None:
        self.seen.append("carrier_in:" + json.loads(frame)["event"])

    def carrier_out(self, frame: str) -> None:
        self.out.append(json.loads(frame)["event"])
        self.last_out = frame

    def agent_media(self, mulaw: bytes) -> None:
        payload = json.loads(self.last_out)["media"]["payload"]  # the frame just written
        self.seen.append("agent_media:" + ("ok" if base64.b64decode(payload) == mulaw else "bad"))

    def live_audio_out(self, pcm16le: bytes, rate_hz: int) -> None:
        self.seen.append(f"live_audio_out:{rate_hz}")

    def barge_in(self, frames_dropped: int) -> None:
        self.seen.append("barge_in")

    def call_ended(self, reason: EndReason, stats: CallStats) -> None:
        self.ended = reason


class Broken(CallObserver):
    calls = 0

    def carrier_in(self, frame: str | bytes) -> None:
        Broken.calls += 1
        raise RuntimeError("observer bug")


async def test_observers_see_the_call_and_a_broken_one_is_isolated() -> None:
    transport, connector, caller = FakeTransport(), FakeConnector(), TwilioCaller()
    collector = Collector()
    call = Call(
        transport,
        TwilioCodec(),
        AgentSet.from_agents([AgentConfig(name="default")]),
        connector,
        partial(session_config_for, default_model="m"),
        observers=[Broken(), collector],
    )
    transport.push(caller.start())
    task = asyncio.create_task(call.run())
    live = await connector.session()
    transport.push(caller.media(MULAW_FRAME))
    await live.wait_audio(1)
    live.server.put_nowait(ServerMessage(audio=(tone_pcm16(40),)))
    await transport.next_sent("media")
    live.server.put_nowait(ServerMessage(interrupted=True))
    await transport.next_sent("clear")
    transport.push(caller.stop())
    assert await task is EndReason.CALLER_HUNG_UP
    assert Broken.calls == 1  # switched off after its first failure
    assert collector.seen[:3] == ["carrier_in:start", "started", "carrier_in:media"]
    assert "live_audio_out:16000" in collector.seen and "barge_in" in collector.seen
    assert collector.out[-1] == "clear"
    media_out = collector.out.count("media")
    assert media_out >= 1 and collector.seen.count("agent_media:ok") == media_out
    assert collector.ended is EndReason.CALLER_HUNG_UP


def test_empty_observer_set_is_falsy() -> None:
    assert not ObserverSet()
    assert ObserverSet([CallObserver()])
