"""The emulator impersonates each model generation (by `setup.model`) in each dialect.

Every test runs per profile of `gateway.live.models.PROFILES` and, where the dialect matters,
per backend; expectations come from the profile's fields, never from model names. Every frame
the emulator sent in a test is validated against google-genai's `LiveServerMessage` as the SDK
reads that dialect. "Slow" emulators generate a reply in one chunk and then let it play for a
very long wall time, so a test can act inside the playback window without racing it; the
caller's audio clock (silence sent by the test) ends the window when the test wants.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from gateway.live.client import LiveConnectionClosed, LiveConnector, LiveSession
from gateway.live.emulator.rules import (
    DEFAULT_FILLER,
    THINKING_FILLER,
    dialect_of,
    interrupt_waits_for_caller,
)
from gateway.live.emulator.server import EmulatorScript, LiveEmulator
from gateway.live.models import (
    LIVE_38,
    LIVE_38_EXTENDED_THINKING,
    NATIVE_AUDIO_25,
    NEWEST_PROFILE,
    PROFILES,
    Backend,
    ModelProfile,
    SetupFeatures,
    ToolBehavior,
    ToolScheduling,
    refusals,
)
from gateway.live.protocol import (
    FunctionResponse,
    ServerMessage,
    SessionConfig,
    build_client_content,
    build_history,
    build_text_input,
    build_tool_response,
)
from tests.generations import GENERATIONS, Generation
from tests.live.conftest import FAST, emulator_settings, send_chunks, turn_complete, until
from tests.live.sdk import validate_server_frame
from tests.live.signals import chunked, silence_pcm16, tone_pcm16, utterance

VERTEX_PATH = "projects/test-project/locations/us-central1/publishers/google/models/"
SLOW = {"speed": 0.001, "chunk_ms": 10_000}
"""One chunk per reply, then ~1000x its duration of wall time to play."""
PLAYED_MS = 4500
"""Caller silence that outlasts any reply (replies last at most 4 s): ends a playback window."""
ANSWER = "Your order has shipped."
NON_BLOCKING_SCRIPT = EmulatorScript.from_yaml(
    f"""
turns:
  - tool_call: {{name: lookup_order, args: {{order_id: A1001}}}}
    after_tool: "{ANSWER}"
"""
)
BLOCKING_SCRIPT = EmulatorScript.from_yaml(
    f"""
turns:
  - say: "Let me look that up."
    tool_call: {{name: lookup_order}}
    after_tool: "{ANSWER}"
"""
)

GENERATIONS_BY_ID = {str(g): g for g in GENERATIONS}
GEMINI = [g for g in GENERATIONS if g.backend is Backend.GEMINI]


def generations(
    keep: Callable[[ModelProfile], bool] = lambda p: True, *, backends: tuple[Backend, ...] = ()
) -> list[Any]:
    """pytest params: the generations whose profile `keep`s (and on `backends`, if given)."""
    return [
        pytest.param(g, id=str(g))
        for g in GENERATIONS
        if keep(g.profile) and (not backends or g.backend in backends)
    ]


def model_path(generation: Generation) -> str:
    if generation.backend is Backend.VERTEX:
        return VERTEX_PATH + generation.model
    return f"models/{generation.model}"


def reply_turns(profile: ModelProfile) -> int:
    """Model turns answering one caller turn: a thinking filler first on extended thinking."""
    return 2 if profile.interaction_status else 1


@contextlib.asynccontextmanager
async def live(
    generation: Generation,
    script: EmulatorScript | None = None,
    *,
    emulator_options: dict[str, Any] | None = None,
    **config: Any,
) -> AsyncIterator[tuple[LiveEmulator, LiveSession]]:
    """An emulator and a session speaking `generation`; afterwards every frame is validated."""
    options = {"speed": FAST} | (emulator_options or {})
    emulator = LiveEmulator(script, record_frames=True, **options)
    if emulator.speed < 1:
        emulator.reasoning_s = 0.0  # no long pause between the extended-thinking turns
    async with emulator:
        connector = LiveConnector(emulator_settings(), url_override=emulator.url)
        session_config = SessionConfig(
            model=model_path(generation), backend=generation.backend, **config
        )
        async with await connector.connect(session_config) as session:
            yield emulator, session
    assert emulator.generations == [(generation.profile, generation.backend)]
    for frame in emulator.sent_frames:
        validate_server_frame(frame, generation.backend)


def transcript_of(messages: list[ServerMessage]) -> str:
    return "".join(m.output_transcription or "" for m in messages)


def audio_of(messages: list[ServerMessage]) -> bytes:
    return b"".join(chunk for m in messages for chunk in m.audio)


def kinds(messages: list[ServerMessage]) -> list[str]:
    out = []
    for m in messages:
        for label, present in (
            ("audio", bool(m.audio)),
            ("tool_call", bool(m.tool_calls)),
            ("tool_call_cancellation", bool(m.tool_call_cancellation_ids)),
            ("interrupted", m.interrupted),
            ("generation_complete", m.generation_complete),
            ("turn_complete", m.turn_complete),
            ("go_away", m.go_away_time_left_s is not None),
        ):
            if present:
                out.append(label)
    return out


async def model_turns(messages: AsyncIterator[ServerMessage], n: int) -> list[list[ServerMessage]]:
    """The next `n` model turns, each up to and including its turnComplete."""
    return [await until(messages, turn_complete) for _ in range(n)]


async def marker(emulator: LiveEmulator, messages: AsyncIterator[ServerMessage]) -> list[str]:
    """What the emulator sends before a goAway sent now: proof of what it has *not* sent yet."""
    await emulator.go_away(30)
    return kinds(await until(messages, lambda m: m.go_away_time_left_s is not None))[:-1]


def call_id_in(messages: list[ServerMessage]) -> str:
    """The id of the one tool call among `messages`."""
    (call,) = [call for m in messages for call in m.tool_calls]
    return call.id


def tool_fields(profile: ModelProfile, behavior: ToolBehavior) -> dict[str, Any]:
    """SessionConfig fields declaring `lookup_order` with `behavior` (where the field exists)."""
    fields: dict[str, Any] = {"function_declarations": ({"name": "lookup_order"},)}
    if profile.behavior_field:
        fields["tool_behaviors"] = (("lookup_order", behavior),)
    return fields


def answered(call_id: str, scheduling: ToolScheduling | None) -> dict[str, Any]:
    response = FunctionResponse(call_id, "lookup_order", {"status": "shipped"}, scheduling)
    return build_tool_response([response])


# --------------------------------------------------------------------------- dialect


def test_the_dialect_is_read_from_the_model_path() -> None:
    assert dialect_of(VERTEX_PATH + "gemini-3.8-live") is Backend.VERTEX
    assert dialect_of("publishers/google/models/gemini-3.8-live") is Backend.VERTEX
    assert dialect_of("models/gemini-3.8-live") is Backend.GEMINI
    assert dialect_of("gemini-3.8-live") is Backend.GEMINI


@pytest.mark.parametrize("generation", generations())
async def test_setup_complete_names_the_session_on_vertex(generation: Generation) -> None:
    async with live(generation) as (_, session):
        session_id = session.setup_complete.session_id
        if generation.backend is Backend.VERTEX:
            assert isinstance(session_id, str) and session_id
        else:
            assert session_id is None


@pytest.mark.parametrize("generation", generations())
async def test_usage_metadata_has_the_dialect_names(generation: Generation) -> None:
    async with live(generation) as (_, session):
        await send_chunks(session, utterance())
        turns = await model_turns(aiter(session), reply_turns(generation.profile))
    usage = turns[-1][-1].usage
    assert usage is not None
    response_key, other_key = "responseTokenCount", "candidatesTokenCount"
    if generation.backend is Backend.VERTEX:
        response_key, other_key = other_key, response_key
    assert usage[response_key] > 0 and other_key not in usage
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage[response_key]


@pytest.mark.parametrize("generation", generations())
async def test_realtime_text_is_refused_on_vertex_and_answered_on_the_developer_api(
    generation: Generation,
) -> None:
    async with live(generation) as (emulator, session):
        await session.send(build_text_input("The caller pressed 1."))
        if generation.backend is Backend.VERTEX:
            with pytest.raises(LiveConnectionClosed) as closed:
                await until(aiter(session), lambda m: False)
            assert closed.value.code == 1007
            assert "realtimeInput.text" in closed.value.reason
            assert generation.profile.name in closed.value.reason
            return
        turns = await model_turns(aiter(session), reply_turns(generation.profile))
    assert transcript_of(turns[-1]) == 'You said "The caller pressed 1.". This is reply number 1.'
    assert emulator.client_texts == ["The caller pressed 1."]


# --------------------------------------------------------------------------- setup refusals


@dataclass(frozen=True)
class Case:
    name: str
    field: str
    """What the close reason names."""
    patch: Callable[[dict[str, Any]], None]
    refused: Callable[[ModelProfile], bool]
    features: SetupFeatures | None = None
    """The same wish as agent validation sees it (the emulator and agents check agree)."""


def _generation_config(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def patch(setup: dict[str, Any]) -> None:
        setup["generationConfig"].pop("thinkingConfig", None)
        setup["generationConfig"].update(fields)

    return patch


def _setup_fields(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda setup: setup.update(fields)


def _levels(level: str) -> Callable[[ModelProfile], bool]:
    return lambda p: p.thinking != "level" or level not in p.thinking_levels


def _tool(behavior: str | None) -> Callable[[dict[str, Any]], None]:
    declaration = {"name": "lookup_order"} | ({"behavior": behavior} if behavior else {})
    return _setup_fields(tools=[{"functionDeclarations": [declaration]}])


def _behavior_refused(behavior: ToolBehavior) -> Callable[[ModelProfile], bool]:
    return lambda p: not p.behavior_field or behavior not in p.tool_behaviors


CASES = [
    Case(
        "thinking-config-empty",
        "thinkingConfig",
        _generation_config(thinkingConfig={}),
        lambda p: p.thinking == "none" or p.thinking_required,
    ),
    Case("thinking-omitted", "thinkingConfig", _generation_config(), lambda p: p.thinking_required),
    Case(
        "thinking-level-low",
        "thinkingConfig",
        _generation_config(thinkingConfig={"thinkingLevel": "LOW"}),
        _levels("low"),
        SetupFeatures(thinking_level="LOW"),
    ),
    Case(
        "thinking-level-minimal",
        "thinkingConfig",
        _generation_config(thinkingConfig={"thinkingLevel": "MINIMAL"}),
        _levels("minimal"),
        SetupFeatures(thinking_level="MINIMAL"),
    ),
    Case(
        "thinking-level-unknown",
        "thinkingConfig",
        _generation_config(thinkingConfig={"thinkingLevel": "XHIGH"}),
        _levels("xhigh"),
        SetupFeatures(thinking_level="XHIGH"),
    ),
    Case(
        "thinking-budget",
        "thinkingConfig",
        _generation_config(thinkingConfig={"thinkingBudget": 0}),
        lambda p: p.thinking != "budget",
        SetupFeatures(thinking_budget=0),
    ),
    Case(
        "proactive-audio-on",
        "proactivity",
        _setup_fields(proactivity={"proactiveAudio": True}),
        lambda p: p.proactive_audio == "unsupported",
        SetupFeatures(proactive_audio=True),
    ),
    Case(
        "proactive-audio-off",
        "proactivity",
        _setup_fields(proactivity={"proactiveAudio": False}),
        lambda p: p.proactive_audio != "opt_in",
        SetupFeatures(proactive_audio=False),
    ),
    Case(
        "affective-dialog-on",
        "enableAffectiveDialog",
        lambda s: s["generationConfig"].update(enableAffectiveDialog=True),
        lambda p: not p.affective_dialog,
        SetupFeatures(affective_dialog=True),
    ),
    Case(
        "affective-dialog-off",
        "enableAffectiveDialog",
        lambda s: s["generationConfig"].update(enableAffectiveDialog=False),
        lambda p: not p.affective_dialog,
        SetupFeatures(affective_dialog=False),
    ),
    Case(
        "custom-vocabulary",
        "customVocabulary",
        _setup_fields(inputAudioTranscription={"customVocabulary": ["Acme", "A1001"]}),
        lambda p: not p.transcription_vocabulary,
        SetupFeatures(vocabulary=True),
    ),
    Case(
        "behavior-blocking",
        "behavior",
        _tool("BLOCKING"),
        _behavior_refused(ToolBehavior.BLOCKING),
    ),
    Case(
        "behavior-non-blocking",
        "behavior",
        _tool("NON_BLOCKING"),
        _behavior_refused(ToolBehavior.NON_BLOCKING),
    ),
    Case("no-behavior", "behavior", _tool(None), lambda p: False),
]


def base_setup(generation: Generation) -> dict[str, Any]:
    """A setup `generation` accepts: audio out, and the thinking level where it is required."""
    generation_config: dict[str, Any] = {"responseModalities": ["AUDIO"]}
    level = generation.profile.setup_thinking_level
    if level is not None:
        generation_config["thinkingConfig"] = {"thinkingLevel": level.upper()}
    return {"model": model_path(generation), "generationConfig": generation_config}


async def close_reason(emulator: LiveEmulator, setup: dict[str, Any], backend: Backend) -> str:
    """The 1007 reason the emulator closes with, or "" if it completes the setup."""
    async with connect(emulator.url) as ws:
        await ws.send(json.dumps({"setup": setup}))
        try:
            frame = await ws.recv()
        except ConnectionClosedError as exc:
            assert exc.rcvd is not None and exc.rcvd.code == 1007
            return exc.rcvd.reason
    assert validate_server_frame(frame, backend).setup_complete is not None
    return ""


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("generation", generations())
async def test_setups_are_refused_as_the_profile_says(
    emulator: LiveEmulator, generation: Generation, case: Case
) -> None:
    setup = base_setup(generation)
    case.patch(setup)
    reason = await close_reason(emulator, setup, generation.backend)
    profile = generation.profile
    if case.refused(profile):
        assert case.field in reason and profile.name in reason, reason
        assert emulator.setups == []
    else:
        assert reason == ""
        assert emulator.generations == [(profile, generation.backend)]
    if case.features is not None:
        assert bool(refusals(profile, case.features)) is case.refused(profile)


async def test_an_unknown_model_is_the_newest_generation(emulator: LiveEmulator) -> None:
    assert await close_reason(emulator, {"model": "models/gemini-99-live"}, Backend.GEMINI) == ""
    assert emulator.generations == [(NEWEST_PROFILE, Backend.GEMINI)]


# --------------------------------------------------------------------------- tool calls


@pytest.mark.parametrize(
    "generation", generations(lambda p: p.default_tool_behavior is ToolBehavior.BLOCKING)
)
async def test_an_undeclared_tool_gets_the_default_behaviour_blocking(
    generation: Generation,
) -> None:
    async with live(generation, BLOCKING_SCRIPT) as (_, session):
        messages = aiter(session)
        await send_chunks(session, utterance())
        before = await until(messages, lambda m: bool(m.tool_calls))
        assert transcript_of(before).endswith("Let me look that up.")
        assert "generation_complete" not in kinds(before[-3:])
        await session.send(answered(call_id_in(before), None))
        after = await until(messages, turn_complete)
    assert transcript_of(after) == ANSWER
    assert kinds(after)[-2:] == ["generation_complete", "turn_complete"]


@pytest.mark.parametrize(
    "generation", generations(lambda p: p.default_tool_behavior is ToolBehavior.NON_BLOCKING)
)
async def test_an_undeclared_tool_gets_the_default_behaviour_non_blocking(
    generation: Generation,
) -> None:
    async with live(generation, NON_BLOCKING_SCRIPT) as (_, session):
        messages = aiter(session)
        await send_chunks(session, utterance())
        turns = await model_turns(messages, reply_turns(generation.profile))
        assert "tool_call" in kinds(turns[-1])
        assert transcript_of(turns[-1]) == DEFAULT_FILLER  # it kept talking


@pytest.mark.parametrize(
    "generation", generations(lambda p: ToolBehavior.BLOCKING in p.tool_behaviors)
)
async def test_a_blocking_call_waits_and_caller_speech_cancels_it(generation: Generation) -> None:
    fields = tool_fields(generation.profile, ToolBehavior.BLOCKING)
    async with live(generation, BLOCKING_SCRIPT, **fields) as (emulator, session):
        messages = aiter(session)
        await send_chunks(session, utterance())
        before = await until(messages, lambda m: bool(m.tool_calls))
        (call,) = before[-1].tool_calls
        await send_chunks(session, chunked(tone_pcm16(200)))
        after = await until(messages, turn_complete)
    assert kinds(after) == ["interrupted", "tool_call_cancellation", "turn_complete"]
    assert after[1].tool_call_cancellation_ids == (call.id,)
    assert emulator.tool_responses == []


@pytest.mark.parametrize(
    "generation", generations(lambda p: ToolBehavior.NON_BLOCKING in p.tool_behaviors)
)
async def test_a_non_blocking_call_keeps_talking_and_survives_a_barge_in(
    generation: Generation,
) -> None:
    profile = generation.profile
    fields = tool_fields(profile, ToolBehavior.NON_BLOCKING)
    async with live(generation, NON_BLOCKING_SCRIPT, emulator_options=SLOW, **fields) as (
        emulator,
        session,
    ):
        messages = aiter(session)
        await send_chunks(session, utterance())
        if profile.interaction_status:  # the thinking filler plays out first
            await until(messages, lambda m: m.generation_complete)
            await send_chunks(session, chunked(silence_pcm16(PLAYED_MS)))
            await until(messages, turn_complete)
        filler = await until(messages, lambda m: m.generation_complete)
        assert kinds(filler)[0] == "tool_call"  # the call first, then the model keeps talking
        assert transcript_of(filler) == DEFAULT_FILLER
        call_id = call_id_in(filler)
        await send_chunks(session, chunked(tone_pcm16(300)))  # talks over the filler
        interrupted = await until(messages, turn_complete)
        assert kinds(interrupted) == ["interrupted", "turn_complete"]  # no cancellation
        await session.send(answered(call_id, None))
        emulator.speed = FAST
        await send_chunks(session, chunked(silence_pcm16(700)))
        reply = await model_turns(messages, reply_turns(profile))
        assert transcript_of(reply[-1]).startswith("You said something")
        answer = await until(messages, turn_complete)  # WHEN_IDLE: once the reply is over
    assert transcript_of(answer) == ANSWER
    assert emulator.tool_responses[0].id == call_id


async def _filler_playing(
    generation: Generation, session: LiveSession, messages: AsyncIterator[ServerMessage]
) -> str:
    """Caller turn 1 on a slow emulator: returns the call id once the filler is generated and
    still playing (the extended-thinking filler turn is played out first)."""
    await send_chunks(session, utterance())
    if generation.profile.interaction_status:
        await until(messages, lambda m: m.generation_complete)
        await send_chunks(session, chunked(silence_pcm16(PLAYED_MS)))
        thinking = await until(messages, turn_complete)
        assert thinking[-1].interaction_status == "IN_PROGRESS"
    filler = await until(messages, lambda m: m.generation_complete)
    return call_id_in(filler)


SCHEDULING = lambda p: p.response_scheduling and ToolBehavior.NON_BLOCKING in p.tool_behaviors  # noqa: E731


@pytest.mark.parametrize("generation", generations(SCHEDULING))
async def test_when_idle_answers_once_the_model_has_finished_speaking(
    generation: Generation,
) -> None:
    fields = tool_fields(generation.profile, ToolBehavior.NON_BLOCKING)
    async with live(generation, NON_BLOCKING_SCRIPT, emulator_options=SLOW, **fields) as (
        emulator,
        session,
    ):
        messages = aiter(session)
        call_id = await _filler_playing(generation, session, messages)
        await session.send(answered(call_id, ToolScheduling.WHEN_IDLE))
        await emulator.wait_tool_responses(1)
        assert await marker(emulator, messages) == []  # not interrupted, nothing said yet
        await send_chunks(session, chunked(silence_pcm16(PLAYED_MS)))  # the filler plays out
        filler_end = await until(messages, turn_complete)
        assert kinds(filler_end) == ["turn_complete"]
        answer = await until(messages, lambda m: m.generation_complete)
    assert transcript_of(answer) == ANSWER
    if generation.profile.interaction_status:
        assert filler_end[-1].interaction_status == "IN_PROGRESS"  # the answer is coming


@pytest.mark.parametrize("generation", generations(SCHEDULING))
async def test_interrupt_stops_the_model_and_answers_now(generation: Generation) -> None:
    fields = tool_fields(generation.profile, ToolBehavior.NON_BLOCKING)
    async with live(generation, NON_BLOCKING_SCRIPT, emulator_options=SLOW, **fields) as (
        _,
        session,
    ):
        messages = aiter(session)
        call_id = await _filler_playing(generation, session, messages)
        await session.send(answered(call_id, ToolScheduling.INTERRUPT))
        stopped = await until(messages, turn_complete)
        answer = await until(messages, lambda m: m.generation_complete)
    assert kinds(stopped) == ["interrupted", "turn_complete"]
    assert transcript_of(answer) == ANSWER


@pytest.mark.parametrize("generation", generations(SCHEDULING))
async def test_silent_records_the_answer_and_says_nothing(generation: Generation) -> None:
    profile = generation.profile
    fields = tool_fields(profile, ToolBehavior.NON_BLOCKING)
    async with live(generation, NON_BLOCKING_SCRIPT, emulator_options=SLOW, **fields) as (
        emulator,
        session,
    ):
        messages = aiter(session)
        call_id = await _filler_playing(generation, session, messages)
        await session.send(answered(call_id, ToolScheduling.SILENT))
        await emulator.wait_tool_responses(1)
        assert await marker(emulator, messages) == []
        await send_chunks(session, chunked(silence_pcm16(PLAYED_MS)))
        filler_end = await until(messages, turn_complete)
        emulator.speed = FAST
        await send_chunks(session, utterance())
        reply = await model_turns(messages, reply_turns(profile))
    assert emulator.tool_responses[0].scheduling is ToolScheduling.SILENT
    assert ANSWER not in transcript_of([m for turn in reply for m in turn])
    assert transcript_of(reply[-1]).endswith("This is reply number 2.")
    if profile.interaction_status:
        assert filler_end[-1].interaction_status == "IDLE"  # nothing more is coming


@pytest.mark.parametrize("generation", generations(SCHEDULING))
async def test_interrupt_while_the_caller_speaks(generation: Generation) -> None:
    """2.5 talks over the caller; the 3.8 generation waits for them to finish."""
    profile = generation.profile
    fields = tool_fields(profile, ToolBehavior.NON_BLOCKING)
    async with live(generation, NON_BLOCKING_SCRIPT, **fields) as (emulator, session):
        messages = aiter(session)
        await send_chunks(session, utterance())
        turns = await model_turns(messages, reply_turns(profile))
        call_id = call_id_in(turns[-1])
        await send_chunks(session, chunked(tone_pcm16(600)))  # the caller is mid-speech
        await session.send(answered(call_id, ToolScheduling.INTERRUPT))
        if not interrupt_waits_for_caller(profile):
            answer = await until(messages, lambda m: m.generation_complete)
            assert transcript_of(answer) == ANSWER  # spoken over the caller
            return
        await emulator.wait_tool_responses(1)
        assert await marker(emulator, messages) == []  # held while the caller speaks
        await send_chunks(session, chunked(silence_pcm16(700)))
        answer = await until(messages, turn_complete)
        reply = await model_turns(messages, reply_turns(profile))
    assert transcript_of(answer) == ANSWER  # first the answer, then the caller's reply
    assert transcript_of(reply[-1]).startswith("You said something for 0.6 seconds")


def test_interrupt_waits_for_the_caller_on_the_3_8_generation_only() -> None:
    assert interrupt_waits_for_caller(LIVE_38)
    assert interrupt_waits_for_caller(LIVE_38_EXTENDED_THINKING)
    assert not interrupt_waits_for_caller(NATIVE_AUDIO_25)


# --------------------------------------------------------------------------- extended thinking


@pytest.mark.parametrize("generation", generations())
async def test_extended_thinking_reports_interaction_status_with_a_filler_turn(
    generation: Generation,
) -> None:
    profile = generation.profile
    async with live(generation) as (_, session):
        await send_chunks(session, utterance())
        turns = await model_turns(aiter(session), reply_turns(profile))
    statuses = [turn[-1].interaction_status for turn in turns]
    if not profile.interaction_status:
        assert statuses == [None]
        return
    assert transcript_of(turns[0]) == THINKING_FILLER
    assert transcript_of(turns[1]).endswith("This is reply number 1.")
    assert statuses == ["IN_PROGRESS", "IDLE"]
    assert all("generation_complete" in kinds(turn) for turn in turns)


@pytest.mark.parametrize(
    "generation", generations(lambda p: p.interaction_status, backends=(Backend.VERTEX,))
)
async def test_extended_thinking_is_in_progress_while_a_call_is_pending(
    generation: Generation,
) -> None:
    async with live(generation, NON_BLOCKING_SCRIPT) as (_, session):
        messages = aiter(session)
        await send_chunks(session, utterance())
        thinking, filler = await model_turns(messages, 2)
        assert thinking[-1].interaction_status == "IN_PROGRESS"
        assert filler[-1].interaction_status == "IN_PROGRESS"  # the call is pending
        await session.send(answered(call_id_in(filler), None))
        answer = await until(messages, turn_complete)
    assert transcript_of(answer) == ANSWER
    assert answer[-1].interaction_status == "IDLE"


# --------------------------------------------------------------------------- playback window


@pytest.mark.parametrize("generation", generations())
async def test_turn_complete_comes_once_the_reply_has_played(generation: Generation) -> None:
    async with live(generation, emulator_options=SLOW) as (emulator, session):
        messages = aiter(session)
        await session.send(build_client_content('Say "Welcome to Acme!"'))
        generated = await until(messages, lambda m: m.generation_complete)
        assert transcript_of(generated) == "Welcome to Acme!"
        assert await marker(emulator, messages) == []  # generated, still playing
        await send_chunks(session, chunked(silence_pcm16(PLAYED_MS)))
        played = await until(messages, turn_complete)
    assert kinds(played) == ["turn_complete"]


@pytest.mark.parametrize("generation", generations())
async def test_turn_complete_needs_no_caller_audio(generation: Generation) -> None:
    async with live(generation) as (_, session):  # the emulator's own pacing ends the window
        await session.send(build_client_content('Say exactly: "Welcome to Acme!"'))
        greeting = await until(aiter(session), turn_complete)
    assert transcript_of(greeting) == "Welcome to Acme!"
    assert kinds(greeting)[-2:] == ["generation_complete", "turn_complete"]


@pytest.mark.parametrize("generation", generations())
async def test_a_barge_in_while_the_reply_plays_gives_one_turn_complete(
    generation: Generation,
) -> None:
    async with live(generation, emulator_options=SLOW) as (_, session):
        messages = aiter(session)
        await send_chunks(session, utterance())
        generated = await until(messages, lambda m: m.generation_complete)
        assert "turn_complete" not in kinds(generated)
        await send_chunks(session, chunked(tone_pcm16(300)))
        stopped = await until(messages, turn_complete)
        assert kinds(stopped) == ["interrupted", "turn_complete"]
        await send_chunks(session, chunked(silence_pcm16(700)))
        nxt = await until(messages, lambda m: m.generation_complete)
    assert "turn_complete" not in kinds(nxt)  # the interrupted reply ended only once


# --------------------------------------------------------------------------- events and text


@pytest.mark.parametrize("generation", generations())
async def test_audio_and_transcript_share_events_on_multi_part_models(
    generation: Generation,
) -> None:
    async with live(generation) as (_, session):
        await session.send(build_client_content('Say "Thanks for calling Acme, how can I help?"'))
        greeting = await until(aiter(session), turn_complete)
    assert transcript_of(greeting) == "Thanks for calling Acme, how can I help?"
    together = [m for m in greeting if m.audio and m.output_transcription is not None]
    alone = [m for m in greeting if not m.audio and m.output_transcription is not None]
    if generation.profile.multi_part_events:
        assert together and not alone
    else:
        assert alone and not together


@pytest.mark.parametrize("generation", [pytest.param(g, id=str(g)) for g in GEMINI])
async def test_realtime_text_with_a_quoted_phrase_is_spoken_as_the_phrase(
    generation: Generation,
) -> None:
    async with live(generation) as (_, session):
        messages = aiter(session)
        await session.send(
            build_text_input('Greet the caller now by saying exactly: "Welcome to Acme!"')
        )
        greeting = await until(messages, turn_complete)
        assert transcript_of(greeting) == "Welcome to Acme!"
        await session.send(build_text_input("The caller pressed 1."))
        reply = await model_turns(messages, reply_turns(generation.profile))
    assert transcript_of(reply[-1]) == 'You said "The caller pressed 1.". This is reply number 2.'
    if generation.profile.interaction_status:
        assert greeting[-1].interaction_status == "IDLE"


@pytest.mark.parametrize("generation", generations())
async def test_client_content_with_turn_complete_interrupts_the_model(
    generation: Generation,
) -> None:
    async with live(generation, emulator_options=SLOW) as (_, session):
        messages = aiter(session)
        await session.send(build_client_content('Say "Welcome to Acme!"'))
        await until(messages, lambda m: m.generation_complete)
        await session.send(build_client_content('Say "Sorry, one more thing."'))
        stopped = await until(messages, turn_complete)
        second = await until(messages, lambda m: m.generation_complete)
    assert kinds(stopped) == ["interrupted", "turn_complete"]
    assert transcript_of(second) == "Sorry, one more thing."


@pytest.mark.parametrize("generation", generations(lambda p: p.initial_history_config))
async def test_initial_history_is_absorbed_without_a_reply(generation: Generation) -> None:
    history = (("user", "Where is my order?"), ("model", "It is on its way."))
    async with live(generation, initial_history=history) as (emulator, session):
        assert session.setup["setup"]["historyConfig"] == {"initialHistoryInClientContent": True}
        await session.send(build_history(history[:1], initial=False))
        await session.send(build_history(history[1:], initial=True))
        await send_chunks(session, utterance())
        turns = await model_turns(aiter(session), reply_turns(generation.profile))
    assert transcript_of(turns[-1]).endswith("This is reply number 1.")  # history: no reply
    assert [turn for content in emulator.histories for turn in content.turns] == list(history)
    assert [c.turn_complete for c in emulator.histories] == [False, True]


@pytest.mark.parametrize("generation", generations())
async def test_client_content_without_turn_complete_is_context(generation: Generation) -> None:
    async with live(generation) as (emulator, session):
        await session.send(build_history((("user", "I called yesterday."),), initial=False))
        await send_chunks(session, utterance())
        turns = await model_turns(aiter(session), reply_turns(generation.profile))
    assert transcript_of(turns[-1]).endswith("This is reply number 1.")
    assert emulator.histories == []
    assert emulator.client_texts == ["I called yesterday."]


def test_every_profile_is_covered_on_both_backends() -> None:
    assert {(g.profile, g.backend) for g in GENERATIONS} == {
        (p, b) for p in PROFILES for b in Backend
    }
    assert len(GENERATIONS_BY_ID) == len(GENERATIONS)
