"""The call recorder: what it writes, when it records, and that failures never touch the call."""

from __future__ import annotations

import asyncio
import errno
import json
import threading
import wave
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from structlog.testing import capture_logs

from gateway.agents.config import AgentConfig, AgentSet
from gateway.call.bridge import Call
from gateway.call.outcome import EndReason
from gateway.call.session_config import session_config_for
from gateway.live.protocol import FunctionCall, ServerMessage
from gateway.recording.format import read_recording
from gateway.recording.recorder import CallRecorder, RecordCalls, Recordings, RecordingSink
from gateway.settings import load_settings
from gateway.telephony.twilio import TwilioCodec
from tests.caller_audio import speech_frames
from tests.fakes import FakeConnector, FakeLiveSession, FakeTransport
from tests.twilio_frames import TwilioCaller

SILENCE = bytes([0xFF]) * 160


def tone_pcm16(duration_ms: int, rate_hz: int = 24000) -> bytes:
    t = np.arange(rate_hz * duration_ms // 1000) / rate_hz
    return (np.sin(2 * np.pi * 300 * t) * 8000).astype("<i2").tobytes()


class Phone:
    """A call with fakes on both sides and a recorder attached."""

    def __init__(self, recordings: Recordings, *, recording: bool = True) -> None:
        self.transport = FakeTransport()
        self.connector = FakeConnector()
        self.caller = TwilioCaller()
        self.recorder = recordings.recorder()
        agents = AgentSet.from_agents(
            [AgentConfig(name="default", recording=recording, system_instruction="be brief")]
        )
        self.call = Call(
            self.transport,
            TwilioCodec(),
            agents,
            self.connector,
            partial(session_config_for, default_model="test-model"),
            observers=[self.recorder],
        )
        self.transport.push(self.caller.connected())
        self.transport.push(self.caller.start(**{"from": "+15551230000", "to": "+15550001111"}))
        self.task = asyncio.create_task(self.call.run())

    async def live(self) -> FakeLiveSession:
        return await self.connector.session()

    async def hang_up(self) -> EndReason:
        self.transport.push(self.caller.stop())
        return await self.task


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def recordings(tmp_path: Path) -> Recordings:
    return Recordings(tmp_path / "recordings", RecordCalls.AGENT)


async def test_every_event_of_a_call_is_written_in_order_with_metadata(
    recordings: Recordings,
) -> None:
    phone = Phone(recordings)
    live = await phone.live()
    sent = [json.dumps(phone.caller.media(frame)) for frame in speech_frames(60)]
    for frame in sent:
        phone.transport.push(frame)
    await live.wait_audio(3)
    live.server.put_nowait(ServerMessage(input_transcription="hello there"))
    live.server.put_nowait(ServerMessage(audio=(tone_pcm16(100),), output_transcription="Hi, "))
    live.server.put_nowait(ServerMessage(output_transcription="how can I help?"))
    live.server.put_nowait(ServerMessage(turn_complete=True))
    await phone.transport.next_sent("mark")
    for _ in range(10):  # 200 ms of phone time: the caller hears the 100 ms answer
        phone.transport.push(phone.caller.media(SILENCE))
    await live.wait_audio(13)
    live.server.put_nowait(ServerMessage(tool_calls=(FunctionCall("fc-1", "nope", {"x": 1}),)))
    await live.wait_sent(lambda m: "toolResponse" in m)
    live.server.put_nowait(ServerMessage(audio=(tone_pcm16(200),)))
    live.server.put_nowait(ServerMessage(interrupted=True))
    await phone.transport.next_sent("clear")
    phone.transport.push(phone.caller.dtmf("7"))
    await live.wait_sent(lambda m: m.get("realtimeInput", {}).get("text"))
    assert await phone.hang_up() is EndReason.CALLER_HUNG_UP
    await recordings.wait_idle()

    files = phone.recorder.files
    assert files is not None and files.complete
    assert recordings.written == [files]
    # Format 2: the audio is in the side file, once per direction, not as base64 in the JSONL.
    assert files.audio is not None and files.audio.stat().st_size > 13 * 160
    raw_lines = lines(files.jsonl)
    assert all(isinstance(line["a"], int) for line in raw_lines)
    assert '"payload"' not in files.jsonl.read_text().split('"kind":"call_started"')[1]
    assert not any("data" in json.dumps(line.get("message", {})) for line in raw_lines)
    # Read back, the events are format 1's: frames as text, Live audio as base64.
    events = [{"t": e.t, "kind": e.kind, **e.data} for e in read_recording(files.jsonl).events]
    kinds = [e["kind"] for e in events]
    assert kinds[:3] == ["twilio_in", "twilio_in", "call_started"]  # connected, start, metadata
    assert kinds[-1] == "call_ended"
    times = [e["t"] for e in events]
    assert times == sorted(times) and times[0] == 0.0
    meta = events[2]
    assert meta["call_sid"] == phone.caller.call_sid
    assert meta["stream_sid"] == phone.caller.stream_sid
    assert meta["agent"] == "default"
    assert (meta["from"], meta["to"]) == ("+15551230000", "+15550001111")
    assert meta["live_input_rate_hz"] == 16000 and meta["format"] == 2
    assert meta["gateway_version"]
    # Caller frames verbatim, caller audio to Live with its rate, Live messages in wire form.
    inbound = [e["frame"] for e in events if e["kind"] == "twilio_in"]
    assert inbound[2:5] == sent
    audio_out = [e for e in events if e["kind"] == "live_out" and "audio_energy" in e]
    assert len(audio_out) == 13 and {e["rate_hz"] for e in audio_out} == {16000}
    # Of the caller audio sent to Live only what the replay compares: samples, loudness.
    assert {e["audio_energy"][0] for e in audio_out} == {320}  # 20 ms at 16 kHz
    assert max(e["audio_energy"][1] for e in audio_out) > 320 * 1000**2
    live_in = [e["message"] for e in events if e["kind"] == "live_in"]
    assert {"serverContent": {"inputTranscription": {"text": "hello there"}}} in live_in
    assert live_in[1]["serverContent"]["modelTurn"]["parts"][0]["inlineData"]["data"]
    # What went to Twilio, the tool call and its result, the barge-in, the DTMF text.
    outbound = [json.loads(e["frame"])["event"] for e in events if e["kind"] == "twilio_out"]
    stats = phone.call.stats
    assert stats.stale_frames_dropped > 0  # only what reached Twilio is recorded
    assert outbound.count("media") == stats.agent_frames - stats.stale_frames_dropped
    assert "mark" in outbound and outbound[-1] == "clear"
    [tool_call] = [e for e in events if e["kind"] == "tool_call"]
    assert (tool_call["id"], tool_call["name"], tool_call["args"]) == ("fc-1", "nope", {"x": 1})
    [tool_result] = [e for e in events if e["kind"] == "tool_result"]
    assert tool_result["id"] == "fc-1" and tool_result["outcome"] == "error"
    [barge_in] = [e for e in events if e["kind"] == "barge_in"]
    assert barge_in["frames_dropped"] == stats.stale_frames_dropped
    messages = [e["message"] for e in events if e["kind"] == "live_out" and "message" in e]
    assert {"realtimeInput": {"text": "The caller pressed 7."}} in messages
    assert events[-1]["reason"] == "caller_hung_up"
    assert events[-1]["stats"]["caller_frames"] == 13
    # The file reads back as a recording.
    assert read_recording(files.jsonl).end_reason == "caller_hung_up"

    transcript = files.txt.read_text()
    assert f"# call {phone.caller.call_sid}" in transcript
    assert "caller: hello there" in transcript
    assert "agent: Hi, how can I help?" in transcript  # fragments joined into one line
    assert "tool: nope" in transcript and "caller pressed 7" in transcript
    assert "(barge-in" in transcript and "(call ended: caller_hung_up)" in transcript

    with wave.open(str(files.wav)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8000)
        stereo = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    caller, agent = stereo[:, 0], stereo[:, 1]
    assert np.abs(caller[:480]).max() > 1000  # 60 ms of caller speech, left, from the start
    assert not caller[480:].any()  # then silence frames
    assert not agent[:480].any()  # the answer starts when it was sent (phone time 60 ms)…
    assert np.abs(agent[560:1200]).max() > 2000  # …lasts 100 ms…
    assert not agent[1300:].any()  # …and the interrupted answer was never heard


async def test_a_call_whose_agent_does_not_record_leaves_no_files(
    recordings: Recordings,
) -> None:
    phone = Phone(recordings, recording=False)
    live = await phone.live()
    phone.transport.push(phone.caller.media(speech_frames(20)[0]))
    await live.wait_audio(1)
    assert await phone.hang_up() is EndReason.CALLER_HUNG_UP
    await recordings.wait_idle()
    assert phone.recorder.done.is_set() and phone.recorder.files is None
    assert not recordings.directory.exists()


@pytest.mark.parametrize(
    ("mode", "agent_records", "recorded"),
    [
        (RecordCalls.AGENT, True, True),
        (RecordCalls.AGENT, False, False),
        (RecordCalls.ALL, False, True),
        (RecordCalls.OFF, True, False),
    ],
)
def test_record_calls_setting_decides_with_the_agent(
    tmp_path: Path, mode: RecordCalls, agent_records: bool, recorded: bool
) -> None:
    agent = AgentConfig(name="a", recording=agent_records)
    assert Recordings(tmp_path, mode).wants(agent) is recorded


def test_settings_name_the_directory_and_the_mode(tmp_path: Path) -> None:
    settings = load_settings(
        env_file=None, recordings_dir=str(tmp_path / "r"), record_calls="all",
        live_input_rate_hz=16000,
    )  # fmt: skip
    recordings = Recordings.from_settings(settings)
    assert recordings.directory == tmp_path / "r"
    assert recordings.mode is RecordCalls.ALL and recordings.live_input_rate_hz == 16000
    assert load_settings(env_file=None).record_calls == "agent"


# --------------------------------------------------------------------------- failures


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    with capture_logs() as captured:
        yield captured


def disabled(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in logs if line["event"] == "recording_disabled"]


async def talk(phone: Phone, frames: int) -> FakeLiveSession:
    live = await phone.live()
    for frame in speech_frames(20 * frames):
        phone.transport.push(phone.caller.media(frame))
    await live.wait_audio(frames)
    live.server.put_nowait(ServerMessage(audio=(tone_pcm16(100),), turn_complete=True))
    await phone.transport.next_sent("mark")
    return live


async def test_an_unwritable_directory_stops_the_recording_not_the_call(
    tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("in the way")
    recordings = Recordings(not_a_directory / "recordings", RecordCalls.ALL)
    phone = Phone(recordings)
    await talk(phone, 10)
    assert await phone.hang_up() is EndReason.CALLER_HUNG_UP
    await recordings.wait_idle()
    assert phone.call.stats.caller_frames == 10 and phone.call.stats.agent_frames == 5
    assert phone.recorder.files is None and recordings.written == []
    [line] = disabled(logs)
    assert line["reason"] == "write_failed" and line["call_sid"] == phone.caller.call_sid
    assert "NotADirectoryError" in line["error"] or "FileExistsError" in line["error"]


class FailingSink(RecordingSink):
    """A disk that fills up after the first batch."""

    batches = 0

    def write(self, batch: list[Any]) -> None:
        FailingSink.batches += 1
        if FailingSink.batches > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        super().write(batch)


async def test_a_write_error_mid_call_stops_the_recording_with_one_log_line(
    tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    FailingSink.batches = 0
    recordings = Recordings(
        tmp_path, RecordCalls.ALL, sink_factory=FailingSink, flush_events=1
    )
    phone = Phone(recordings)
    live = await talk(phone, 10)
    await talk(phone, 10)  # keeps going after the disk filled up
    live.server.put_nowait(ServerMessage(audio=(tone_pcm16(100),), turn_complete=True))
    await phone.transport.next_sent("mark")
    assert await phone.hang_up() is EndReason.CALLER_HUNG_UP
    await recordings.wait_idle()
    assert FailingSink.batches >= 2
    assert phone.call.stats.caller_frames == 20
    [line] = disabled(logs)
    assert line["reason"] == "write_failed" and "No space left" in line["error"]
    assert line["call_sid"] == phone.caller.call_sid
    assert phone.recorder.files is None


class StuckSink(RecordingSink):
    """A disk so slow that the first batch takes until the test says so."""

    release = threading.Event()
    entered = threading.Event()

    def write(self, batch: list[Any]) -> None:
        StuckSink.entered.set()
        StuckSink.release.wait(timeout=30)
        super().write(batch)


async def test_a_full_queue_stops_the_recording_and_the_call_never_waits(
    tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    StuckSink.release.clear()
    StuckSink.entered.clear()
    recordings = Recordings(tmp_path, RecordCalls.ALL, max_queued_events=20, sink_factory=StuckSink)
    phone = Phone(recordings)
    await asyncio.to_thread(StuckSink.entered.wait, 10)  # the writer is stuck on batch one
    live = await talk(phone, 30)  # 30 frames in and out while the writer is stuck
    assert phone.call.stats.caller_frames == 30
    [line] = disabled(logs)
    assert line["reason"] == "queue_full" and line["call_sid"] == phone.caller.call_sid
    assert not phone.recorder.recording
    StuckSink.release.set()
    live.server.put_nowait(ServerMessage(audio=(tone_pcm16(100),), turn_complete=True))
    await phone.transport.next_sent("mark")
    assert await phone.hang_up() is EndReason.CALLER_HUNG_UP
    await recordings.wait_idle()
    files = phone.recorder.files
    assert files is not None and not files.complete
    events = lines(files.jsonl)
    assert events[-1]["kind"] == "recording_stopped" and events[-1]["reason"] == "queue_full"
    assert not read_recording(files.jsonl).complete
    assert len(disabled(logs)) == 1


async def test_a_failing_hook_never_reaches_the_call(recordings: Recordings) -> None:
    """The recorder's hooks only append to a list; even a broken one is isolated."""

    class Broken(CallRecorder):
        def carrier_in(self, frame: str | bytes) -> None:
            raise RuntimeError("boom")

    transport, connector, caller = FakeTransport(), FakeConnector(), TwilioCaller()
    call = Call(
        transport,
        TwilioCodec(),
        AgentSet.from_agents([AgentConfig(name="default")]),
        connector,
        partial(session_config_for, default_model="m"),
        observers=[Broken(recordings)],
    )
    transport.push(caller.start())
    transport.push(caller.stop())
    assert await call.run() is EndReason.CALLER_HUNG_UP
