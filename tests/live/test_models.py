"""The model profile table (gateway.live.models): lookup, defaults, and what setup it shapes."""

from __future__ import annotations

from typing import Any

import pytest
import structlog

from gateway.agents.config import AgentConfig, AgentSet
from gateway.live.models import (
    DEFAULT_MODEL,
    NEWEST_PROFILE,
    PROFILES,
    Backend,
    ModelProfile,
    TextChannel,
    ToolBehavior,
    ToolScheduling,
    profile_for,
)
from gateway.live.protocol import (
    FunctionResponse,
    LiveProtocolError,
    SessionConfig,
    build_setup,
    build_tool_response,
)
from gateway.server import warn_unknown_models
from tests.live.sdk import validate_client_message


def test_every_generation_of_the_issue_has_a_profile() -> None:
    ids = {model_id for profile in PROFILES for model_id in profile.model_ids}
    assert {
        "gemini-2.5-flash-native-audio-preview-12-2025",  # Developer API preview
        "gemini-live-2.5-flash-native-audio",  # Vertex GA
        "gemini-3.1-flash-live-preview",
        "gemini-3.8-live",
        "gemini-3.8-live-extended-thinking",
    } <= ids
    assert len(ids) == sum(len(p.model_ids) for p in PROFILES)  # no id in two profiles
    assert all(p.sources for p in PROFILES)


@pytest.mark.parametrize(
    "model",
    [
        "gemini-3.8-live",
        "models/gemini-3.8-live",
        "projects/p/locations/us/publishers/google/models/gemini-3.8-live",
    ],
)
def test_profiles_are_found_by_bare_id_or_full_path(model: str) -> None:
    assert profile_for(model).name == "gemini-3.8-live"


def test_unknown_models_get_the_newest_profile_and_one_warning_each() -> None:
    assert profile_for("gemini-9.9-live-experimental") is NEWEST_PROFILE
    assert DEFAULT_MODEL == NEWEST_PROFILE.name == "gemini-3.8-live"
    agents = AgentSet.from_agents(
        [
            AgentConfig(name="default"),
            AgentConfig(name="a", model="gemini-9.9-live"),
            AgentConfig(name="b", model="gemini-9.9-live"),
            AgentConfig(name="c", model="gemini-3.1-flash-live-preview"),
        ]
    )
    with structlog.testing.capture_logs() as logs:
        unknown = warn_unknown_models("my-tuned-live", agents)
    assert unknown == ["my-tuned-live", "gemini-9.9-live"]
    warnings = [e for e in logs if e["event"] == "live_model_unknown"]
    assert [(e["model"], e["treated_as"]) for e in warnings] == [
        ("my-tuned-live", "gemini-3.8-live"),
        ("gemini-9.9-live", "gemini-3.8-live"),
    ]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_text_goes_as_realtime_text_only_on_the_developer_api(profile: ModelProfile) -> None:
    assert profile.text_channel(Backend.VERTEX) is TextChannel.CLIENT_CONTENT
    assert profile.text_channel(Backend.GEMINI) is TextChannel.REALTIME_TEXT


def test_defaults_differ_by_generation() -> None:
    by_name = {p.name: p for p in PROFILES}
    assert by_name["gemini-2.5-flash-native-audio"].default_tool_behavior is ToolBehavior.BLOCKING
    assert by_name["gemini-3.8-live"].default_tool_behavior is ToolBehavior.NON_BLOCKING
    assert by_name["gemini-3.1-flash-live-preview"].tool_behaviors == (ToolBehavior.BLOCKING,)
    assert by_name["gemini-3.8-live-extended-thinking"].tool_behaviors == (
        ToolBehavior.NON_BLOCKING,
    )
    assert by_name["gemini-3.8-live"].thinking == "none"
    assert by_name["gemini-3.8-live-extended-thinking"].interaction_status


def config(model: str, **fields: Any) -> SessionConfig:
    return SessionConfig(model=f"models/{model}", **fields)


def test_compression_settings_and_history_config_reach_the_setup() -> None:
    setup = build_setup(
        config(
            "gemini-3.8-live",
            compression_trigger_tokens=32000,
            compression_target_tokens=16000,
            initial_history=(("user", "hi"), ("model", "hello")),
        )
    )
    validate_client_message(setup)
    assert setup["setup"]["contextWindowCompression"] == {
        "triggerTokens": 32000,
        "slidingWindow": {"targetTokens": 16000},
    }
    assert setup["setup"]["historyConfig"] == {"initialHistoryInClientContent": True}
    plain = build_setup(config("gemini-2.5-flash-native-audio-preview-12-2025"))["setup"]
    assert plain["contextWindowCompression"] == {"slidingWindow": {}}
    assert "historyConfig" not in plain


def test_a_wish_the_model_refuses_never_reaches_the_wire() -> None:
    with pytest.raises(LiveProtocolError, match=r"thinking: gemini-3\.8-live does not support"):
        build_setup(config("gemini-3.8-live", thinking_budget=100))
    with pytest.raises(LiveProtocolError, match="behavior"):
        build_setup(
            config(
                "gemini-3.1-flash-live-preview",
                function_declarations=({"name": "t", "description": "d"},),
                tool_behaviors=(("t", ToolBehavior.NON_BLOCKING),),
            )
        )


def test_tool_responses_carry_their_scheduling() -> None:
    message = build_tool_response(
        [
            FunctionResponse("fc-1", "t", {"status": "ok"}, ToolScheduling.SILENT),
            FunctionResponse("fc-2", "u", {"status": "ok"}),
        ]
    )
    validate_client_message(message)
    responses = message["toolResponse"]["functionResponses"]
    assert responses[0]["scheduling"] == "SILENT" and "scheduling" not in responses[1]
