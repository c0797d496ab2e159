"""Property tests: whatever a peer sends, the Live parsers (the gateway's, for server frames,
and the emulator's, for client frames) return a message or raise `LiveProtocolError`."""

from __future__ import annotations

from hypothesis import example, given

from gateway.live.emulator.protocol import parse_client_message
from gateway.live.protocol import LiveProtocolError, ServerMessage, parse_server_message
from tests.fuzz import PARSER_FUZZ, live_client_frames, live_server_frames


@PARSER_FUZZ
@given(live_server_frames())
@example("[" * 100_000 + "]" * 100_000)
@example(b"\xc3\x28")
@example('{"goAway":{"timeLeft":{"seconds":[],"nanos":"x"}}}')
@example('{"goAway":{"timeLeft":"1e999s"}}')
@example('{"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":7,"data":"AA"}}]}}}')
@example('{"serverContent":{"modelTurn":{"parts":[{"inlineData":{"data":"%%%"}}]}}}')
@example('{"toolCall":{"functionCalls":[{"name":"f","args":[1]}]}}')
@example('{"sessionResumptionUpdate":{"newHandle":5}}')
@example('{"usageMetadata":[]}')
def test_any_server_frame_parses_or_fails_with_a_protocol_error(frame: str | bytes) -> None:
    try:
        message = parse_server_message(frame)
    except LiveProtocolError as exc:
        assert str(exc)
        return
    assert isinstance(message, ServerMessage)


@PARSER_FUZZ
@given(live_client_frames())
@example("[" * 100_000 + "]" * 100_000)
@example('{"realtimeInput":{"audio":{"mimeType":"audio/pcm;rate=abc","data":"AAA="}}}')
@example('{"realtimeInput":{"audio":{"mimeType":"audio/pcm;rate=0","data":"AAAA"}}}')
@example('{"setup":{"model":[],"generationConfig":"x"}}')
@example('{"setup":{"model":"m","sessionResumption":{"handle":7}}}')
@example('{"toolResponse":{"functionResponses":[{"id":1,"response":"x"}]}}')
@example('{"clientContent":{"turns":[{"parts":[{"text":5}]}]}}')
def test_any_client_frame_parses_or_fails_with_a_protocol_error(frame: str | bytes) -> None:
    try:
        parse_client_message(frame)
    except LiveProtocolError as exc:
        assert str(exc)
