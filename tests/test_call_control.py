"""Ending calls from the gateway's side (gateway.call.control) with in-memory fakes.

End phrases, `end_call`, time limits and idle reminders all wait for the goodbye to be heard
(Twilio's mark echo) before the call ends. Timers are short but tests wait on events only.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gateway.agents.config import AgentConfig, AgentSet, load_agents
from gateway.audio.mulaw import decode_mulaw
from gateway.call import control as call_control
from gateway.call.bridge import Call
from gateway.call.control import MAX_DURATION_PROMPT
from gateway.call.hooks import CallObserver
from gateway.call.outcome import EndReason
from gateway.call.session_config import session_config_for
from gateway.live.protocol import FunctionCall, FunctionResponse, ServerMessage
from gateway.telephony.base import StreamStart
from gateway.telephony.twilio import TwilioCodec
from gateway.tools.dtmf import DTMF_FREQUENCIES_HZ
from tests.fakes import FakeConnector, FakeLiveSession, FakeTransport, text_of
from tests.tools import probe
from tests.twilio_frames import TwilioCaller

TONE = (np.sin(np.arange(2400) * 0.1) * 8000).astype("<i2").tobytes()  # 100 ms at 24 kHz


class Outcomes(CallObserver):
    def __init__(self) -> None:
        self.calls: list[FunctionCall] = []
        self.results: list[tuple[FunctionResponse, str]] = []

    def tool_call(self, call: FunctionCall) -> None:
        self.calls.append(call)

    def tool_result(self, response: FunctionResponse, duration_s: float, outcome: str) -> None:
        assert duration_s >= 0
        self.results.append((response, outcome))


@dataclass
class Running:
    call: Call
    transport: FakeTransport
    caller: TwilioCaller
    live: FakeLiveSession
    task: asyncio.Task[EndReason]
    outcomes: Outcomes

    def push(self, **fields: Any) -> None:
        self.live.server.put_nowait(ServerMessage(**fields))

    async def handled(self) -> None:
        """Until the call has handled every Live message pushed so far."""
        await self.live.barrier().wait()

    async def prompts(self, count: int) -> list[str]:
        """The first `count` texts the call sent to Live (however the dialect sends text)."""
        while True:
            texts = [text for m in self.live.sent if (text := text_of(m)) is not None]
            if len(texts) >= count:
                return texts
            self.live.message_received.clear()
            await self.live.message_received.wait()

    async def say_turn(self, text: str = "") -> str:
        """The model speaks a whole turn; returns the mark the call queued after it."""
        self.push(audio=(TONE,), output_transcription=text or None)
        self.push(turn_complete=True)
        mark = await self.transport.next_sent("mark")
        return str(mark["mark"]["name"])


async def start(agents: AgentSet, connector: FakeConnector | None = None) -> Running:
    transport, caller = FakeTransport(), TwilioCaller()
    connector = connector or FakeConnector()
    outcomes = Outcomes()
    call = Call(
        transport,
        TwilioCodec(),
        agents,
        connector,
        partial(session_config_for, default_model="test-model"),
        observers=[outcomes],
    )
    transport.push(caller.connected())
    transport.push(caller.start())
    task = asyncio.create_task(call.run())
    live = await connector.session()
    return Running(call, transport, caller, live, task, outcomes)


def agent(**fields: Any) -> AgentSet:
    return AgentSet.from_agents([AgentConfig(name="default", **fields)])


async def test_an_end_phrase_ends_the_call_once_the_goodbye_was_heard() -> None:
    run = await start(agent(end_call_phrases=("talk to you soon",)))
    first = await run.say_turn("Anything else?")
    run.transport.push(run.caller.mark(first))
    run.push(audio=(TONE,), output_transcription="Great. Talk to ")
    run.push(audio=(TONE,), output_transcription="you soon!")
    run.push(turn_complete=True)
    goodbye = await run.transport.next_sent("mark")
    await run.handled()
    assert run.call.control is not None  # still playing: the caller has not heard it yet
    assert run.call.control.waiting_for == f"mark {goodbye['mark']['name']}"
    run.transport.push(run.caller.mark(goodbye["mark"]["name"]))
    assert await run.task is EndReason.END_PHRASE


async def test_a_barge_in_during_the_goodbye_waits_for_the_next_turn() -> None:
    run = await start(agent(end_call_phrases=("goodbye",)))
    run.push(audio=(TONE,), output_transcription="Goodbye!")
    run.push(interrupted=True)  # the caller talks over it; Live ends the turn separately
    run.push(turn_complete=True)
    await run.transport.next_sent("clear")
    await run.handled()
    assert run.call.control is not None and run.call.control.waiting_for == "turn"
    mark = await run.say_turn("Oh, one more thing: your parcel ships today.")
    assert run.call.control.waiting_for == f"mark {mark}"
    run.transport.push(run.caller.mark(mark))
    assert await run.task is EndReason.END_PHRASE


async def test_the_grace_period_bounds_a_goodbye_that_is_never_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(call_control, "END_GRACE_S", 0.05)
    run = await start(agent(end_call_phrases=("bye",)))
    await run.say_turn("Bye.")  # Twilio never echoes the mark
    assert await run.task is EndReason.END_PHRASE


async def test_end_call_after_a_spoken_goodbye_waits_for_it_to_play() -> None:
    run = await start(agent(tools=[{"builtin": "end_call"}]))
    run.push(audio=(TONE,), output_transcription="Thanks for calling!")
    run.push(tool_calls=(FunctionCall("fc-1", "end_call", {}),))
    response = await run.live.wait_sent(lambda m: "toolResponse" in m)
    assert response["toolResponse"]["functionResponses"][0]["response"]["result"] == {
        "status": "ending",
        "instruction": "Say a brief goodbye now; the call ends when you finish speaking.",
    }
    run.push(turn_complete=True)  # the turn with the goodbye ends after the tool call
    mark = await run.transport.next_sent("mark")
    await run.handled()
    assert run.call.control is not None
    assert run.call.control.waiting_for == f"mark {mark['mark']['name']}"
    run.transport.push(run.caller.mark(mark["mark"]["name"]))
    assert await run.task is EndReason.AGENT_ENDED
    assert [outcome for _, outcome in run.outcomes.results] == ["ok"]


async def test_end_call_with_nothing_left_to_say_ends_after_a_quiet_moment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(call_control, "END_QUIET_S", 0.01)
    run = await start(agent(tools=[{"builtin": "end_call"}]))
    run.push(tool_calls=(FunctionCall("fc-1", "end_call", {"reason": "done"}),))
    await run.live.wait_sent(lambda m: "toolResponse" in m)
    run.push(turn_complete=True)  # no audio: nothing to wait for
    assert await run.task is EndReason.AGENT_ENDED


async def test_max_call_duration_asks_for_a_goodbye_then_hangs_up() -> None:
    run = await start(agent(max_call_duration_s=0.05))
    assert await run.prompts(1) == [MAX_DURATION_PROMPT]
    mark = await run.say_turn("I'm sorry, we have to end the call now. Goodbye!")
    run.transport.push(run.caller.mark(mark))
    assert await run.task is EndReason.MAX_DURATION


async def test_idle_caller_gets_a_reminder_then_a_goodbye_then_is_hung_up() -> None:
    run = await start(agent(idle_timeout_s=0.05, idle_reminder="Still there?", idle_goodbye="Bye"))
    assert await run.prompts(1) == ["Still there?"]
    mark = await run.say_turn("Are you still there?")
    run.transport.push(run.caller.mark(mark))
    assert await run.prompts(2) == ["Still there?", "Bye"]
    mark = await run.say_turn("I'll hang up now. Goodbye!")
    run.transport.push(run.caller.mark(mark))
    assert await run.task is EndReason.IDLE_TIMEOUT


async def test_the_caller_answering_a_reminder_starts_the_reminders_over() -> None:
    run = await start(agent(idle_timeout_s=0.3, idle_reminder="Still there?", idle_goodbye="Bye"))
    assert await run.prompts(1) == ["Still there?"]
    run.transport.push(run.caller.dtmf("1"))  # the caller is there after all
    texts = await run.prompts(3)
    assert texts == ["Still there?", "The caller pressed 1.", "Still there?"]
    assert await run.prompts(4) == ["Still there?", "The caller pressed 1.", "Still there?", "Bye"]
    run.transport.push(run.caller.stop())
    assert await run.task is EndReason.CALLER_HUNG_UP


async def test_a_silent_caller_is_hung_up_even_if_the_carrier_never_echoes_marks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(call_control, "END_GRACE_S", 0.05)
    run = await start(agent(idle_timeout_s=0.05, idle_reminder="Still there?", idle_goodbye="Bye"))
    assert await run.prompts(1) == ["Still there?"]
    await run.say_turn("Are you still there?")  # the carrier never echoes this mark
    async with asyncio.timeout(5):
        assert await run.prompts(2) == ["Still there?", "Bye"]
        await run.say_turn("Goodbye!")  # nor this one: the end grace bounds the wait
        assert await run.task is EndReason.IDLE_TIMEOUT


async def test_an_interruption_the_caller_did_not_cause_does_not_start_the_reminders_over() -> None:
    """Our own reminder can interrupt the model (Live, the emulator): without the caller's
    speech transcribed, that `interrupted` is no sign of the caller."""
    run = await start(agent(idle_timeout_s=0.05, idle_reminder="Still there?", idle_goodbye="Bye"))
    assert await run.prompts(1) == ["Still there?"]
    run.push(interrupted=True)  # what the reminder cut short
    run.push(turn_complete=True)
    await run.transport.next_sent("clear")
    mark = await run.say_turn("Are you still there?")
    run.transport.push(run.caller.mark(mark))
    async with asyncio.timeout(5):
        assert await run.prompts(2) == ["Still there?", "Bye"]  # not a second reminder
        mark = await run.say_turn("Goodbye!")
        run.transport.push(run.caller.mark(mark))
        assert await run.task is EndReason.IDLE_TIMEOUT


async def test_a_barge_in_with_the_callers_words_starts_the_reminders_over() -> None:
    run = await start(agent(idle_timeout_s=0.2, idle_reminder="Still there?", idle_goodbye="Bye"))
    assert await run.prompts(1) == ["Still there?"]
    run.push(interrupted=True)
    run.push(input_transcription="yes, I'm here")
    run.push(turn_complete=True)
    mark = await run.say_turn("Great, how can I help?")
    run.transport.push(run.caller.mark(mark))
    assert await run.prompts(2) == ["Still there?", "Still there?"]  # a reminder again
    run.transport.push(run.caller.stop())
    assert await run.task is EndReason.CALLER_HUNG_UP


async def test_dtmf_pressed_while_live_connects_is_sent_once_it_is_ready() -> None:
    connector = FakeConnector()
    connector.gate.clear()
    transport, caller = FakeTransport(), TwilioCaller()
    call = Call(
        transport,
        TwilioCodec(),
        agent(),
        connector,
        partial(session_config_for, default_model="test-model"),
    )
    transport.push(caller.connected())
    transport.push(caller.start())
    transport.push(caller.dtmf("4"))
    transport.push(caller.dtmf("2"))
    task = asyncio.create_task(call.run())
    await transport.wait_idle()
    connector.gate.set()
    live = await connector.session()
    await live.wait_sent(lambda m: m.get("realtimeInput", {}).get("text", "").endswith("2."))
    texts = [m["realtimeInput"]["text"] for m in live.sent if "realtimeInput" in m]
    assert texts == ["The caller pressed 4.", "The caller pressed 2."]
    transport.push(caller.stop())
    await task


def goertzel_power(pcm: np.ndarray, frequency_hz: float, rate_hz: int = 8000) -> float:
    t = np.arange(len(pcm)) / rate_hz
    return float(abs(np.dot(pcm, np.exp(-2j * np.pi * frequency_hz * t))) / len(pcm))


async def test_send_dtmf_plays_the_key_tones_to_the_caller() -> None:
    run = await start(agent(tools=[{"builtin": "send_dtmf"}]))
    run.push(tool_calls=(FunctionCall("fc-1", "send_dtmf", {"digits": "9"}),))
    await run.live.wait_sent(lambda m: "toolResponse" in m)
    frames = [await run.transport.next_sent("media") for _ in range(10)]  # 200 ms = 10 frames
    mulaw = b"".join(base64.b64decode(f["media"]["payload"]) for f in frames)
    tone = decode_mulaw(mulaw[: 8 * 120]).astype(np.float64)  # the 120 ms tone
    low, high = DTMF_FREQUENCIES_HZ["9"]
    wrong_low, wrong_high = DTMF_FREQUENCIES_HZ["1"]
    assert goertzel_power(tone, low) > 20 * goertzel_power(tone, wrong_low)
    assert goertzel_power(tone, high) > 20 * goertzel_power(tone, wrong_high)
    run.transport.push(run.caller.stop())
    await run.task


async def test_running_tools_are_cancelled_when_the_call_ends(tmp_path: Path) -> None:
    folder = tmp_path / "slow"
    folder.mkdir()
    (folder / "agent.yaml").write_text(
        "tools:\n  - {name: wait, description: Waits., python: 'tools:wait', timeout_s: 60}\n"
    )
    (folder / "tools.py").write_text(
        "import asyncio\nfrom tests.tools import probe\n\n"
        "async def wait():\n"
        "    probe.PROBE.started.set()\n"
        "    try:\n        await probe.PROBE.release.wait()\n"
        "    except asyncio.CancelledError:\n        probe.PROBE.cancelled.set()\n        raise\n"
    )
    probe.reset()
    run = await start(load_agents(tmp_path))
    run.push(tool_calls=(FunctionCall("fc-1", "wait", {}),))
    await probe.PROBE.started.wait()
    run.transport.push(run.caller.stop())
    assert await run.task is EndReason.CALLER_HUNG_UP
    assert probe.PROBE.cancelled.is_set()
    assert [outcome for _, outcome in run.outcomes.results] == ["cancelled"]
    assert not any("toolResponse" in m for m in run.live.sent)


# --------------------------------------------------------------------------- extended thinking


async def test_a_filler_turn_in_progress_is_not_the_goodbye_the_idle_one_is() -> None:
    """Extended thinking: a turn that ends IN_PROGRESS is a filler; the end waits for IDLE."""
    run = await start(agent(max_call_duration_s=0.05))
    assert await run.prompts(1) == [MAX_DURATION_PROMPT]
    run.push(audio=(TONE,), output_transcription="Let me check one thing first.")
    run.push(turn_complete=True, interaction_status="IN_PROGRESS")
    filler = await run.transport.next_sent("mark")
    run.transport.push(run.caller.mark(filler["mark"]["name"]))
    await run.transport.wait_idle()
    await run.handled()
    assert run.call.control is not None and run.call.control.waiting_for == "turn"
    assert not run.task.done()
    run.push(audio=(TONE,), output_transcription="We have to end the call now. Goodbye!")
    run.push(turn_complete=True, interaction_status="IDLE")
    goodbye = await run.transport.next_sent("mark")
    run.transport.push(run.caller.mark(goodbye["mark"]["name"]))
    assert await run.task is EndReason.MAX_DURATION


class _Hooks:
    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.ended: list[str] = []

    async def send_prompt(self, text: str) -> None:
        self.prompts.append(text)

    def claim_end(self, reason: str | None) -> None:
        pass

    def end(self, reason: str) -> None:
        self.ended.append(reason)

    def play_mulaw(self, mulaw: bytes) -> None:
        pass


def _supervisor(monkeypatch: pytest.MonkeyPatch, **fields: Any) -> tuple[Any, _Hooks, list[float]]:
    clock = [1000.0]
    monkeypatch.setattr(call_control.time, "monotonic", lambda: clock[0])
    hooks = _Hooks()
    start_event = TwilioCodec().parse(json.dumps(TwilioCaller().start()))
    assert isinstance(start_event, StreamStart)
    agent_config = AgentConfig(name="default", **fields)
    supervisor = call_control.CallSupervisor(agent_config, start_event, hooks)
    return supervisor, hooks, clock


async def test_no_idle_reminder_while_the_model_works_in_the_background(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    supervisor, hooks, clock = _supervisor(monkeypatch, idle_timeout_s=5.0)
    supervisor.start()
    supervisor.live_message(ServerMessage(turn_complete=True, interaction_status="IN_PROGRESS"))
    supervisor.turn_completed(None, interrupted=False)
    clock[0] += 60.0  # long past the idle timeout
    supervisor._on_idle_timer()
    await asyncio.sleep(0)
    assert hooks.prompts == [] and supervisor.waiting_for is None  # no reminder, no goodbye
    supervisor.live_message(ServerMessage(turn_complete=True, interaction_status="IDLE"))
    supervisor.turn_completed(None, interrupted=False)
    clock[0] += 60.0
    supervisor._on_idle_timer()
    for _ in range(3):
        await asyncio.sleep(0)  # the spawned prompt task runs
    assert hooks.prompts == [AgentConfig(name="x").idle_reminder]
    await supervisor.close()


async def _prompts_sent(hooks: _Hooks) -> list[str]:
    for _ in range(3):
        await asyncio.sleep(0)  # the spawned prompt task runs (no time passes)
    return hooks.prompts


async def test_unechoed_marks_hold_the_idle_timer_only_while_their_audio_plays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    supervisor, hooks, clock = _supervisor(monkeypatch, idle_timeout_s=5.0)
    supervisor.start()
    two_seconds = b"\x00\x00" * 24000 * 2  # 24 kHz PCM16
    supervisor.live_message(ServerMessage(audio=(two_seconds,)))
    supervisor.live_message(ServerMessage(turn_complete=True))
    supervisor.turn_completed("turn-1", interrupted=False)  # never echoed
    clock[0] += 5.5  # past the timeout, but the caller may still be hearing the turn
    supervisor._on_idle_timer()
    assert await _prompts_sent(hooks) == []
    clock[0] += 2.0  # the turn has played, and the caller has been quiet since
    supervisor._on_idle_timer()
    assert await _prompts_sent(hooks) == [AgentConfig(name="x").idle_reminder]
    await supervisor.close()


async def test_without_input_transcription_a_barge_in_counts_unless_we_prompted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    supervisor, hooks, clock = _supervisor(
        monkeypatch, idle_timeout_s=5.0, transcription={"input": False}
    )
    supervisor.start()
    clock[0] += 6.0
    supervisor._on_idle_timer()  # the reminder
    supervisor.barged_in()  # the reminder interrupting the model: not the caller
    supervisor.live_message(ServerMessage(turn_complete=True))
    supervisor.turn_completed(None, interrupted=True)
    supervisor.barged_in()  # no prompt in flight: the caller talked over the agent
    supervisor.turn_completed(None, interrupted=True)
    clock[0] += 6.0
    supervisor._on_idle_timer()
    assert supervisor.waiting_for is None  # a new reminder, not the goodbye
    reminder = AgentConfig(name="x").idle_reminder
    assert await _prompts_sent(hooks) == [reminder, reminder]
    supervisor.barged_in()  # our reminder again
    clock[0] += 6.0
    supervisor._on_idle_timer()
    assert supervisor.waiting_for == "answer"  # the idle goodbye
    await supervisor.close()


async def test_the_end_grace_holds_while_the_model_works_in_the_background(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    supervisor, hooks, _ = _supervisor(monkeypatch, tools=[{"builtin": "end_call"}])
    supervisor.start()
    supervisor.end_after_turn("done")
    supervisor.live_message(ServerMessage(turn_complete=True, interaction_status="IN_PROGRESS"))
    supervisor._on_grace_expired()
    assert supervisor.waiting_for == "answer" and hooks.ended == []  # still waiting
    for _ in range(int(call_control.BACKGROUND_GRACE_S / call_control.END_GRACE_S)):
        supervisor._on_grace_expired()
    assert supervisor.waiting_for == "hang_up"  # bounded: it hangs up in the end
    await supervisor.close()


async def test_a_when_idle_end_call_waits_for_the_turn_after_the_one_in_progress() -> None:
    """Non-blocking end_call answered WHEN_IDLE (3.8): the turn that made the call (or a
    filler) finishes first; the goodbye is the turn after it."""
    run = await start(agent(tools=[{"builtin": "end_call", "scheduling": "when_idle"}]))
    run.push(audio=(TONE,), output_transcription="One moment.")
    run.push(tool_calls=(FunctionCall("fc-1", "end_call", {}),))
    response = await run.live.wait_sent(lambda m: "toolResponse" in m)
    assert response["toolResponse"]["functionResponses"][0]["scheduling"] == "WHEN_IDLE"
    run.push(turn_complete=True)  # the filler turn ends: not the goodbye
    first = await run.transport.next_sent("mark")
    run.transport.push(run.caller.mark(first["mark"]["name"]))
    await run.transport.wait_idle()
    await run.handled()
    assert run.call.control is not None and run.call.control.waiting_for == "turn"
    goodbye = await run.say_turn("Thanks for calling, goodbye!")
    run.transport.push(run.caller.mark(goodbye))
    assert await run.task is EndReason.AGENT_ENDED


async def test_call_ending_builtins_are_answered_interrupt_on_non_blocking_models() -> None:
    run = await start(agent(tools=[{"builtin": "end_call"}]))
    run.push(tool_calls=(FunctionCall("fc-1", "end_call", {}),))
    response = await run.live.wait_sent(lambda m: "toolResponse" in m)
    assert response["toolResponse"]["functionResponses"][0]["scheduling"] == "INTERRUPT"
    run.transport.push(run.caller.stop())
    await run.task
