"""gateway.live.protocol: what the gateway builds validates against the official SDK models, and
every server message kind parses in camelCase and snake_case, text and binary frames."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.live.protocol import (
    FunctionCall,
    FunctionResponse,
    LiveProtocolError,
    ServerMessage,
    SessionConfig,
    VadConfig,
    build_audio_input,
    build_audio_stream_end,
    build_client_content,
    build_setup,
    build_text_input,
    build_tool_response,
    decode_base64,
    encode_audio_input,
    encode_message,
    format_duration,
    parse_duration_s,
    parse_server_message,
    pcm_rate_from_mime,
)
from tests.live.sdk import validate_client_message

LOOKUP_ORDER: dict[str, Any] = {
    "name": "lookup_order",
    "description": "Find an order by id.",
    "parameters": {
        "type": "object",
        "properties": {
            "order_id": {"type": "string", "description": "like A1001"},
            "items": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["order_id"],
    },
}
END_CALL: dict[str, Any] = {"name": "end_call", "description": "Hang up."}

FULL = SessionConfig(
    model="projects/p/locations/us-central1/publishers/google/models/gemini-live-2.5-flash",
    voice="Aoede",
    language_code="en-US",
    system_instruction="You are a helpful phone agent.",
    function_declarations=(LOOKUP_ORDER, END_CALL),
    vad=VadConfig(
        start_sensitivity="high",
        end_sensitivity="low",
        prefix_padding_ms=20,
        silence_duration_ms=500,
    ),
    resumption_handle="h-1",
    temperature=0.7,
)
MINIMAL = SessionConfig(
    model="models/gemini-2.5-flash-native-audio-preview-12-2025",
    input_transcription=False,
    output_transcription=False,
    session_resumption=False,
    context_window_compression=False,
)


# --------------------------------------------------------------------------- builders


def test_full_setup_validates_against_the_sdk() -> None:
    message = build_setup(FULL)
    parsed = validate_client_message(message)
    assert parsed.setup is not None
    setup = message["setup"]
    assert setup["model"] == FULL.model
    assert setup["generationConfig"] == {
        "responseModalities": ["AUDIO"],
        "speechConfig": {
            "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Aoede"}},
            "languageCode": "en-US",
        },
        "temperature": 0.7,
    }
    assert setup["systemInstruction"] == {"parts": [{"text": "You are a helpful phone agent."}]}
    assert setup["realtimeInputConfig"] == {
        "activityHandling": "START_OF_ACTIVITY_INTERRUPTS",
        "automaticActivityDetection": {
            "startOfSpeechSensitivity": "START_SENSITIVITY_HIGH",
            "endOfSpeechSensitivity": "END_SENSITIVITY_LOW",
            "prefixPaddingMs": 20,
            "silenceDurationMs": 500,
        },
    }
    assert setup["sessionResumption"] == {"handle": "h-1"}
    assert setup["contextWindowCompression"] == {"slidingWindow": {}}
    assert setup["inputAudioTranscription"] == {} and setup["outputAudioTranscription"] == {}
    declarations = setup["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in declarations] == ["lookup_order", "end_call"]
    parameters = declarations[0]["parameters"]
    assert parameters["type"] == "OBJECT"
    assert parameters["properties"]["order_id"]["type"] == "STRING"
    assert parameters["properties"]["items"]["items"]["type"] == "STRING"
    assert LOOKUP_ORDER["parameters"]["type"] == "object"  # the caller's dict is untouched


def test_minimal_setup_validates_and_sends_only_what_is_asked() -> None:
    message = build_setup(MINIMAL)
    validate_client_message(message)
    assert message == {
        "setup": {
            "model": MINIMAL.model,
            "generationConfig": {"responseModalities": ["AUDIO"]},
            "realtimeInputConfig": {"activityHandling": "START_OF_ACTIVITY_INTERRUPTS"},
        }
    }


def test_default_config_asks_for_resumption_compression_and_transcriptions() -> None:
    setup = build_setup(SessionConfig(model="models/x"))["setup"]
    validate_client_message({"setup": setup})
    assert setup["sessionResumption"] == {}
    assert setup["contextWindowCompression"] == {"slidingWindow": {}}
    assert "inputAudioTranscription" in setup and "outputAudioTranscription" in setup


def test_the_sdk_validator_is_strict_enough_to_catch_drift() -> None:
    bad_enum = build_setup(FULL)
    bad_enum["setup"]["realtimeInputConfig"]["activityHandling"] = "INTERRUPT_PLEASE"
    with pytest.raises((ValidationError, UserWarning)):
        validate_client_message(bad_enum)
    unknown_field = build_setup(MINIMAL)
    unknown_field["setup"]["generationConfig"]["voice"] = "Puck"
    with pytest.raises(ValidationError):
        validate_client_message(unknown_field)


def test_setup_needs_a_model_and_named_functions() -> None:
    with pytest.raises(LiveProtocolError, match="model"):
        build_setup(SessionConfig(model=""))
    with pytest.raises(LiveProtocolError, match="name"):
        build_setup(SessionConfig(model="models/x", function_declarations=({"description": "?"},)))


def test_vad_config_rejects_bad_values() -> None:
    with pytest.raises(LiveProtocolError, match="start_sensitivity"):
        VadConfig(start_sensitivity="medium")  # type: ignore[arg-type]
    with pytest.raises(LiveProtocolError, match="silence_duration_ms"):
        VadConfig(silence_duration_ms=-1)


def test_realtime_and_content_builders_validate() -> None:
    pcm = bytes(range(256)) * 4
    audio = build_audio_input(pcm, 16000)
    assert audio["realtimeInput"]["audio"]["mimeType"] == "audio/pcm;rate=16000"
    parsed = validate_client_message(audio)
    assert parsed.realtime_input is not None and parsed.realtime_input.audio is not None
    assert parsed.realtime_input.audio.data == pcm

    for message in (
        build_text_input("The caller pressed 1."),
        build_audio_stream_end(),
        build_client_content("Say hello", turn_complete=True),
        build_client_content("context only", turn_complete=False),
        build_tool_response(
            [
                FunctionResponse("fc-1", "lookup_order", {"result": {"status": "shipped"}}),
                FunctionResponse("fc-2", "end_call", {}),
            ]
        ),
    ):
        validate_client_message(message)
    assert build_client_content("Hi")["clientContent"] == {
        "turns": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "turnComplete": True,
    }


def test_fast_audio_encoding_equals_the_generic_path() -> None:
    pcm = b"\x01\x02" * 480
    fast = encode_audio_input(pcm, 24000)
    assert fast == encode_message(build_audio_input(pcm, 24000))
    assert json.loads(fast) == build_audio_input(pcm, 24000)


def test_encode_message_is_compact_json() -> None:
    text = encode_message({"realtimeInput": {"text": "é ok"}})
    assert text == '{"realtimeInput":{"text":"é ok"}}'


# --------------------------------------------------------------------------- parsing


def _camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def snake(value: Any) -> Any:
    """The same message with every key in snake_case, as some servers and SDKs send it."""
    if isinstance(value, dict):
        return {_camel_to_snake(k): snake(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake(v) for v in value]
    return value


PCM = b"\x00\x01\xff\x7f" * 100
B64 = base64.b64encode(PCM).decode()

CASES: list[tuple[str, dict[str, Any], ServerMessage]] = [
    ("setup_complete", {"setupComplete": {}}, ServerMessage(setup_complete=True)),
    (
        "setup_complete_with_session",
        {"setupComplete": {"sessionId": "s-1"}},
        ServerMessage(setup_complete=True, session_id="s-1"),
    ),
    (
        "audio",
        {
            "serverContent": {
                "modelTurn": {
                    "parts": [{"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": B64}}]
                }
            }
        },
        ServerMessage(audio=(PCM,)),
    ),
    (
        "audio_16k_with_text_part",
        {
            "serverContent": {
                "modelTurn": {
                    "parts": [
                        {"inlineData": {"mimeType": "audio/pcm;rate=16000", "data": B64}},
                        {"text": "hello"},
                        {"text": "thinking...", "thought": True},
                        {"inlineData": {"mimeType": "audio/pcm;rate=16000", "data": B64}},
                    ]
                }
            }
        },
        ServerMessage(audio=(PCM, PCM), audio_rate_hz=16000, text=("hello",)),
    ),
    (
        "input_transcription",
        {"serverContent": {"inputTranscription": {"text": "where is my order"}}},
        ServerMessage(input_transcription="where is my order"),
    ),
    (
        "output_transcription",
        {"serverContent": {"outputTranscription": {"text": "Let me check"}}},
        ServerMessage(output_transcription="Let me check"),
    ),
    ("interrupted", {"serverContent": {"interrupted": True}}, ServerMessage(interrupted=True)),
    (
        "generation_complete",
        {"serverContent": {"generationComplete": True}},
        ServerMessage(generation_complete=True),
    ),
    ("turn_complete", {"serverContent": {"turnComplete": True}}, ServerMessage(turn_complete=True)),
    (
        "tool_call",
        {
            "toolCall": {
                "functionCalls": [
                    {"id": "fc-1", "name": "lookup_order", "args": {"order_id": "A1001"}},
                    {"id": "fc-2", "name": "end_call"},
                ]
            }
        },
        ServerMessage(
            tool_calls=(
                FunctionCall("fc-1", "lookup_order", {"order_id": "A1001"}),
                FunctionCall("fc-2", "end_call", {}),
            )
        ),
    ),
    (
        "tool_call_cancellation",
        {"toolCallCancellation": {"ids": ["fc-1", "fc-2"]}},
        ServerMessage(tool_call_cancellation_ids=("fc-1", "fc-2")),
    ),
    ("go_away", {"goAway": {"timeLeft": "50s"}}, ServerMessage(go_away_time_left_s=50.0)),
    ("go_away_fraction", {"goAway": {"timeLeft": "1.5s"}}, ServerMessage(go_away_time_left_s=1.5)),
    (
        "resumption_update",
        {"sessionResumptionUpdate": {"newHandle": "h-2", "resumable": True}},
        ServerMessage(resumption_handle="h-2", resumable=True),
    ),
    (
        "resumption_not_resumable",
        {"sessionResumptionUpdate": {"newHandle": "", "resumable": False}},
        ServerMessage(resumption_handle=None, resumable=False),
    ),
    (
        "combined_turn_complete_and_usage",
        {
            "serverContent": {"turnComplete": True},
            "usageMetadata": {"promptTokenCount": 15, "responseTokenCount": 25},
        },
        ServerMessage(turn_complete=True, usage={"promptTokenCount": 15, "responseTokenCount": 25}),
    ),
]


@pytest.mark.parametrize(("name", "frame", "expected"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("spelling", ["camel", "snake"])
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_every_server_message_kind_parses(
    name: str, frame: dict[str, Any], expected: ServerMessage, spelling: str, kind: str
) -> None:
    obj = frame if spelling == "camel" else snake(frame)
    text = json.dumps(obj)
    message = parse_server_message(text if kind == "text" else text.encode())
    if spelling == "snake" and expected.usage is not None:
        expected = ServerMessage(turn_complete=True, usage=snake(dict(expected.usage)))
    assert message == expected


def test_url_safe_base64_without_padding() -> None:
    pcm = bytes([0xFB, 0xFF, 0xFE, 0x3E, 0x00])  # encodes with + and / in standard base64
    standard = base64.b64encode(pcm).decode()
    assert "+" in standard or "/" in standard
    url_safe = base64.urlsafe_b64encode(pcm).decode().rstrip("=")
    frame = {"serverContent": {"modelTurn": {"parts": [{"inlineData": {"data": url_safe}}]}}}
    assert parse_server_message(json.dumps(frame)).audio == (pcm,)
    assert decode_base64(standard) == pcm
    assert decode_base64(standard.rstrip("=")) == pcm


def test_unknown_fields_are_tolerated_and_reported() -> None:
    frame = {
        "serverContent": {"turnComplete": True, "turnCompleteReason": "NEED_MORE_INPUT"},
        "voiceActivity": {"voiceActivityType": "ACTIVITY_START"},
        "somethingNew": 1,
    }
    message = parse_server_message(json.dumps(frame))
    assert message.turn_complete
    assert message.unknown_fields == ("voiceActivity", "somethingNew")


def test_non_audio_inline_data_is_ignored() -> None:
    data = base64.b64encode(b"\x89PNG").decode()
    part = {"inlineData": {"mimeType": "image/png", "data": data}}
    frame = {"serverContent": {"modelTurn": {"parts": [part]}}}
    assert parse_server_message(json.dumps(frame)) == ServerMessage()


@pytest.mark.parametrize(
    "frame",
    [
        "{not json",
        b"\xff\xfe\x00garbage",
        "[1, 2]",
        '"setupComplete"',
        '{"serverContent": []}',
        '{"serverContent": {"modelTurn": {"parts": [{"inlineData": {"data": "!!!"}}]}}}',
        '{"serverContent": {"modelTurn": {"parts": [{"inlineData": {"data": "A"}}]}}}',
        '{"serverContent": {"modelTurn": {"parts": [{"inlineData": {"data": 12}}]}}}',
        '{"toolCall": {"functionCalls": [{"id": "fc-1"}]}}',
        '{"toolCall": {"functionCalls": [{"id": "fc-1", "name": "x", "args": [1]}]}}',
        '{"toolCallCancellation": {"ids": [1]}}',
        '{"goAway": {"timeLeft": "soon"}}',
        '{"usageMetadata": 3}',
    ],
)
def test_malformed_frames_raise_live_protocol_error(frame: str | bytes) -> None:
    with pytest.raises(LiveProtocolError):
        parse_server_message(frame)


def test_helpers() -> None:
    assert pcm_rate_from_mime("audio/pcm;rate=24000") == 24000
    assert pcm_rate_from_mime("audio/pcm; rate=16000") == 16000
    assert pcm_rate_from_mime("audio/pcm") is None
    assert pcm_rate_from_mime("audio/pcm;rate=fast") is None
    assert parse_duration_s("50s") == 50.0
    assert parse_duration_s({"seconds": 1, "nanos": 500_000_000}) == 1.5
    assert format_duration(50) == "50s"
    assert format_duration(1.5) == "1.5s"
    with pytest.raises(LiveProtocolError):
        parse_duration_s("infs")
