"""A full agent → Live `setup`, validated against the official google-genai models."""

from __future__ import annotations

from pathlib import Path

from gateway.agents.config import AgentConfig, load_agents
from gateway.call.session_config import session_config_for
from gateway.live.protocol import build_setup
from gateway.telephony.base import StreamStart
from tests.live.sdk import validate_client_message

REPO = Path(__file__).parent.parent
START = StreamStart(
    stream_sid="MZ1", call_sid="CA1", account_sid="AC1", tracks=("inbound",),
    custom_parameters={}, encoding="audio/x-mulaw", sample_rate_hz=8000, channels=1,
    sequence_number=1,
)  # fmt: skip


def test_acme_support_maps_to_a_valid_setup() -> None:
    acme = load_agents(REPO / "agents").agents["acme-support"]
    config = session_config_for(acme, START, default_model="models/default-model")
    assert config.model == "models/default-model"  # the agent does not pick one
    assert (config.voice, config.language_code) == ("Aoede", "en-US")
    assert config.system_instruction is not None and "Acme" in config.system_instruction
    assert config.vad.start_sensitivity == "high" and config.vad.silence_duration_ms == 600
    setup = build_setup(config)
    validated = validate_client_message(setup)
    assert validated.setup is not None and validated.setup.tools is not None
    declarations = validated.setup.tools[0].function_declarations or []
    assert [d.name for d in declarations] == [
        "lookup_order", "create_ticket", "business_hours", "transfer_to_human", "end_call",
    ]  # fmt: skip
    lookup = setup["setup"]["tools"][0]["functionDeclarations"][0]
    assert lookup["parameters"] == {
        "type": "OBJECT",
        "properties": {
            "order_id": {"type": "STRING", "description": "The order number, like A1001."}
        },
        "required": ["order_id"],
    }
    business_hours = setup["setup"]["tools"][0]["functionDeclarations"][2]
    assert "parameters" not in business_hours  # a tool without arguments
    activity = setup["setup"]["realtimeInputConfig"]["automaticActivityDetection"]
    assert activity == {
        "startOfSpeechSensitivity": "START_SENSITIVITY_HIGH",
        "endOfSpeechSensitivity": "END_SENSITIVITY_LOW",
        "prefixPaddingMs": 40,
        "silenceDurationMs": 600,
    }
    assert "inputAudioTranscription" in setup["setup"]
    assert "outputAudioTranscription" in setup["setup"]


def test_model_and_transcription_flags_come_from_the_agent() -> None:
    agent = AgentConfig(
        name="quiet",
        model="gemini-3.1-flash-live-preview",
        transcription={"input": False, "output": False},
    )
    config = session_config_for(agent, START, default_model="unused")
    assert config.model == "gemini-3.1-flash-live-preview"
    setup = build_setup(config)["setup"]
    assert "inputAudioTranscription" not in setup and "outputAudioTranscription" not in setup
    assert "tools" not in setup and "automaticActivityDetection" not in setup["realtimeInputConfig"]
    validate_client_message({"setup": setup})
