"""The call object: both pumps, barge-in, marks, hang-up and failures, with in-memory fakes."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from functools import partial

import numpy as np
import pytest

from gateway.agents.config import AgentConfig, AgentSet
from gateway.call.bridge import PROMPT_MARK, Call
from gateway.call.outcome import EndReason
from gateway.call.session_config import session_config_for
from gateway.live.models import PROFILES, Backend, ModelProfile, TextChannel
from gateway.live.protocol import FunctionCall, ServerMessage
from gateway.prompts import APOLOGY, load_prompt_mulaw
from gateway.telephony.twilio import TwilioCodec
from tests.fakes import FakeConnector, FakeTransport, text_of
from tests.twilio_frames import TwilioCaller

MULAW_FRAME = bytes([0x7F]) * 160  # 20 ms of quiet μ-law


def tone_pcm16(duration_ms: int, frequency_hz: float = 440.0, rate_hz: int = 24000) -> bytes:
    t = np.arange(rate_hz * duration_ms // 1000) / rate_hz
    return (np.sin(2 * np.pi * frequency_hz * t) * 8000).astype("<i2").tobytes()


def make_call(
    transport: FakeTransport,
    connector: FakeConnector,
    *,
    greeting: str | None = None,
    rate_hz: int = 24000,
    model: str = "test-model",
    backend: Backend = Backend.GEMINI,
) -> Call:
    agents = AgentSet.from_agents(
        [
            AgentConfig(name="default", greeting=greeting, system_instruction="be brief"),
            AgentConfig(name="sales", lines=("+15550001111",), voice="Kore"),
        ]
    )
    return Call(
        transport,
        TwilioCodec(),
        agents,
        connector,
        partial(session_config_for, default_model=model, backend=backend),
        live_input_rate_hz=rate_hz,
    )


@dataclass
class Running:
    """A call in progress and the fakes around it."""

    call: Call
    transport: FakeTransport
    connector: FakeConnector
    caller: TwilioCaller
    task: asyncio.Task[EndReason]


async def started_call(
    *,
    greeting: str | None = None,
    rate_hz: int = 24000,
    model: str = "test-model",
    backend: Backend = Backend.GEMINI,
    **params: str,
) -> Running:
    transport, connector, caller = FakeTransport(), FakeConnector(), TwilioCaller()
    call = make_call(
        transport, connector, greeting=greeting, rate_hz=rate_hz, model=model, backend=backend
    )
    transport.push(caller.connected())
    transport.push(caller.start(**params))
    return Running(call, transport, connector, caller, asyncio.create_task(call.run()))


async def test_caller_audio_reaches_live_as_pcm16_at_the_live_rate() -> None:
    run = await started_call()
    live = await run.connector.session()
    for _ in range(3):
        run.transport.push(run.caller.media(MULAW_FRAME))
    await live.wait_audio(3)
    assert [rate for _, rate in live.audio] == [24000] * 3
    assert all(len(pcm) == 160 * 3 * 2 for pcm, _ in live.audio)  # 20 ms at 24 kHz, 16-bit
    run.transport.push(run.caller.stop())
    assert await run.task is EndReason.CALLER_HUNG_UP


async def test_16khz_live_input_rate() -> None:
    run = await started_call(rate_hz=16000)
    live = await run.connector.session()
    run.transport.push(run.caller.media(MULAW_FRAME))
    await live.wait_audio(1)
    assert live.audio[0][1] == 16000 and len(live.audio[0][0]) == 320 * 2
    run.transport.push(run.caller.stop())
    await run.task


async def test_audio_heard_while_live_connects_is_sent_in_order_once_connected() -> None:
    transport, connector, caller = FakeTransport(), FakeConnector(), TwilioCaller()
    connector.gate.clear()
    call = make_call(transport, connector)
    transport.push(caller.start())
    frames = [bytes([0x80 + i]) * 160 for i in range(5)]
    for frame in frames:
        transport.push(caller.media(frame))
    task = asyncio.create_task(call.run())
    await transport.wait_idle()  # all five frames arrived while Live was still connecting
    assert call.stats.caller_frames == 5
    connector.gate.set()
    live = await connector.session()
    await live.wait_audio(5)
    decoded = [call_pcm for call_pcm, _ in live.audio]
    # Frames differ in level, so their decoded PCM differs: order is checkable.
    levels = [int(np.median(np.abs(np.frombuffer(pcm, "<i2")))) for pcm in decoded]
    assert levels == sorted(levels, reverse=True)
    assert len(set(levels)) == 5
    transport.push(caller.stop())
    await task


async def test_agent_audio_is_sent_as_160_byte_mulaw_frames_with_a_mark_per_turn() -> None:
    run = await started_call()
    live = await run.connector.session()
    live.server.put_nowait(ServerMessage(audio=(tone_pcm16(70),)))  # 3.5 frames
    live.server.put_nowait(ServerMessage(audio=(tone_pcm16(50),)))  # 2.5 frames
    live.server.put_nowait(ServerMessage(generation_complete=True))
    live.server.put_nowait(ServerMessage(turn_complete=True))
    mark = await run.transport.next_sent("mark")
    media = [m for m in run.transport.sent if m["event"] == "media"]
    assert len(media) == 6  # 120 ms of audio = 6 frames, the last padded
    for message in media:
        assert message["streamSid"] == run.caller.stream_sid
        assert len(base64.b64decode(message["media"]["payload"])) == 160
    assert mark["mark"]["name"] == "turn-1"
    assert run.transport.sent[-1] == mark  # the mark follows the turn's last frame
    run.transport.push(run.caller.stop())
    await run.task


def l16_start(caller: TwilioCaller, rate_hz: int) -> dict[str, object]:
    start = caller.start()
    start["start"]["mediaFormat"] = {
        "encoding": "audio/x-l16",
        "sampleRate": rate_hz,
        "channels": 1,
    }
    return start


async def test_an_l16_stream_is_heard_and_answered_in_l16() -> None:
    transport, connector, caller = FakeTransport(), FakeConnector(), TwilioCaller()
    call = make_call(transport, connector, rate_hz=16000)
    transport.push(l16_start(caller, 8000))
    task = asyncio.create_task(call.run())
    live = await connector.session()
    transport.push(caller.media(bytes(160)))  # 10 ms of 16-bit silence at 8 kHz (Twilio's cap)
    await live.wait_audio(1)
    assert len(live.audio[0][0]) == 320  # 10 ms at 16 kHz
    live.server.put_nowait(ServerMessage(audio=(tone_pcm16(100),)))
    live.server.put_nowait(ServerMessage(turn_complete=True))
    await transport.next_sent("mark")
    sent = transport.sent
    media = [base64.b64decode(m["media"]["payload"]) for m in sent if m["event"] == "media"]
    assert [len(frame) for frame in media] == [320] * 5  # 100 ms of L16 at 8 kHz
    transport.push(caller.stop())
    assert await task is EndReason.CALLER_HUNG_UP


async def test_a_stream_format_without_a_conversion_ends_the_call_before_live() -> None:
    transport, connector, caller = FakeTransport(), FakeConnector(), TwilioCaller()
    call = make_call(transport, connector)
    transport.push(l16_start(caller, 24000))  # no carrier streams it: no conversion ships
    assert await call.run() is EndReason.UNSUPPORTED_AUDIO
    assert connector.sessions == []


async def test_a_wideband_l16_stream_reaches_live_untouched_and_is_answered_at_16k() -> None:
    transport, connector, caller = FakeTransport(), FakeConnector(), TwilioCaller()
    call = make_call(transport, connector, rate_hz=16000)
    transport.push(l16_start(caller, 16000))
    task = asyncio.create_task(call.run())
    live = await connector.session()
    wideband = bytes(range(160))  # 5 ms of 16 kHz L16 (Twilio frames hold at most 160 bytes)
    transport.push(caller.media(wideband))
    await live.wait_audio(1)
    assert live.audio[0][0] == wideband  # no resampling step: the caller's own samples
    live.server.put_nowait(ServerMessage(audio=(tone_pcm16(100),)))
    live.server.put_nowait(ServerMessage(turn_complete=True))
    await transport.next_sent("mark")
    media = [
        base64.b64decode(m["media"]["payload"]) for m in transport.sent if m["event"] == "media"
    ]
    assert [len(frame) for frame in media] == [640] * 5  # 100 ms of L16 at 16 kHz
    transport.push(caller.stop())
    assert await task is EndReason.CALLER_HUNG_UP


async def test_a_burst_of_agent_audio_leaves_in_one_write_when_the_socket_takes_it() -> None:
    run = await started_call()
    run.transport.takes_bursts = True
    live = await run.connector.session()
    live.server.put_nowait(ServerMessage(audio=(tone_pcm16(200),)))  # 10 frames at once
    live.server.put_nowait(ServerMessage(turn_complete=True))
    await run.transport.next_sent("mark")
    assert run.transport.bursts[0] >= 10  # the reply (and the mark, if queued by then)
    assert sum(run.transport.bursts) == len(run.transport.sent)
    media = [m for m in run.transport.sent if m["event"] == "media"]
    assert len(media) == 10 and run.transport.sent[-1]["event"] == "mark"
    run.transport.push(run.caller.stop())
    await run.task


async def test_barge_in_drops_queued_frames_and_sends_clear_before_anything_else() -> None:
    run = await started_call()
    live = await run.connector.session()
    run.transport.send_gate.clear()  # the carrier socket is slow: frames pile up in the queue
    live.server.put_nowait(ServerMessage(audio=(tone_pcm16(1000),)))  # 50 frames
    live.server.put_nowait(ServerMessage(interrupted=True))
    live.server.put_nowait(ServerMessage(turn_complete=True))
    live.server.put_nowait(ServerMessage(audio=(tone_pcm16(40, 880.0),)))  # next answer
    live.server.put_nowait(ServerMessage(turn_complete=True))
    await live.barrier().wait()  # the Live pump has handled all of it
    run.transport.send_gate.set()
    await run.transport.next_sent("mark")
    events = [m["event"] for m in run.transport.sent]
    clear_at = events.index("clear")
    # At most one stale frame was already being written when the barge-in came.
    assert clear_at <= 1
    after = events[clear_at + 1 :]
    assert after == ["media", "media", "mark"]  # only the new 40 ms answer, then its mark
    assert run.call.stats.barge_ins == 1
    assert run.call.stats.stale_frames_dropped >= 49
    assert run.transport.sent[-1]["mark"]["name"] == "turn-2"
    run.transport.push(run.caller.stop())
    await run.task


async def test_interrupted_turn_gets_no_mark_and_pending_marks_are_forgotten() -> None:
    run = await started_call()
    live = await run.connector.session()
    live.server.put_nowait(ServerMessage(audio=(tone_pcm16(40),)))
    live.server.put_nowait(ServerMessage(turn_complete=True))
    await run.transport.next_sent("mark")
    live.server.put_nowait(ServerMessage(audio=(tone_pcm16(40),)))
    live.server.put_nowait(ServerMessage(interrupted=True, turn_complete=True))
    await run.transport.next_sent("clear")
    assert [m["event"] for m in run.transport.sent].count("mark") == 1
    # Twilio echoes the old mark after clear: it must be ignored, not crash the run.call.
    run.transport.push(run.caller.mark("turn-1"))
    run.transport.push(run.caller.stop())
    assert await run.task is EndReason.CALLER_HUNG_UP


async def test_hang_up_closes_the_live_session() -> None:
    run = await started_call()
    live = await run.connector.session()
    run.transport.push(run.caller.stop())
    assert await run.task is EndReason.CALLER_HUNG_UP
    assert live.closed.is_set()
    assert run.transport.closed.is_set()


async def test_caller_socket_dropping_closes_the_live_session() -> None:
    run = await started_call()
    live = await run.connector.session()
    run.transport.push(None)
    assert await run.task is EndReason.CALLER_DISCONNECTED
    assert live.closed.is_set()


async def hear_apology(transport: FakeTransport, caller: TwilioCaller) -> bytes:
    """The apology's audio, up to its mark, which we echo like Twilio once it has played."""
    audio = b""
    while (frame := await transport.next_sent())["event"] == "media":
        audio += base64.b64decode(frame["media"]["payload"])
    assert frame["event"] == "mark" and frame["mark"]["name"] == PROMPT_MARK
    transport.push(caller.mark(PROMPT_MARK))
    return audio


async def test_live_failure_apologises_then_ends_the_call_with_a_reason() -> None:
    run = await started_call()
    live = await run.connector.session()
    live.server.put_nowait(ConnectionError("1011 internal error"))
    apology = await hear_apology(run.transport, run.caller)
    assert apology.startswith(load_prompt_mulaw(APOLOGY))
    assert await run.task is EndReason.LIVE_FAILED
    assert run.transport.closed.is_set()
    assert live.closed.is_set()


async def test_caller_audio_during_the_apology_is_not_sent_to_a_dead_live() -> None:
    run = await started_call()
    live = await run.connector.session()
    live.server.put_nowait(ConnectionError("1011 internal error"))
    await run.transport.next_sent("media")  # the apology is playing
    run.transport.push(run.caller.media(MULAW_FRAME))
    await run.transport.wait_idle()
    assert live.audio == []
    run.transport.push(run.caller.mark(PROMPT_MARK))
    assert await run.task is EndReason.LIVE_FAILED


async def test_live_connect_failure_apologises_then_ends_the_call() -> None:
    transport, caller = FakeTransport(), TwilioCaller()
    connector = FakeConnector(fail=OSError("refused"))
    call = make_call(transport, connector)
    transport.push(caller.start())
    ended = asyncio.create_task(call.run())
    assert len(await hear_apology(transport, caller)) == len(load_prompt_mulaw(APOLOGY))
    assert await ended is EndReason.LIVE_CONNECT_FAILED
    assert transport.closed.is_set()


async def test_a_hang_up_during_the_apology_keeps_the_reason_and_ends_at_once() -> None:
    transport, caller = FakeTransport(), TwilioCaller()
    call = make_call(transport, FakeConnector(fail=OSError("refused")))
    transport.push(caller.start())
    ended = asyncio.create_task(call.run())
    await transport.next_sent("media")
    transport.push(caller.stop())
    assert await ended is EndReason.LIVE_CONNECT_FAILED


async def test_malformed_frames_are_skipped_and_the_call_goes_on() -> None:
    run = await started_call()
    live = await run.connector.session()
    run.transport.push("{not json")
    bad_media = {"event": "media", "streamSid": run.caller.stream_sid, "media": {"payload": "@@"}}
    run.transport.push(bad_media)
    run.transport.push({"event": "something_new"})  # Twilio sends six kinds: junk too
    run.transport.push(run.caller.media(MULAW_FRAME))
    await live.wait_audio(1)
    assert run.call.stats.malformed_frames == 3
    run.transport.push(run.caller.stop())
    assert await run.task is EndReason.CALLER_HUNG_UP


async def test_stream_that_stops_before_start_ends_quietly() -> None:
    transport, connector, caller = FakeTransport(), FakeConnector(), TwilioCaller()
    call = make_call(transport, connector)
    transport.push(caller.connected())
    transport.push(caller.stop())
    assert await call.run() is EndReason.NO_START
    assert connector.sessions == []


async def test_agent_is_chosen_by_parameter_then_line_then_default() -> None:
    for params, expected in [
        ({"agent": "sales"}, "sales"),
        ({"to": "+15550001111"}, "sales"),
        ({"to": "+15559999999"}, "default"),
        ({"agent": "nope", "to": "+15550001111"}, "sales"),
    ]:
        run = await started_call(**params)
        live = await run.connector.session()
        assert run.call.agent is not None and run.call.agent.name == expected
        assert live.config.voice == ("Kore" if expected == "sales" else None)
        run.transport.push(run.caller.stop())
        await run.task


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
@pytest.mark.parametrize("backend", list(Backend))
async def test_greeting_is_requested_once_live_is_ready(
    profile: ModelProfile, backend: Backend
) -> None:
    run = await started_call(greeting="Hi, Acme here!", model=profile.name, backend=backend)
    live = await run.connector.session()
    message = await live.wait_sent(lambda m: "realtimeInput" in m or "clientContent" in m)
    if profile.text_channel(backend) is TextChannel.REALTIME_TEXT:
        assert backend is Backend.GEMINI  # realtimeInput.text is a Developer API feature
        text = message["realtimeInput"]["text"]
    else:
        text = message["clientContent"]["turns"][0]["parts"][0]["text"]
        assert message["clientContent"]["turns"][0]["role"] == "user"
        assert message["clientContent"]["turnComplete"] is True
    assert "Hi, Acme here!" in text
    run.transport.push(run.caller.stop())
    await run.task


@pytest.mark.parametrize("backend", list(Backend))
async def test_dtmf_reaches_the_model_as_text(backend: Backend) -> None:
    run = await started_call(backend=backend)
    live = await run.connector.session()
    run.transport.push(run.caller.media(MULAW_FRAME))
    await live.wait_audio(1)  # Live is ready
    run.transport.push(run.caller.dtmf("5"))
    message = await live.wait_sent(lambda m: text_of(m) is not None)
    assert text_of(message) == "The caller pressed 5."
    # Vertex takes no realtimeInput.text: there it is a user turn.
    assert ("clientContent" in message) is (backend is Backend.VERTEX)
    run.transport.push(run.caller.stop())
    await run.task


async def test_unconfigured_tool_call_gets_an_error_response() -> None:
    run = await started_call()
    live = await run.connector.session()
    live.server.put_nowait(
        ServerMessage(tool_calls=(FunctionCall(id="fc-1", name="lookup_order", args={}),))
    )
    message = await live.wait_sent(lambda m: "toolResponse" in m)
    response = message["toolResponse"]["functionResponses"][0]
    assert response["id"] == "fc-1" and "error" in response["response"]
    run.transport.push(run.caller.stop())
    await run.task


@pytest.mark.parametrize("reason", [EndReason.GATEWAY_SHUTDOWN])
async def test_hang_up_from_the_gateway(reason: EndReason) -> None:
    run = await started_call()
    await run.connector.session()
    run.call.hang_up(reason)
    assert await run.task is reason
    assert run.call.finished.is_set()
