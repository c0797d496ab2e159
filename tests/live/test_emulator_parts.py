"""The emulator's pieces on their own: sample-clocked VAD, reply voice, YAML script."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.live.emulator.script import EmulatorScript, EmulatorScriptError
from gateway.live.emulator.server import DEFAULT_GREETING, greeting_text
from gateway.live.emulator.vad import EnergyVad, SpeechEnded, SpeechStarted, VadEvent
from gateway.live.emulator.voice import (
    MAX_DURATION_S,
    MIN_DURATION_S,
    reply_fundamental_hz,
    speech_duration_s,
    tone_reply_pcm16,
)
from tests.live.signals import chunked, dominant_hz, rms_dbfs, silence_pcm16, tone_pcm16

# --------------------------------------------------------------------------- VAD


def run_vad(pcm: bytes, chunk_ms: int, rate_hz: int = 24000) -> list[VadEvent]:
    vad = EnergyVad(prefix_padding_ms=40, silence_duration_ms=500)
    events: list[VadEvent] = []
    size = max(2, rate_hz * chunk_ms // 1000 * 2)
    for i in range(0, len(pcm), size):
        events += vad.feed(pcm[i : i + size], rate_hz)
    return events


def test_vad_finds_speech_start_and_end_on_the_audio_clock() -> None:
    pcm = silence_pcm16(200) + tone_pcm16(600) + silence_pcm16(700)
    events = run_vad(pcm, 20)
    assert len(events) == 2
    started, ended = events
    assert isinstance(started, SpeechStarted) and isinstance(ended, SpeechEnded)
    assert started.speech_start_s == pytest.approx(0.2)
    assert started.time_s == pytest.approx(0.24)  # after 40 ms of speech
    assert ended.duration_s == pytest.approx(0.6)
    assert ended.time_s == pytest.approx(1.3)  # 500 ms of silence after the speech


@pytest.mark.parametrize("chunk_ms", [1, 7, 20, 33, 1500])
def test_vad_events_do_not_depend_on_chunking(chunk_ms: int) -> None:
    pcm = tone_pcm16(300) + silence_pcm16(600) + tone_pcm16(250) + silence_pcm16(520)
    assert run_vad(pcm, chunk_ms) == run_vad(pcm, 20)


def test_vad_ignores_quiet_noise_and_short_clicks() -> None:
    quiet = tone_pcm16(1000, dbfs=-50)
    click = tone_pcm16(20) + silence_pcm16(600)
    assert run_vad(quiet + click, 20) == []


def test_vad_short_pause_does_not_end_speech() -> None:
    pcm = tone_pcm16(300) + silence_pcm16(300) + tone_pcm16(300) + silence_pcm16(600)
    events = run_vad(pcm, 20)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    assert isinstance(events[1], SpeechEnded) and events[1].duration_s == pytest.approx(0.9)


def test_vad_flush_ends_speech_and_rates_may_change() -> None:
    vad = EnergyVad()
    events = vad.feed(tone_pcm16(200, rate_hz=8000), 8000)
    events += vad.feed(tone_pcm16(200, rate_hz=16000), 16000)
    assert [type(e) for e in events] == [SpeechStarted]
    assert vad.time_s == pytest.approx(0.4)
    ended = vad.flush()
    assert len(ended) == 1 and isinstance(ended[0], SpeechEnded)
    assert ended[0].duration_s == pytest.approx(0.4)
    assert not vad.speaking


# --------------------------------------------------------------------------- voice


def test_tone_fallback_is_deterministic_and_pitched_per_reply() -> None:
    text = "You said something for 0.6 seconds. This is reply number 1."
    first = tone_reply_pcm16(text, 1)
    assert first == tone_reply_pcm16(text, 1)
    assert len(first) == round(speech_duration_s(text) * 24000) * 2
    assert -21.0 < rms_dbfs(first) < -19.0
    second = tone_reply_pcm16(text, 2)
    assert dominant_hz(first) == pytest.approx(reply_fundamental_hz(1), abs=2)
    assert dominant_hz(second) == pytest.approx(reply_fundamental_hz(2), abs=2)
    assert reply_fundamental_hz(1) != reply_fundamental_hz(2)
    assert all(120 <= reply_fundamental_hz(n) <= 250 for n in range(1, 20))


def test_reply_duration_follows_the_text_within_bounds() -> None:
    assert speech_duration_s("Hi") == MIN_DURATION_S
    assert speech_duration_s("x" * 20) == pytest.approx(1.4)
    assert speech_duration_s("x" * 1000) == MAX_DURATION_S


def test_greeting_text_uses_the_quoted_greeting() -> None:
    assert greeting_text('Greet the caller now by saying exactly: "Welcome to Acme!"') == (
        "Welcome to Acme!"
    )
    assert greeting_text("Say “Hola” please") == "Hola"
    assert greeting_text("Greet the caller.") == DEFAULT_GREETING


# --------------------------------------------------------------------------- script

SCRIPT = """
greeting: "Thanks for calling."
turns:
  - say: "Let me look that up."
    tool_call: {name: lookup_order, args: {order_id: A1001}}
    after_tool: "Your order has shipped: {response}"
  - say: "Anything else?"
  - tool_call: {name: end_call}
"""


def test_script_from_text_file_and_path(tmp_path: Path) -> None:
    script = EmulatorScript.from_yaml(SCRIPT)
    assert script.greeting == "Thanks for calling."
    assert len(script.turns) == 3
    first = script.turns[0]
    assert first.tool_call is not None and first.tool_call.args == {"order_id": "A1001"}
    assert script.turns[2].tool_call is not None and script.turns[2].tool_call.args == {}
    path = tmp_path / "script.yaml"
    path.write_text(SCRIPT)
    assert EmulatorScript.from_yaml(path) == script
    assert EmulatorScript.from_yaml(str(path)) == script
    assert EmulatorScript.from_yaml("") == EmulatorScript()


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("turns: [{sayy: hi}]", r"turns\.0\.sayy"),
        ("turns: [{after_tool: hi, say: x}]", "after_tool"),
        ("turns: [{}]", "needs"),
        ("turns: [{tool_call: {args: {}}}]", r"tool_call\.name"),
        ("turns: [unclosed", "invalid YAML"),
        ("- just a list", "expected a mapping"),
    ],
)
def test_script_errors_say_where(text: str, complaint: str) -> None:
    with pytest.raises(EmulatorScriptError, match=complaint):
        EmulatorScript.from_yaml(text)


def test_missing_script_file_is_a_script_error(tmp_path: Path) -> None:
    with pytest.raises(EmulatorScriptError, match="cannot read"):
        EmulatorScript.from_yaml(tmp_path / "nope.yaml")


def test_chunked_helper_covers_the_audio() -> None:
    assert b"".join(chunked(tone_pcm16(100))) == tone_pcm16(100)
