"""parse_event's regex path for media frames gives exactly what the json path gives — the same
event, or an error from the json path — for Twilio's frames and for every mutation of them."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.telephony import twilio
from gateway.telephony.base import MediaFrame, TelephonyProtocolError
from gateway.telephony.twilio import parse_event, parse_event_json


def media_frame(payload: bytes = bytes(160), *, sid_first: bool = True, spaced: bool = False,
                **media: Any) -> str:
    inner = {"track": "inbound", "chunk": "7", "timestamp": "120",
             "payload": base64.b64encode(payload).decode(), **media}
    items: list[tuple[str, Any]] = [("event", "media"), ("sequenceNumber", "8")]
    sid = ("streamSid", "MZ" + "a1" * 16)
    items += [sid, ("media", inner)] if sid_first else [("media", inner), sid]
    return json.dumps(dict(items), separators=(", ", ": ") if spaced else (",", ":"))


def outcome(parse: Any, frame: str) -> object:
    try:
        return parse(frame)
    except TelephonyProtocolError:
        return "error"


@pytest.mark.parametrize("frame", [
    media_frame(), media_frame(spaced=True), media_frame(sid_first=False),
    media_frame(bytes(range(160)), spaced=True, sid_first=False), media_frame(b""),
    media_frame(bytes(161)), media_frame(track="inbound_track"), media_frame(track=""),
    media_frame(chunk="0" * 19), media_frame(timestamp="٣"),
    media_frame().replace("nw==", "nx=="),
])
def test_the_fast_path_agrees_with_json(frame: str) -> None:
    assert outcome(parse_event, frame) == outcome(parse_event_json, frame)


def test_twilios_own_frames_take_the_fast_path() -> None:
    for frame in (media_frame(), media_frame(spaced=True), media_frame(sid_first=False)):
        fast = twilio._parse_media_fast(frame)
        assert isinstance(fast, MediaFrame) and fast == parse_event_json(frame)
    assert twilio._parse_media_fast(media_frame(bytes(161))) is None  # over 20 ms: the slow path


FRAMES = [media_frame(bytes(range(160))), media_frame(spaced=True, sid_first=False)]


@settings(max_examples=400, deadline=None)
@given(
    base=st.sampled_from(FRAMES),
    at=st.integers(min_value=0, max_value=400),
    cut=st.integers(min_value=0, max_value=3),
    insert=st.text(alphabet='"{}:, \\0123456789=+/abMZé', max_size=3),
)
def test_any_mutation_of_a_media_frame_parses_the_same_both_ways(
    base: str, at: int, cut: int, insert: str
) -> None:
    at = min(at, len(base))
    frame = base[:at] + insert + base[at + cut :]
    assert outcome(parse_event, frame) == outcome(parse_event_json, frame)
