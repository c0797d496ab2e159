"""Comparing a replay's output with its recording: tolerant on audio, exact on events."""

from __future__ import annotations

import base64
import json

import numpy as np

from gateway.audio.mulaw import encode_mulaw
from gateway.recording.replay.compare import (
    OutputItem,
    Tolerance,
    compare_stream,
    live_item,
    twilio_item,
)

SID = "MZ1"


def media(level: int = 3000) -> OutputItem:
    payload = base64.b64encode(encode_mulaw(np.full(160, level, dtype=np.int16))).decode()
    frame = {"event": "media", "streamSid": SID, "media": {"payload": payload}}
    return twilio_item(json.dumps(frame))


def mark(name: str) -> OutputItem:
    return twilio_item(json.dumps({"event": "mark", "streamSid": SID, "mark": {"name": name}}))


def clear() -> OutputItem:
    return twilio_item(json.dumps({"event": "clear", "streamSid": SID}))


def call(*parts: list[OutputItem]) -> list[OutputItem]:
    return [item for part in parts for item in part]


RECORDED = call([media()] * 50, [mark("turn-1")], [media()] * 20, [clear()], [media()] * 30)


def test_the_same_stream_matches() -> None:
    assert compare_stream("twilio_out", RECORDED, list(RECORDED), Tolerance()) is None


def test_a_few_frames_more_or_less_where_a_barge_in_cut_are_tolerated() -> None:
    got = call([media()] * 50, [mark("turn-1")], [media()] * 23, [clear()], [media()] * 28)
    assert compare_stream("twilio_out", RECORDED, got, Tolerance(frames=3)) is None


def test_more_frames_than_the_tolerance_is_a_diff_at_the_start_of_the_run() -> None:
    got = call([media()] * 50, [mark("turn-1")], [media()] * 10, [clear()], [media()] * 30)
    diff = compare_stream("twilio_out", RECORDED, got, Tolerance(frames=3))
    assert diff is not None
    assert diff.index == 51  # the run after the mark
    assert "media×20" in diff.expected and "media×10" in diff.got
    assert "frame count off by -10, tolerance ±3" in diff.got
    text = diff.render()
    assert "twilio_out: first difference at event #51" in text
    assert "recorded 102 events, replay sent 92" in text
    assert "mark turn-1" in text and "clear" in text  # context around the difference


def test_a_different_event_is_a_diff_with_both_sides_shown() -> None:
    got = call([media()] * 50, [mark("turn-2")], [media()] * 20, [clear()], [media()] * 30)
    diff = compare_stream("twilio_out", RECORDED, got, Tolerance())
    assert diff is not None and diff.index == 50
    assert diff.expected.startswith("mark turn-1") and diff.got.startswith("mark turn-2")


def test_a_missing_event_at_the_end_is_a_diff() -> None:
    got = RECORDED[:-30]
    diff = compare_stream("twilio_out", call(RECORDED, [mark("turn-3")]), got, Tolerance())
    assert diff is not None
    assert diff.index == 72  # where the last run of 30 frames should have started
    assert "media×30" in diff.expected and "no media" in diff.got


def test_audio_much_quieter_than_recorded_is_a_diff() -> None:
    quiet = call([media(300)] * 50, [mark("turn-1")], [media()] * 20, [clear()], [media()] * 30)
    diff = compare_stream("twilio_out", RECORDED, quiet, Tolerance(rms_db=3.0))
    assert diff is not None and diff.index == 0 and "loudness off by" in diff.got
    slightly = call([media(2800)] * 50, [mark("turn-1")], [media()] * 20, [clear()], [media()] * 30)
    assert compare_stream("twilio_out", RECORDED, slightly, Tolerance(rms_db=3.0)) is None


def test_live_messages_compare_exactly_and_audio_by_rate() -> None:
    def audio(rate: int) -> OutputItem:
        data = base64.b64encode(b"\x10\x00" * 480).decode()
        return live_item(
            {"realtimeInput": {"audio": {"data": data, "mimeType": f"audio/pcm;rate={rate}"}}}
        )

    response = live_item(
        {"toolResponse": {"functionResponses": [{"id": "1", "name": "f", "response": {}}]}}
    )
    assert response.label == "toolResponse" and not response.is_audio
    assert live_item({"realtimeInput": {"text": "The caller pressed 1."}}).label == (
        "realtimeInput.text"
    )
    recorded = [audio(24000)] * 5 + [response]
    assert compare_stream("live_out", recorded, list(recorded), Tolerance()) is None
    other_rate = [audio(16000)] * 5 + [response]
    diff = compare_stream("live_out", recorded, other_rate, Tolerance())
    assert diff is not None and "16000" in diff.got
    changed = live_item(
        {"toolResponse": {"functionResponses": [{"id": "1", "name": "f", "response": {"x": 1}}]}}
    )
    diff = compare_stream("live_out", recorded, [audio(24000)] * 5 + [changed], Tolerance())
    assert diff is not None and diff.index == 5
    assert '"response":{"x":1}' in diff.got


def test_the_loudness_of_a_cut_edge_is_not_compared_but_of_a_real_run_is() -> None:
    recorded = call([media()] * 50, [mark("turn-1")], [media(300)] * 2)  # hung up 2 frames in
    got = call([media()] * 50, [mark("turn-1")], [media(3000)] * 4)
    assert compare_stream("twilio_out", recorded, got, Tolerance(frames=3)) is None
    longer = call([media()] * 50, [mark("turn-1")], [media(300)] * 20)
    louder = call([media()] * 50, [mark("turn-1")], [media(3000)] * 20)
    assert compare_stream("twilio_out", longer, louder, Tolerance(frames=3)) is not None
