"""The emulator hears words: caller utterances decoded by a small pocketsphinx grammar, heard
words in `inputTranscription`, and `on_words` script triggers (gateway.live.emulator.hearing).

The caller's speech is the emulator's own eSpeak voice at 16 kHz (what Live receives), so the
words are known and recognition is deterministic: the same audio gives the same words.
"""

from __future__ import annotations

import sys

import pytest

from gateway.live.client import LiveConnector
from gateway.live.emulator import hearing
from gateway.live.emulator.script import EmulatorScript, EmulatorScriptError
from gateway.live.emulator.server import LiveEmulator
from gateway.live.emulator.voice import speak_pcm16
from gateway.live.models import ToolBehavior
from gateway.live.protocol import (
    FunctionResponse,
    ServerMessage,
    SessionConfig,
    build_tool_response,
)
from tests.live.conftest import FAST, emulator_settings, send_chunks, turn_complete, until
from tests.live.signals import chunked, silence_pcm16

RATE = hearing.HEARING_RATE_HZ
ORDER_PHRASE = "Order B 2 3 4 please."
"""Heard as "order b two three four please" (the default caller voice below); the phrasing
measured most reliable across the emulator's voices."""
OTHER_PHRASE = "Hello, where is my parcel?"

SCRIPT = EmulatorScript.from_yaml(
    """
turns:
  - say: "How can I help?"
on_words:
  - when_heard: [order, "{id}"]
    say: "Let me look up order {id}."
    tool_call: {name: lookup_order, args: {order_id: "{id}", verbose: false}}
    after_tool: "Order {id}: {response}"
"""
)

needs_pocketsphinx = pytest.mark.skipif(
    not hearing.available(), reason="pocketsphinx (the emulator-asr extra) is not installed"
)


def caller_says(text: str, rate_hz: int = RATE) -> list[bytes]:
    """A caller turn: the phrase in the emulator's default voice, then 800 ms of silence."""
    pcm = speak_pcm16(text, None, rate_hz=rate_hz)
    return chunked(pcm, rate_hz=rate_hz) + chunked(
        silence_pcm16(800, rate_hz=rate_hz), rate_hz=rate_hz
    )


def input_transcriptions(messages: list[ServerMessage]) -> list[str]:
    return [m.input_transcription for m in messages if m.input_transcription is not None]


def transcript_of(messages: list[ServerMessage]) -> str:
    return "".join(m.output_transcription or "" for m in messages)


def config() -> SessionConfig:
    return SessionConfig(
        model="m",
        function_declarations=({"name": "lookup_order"},),
        tool_behaviors=(("lookup_order", ToolBehavior.BLOCKING),),
    )


@needs_pocketsphinx
async def test_order_and_an_id_heard_call_lookup_order() -> None:
    async with LiveEmulator(SCRIPT, speed=FAST) as emulator:
        assert emulator.hearing
        connector = LiveConnector(emulator_settings(), url_override=emulator.url)
        async with await connector.connect(config()) as session:
            messages = aiter(session)
            await send_chunks(session, caller_says(ORDER_PHRASE), RATE)
            before = await until(messages, lambda m: bool(m.tool_calls))
            (said,) = input_transcriptions(before)
            assert "order" in said.split()
            assert transcript_of(before) == "Let me look up order B234."
            (call,) = before[-1].tool_calls
            assert (call.name, call.args) == (
                "lookup_order",
                {"order_id": "B234", "verbose": False},
            )
            response = FunctionResponse(call.id, call.name, {"result": {"status": "shipped"}})
            await session.send(build_tool_response([response]))
            after = await until(messages, turn_complete)
            assert transcript_of(after) == 'Order B234: {"result":{"status":"shipped"}}'
        assert emulator.heard == [said]


@needs_pocketsphinx
async def test_words_without_a_trigger_get_the_scripted_turn() -> None:
    async with LiveEmulator(SCRIPT, speed=FAST) as emulator:
        connector = LiveConnector(emulator_settings(), url_override=emulator.url)
        async with await connector.connect(config()) as session:
            messages = aiter(session)
            await send_chunks(session, caller_says(OTHER_PHRASE), RATE)
            reply = await until(messages, turn_complete)
            assert not any(m.tool_calls for m in reply)
            assert transcript_of(reply) == "How can I help?"  # the trigger used no turn
            (said,) = input_transcriptions(reply)
            assert "order" not in said.split()
            assert emulator.heard in ([said], [""])  # "" → the duration stands in
            # Then the order, at 24 kHz (resampled to 16 kHz for the recogniser).
            await send_chunks(session, caller_says(ORDER_PHRASE, 24000), 24000)
            before = await until(messages, lambda m: bool(m.tool_calls))
            assert before[-1].tool_calls[0].args["order_id"] == "B234"


@needs_pocketsphinx
async def test_the_same_audio_is_heard_the_same_way() -> None:
    recognizer = hearing.recognizer_for(SCRIPT.on_words)
    assert recognizer is hearing.recognizer_for(SCRIPT.on_words)  # one per grammar
    order = speak_pcm16(ORDER_PHRASE, None, rate_hz=RATE)
    other = speak_pcm16(OTHER_PHRASE, None, rate_hz=RATE)
    first = recognizer.hear(order)
    assert first.startswith("order b two three four")
    recognizer.hear(other)
    assert recognizer.hear(order) == first  # nothing carried over from earlier utterances


async def test_without_pocketsphinx_the_emulator_reports_durations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)  # import fails, find_spec → None
    assert not hearing.available()
    async with LiveEmulator(SCRIPT, speed=FAST) as emulator:
        assert not emulator.hearing
        connector = LiveConnector(emulator_settings(), url_override=emulator.url)
        async with await connector.connect(config()) as session:
            await send_chunks(session, caller_says(ORDER_PHRASE), RATE)
            reply = await until(aiter(session), turn_complete)
    (said,) = input_transcriptions(reply)
    assert said.startswith("(caller speech ") and said.endswith(" s)")
    assert not any(m.tool_calls for m in reply)
    assert transcript_of(reply) == "How can I help?"
    assert emulator.heard == []


def test_hearing_is_off_without_triggers() -> None:
    assert not LiveEmulator(EmulatorScript.from_yaml("turns: [{say: hi}]")).hearing


def test_triggers_match_words_and_fill_slots() -> None:
    triggers = SCRIPT.on_words
    heard = hearing.match_trigger("i want my order b two three four please", triggers)
    assert heard is not None and heard.slots == {"id": "B234"}
    heard = hearing.match_trigger("order a one oh oh one", triggers)
    assert heard is not None and heard.slots == {"id": "A1001"}
    assert hearing.match_trigger("order b please", triggers) is None  # a slot needs digits
    assert hearing.match_trigger("hello where is my parcel", triggers) is None
    assert hearing.match_trigger("", triggers) is None


def test_grammar_lists_trigger_words_outside_the_filler() -> None:
    script = EmulatorScript.from_yaml(
        """
on_words:
  - {when_heard: [order, "{id}"], tool_call: {name: lookup_order}}
  - {when_heard: [check, ticket, "{n}"], say: "Ticket {n}."}
"""
    )
    grammar = hearing.grammar_for(script.on_words)
    assert "(order <slot>) | (check ticket <slot>)" in grammar
    filler = next(line for line in grammar.splitlines() if line.startswith("<filler>"))
    assert "check" not in filler.split() and "order" not in filler.split()


@pytest.mark.parametrize(
    ("yaml_text", "problem"),
    [
        ('on_words: [{when_heard: ["{id}"], say: x}]', "at least one word"),
        ("on_words: [{when_heard: [Order], say: x}]", "lowercase words"),
        ("on_words: [{when_heard: [], say: x}]", "at least 1 item"),
        ("on_words: [{when_heard: [order]}]", "needs `say`, `tool_call` or both"),
    ],
)
def test_bad_triggers_are_refused(yaml_text: str, problem: str) -> None:
    with pytest.raises(EmulatorScriptError, match=problem):
        EmulatorScript.from_yaml(yaml_text)


def test_resampling_to_the_hearing_rate() -> None:
    pcm = speak_pcm16("order", None, rate_hz=24000)
    assert hearing.to_hearing_rate(pcm, RATE) is pcm
    resampled = hearing.to_hearing_rate(pcm, 24000)
    assert abs(len(resampled) - len(pcm) * 2 // 3) <= 2
