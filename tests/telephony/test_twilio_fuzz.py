"""Property tests: whatever a peer sends, the Twilio parser returns an event or raises
`TelephonyProtocolError` — never anything else."""

from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st

from gateway.telephony.base import CarrierEvent, MediaFrame, TelephonyProtocolError
from gateway.telephony.twilio import MAX_MEDIA_PAYLOAD_BYTES, parse_event
from tests.fuzz import PARSER_FUZZ, twilio_frames
from tests.twilio_frames import TwilioCaller


@PARSER_FUZZ
@given(twilio_frames())
@example("[" * 100_000 + "]" * 100_000)
@example(b"\xff\xfe{")
@example('{"event":"media","streamSid":"MZ1","media":{"track":"inbound","payload":"%%%"}}')
@example('{"event":"start","start":{"streamSid":"MZ","tracks":"inbound"}}')
@example('{"event":"media","streamSid":"MZ1","media":{"payload":"' + "A" * 30_000 + '"}}')
@example('{"event":"media","streamSid":"MZ1","media":{"track":[],"payload":""}}')
@example('{"event":"media","streamSid":"MZ1","media":{"track":"inbound","chunk":"1e9999"}}')
def test_any_frame_parses_or_fails_with_a_protocol_error(frame: str | bytes) -> None:
    try:
        event = parse_event(frame)
    except TelephonyProtocolError as exc:
        assert str(exc)  # says what is wrong
        assert len(str(exc)) < 500  # and never echoes a whole payload back
        return
    assert isinstance(event, CarrierEvent)


@PARSER_FUZZ
@given(st.binary(max_size=MAX_MEDIA_PAYLOAD_BYTES), st.sampled_from(["inbound", "inbound_track"]))
def test_any_real_media_frame_round_trips_its_audio(mulaw: bytes, track: str) -> None:
    message = TwilioCaller().media(mulaw)
    message["media"]["track"] = track
    event = parse_event(json.dumps(message))
    assert isinstance(event, MediaFrame)
    assert event.payload == mulaw and event.track == track
