"""The recording file format: Live messages back to wire form, reading files, bad files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from gateway.live.protocol import FunctionCall, ServerMessage, encode_message, parse_server_message
from gateway.recording.format import (
    EventKind,
    RecordingFormatError,
    encode_event,
    read_recording,
    server_message_to_wire,
)
from gateway.recording.transcript import TranscriptBuilder

MESSAGES = [
    ServerMessage(setup_complete=True),
    ServerMessage(audio=(b"\x01\x00\x02\x00", b"\xff\x7f"), audio_rate_hz=24000),
    ServerMessage(audio=(b"\x01\x00",), text=("thinking aloud",), audio_rate_hz=16000),
    ServerMessage(input_transcription="where is my order", output_transcription=""),
    ServerMessage(interrupted=True, turn_complete=True),
    ServerMessage(generation_complete=True),
    ServerMessage(turn_complete=True, usage={"promptTokenCount": 3, "totalTokenCount": 5}),
    ServerMessage(tool_calls=(FunctionCall("fc-1", "lookup_order", {"order_id": "A1"}),)),
    ServerMessage(tool_call_cancellation_ids=("fc-1", "fc-2")),
    ServerMessage(go_away_time_left_s=50.0),
    ServerMessage(go_away_time_left_s=1.5),
    ServerMessage(resumption_handle="h-2", resumable=True),
    ServerMessage(resumable=False),
]


@pytest.mark.parametrize("message", MESSAGES, ids=range(len(MESSAGES)))
def test_a_live_message_survives_the_trip_to_wire_form_and_back(message: ServerMessage) -> None:
    wire = server_message_to_wire(message)
    assert parse_server_message(encode_message(wire)) == message


def test_audio_stays_base64_in_wire_form() -> None:
    wire = server_message_to_wire(ServerMessage(audio=(b"\x01\x00",)))
    part = wire["serverContent"]["modelTurn"]["parts"][0]["inlineData"]
    assert part == {"mimeType": "audio/pcm;rate=24000", "data": "AQA="}


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_recording_reads_back_plain_or_gzipped(tmp_path: Path) -> None:
    lines = [
        encode_event(0.0, EventKind.TWILIO_IN, {"frame": '{"event":"connected"}'}),
        encode_event(0.001, EventKind.TWILIO_IN, {"frame_b64": "AP8Q"}),
        encode_event(0.002, EventKind.CALL_STARTED, {"call_sid": "CA1", "agent": "a"}),
        encode_event(0.5, EventKind.LIVE_OUT, {"audio": "AQA=", "rate_hz": 24000}),
        encode_event(0.7, EventKind.CALL_ENDED, {"reason": "caller_hung_up"}),
    ]
    plain = write_lines(tmp_path / "call.jsonl", *lines)
    zipped = tmp_path / "call.jsonl.gz"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, zipped):
        recording = read_recording(path)
        assert [e.kind for e in recording.events] == [
            "twilio_in", "twilio_in", "call_started", "live_out", "call_ended"
        ]  # fmt: skip
        assert recording.events[1].frame() == b"\x00\xff\x10"
        assert recording.metadata["call_sid"] == "CA1"
        assert recording.end_reason == "caller_hung_up" and recording.complete
        assert recording.events[3].t == 0.5


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "call.jsonl:2: not JSON"),
        ('{"t": 1, "kind": "telepathy"}', "call.jsonl:2: unknown event kind 'telepathy'"),
        ('{"kind": "twilio_in", "frame": "x"}', "call.jsonl:2: `t` must be a number"),
        ('{"t": 1, "kind": "twilio_in"}', "call.jsonl:2: twilio_in needs a `frame` string"),
        ('{"t": 1, "kind": "live_out", "audio": "AA=="}', "call.jsonl:2: live_out audio needs"),
        ('{"t": 1, "kind": "live_in", "message": 5}', "call.jsonl:2: live_in needs a `message`"),
        ('{"t": 1, "kind": "twilio_in", "frame_b64": "!!"}', "`frame_b64` is not base64"),
        ("[1, 2]", "call.jsonl:2: expected a JSON object per line"),
    ],
)
def test_a_broken_line_is_named_with_its_file_and_line(
    tmp_path: Path, line: str, problem: str
) -> None:
    first = json.dumps({"t": 0, "kind": "twilio_in", "frame": "{}"})
    path = write_lines(tmp_path / "call.jsonl", first, line)
    with pytest.raises(RecordingFormatError) as error:
        read_recording(path)
    assert problem in str(error.value)


def test_missing_and_empty_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RecordingFormatError, match="cannot read"):
        read_recording(tmp_path / "nope.jsonl")
    with pytest.raises(RecordingFormatError, match="empty recording"):
        read_recording(write_lines(tmp_path / "empty.jsonl", ""))


def test_an_unfinished_recording_says_so(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "cut.jsonl",
        encode_event(0, EventKind.TWILIO_IN, {"frame": "{}"}),
        encode_event(1, EventKind.RECORDING_STOPPED, {"reason": "queue_full"}),
    )
    recording = read_recording(path)
    assert recording.end_reason is None and not recording.complete


def test_transcript_joins_fragments_per_speaker_and_turn() -> None:
    transcript = TranscriptBuilder("# call CA1")
    transcript.speech(0.5, "agent", "Hello ")
    transcript.speech(0.6, "agent", "there.")
    transcript.end_turn()
    transcript.speech(2.0, "caller", "hi")
    transcript.speech(2.5, "agent", "How ")
    transcript.speech(2.6, "caller", "can you")  # interleaved: a new line each time
    transcript.note(3.0, "caller pressed 1")
    transcript.speech(63.25, "agent", "Bye.")
    assert transcript.render().splitlines() == [
        "# call CA1",
        "[00:00.5] agent: Hello there.",
        "[00:02.0] caller: hi",
        "[00:02.5] agent: How",
        "[00:02.6] caller: can you",
        "[00:03.0] caller pressed 1",
        "[01:03.2] agent: Bye.",
    ]
