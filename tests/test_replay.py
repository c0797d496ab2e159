"""Replaying recorded calls: every fixture in tests/recordings/ still plays the same, and a
recording that no longer matches the gateway is reported with a diff and exit status 1."""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.agents.config import AgentConfig, AgentSet, load_agents
from gateway.call.bridge import PROMPT_MARK
from gateway.cli import main as gateway_main
from gateway.live.emulator.script import EmulatorScript, ScriptToolCall, ScriptTurn
from gateway.live.emulator.server import LiveEmulator
from gateway.live.models import Backend
from gateway.live.resilient import ResilientLiveConnector
from gateway.recording.format import EventKind, RecordedEvent, Recording, read_recording
from gateway.recording.recorder import RECORDINGS
from gateway.recording.replay.player import (
    Action,
    Against,
    ReplayError,
    ReplayOptions,
    build_plan,
    replay_recording,
)
from gateway.recording.replay.script import script_from_recording
from gateway.server import MEDIA_PATH, create_app
from gateway.settings import load_settings
from gateway.telephony.carriers import PHONES
from tests.caller_audio import silence_frames, speech_frames
from tests.generations import DEFAULT_GENERATION, EVERY_GENERATION, Generation
from tests.twilio_frames import TwilioCaller

RECORDINGS_DIR = Path(__file__).parent / "recordings"
AGENTS_DIR = RECORDINGS_DIR / "agents"
FIXTURES = sorted(RECORDINGS_DIR.glob("*.jsonl.gz"))
TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def agents() -> AgentSet:
    return load_agents(AGENTS_DIR)


def test_every_kind_of_call_has_a_fixture() -> None:
    names = {path.name.removesuffix(".jsonl.gz") for path in FIXTURES}
    assert names >= {
        "question_answer", "barge_in", "tool_call", "dtmf", "hang_up_mid_reply",
        "malformed_frames",
    }  # fmt: skip
    # …and a call over every other carrier, recorded with its carrier's name.
    for carrier in sorted(set(PHONES) - {"twilio"}):
        name = f"question_answer_{carrier}"
        assert name in names, f"no fixture for {carrier}: make_fixtures {name}"
        assert read_recording(RECORDINGS_DIR / f"{name}.jsonl.gz").metadata["carrier"] == carrier
    committed = [p for p in RECORDINGS_DIR.rglob("*") if p.is_file() and p.suffix != ".wav"]
    # WAVs are git-ignored. Binary carriers (Vonage, Asterisk) keep their frames as base64
    # JSONL lines (no compact audio record for binary frames yet): ~40-60 KiB a fixture.
    assert sum(path.stat().st_size for path in committed) < 2_000_000


def _replays() -> list[Any]:
    """Every fixture against its recorded Live side, and against the emulator when it was
    recorded with the emulator (the emulator's voice is not Gemini's: lengths differ)."""
    cases = []
    for path in FIXTURES:
        name = path.name.split(".")[0]
        cases.append(pytest.param(path, Against.RECORDED, id=f"{name}-recorded"))
        if read_recording(path).metadata.get("live_backend") == "emulator":
            cases.append(pytest.param(path, Against.EMULATOR, id=f"{name}-emulator"))
    return cases


@pytest.mark.parametrize(("path", "against"), _replays())
async def test_a_recorded_call_replays_without_a_difference(
    path: Path, against: Against, agents: AgentSet
) -> None:
    recording = read_recording(path)
    report = await replay_recording(
        recording, ReplayOptions(against=against, stall_timeout_s=TIMEOUT_S), agents=agents
    )
    assert report.ok, report.render()
    assert report.live_out is not None
    assert len(report.twilio_out) > 50 and len(report.live_out) > 50
    assert "OK" in report.render().splitlines()[0]


def test_the_fixtures_cover_what_they_are_named_for() -> None:
    def kinds(name: str) -> list[str]:
        return [e.kind for e in read_recording(RECORDINGS_DIR / f"{name}.jsonl.gz").events]

    def outbound(name: str) -> list[str]:
        recording = read_recording(RECORDINGS_DIR / f"{name}.jsonl.gz")
        return [json.loads(e.data["frame"])["event"] for e in recording.of_kind("twilio_out")]

    assert "barge_in" in kinds("barge_in") and "clear" in outbound("barge_in")
    assert {"tool_call", "tool_result"} <= set(kinds("tool_call"))
    tool = read_recording(RECORDINGS_DIR / "tool_call.jsonl.gz")
    [result] = tool.of_kind(EventKind.TOOL_RESULT)
    assert result.data["outcome"] == "ok" and result.data["response"]["result"]["found"]
    dtmf = read_recording(RECORDINGS_DIR / "dtmf.jsonl.gz")
    texts = [e.data.get("message") for e in dtmf.of_kind(EventKind.LIVE_OUT)]
    assert {"realtimeInput": {"text": "The caller pressed 1."}} in texts
    assert dtmf.metadata["live_input_rate_hz"] == 16000
    hang_up = read_recording(RECORDINGS_DIR / "hang_up_mid_reply.jsonl.gz")
    assert hang_up.end_reason == "caller_hung_up"
    assert "mark" not in outbound("hang_up_mid_reply")  # the answer never finished
    malformed = read_recording(RECORDINGS_DIR / "malformed_frames.jsonl.gz")
    errors = [e.data["error"] for e in malformed.of_kind(EventKind.ERROR)]
    assert errors.count("malformed_caller_frame") >= 5
    assert any("frame_b64" in e.data for e in malformed.of_kind(EventKind.TWILIO_IN))


# --------------------------------------------------------------------------- differences


def altered(tmp_path: Path, name: str, edit: Callable[[list[dict[str, Any]]], None]) -> Path:
    """A copy of fixture `name` with its events changed by `edit`."""
    with gzip.open(RECORDINGS_DIR / f"{name}.jsonl.gz", "rt") as source:
        events = [json.loads(line) for line in source]
    edit(events)
    path = tmp_path / f"{name}-altered.jsonl"
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


def rename_first_mark(events: list[dict[str, Any]]) -> None:
    for event in events:
        if event["kind"] == "twilio_out" and '"mark"' in event["frame"]:
            frame = json.loads(event["frame"])
            frame["mark"]["name"] = "turn-99"
            event["frame"] = json.dumps(frame)
            return


def test_the_command_passes_a_matching_recording(capsys: pytest.CaptureFixture[str]) -> None:
    path = RECORDINGS_DIR / "question_answer.jsonl.gz"
    status = gateway_main(["replay", str(path), "--agents", str(AGENTS_DIR)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "replay question_answer.jsonl.gz against recorded: OK" in out


def test_the_command_prints_a_diff_and_fails_on_an_altered_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = altered(tmp_path, "question_answer", rename_first_mark)
    status = gateway_main(["replay", str(path), "--agents", str(AGENTS_DIR)])
    out = capsys.readouterr().out
    assert status == 1, out
    assert "MISMATCH" in out
    assert "twilio_out: first difference at event #" in out
    assert "expected: mark turn-99" in out and "got:      mark turn-1" in out


def test_the_command_rejects_what_it_cannot_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"t": 0, "kind": "nonsense"}\n')
    assert gateway_main(["replay", str(broken), "--agents", str(AGENTS_DIR)]) == 2
    assert "unknown event kind" in capsys.readouterr().err
    fixture = RECORDINGS_DIR / "question_answer.jsonl.gz"
    assert gateway_main(["replay", str(fixture), "--agents", str(tmp_path)]) == 2
    assert "cannot load the agents" in capsys.readouterr().err


async def test_lost_agent_audio_is_a_diff_in_the_answer(
    tmp_path: Path, agents: AgentSet
) -> None:
    def drop_twenty_frames(events: list[dict[str, Any]]) -> None:
        media = [
            i for i, e in enumerate(events) if e["kind"] == "twilio_out" and "media" in e["frame"]
        ]
        for index in reversed(media[60:80]):  # in the middle of the first answer
            del events[index]

    recording = read_recording(altered(tmp_path, "question_answer", drop_twenty_frames))
    report = await replay_recording(recording, ReplayOptions(), agents=agents)
    assert not report.ok
    [diff] = report.diffs
    assert diff.stream == "twilio_out"
    assert "frame count off by +20" in diff.got


async def test_a_changed_agent_shows_up_in_what_the_gateway_sends_to_live(
    agents: AgentSet,
) -> None:
    support = agents.agents["support"]
    changed = AgentSet.from_agents(
        [*[a for a in agents.agents.values() if a.name != "support"],
         support.model_copy(update={"greeting": "Acme, good morning!"})]
    )  # fmt: skip
    recording = read_recording(RECORDINGS_DIR / "question_answer.jsonl.gz")
    report = await replay_recording(recording, ReplayOptions(), agents=changed)
    assert not report.ok
    [diff] = report.diffs
    assert diff.stream == "live_out" and diff.index == 0
    assert "Acme, hello!" in diff.expected and "Acme, good morning!" in diff.got


async def test_a_gateway_that_stops_answering_is_reported_as_stalled(
    tmp_path: Path, agents: AgentSet
) -> None:
    def expect_an_extra_mark_before_the_hang_up(events: list[dict[str, Any]]) -> None:
        stop = next(i for i, e in enumerate(events) if '"event": "stop"' in e.get("frame", ""))
        frame = json.dumps({"event": "mark", "streamSid": "MZ", "mark": {"name": "never"}})
        events.insert(stop, {"t": events[stop]["t"], "kind": "twilio_out", "frame": frame})

    path = altered(tmp_path, "question_answer", expect_an_extra_mark_before_the_hang_up)
    report = await replay_recording(
        read_recording(path), ReplayOptions(stall_timeout_s=0.5), agents=agents
    )
    assert not report.ok and report.stalled is not None
    assert "caller_frame" in report.stalled and "twilio_out" in report.stalled


async def test_an_unknown_agent_is_an_error_not_a_mismatch() -> None:
    recording = read_recording(RECORDINGS_DIR / "question_answer.jsonl.gz")
    only_plain = AgentSet.from_agents([AgentConfig(name="plain")])
    with pytest.raises(ReplayError, match="agent 'support' is not among the agents"):
        await replay_recording(recording, ReplayOptions(), agents=only_plain)


async def test_against_recorded_with_a_running_gateway_needs_a_live_port() -> None:
    recording = read_recording(RECORDINGS_DIR / "question_answer.jsonl.gz")
    with pytest.raises(ReplayError, match="--live-port"):
        await replay_recording(recording, ReplayOptions(url="ws://127.0.0.1:9/media"))


# --------------------------------------------------------------------------- the plan


def event(index: int, kind: EventKind, **data: Any) -> RecordedEvent:
    return RecordedEvent(index, float(index), kind.value, data)


def test_each_input_waits_for_the_outputs_recorded_before_it() -> None:
    frame = '{"event": "media"}'
    events = [
        event(0, EventKind.TWILIO_IN, frame=frame),
        event(1, EventKind.LIVE_OUT, audio="AA==", rate_hz=24000),
        event(2, EventKind.LIVE_IN, message={"serverContent": {}}),
        event(3, EventKind.TWILIO_OUT, frame=frame),
        event(4, EventKind.LIVE_RECONNECTED, close_code=1011),
        event(5, EventKind.LIVE_IN, message={"serverContent": {}}),
        event(6, EventKind.LIVE_RECONNECTED, close_code=None),
        event(7, EventKind.TWILIO_IN, frame=frame),
        event(8, EventKind.LIVE_CLOSED, code=1000),
        event(9, EventKind.CALL_ENDED, reason="live_closed"),
    ]
    recording = Recording(Path("x.jsonl"), tuple(events))
    plan = build_plan(recording, Against.RECORDED)
    assert [(s.action, s.twilio_out, s.live_out, s.session) for s in plan] == [
        (Action.CALLER_FRAME, 0, 0, 0),
        (Action.LIVE_MESSAGE, 0, 1, 0),
        (Action.CLOSE_LIVE, 1, 1, 0),  # the drop that made the gateway resume…
        (Action.LIVE_MESSAGE, 1, 1, 1),  # …on session 1
        (Action.CALLER_FRAME, 1, 1, 2),  # a planned switch after goAway: session 2
        (Action.CLOSE_LIVE, 1, 1, 2),
    ]
    assert [s.close_code for s in plan if s.action is Action.CLOSE_LIVE] == [1011, 1000]
    emulated = build_plan(recording, Against.EMULATOR)
    assert Action.LIVE_MESSAGE not in {s.action for s in emulated}
    ended_by_caller = Recording(
        Path("x.jsonl"), (events[0], event(1, EventKind.CALL_ENDED, reason="caller_disconnected"))
    )
    assert build_plan(ended_by_caller, Against.RECORDED)[-1].action is Action.HANG_UP


def test_the_emulator_script_says_what_the_recorded_model_said() -> None:
    tool = script_from_recording(read_recording(RECORDINGS_DIR / "tool_call.jsonl.gz"))
    [turn] = tool.turns
    assert turn.say == "Let me check."
    assert turn.tool_call is not None and turn.tool_call.name == "lookup_order"
    assert turn.tool_call.args == {"order_id": "A1001"}
    assert turn.after_tool == "Order A1001 has shipped."
    qa = script_from_recording(read_recording(RECORDINGS_DIR / "question_answer.jsonl.gz"))
    assert qa.greeting == "Acme, hello!"
    assert [t.say for t in qa.turns] == ["We are open nine to five.", "You're welcome. Goodbye!"]


# --------------------------------------------------------------------------- Live endings


async def record_call(
    tmp_path: Path,
    script: Callable[[LiveEmulator, Any], Awaitable[None]],
    *,
    generation: Generation = DEFAULT_GENERATION,
    agents: AgentSet | None = None,
    emulator_script: EmulatorScript | None = None,
) -> Recording:
    """Record one fast call through a gateway and the emulator; `script` plays the caller."""
    emulator = LiveEmulator(emulator_script, speed=50.0)
    live_url = await emulator.start("127.0.0.1", 0)
    settings = load_settings(
        env_file=None, live_url=live_url, record_calls="all",
        recordings_dir=tmp_path, max_carrier_frames_per_s=0, live_resume_backoff_ms=1,
        **generation.settings_overrides(),
    )  # fmt: skip
    connector = ResilientLiveConnector.from_settings(generation.connector(settings), settings)
    agents = agents or AgentSet.from_agents([AgentConfig(name="default")])
    app = create_app(settings, agents, connector)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"ws://127.0.0.1:{port}{MEDIA_PATH}") as ws,
        ):
            await script(emulator, _FastPhone(ws))
        await app[RECORDINGS].wait_idle()
    finally:
        await runner.cleanup()
        await emulator.stop()
    [files] = app[RECORDINGS].written
    return read_recording(files.jsonl)


class _FastPhone:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.twilio = TwilioCaller()

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(message))

    async def say(self, frames: list[bytes]) -> None:
        for frame in frames:
            await self.send(self.twilio.media(frame))

    async def until(self, event: str) -> None:
        async for message in self.ws:
            if json.loads(message.data)["event"] == event:
                return
        raise AssertionError(f"the stream closed before {event}")

    async def rest(self) -> None:
        async for _ in self.ws:
            pass


async def _answer_then_live_ends(emulator: LiveEmulator, phone: _FastPhone) -> None:
    await phone.send(phone.twilio.connected())
    await phone.send(phone.twilio.start())
    await phone.say(speech_frames(600) + silence_frames(800))
    await phone.until("mark")
    emulator.refuse_next(5, close_code=1008)  # every resumption is refused …
    await emulator.close_sessions(1000, "The operation was cancelled.")  # … after Live ends
    await phone.until("mark")  # the apology has played …
    await phone.send(phone.twilio.mark(PROMPT_MARK))  # … and been heard: the gateway hangs up
    await phone.rest()


async def _live_drops_and_resumes(emulator: LiveEmulator, phone: _FastPhone) -> None:
    await phone.send(phone.twilio.connected())
    await phone.send(phone.twilio.start())
    await phone.say(speech_frames(600) + silence_frames(800))
    await phone.until("mark")
    await emulator.close_sessions(1011)  # a mid-call failure: the gateway resumes
    await emulator.wait_opened_sessions(2)
    await phone.say(speech_frames(400, fundamental_hz=140) + silence_frames(800))
    await phone.until("mark")
    await phone.send(phone.twilio.stop())
    await phone.rest()


async def _live_goes_away_and_the_gateway_switches(
    emulator: LiveEmulator, phone: _FastPhone
) -> None:
    await phone.send(phone.twilio.connected())
    await phone.send(phone.twilio.start())
    await phone.say(speech_frames(600) + silence_frames(800))
    await phone.until("mark")
    await emulator.go_away(30.0)  # the model is idle: the gateway switches connections now
    await emulator.wait_opened_sessions(2)
    await phone.say(speech_frames(400, fundamental_hz=140) + silence_frames(800))
    await phone.until("mark")
    await phone.send(phone.twilio.stop())
    await phone.rest()


@pytest.mark.parametrize(
    ("script", "ending", "sessions"),
    [
        (_answer_then_live_ends, "live_failed", 1),
        (_live_drops_and_resumes, "caller_hung_up", 2),
        (_live_goes_away_and_the_gateway_switches, "caller_hung_up", 2),
    ],
)
async def test_calls_that_live_ended_or_interrupted_replay_too(
    tmp_path: Path,
    script: Callable[[LiveEmulator, Any], Awaitable[None]],
    ending: str,
    sessions: int,
) -> None:
    recording = await record_call(tmp_path, script)
    assert recording.end_reason == ending
    reconnects = recording.of_kind(EventKind.LIVE_RECONNECTED)
    assert len(reconnects) == sessions - 1
    report = await replay_recording(
        recording, ReplayOptions(stall_timeout_s=TIMEOUT_S),
        agents=AgentSet.from_agents([AgentConfig(name="default")]),
    )  # fmt: skip
    assert report.ok, report.render()


GENERATION_AGENTS = AgentSet.from_agents(
    [AgentConfig(name="default", greeting="Acme, hello!", tools=[{"builtin": "send_dtmf"}])]
)
GENERATION_SCRIPT = EmulatorScript(
    turns=(
        ScriptTurn(say="You pressed five."),  # the key press
        ScriptTurn(  # the question
            say="Let me press that for you.",
            tool_call=ScriptToolCall(name="send_dtmf", args={"digits": "1"}),
            after_tool="Done, I pressed one.",
        ),
    )
)


async def _greeting_question_tool_and_key(emulator: LiveEmulator, phone: _FastPhone) -> None:
    await phone.send(phone.twilio.connected())
    await phone.send(phone.twilio.start())
    await phone.until("mark")  # the greeting has played
    await phone.send(phone.twilio.dtmf("5"))  # the caller presses a key …
    await emulator.wait_client_texts(lambda texts: "The caller pressed 5." in texts)
    await phone.until("mark")  # … and hears the answer (or extended thinking's filler)
    await phone.say(speech_frames(600) + silence_frames(800))  # then asks
    await emulator.wait_tool_responses(1)  # the model pressed a key for the caller
    await phone.send(phone.twilio.stop())  # hang up while it answers
    await phone.rest()


@EVERY_GENERATION
async def test_a_call_recorded_on_each_generation_replays_on_it(
    tmp_path: Path, generation: Generation
) -> None:
    recording = await record_call(
        tmp_path,
        _greeting_question_tool_and_key,
        generation=generation,
        agents=GENERATION_AGENTS,
        emulator_script=GENERATION_SCRIPT,
    )
    meta = recording.metadata
    assert meta["live_model"].endswith(generation.model)
    assert meta["live_dialect"] == generation.backend.value
    sent = [e.data["message"] for e in recording.of_kind(EventKind.LIVE_OUT) if "message" in e.data]
    dtmf = next(m for m in sent if "The caller pressed 5." in json.dumps(m))
    assert ("clientContent" in dtmf) is (generation.backend is Backend.VERTEX)
    # Against its recorded Live side: deterministic whatever the timing. (Against the
    # emulator a hang-up mid-turn depends on how fast the emulator speaks; the committed
    # fixtures cover that mode.)
    report = await replay_recording(
        recording, ReplayOptions(stall_timeout_s=TIMEOUT_S), agents=GENERATION_AGENTS
    )
    assert report.ok, report.render()
    assert report.live_out is not None and len(report.live_out) == len(sent) + sum(
        1 for e in recording.of_kind(EventKind.LIVE_OUT) if "message" not in e.data
    )


async def test_a_replay_can_be_recorded_as_the_new_reference(
    tmp_path: Path, agents: AgentSet
) -> None:
    original = read_recording(RECORDINGS_DIR / "barge_in.jsonl.gz")
    report = await replay_recording(original, ReplayOptions(record_to=tmp_path), agents=agents)
    assert report.ok, report.render()
    [path] = report.recorded_to
    assert path.parent == tmp_path and f"recorded the replay to {path}" in report.render()
    again = read_recording(path)
    # A format-1 fixture re-recorded is format 2 (audio beside it) and says the same thing.
    assert original.metadata["format"] == 1 and again.metadata["format"] == 2
    assert path.with_suffix(".audio").stat().st_size > 0
    assert again.metadata["live_backend"] == original.metadata["live_backend"]
    assert again.end_reason == original.end_reason == "caller_hung_up"
    assert [e.data for e in again.of_kind(EventKind.TWILIO_IN)] == [
        e.data for e in original.of_kind(EventKind.TWILIO_IN)
    ]
    report = await replay_recording(again, ReplayOptions(), agents=agents)
    assert report.ok, report.render()


@contextlib.asynccontextmanager
async def running_gateway(
    agents: AgentSet, live_url: str, **settings_overrides: Any
) -> AsyncIterator[str]:
    """A gateway as `gateway serve` runs it (its own settings), on loopback."""
    settings = load_settings(
        env_file=None, live_backend="emulator", live_url=live_url, record_calls="off",
        max_carrier_frames_per_s=0, **settings_overrides,
    )  # fmt: skip
    runner = web.AppRunner(create_app(settings, agents), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
    try:
        yield f"ws://127.0.0.1:{port}{MEDIA_PATH}"
    finally:
        await runner.cleanup()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_running_gateway_replays_against_its_own_live_side(agents: AgentSet) -> None:
    recording = read_recording(RECORDINGS_DIR / "tool_call.jsonl.gz")
    emulator = LiveEmulator(script_from_recording(recording), speed=50.0)
    async with emulator, running_gateway(agents, emulator.url) as url:
        report = await replay_recording(
            recording, ReplayOptions(against=Against.EMULATOR, url=url)
        )
    assert report.ok, report.render()
    assert report.live_out is None and "live_out: not observed" in report.render()


async def test_a_running_gateway_replays_against_the_recorded_live_side(
    agents: AgentSet,
) -> None:
    recording = read_recording(RECORDINGS_DIR / "barge_in.jsonl.gz")
    port = free_port()
    # The running gateway has its own settings: started as the recorded one was.
    rate_hz = recording.metadata["live_input_rate_hz"]
    async with running_gateway(
        agents, f"ws://127.0.0.1:{port}/live", live_input_rate_hz=rate_hz
    ) as url:
        report = await replay_recording(recording, ReplayOptions(url=url, live_port=port))
    assert report.ok, report.render()
    assert report.live_out is not None and len(report.live_out) > 50


async def test_a_paced_replay_matches_too(agents: AgentSet) -> None:
    recording = read_recording(RECORDINGS_DIR / "hang_up_mid_reply.jsonl.gz")
    report = await replay_recording(recording, ReplayOptions(speed=20.0), agents=agents)
    assert report.ok, report.render()
