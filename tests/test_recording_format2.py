"""Format 2: the audio in a binary side file, once per direction; read back, the events are
exactly what the gateway saw (frames rebuilt to the byte, Live audio back as base64)."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gateway.live.protocol import ServerMessage
from gateway.recording.format import (
    AUDIO_RECORD,
    EventKind,
    RecordingFormatError,
    audio_path_for,
    read_recording,
)
from gateway.recording.recorder import RecordingSink
from gateway.telephony.twilio import build_clear, build_media, parse_event
from gateway.telephony.twilio_caller import TwilioCaller

PHONE = TwilioCaller(stream_sid="MZ" + "1" * 32, call_sid="CA" + "2" * 32, account_sid="AC1")
MULAW = bytes(range(160))
PCM24 = np.arange(-2400, 2400, dtype="<i2").tobytes()  # 200 ms at 24 kHz
PCM16 = (np.sin(np.arange(320) / 5) * 8000).astype("<i2").tobytes()


def caller_frames() -> list[str]:
    """Media frames as carriers format them: compact, spaced, and fields in another order."""
    first = json.dumps(PHONE.media(MULAW), separators=(",", ":"))
    spaced = json.dumps(PHONE.media(MULAW[::-1]))
    other = PHONE.media(MULAW)
    reordered = json.dumps({"media": other["media"], **other})
    return [first, spaced, reordered]


def record(tmp_path: Path, items: list[tuple[EventKind, Any]]) -> Path:
    sink = RecordingSink(tmp_path, "call")
    start = {"format": 2, "stream_sid": PHONE.stream_sid, "call_sid": PHONE.call_sid}
    batch = [(0.0, EventKind.CALL_STARTED, start)]
    batch += [(0.01 * (i + 1), kind, payload) for i, (kind, payload) in enumerate(items)]
    sink.write(batch[:3])  # two batches, as the writer hands them over
    sink.write(batch[3:])
    files = sink.finish(None)
    assert files.audio is not None and files.audio.exists()
    return files.jsonl


def test_every_event_reads_back_in_order_and_frames_to_the_byte(tmp_path: Path) -> None:
    inbound = caller_frames()
    reply = ServerMessage(audio=(PCM24, PCM24[:960]), output_transcription="Hi ")
    outbound = [build_media(PHONE.stream_sid, MULAW), build_clear(PHONE.stream_sid)]
    items: list[tuple[EventKind, Any]] = [
        (EventKind.TWILIO_IN, (inbound[0], parse_event(inbound[0]))),
        (EventKind.LIVE_OUT, (PCM16, 16000)),
        (EventKind.TWILIO_IN, (inbound[1], parse_event(inbound[1]))),
        (EventKind.LIVE_IN, reply),
        (EventKind.TWILIO_OUT, outbound[0]),
        (EventKind.TWILIO_IN, (inbound[2], parse_event(inbound[2]))),
        (EventKind.LIVE_OUT, {"realtimeInput": {"text": "The caller pressed 7."}}),
        (EventKind.TWILIO_OUT, outbound[1]),
    ]
    jsonl = record(tmp_path, items)
    text = jsonl.read_text()
    assert "payload" not in text and base64.b64encode(PCM24[:30]).decode() not in text
    recording = read_recording(jsonl)
    kinds = [e.kind for e in recording.events]
    assert kinds == ["call_started", *[kind.value for kind, _ in items]]
    assert [e.t for e in recording.events] == sorted(e.t for e in recording.events)
    assert [e.frame() for e in recording.of_kind(EventKind.TWILIO_IN)] == inbound
    assert [e.frame() for e in recording.of_kind(EventKind.TWILIO_OUT)] == outbound
    [live_in] = recording.of_kind(EventKind.LIVE_IN)
    parts = live_in.data["message"]["serverContent"]["modelTurn"]["parts"]
    assert [base64.b64decode(p["inlineData"]["data"]) for p in parts] == [PCM24, PCM24[:960]]
    assert live_in.data["message"]["serverContent"]["outputTranscription"] == {"text": "Hi "}
    audio_sent, text_sent = recording.of_kind(EventKind.LIVE_OUT)
    samples = np.frombuffer(PCM16, "<i2").astype(np.float64)
    assert audio_sent.data["rate_hz"] == 16000
    assert audio_sent.data["audio_energy"] == [320, pytest.approx(float(samples @ samples))]
    assert text_sent.data["message"] == {"realtimeInput": {"text": "The caller pressed 7."}}


def test_a_frame_the_record_cannot_rebuild_stays_a_jsonl_line(tmp_path: Path) -> None:
    frame = json.dumps(PHONE.media(MULAW))
    payload = base64.b64encode(MULAW).decode()
    # 160 bytes end in one byte: its base64 "nw==" has 4 unused bits. Set them, and the
    # payload decodes to the same audio but is not what encoding that audio gives: the frame
    # cannot be rebuilt from the μ-law, so it is kept as text, exactly.
    assert payload.endswith("nw==")
    odd = frame.replace(payload, payload[:-3] + "x==")
    parsed = parse_event(odd)
    assert parsed == parse_event(frame)
    jsonl = record(tmp_path, [(EventKind.TWILIO_IN, (odd, parsed))])
    [line] = [json.loads(x) for x in jsonl.read_text().splitlines() if "twilio_in" in x]
    assert line["frame"] == odd
    assert read_recording(jsonl).of_kind(EventKind.TWILIO_IN)[0].frame() == odd


def test_frames_out_with_their_mulaw_are_recorded_as_if_decoded(tmp_path: Path) -> None:
    """`agent_media` hands the μ-law with each frame out: the files are byte for byte what the
    recorder writes when it decodes the frames itself; a pair whose frame is not this stream's
    media frame (or not built from that μ-law's length) is recorded from the frame."""
    frames = [build_media(PHONE.stream_sid, MULAW), build_media(PHONE.stream_sid, MULAW[:80])]
    foreign = build_media("MZ" + "9" * 32, MULAW)
    plain = [(EventKind.TWILIO_OUT, frame) for frame in (*frames, foreign)]
    paired = [
        (EventKind.TWILIO_OUT, (frames[0], MULAW)),
        (EventKind.TWILIO_OUT, (frames[1], MULAW)),  # wrong length: decoded from the frame
        (EventKind.TWILIO_OUT, (foreign, MULAW)),  # another stream's: kept as text
    ]
    jsonl_plain = record(tmp_path / "plain", plain)
    jsonl_paired = record(tmp_path / "paired", paired)
    for suffix in (".jsonl", ".audio", ".wav"):
        assert (
            jsonl_paired.with_suffix(suffix).read_bytes()
            == jsonl_plain.with_suffix(suffix).read_bytes()
        ), suffix
    recorded = read_recording(jsonl_paired).of_kind(EventKind.TWILIO_OUT)
    assert [e.frame() for e in recorded] == [*frames, foreign]


def test_gzipped_files_read_like_plain_ones(tmp_path: Path) -> None:
    frame = json.dumps(PHONE.media(MULAW))
    jsonl = record(tmp_path, [(EventKind.TWILIO_IN, (frame, parse_event(frame)))])
    audio = audio_path_for(jsonl)
    zipped = tmp_path / "z.jsonl.gz"
    zipped.write_bytes(gzip.compress(jsonl.read_bytes()))
    audio_path_for(zipped).write_bytes(gzip.compress(audio.read_bytes()))
    assert audio_path_for(zipped).name == "z.audio.gz"
    assert read_recording(zipped).of_kind(EventKind.TWILIO_IN)[0].frame() == frame


def test_a_broken_audio_file_is_a_clear_error(tmp_path: Path) -> None:
    frame = json.dumps(PHONE.media(MULAW))
    jsonl = record(tmp_path, [(EventKind.TWILIO_IN, (frame, parse_event(frame)))] * 3)
    audio = audio_path_for(jsonl)
    whole = audio.read_bytes()
    audio.write_bytes(whole[: AUDIO_RECORD.size + 5])
    with pytest.raises(RecordingFormatError, match=r"call\.audio: audio record #0 is cut short"):
        read_recording(jsonl)
    audio.unlink()
    with pytest.raises(RecordingFormatError, match="cannot read the audio"):
        read_recording(jsonl)
    audio.write_bytes(whole)
    lines = jsonl.read_text().splitlines()
    last = json.loads(lines[-1])
    last["a"] = 99
    jsonl.write_text("\n".join([*lines[:-1], json.dumps(last)]) + "\n")
    with pytest.raises(RecordingFormatError, match="refers to audio record #98"):
        read_recording(jsonl)
