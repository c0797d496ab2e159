"""Agent fields that depend on the model generation: what each model refuses is an agent error
naming file, line, field and model; what it accepts shapes the Live setup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.agents.config import AgentConfigError, load_agent_file, load_agents
from gateway.call.session_config import session_config_for
from gateway.cli import main
from gateway.live.models import PROFILES, ModelProfile, profile_for
from gateway.live.protocol import build_setup
from gateway.telephony.twilio import TwilioCodec
from tests.twilio_frames import TwilioCaller

M25 = "gemini-2.5-flash-native-audio-preview-12-2025"
M25_VERTEX = "gemini-live-2.5-flash-native-audio"
M31 = "gemini-3.1-flash-live-preview"
M38 = "gemini-3.8-live"
M38_ET = "gemini-3.8-live-extended-thinking"


def write(tmp_path: Path, text: str, name: str = "x.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def setup_for(path: Path, default_model: str = M38) -> dict[str, object]:
    agent = load_agent_file(path, default_model=default_model)
    start = TwilioCodec().parse(json.dumps(TwilioCaller().start()))
    config = session_config_for(agent, start, default_model=default_model)  # type: ignore[arg-type]
    setup = build_setup(config)["setup"]
    assert isinstance(setup, dict)
    return setup


def test_the_issue_example_names_file_line_field_and_model(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nmodel: gemini-3.8-live\nvoice: Puck\nthinking: low\n")
    with pytest.raises(AgentConfigError) as caught:
        load_agent_file(path)
    message = "thinking: gemini-3.8-live does not support thinking_level"
    assert str(caught.value) == f"{path}:4: {message}"


@pytest.mark.parametrize(
    ("model", "text", "expected"),
    [
        (M38, "thinking: 1024", r":2: thinking: gemini-3.8-live does not support thinking_budget"),
        (M25, "thinking: high", r":2: thinking: .* does not support thinking_level"),
        (M31, "thinking: 512", r":2: thinking: .* does not support thinking_budget"),
        (M38_ET, "thinking: minimal", r":2: thinking: .* takes thinking_level low, medium, high"),
        (M31, "proactive_audio: true", r":2: proactive_audio: .* does not support proactive"),
        (M38, "proactive_audio: false", r":2: proactive_audio: .* cannot be turned off"),
        (M38, "affective_dialog: true", r":2: affective_dialog: .* does not support affective"),
        (M31, "affective_dialog: true", r":2: affective_dialog: .* does not support affective"),
        (M25, "vocabulary: [Acme]", r":2: vocabulary: .* does not support a custom"),
        (M31, "vocabulary: [Acme]", r":2: vocabulary: .* does not support a custom"),
    ],
)
def test_what_a_model_refuses_is_an_agent_error(
    tmp_path: Path, model: str, text: str, expected: str
) -> None:
    path = write(tmp_path, f"name: x\n{text}\nmodel: {model}\n")
    with pytest.raises(AgentConfigError, match=expected) as caught:
        load_agent_file(path)
    assert model in str(caught.value)


TOOLS = """name: x
model: {model}
tools:
  - builtin: end_call
    {field}
"""


@pytest.mark.parametrize(
    ("model", "field", "expected"),
    [
        (M31, "behavior: non_blocking", r":5: tools\.0\.behavior: .* non_blocking function calls"),
        (M38_ET, "behavior: blocking", r":5: tools\.0\.behavior: .* blocking function calls"),
        (M31, "scheduling: silent", r":5: tools\.0\.scheduling: .* response scheduling"),
        (M25, "scheduling: silent", r":5: tools\.0\.scheduling: only non_blocking tools"),
    ],
)
def test_tool_behaviour_and_scheduling_are_checked_per_model(
    tmp_path: Path, model: str, field: str, expected: str
) -> None:
    path = write(tmp_path, TOOLS.format(model=model, field=field))
    with pytest.raises(AgentConfigError, match=expected):
        load_agent_file(path)


def test_the_default_model_decides_for_agents_that_name_none(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nthinking: 2048\n")
    refused = r"gemini-3\.8-live does not support thinking_budget"
    with pytest.raises(AgentConfigError, match=refused):
        load_agent_file(path)  # LIVE_MODEL's default
    assert load_agent_file(path, default_model=M25).thinking == 2048


def test_all_model_errors_of_a_file_come_together(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: x\nthinking: low\nproactive_audio: false\naffective_dialog: true\n",
    )
    with pytest.raises(AgentConfigError) as caught:
        load_agent_file(path)
    lines = str(caught.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "thinking",
        "proactive_audio",
        "affective_dialog",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("thinking: lots", "is not a thinking level"),
        ("thinking: -5", "token count"),
        ("thinking: true", "thinking level"),
        ("vocabulary: ['']", "must not be empty"),
        ("tools: [{builtin: end_call, behavior: async}]", "tools.0.behavior"),
        ("tools: [{builtin: end_call, scheduling: later}]", "tools.0.scheduling"),
    ],
)
def test_bad_values_are_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, f"name: x\n{text}\n")
    with pytest.raises(AgentConfigError, match=message.replace(".", r"\.")):
        load_agent_file(path)


def test_vocabulary_needs_input_transcription(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nvocabulary: [Acme]\ntranscription: {input: false}\n")
    with pytest.raises(AgentConfigError, match=r":2: vocabulary: needs transcription\.input"):
        load_agent_file(path)


# --------------------------------------------------------------------------- what is sent


def test_gemini_38_setup_has_no_thinking_non_blocking_tools_and_vocabulary(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: x\nvocabulary: [Acme, A1001]\nproactive_audio: true\ntools:\n"
        "  - builtin: end_call\n  - builtin: send_dtmf\n    behavior: blocking\n",
    )
    setup = setup_for(path)
    assert "thinkingConfig" not in setup["generationConfig"]  # type: ignore[operator]
    behaviors = [d["behavior"] for d in setup["tools"][0]["functionDeclarations"]]  # type: ignore[index]
    assert behaviors == ["NON_BLOCKING", "BLOCKING"]
    assert setup["inputAudioTranscription"] == {"customVocabulary": ["Acme", "A1001"]}
    assert setup["proactivity"] == {"proactiveAudio": True}


@pytest.mark.parametrize(
    ("model", "thinking", "expected"),
    [
        (M25, "thinking: 0", {"thinkingBudget": 0}),
        (M25_VERTEX, "thinking: -1", {"thinkingBudget": -1}),
        (M31, "thinking: high", {"thinkingLevel": "HIGH"}),
        (M38_ET, "thinking: medium", {"thinkingLevel": "MEDIUM"}),
        (M38_ET, "", {"thinkingLevel": "LOW"}),  # required: the profile's default goes
    ],
)
def test_thinking_is_sent_in_the_shape_the_model_takes(
    tmp_path: Path, model: str, thinking: str, expected: dict[str, object]
) -> None:
    setup = setup_for(write(tmp_path, f"name: x\nmodel: {model}\n{thinking}\n"))
    assert setup["generationConfig"]["thinkingConfig"] == expected  # type: ignore[index]


def test_affective_dialog_and_opt_in_behaviour_on_25(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"name: x\nmodel: {M25}\naffective_dialog: true\ntools:\n"
        "  - builtin: end_call\n    behavior: non_blocking\n    scheduling: silent\n"
        "  - builtin: send_dtmf\n",
    )
    setup = setup_for(path)
    assert setup["generationConfig"]["enableAffectiveDialog"] is True  # type: ignore[index]
    behaviors = [d["behavior"] for d in setup["tools"][0]["functionDeclarations"]]  # type: ignore[index]
    assert behaviors == ["NON_BLOCKING", "BLOCKING"]  # 2.5 blocks unless asked


def test_31_gets_no_behavior_field_at_all(tmp_path: Path) -> None:
    setup = setup_for(write(tmp_path, f"name: x\nmodel: {M31}\ntools: [{{builtin: end_call}}]\n"))
    assert "behavior" not in setup["tools"][0]["functionDeclarations"][0]  # type: ignore[index]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_every_profile_sends_a_setup_the_sdk_accepts(tmp_path: Path, profile: ModelProfile) -> None:
    from tests.live.sdk import validate_client_message

    lines = ["name: x", f"model: {profile.model_ids[0]}", "tools: [{builtin: end_call}]"]
    if profile.transcription_vocabulary:
        lines.append("vocabulary: [Acme]")
    setup = setup_for(write(tmp_path, "\n".join(lines) + "\n"))
    validate_client_message({"setup": setup})
    assert profile_for(str(setup["model"])) is profile


def test_agents_check_reports_model_refusals_and_passes_good_agents(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "name: default\nthinking: low\n", "default.yaml")
    assert main(["agents", "check", str(tmp_path)]) == 1
    assert "default.yaml:2: thinking: gemini-3.8-live does not support thinking_level" in (
        capsys.readouterr().err
    )
    monkeypatch.setenv("LIVE_MODEL", M31)  # the same agent is fine on a model with levels
    assert main(["agents", "check", str(tmp_path)]) == 0
    assert f"ok  default: (no lines) ({M31})" in capsys.readouterr().out
    assert load_agents(tmp_path, default_model=M31).default.thinking == "low"
