"""gateway.live.emulator.protocol: the service side of the wire, used by the emulator."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from gateway.live.emulator.protocol import (
    ClientAudio,
    ClientAudioStreamEnd,
    ClientContent,
    ClientSetup,
    ClientText,
    ClientToolResponse,
    build_generation_complete,
    build_go_away,
    build_input_transcription,
    build_interrupted,
    build_model_audio,
    build_output_transcription,
    build_session_resumption_update,
    build_setup_complete,
    build_tool_call,
    build_tool_call_cancellation,
    build_turn_complete,
    build_usage_metadata,
    parse_client_message,
    usage_counts,
)
from gateway.live.models import Backend, ToolBehavior, ToolScheduling
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
    build_history,
    build_setup,
    build_text_input,
    build_tool_response,
    encode_message,
    parse_server_message,
)
from tests.live.sdk import validate_server_frame
from tests.live.test_protocol import snake


def frame(message: dict[str, Any]) -> str:
    return json.dumps(message)


def test_gateway_setup_parses_with_everything_the_emulator_uses() -> None:
    config = SessionConfig(
        model="models/m",
        voice="Kore",
        language_code="en-GB",
        system_instruction="Be brief.",
        function_declarations=({"name": "lookup_order", "parameters": {"type": "object"}},),
        vad=VadConfig(prefix_padding_ms=20, silence_duration_ms=300),
        resumption_handle="h-9",
    )
    message = build_setup(config)
    for spelled in (message, snake(message)):
        event = parse_client_message(frame(spelled))
        assert isinstance(event, ClientSetup)
        assert event.model == "models/m"
        assert event.response_modalities == ("AUDIO",)
        assert event.voice == "Kore" and event.language_code == "en-GB"
        assert event.system_instruction == "Be brief."
        assert event.function_names == ("lookup_order",)
        assert (event.prefix_padding_ms, event.silence_duration_ms) == (20, 300)
        assert event.input_transcription and event.output_transcription
        assert event.session_resumption and event.resumption_handle == "h-9"
        assert event.context_window_compression


def test_sdk_style_mixed_case_setup() -> None:
    # What google-genai actually sends: snake_case inside camelCase.
    raw = {
        "setup": {
            "model": "models/m",
            "generationConfig": {"responseModalities": ["AUDIO"]},
            "realtimeInputConfig": {"automatic_activity_detection": {"silence_duration_ms": 500}},
        }
    }
    event = parse_client_message(frame(raw))
    assert isinstance(event, ClientSetup)
    assert event.silence_duration_ms == 500
    assert not event.input_transcription and not event.session_resumption


def test_minimal_setup() -> None:
    event = parse_client_message('{"setup": {"model": "models/m"}}')
    assert (
        isinstance(event, ClientSetup) and event.voice is None and event.response_modalities == ()
    )


@pytest.mark.parametrize("spelling", ["camel", "snake"])
def test_realtime_and_content_messages(spelling: str) -> None:
    def parse(message: dict[str, Any]) -> Any:
        return parse_client_message(frame(message if spelling == "camel" else snake(message)))

    pcm = b"\x01\x00\xff\xff" * 10
    assert parse(build_audio_input(pcm, 8000)) == ClientAudio(pcm, 8000)
    assert parse(build_text_input("The caller pressed 1.")) == ClientText("The caller pressed 1.")
    assert parse(build_audio_stream_end()) == ClientAudioStreamEnd()
    assert parse(build_client_content('Say "hi"')) == ClientContent('Say "hi"', True, ("user",))
    assert parse(build_client_content("x", turn_complete=False)) == ClientContent(
        "x", False, ("user",)
    )
    responses = (FunctionResponse("fc-1", "lookup_order", {"result": {"status": "shipped"}}),)
    assert parse(build_tool_response(responses)) == ClientToolResponse(responses)


def test_audio_without_rate_is_16khz_and_url_safe_base64_is_accepted() -> None:
    pcm = bytes([0xFB, 0xFF, 0xFE, 0x3E])
    data = base64.urlsafe_b64encode(pcm).decode().rstrip("=")
    event = parse_client_message(
        frame({"realtime_input": {"audio": {"data": data, "mime_type": "audio/pcm"}}})
    )
    assert event == ClientAudio(pcm, 16000)


@pytest.mark.parametrize(
    ("message", "complaint"),
    [
        ({"realtimeInput": {"mediaChunks": [{"data": "AAAA"}]}}, "mediaChunks is deprecated"),
        ({"realtime_input": {"media_chunks": [{"data": "AAAA"}]}}, "mediaChunks is deprecated"),
        ({"setup": {"generationConfig": {}}}, "setup.model is required"),
        ({"hello": {}}, "unknown client message field"),
        ({}, "exactly one field"),
        ({"realtimeInput": {"text": "a"}, "clientContent": {}}, "exactly one field"),
        ({"realtimeInput": {"text": "a", "audioStreamEnd": True}}, "exactly one field"),
        ({"realtimeInput": {"bogus": 1}}, "unknown realtimeInput field"),
        ({"realtimeInput": {"video": {"data": "AAAA"}}}, "not supported"),
        ({"realtimeInput": {"audio": {"data": "AAAA", "mimeType": "audio/pcm"}}}, "16-bit"),
        ({"realtimeInput": {"audio": {"data": "%%%", "mimeType": "audio/pcm"}}}, "base64"),
        ({"realtimeInput": {"audio": {"data": "AAAA", "mimeType": "audio/wav"}}}, "mimeType"),
        ({"realtimeInput": {"text": 5}}, "string"),
        ({"toolResponse": {"functionResponses": []}}, "empty"),
        ({"toolResponse": {"functionResponses": [{"name": "x"}]}}, "without an id"),
        ({"setup": []}, "must be an object"),
    ],
)
def test_invalid_client_messages_name_the_problem(message: dict[str, Any], complaint: str) -> None:
    with pytest.raises(LiveProtocolError, match=complaint):
        parse_client_message(frame(message))


def test_invalid_json_is_a_protocol_error() -> None:
    with pytest.raises(LiveProtocolError, match="JSON"):
        parse_client_message(b"\x00{")


SERVER_MESSAGES: list[tuple[dict[str, Any], ServerMessage]] = [
    (build_setup_complete(), ServerMessage(setup_complete=True)),
    (build_model_audio(b"\x01\x02" * 8), ServerMessage(audio=(b"\x01\x02" * 8,))),
    (
        build_input_transcription("(caller speech 1.2 s)"),
        ServerMessage(input_transcription="(caller speech 1.2 s)"),
    ),
    (build_output_transcription("Hello "), ServerMessage(output_transcription="Hello ")),
    (build_interrupted(), ServerMessage(interrupted=True)),
    (build_generation_complete(), ServerMessage(generation_complete=True)),
    (build_turn_complete(), ServerMessage(turn_complete=True)),
    (
        build_turn_complete(usage_counts(10, 20)),
        ServerMessage(turn_complete=True, usage=usage_counts(10, 20)),
    ),
    (
        build_tool_call([FunctionCall("fc-1", "lookup_order", {"order_id": "A1001"})]),
        ServerMessage(tool_calls=(FunctionCall("fc-1", "lookup_order", {"order_id": "A1001"}),)),
    ),
    (build_tool_call_cancellation(["fc-1"]), ServerMessage(tool_call_cancellation_ids=("fc-1",))),
    (build_go_away(50), ServerMessage(go_away_time_left_s=50.0)),
    (build_go_away(1.5), ServerMessage(go_away_time_left_s=1.5)),
    (
        build_session_resumption_update("h-2", True),
        ServerMessage(resumption_handle="h-2", resumable=True),
    ),
    (build_session_resumption_update(None, False), ServerMessage(resumable=False)),
    (build_usage_metadata(3, 4), ServerMessage(usage=usage_counts(3, 4))),
]


@pytest.mark.parametrize(("message", "expected"), SERVER_MESSAGES)
def test_server_builders_validate_and_round_trip(
    message: dict[str, Any], expected: ServerMessage
) -> None:
    text = encode_message(message)
    validate_server_frame(text)
    assert parse_server_message(text.encode()) == expected


# --------------------------------------------------------------------------- generation fields


def test_setup_fields_the_generation_rules_read() -> None:
    raw = {
        "setup": {
            "model": "models/m",
            "generationConfig": {
                "thinkingConfig": {"thinkingLevel": "LOW"},
                "enableAffectiveDialog": False,
            },
            "proactivity": {"proactiveAudio": True},
            "inputAudioTranscription": {"customVocabulary": ["Acme"]},
            "historyConfig": {"initialHistoryInClientContent": True},
            "tools": [
                {
                    "functionDeclarations": [
                        {"name": "a", "behavior": "NON_BLOCKING"},
                        {"name": "b", "behavior": "UNSPECIFIED"},
                        {"name": "c"},
                    ]
                }
            ],
        }
    }
    for spelled in (raw, snake(raw)):
        event = parse_client_message(frame(spelled))
        assert isinstance(event, ClientSetup)
        assert event.thinking_config and event.thinking_level == "LOW"
        assert event.thinking_budget is None
        assert event.affective_dialog is False
        assert event.proactivity and event.proactive_audio is True
        assert event.custom_vocabulary == ("Acme",)
        assert event.initial_history_in_client_content
        assert event.declared_behaviors == (("a", ToolBehavior.NON_BLOCKING),)
    bare = parse_client_message('{"setup": {"model": "models/m"}}')
    assert isinstance(bare, ClientSetup)
    assert not bare.thinking_config and not bare.proactivity
    assert bare.custom_vocabulary is None and bare.affective_dialog is None


@pytest.mark.parametrize(
    ("setup", "complaint"),
    [
        ({"tools": [{"functionDeclarations": [{"name": "a", "behavior": "SOON"}]}]}, "behavior"),
        ({"generationConfig": {"thinkingConfig": {"thinkingBudget": "lots"}}}, "thinkingBudget"),
        ({"generationConfig": {"thinkingConfig": {"thinkingLevel": 3}}}, "thinkingLevel"),
    ],
)
def test_bad_generation_fields_name_the_problem(setup: dict[str, Any], complaint: str) -> None:
    with pytest.raises(LiveProtocolError, match=complaint):
        parse_client_message(frame({"setup": {"model": "models/m", **setup}}))


def test_tool_response_scheduling_and_client_content_turns() -> None:
    responses = (
        FunctionResponse("fc-1", "a", {}, ToolScheduling.INTERRUPT),
        FunctionResponse("fc-2", "b", {}, ToolScheduling.SILENT),
        FunctionResponse("fc-3", "c", {}),
    )
    assert parse_client_message(frame(build_tool_response(responses))) == ClientToolResponse(
        responses
    )
    with pytest.raises(LiveProtocolError, match="scheduling"):
        parse_client_message(
            frame(
                {
                    "toolResponse": {
                        "functionResponses": [{"id": "1", "name": "a", "scheduling": "LATER"}]
                    }
                }
            )
        )
    history = build_history((("user", "Hi"), ("model", "Hello")), initial=True)
    event = parse_client_message(frame(history))
    assert isinstance(event, ClientContent)
    assert event.turns == (("user", "Hi"), ("model", "Hello")) and event.turn_complete


VERTEX_MESSAGES: list[tuple[dict[str, Any], ServerMessage]] = [
    (build_setup_complete("s-1"), ServerMessage(setup_complete=True, session_id="s-1")),
    (
        build_turn_complete(usage_counts(1, 2, backend=Backend.VERTEX), interaction_status="IDLE"),
        ServerMessage(
            turn_complete=True,
            usage=usage_counts(1, 2, backend=Backend.VERTEX),
            interaction_status="IDLE",
        ),
    ),
    (
        build_usage_metadata(3, 4, backend=Backend.VERTEX),
        ServerMessage(
            usage={"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7}
        ),
    ),
    (
        build_model_audio(b"\x01\x02", transcription="Hi"),
        ServerMessage(audio=(b"\x01\x02",), output_transcription="Hi"),
    ),
]


@pytest.mark.parametrize(("message", "expected"), VERTEX_MESSAGES)
def test_dialect_builders_validate_and_round_trip(
    message: dict[str, Any], expected: ServerMessage
) -> None:
    text = encode_message(message)
    validate_server_frame(text, Backend.VERTEX)
    assert parse_server_message(text.encode()) == expected
