"""Settings: defaults, backend choice, and errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import (
    LiveBackend,
    Settings,
    SettingsError,
    load_settings,
    unknown_env_file_keys,
)

ALL_SETTINGS = [
    "HOST", "PORT", "PUBLIC_URL", "LIVE_BACKEND", "LIVE_URL", "LIVE_API_VERSION",
    "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GEMINI_API_KEY", "LIVE_MODEL",
    "LIVE_INPUT_RATE_HZ", "AGENTS_DIR", "TWILIO_AUTH_TOKEN", "DRAIN_TIMEOUT_S", "LOG_LEVEL",
    "LIVE_CONTEXT_TRIGGER_TOKENS", "LIVE_CONTEXT_TARGET_TOKENS",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL_SETTINGS:
        monkeypatch.delenv(name, raising=False)


def test_defaults_pick_the_emulator_without_credentials() -> None:
    settings = load_settings(None)
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)
    assert settings.backend is LiveBackend.EMULATOR
    assert settings.google_cloud_location == "us-central1"
    assert settings.live_input_rate_hz == 16000  # Live's documented input rate
    assert settings.model == "gemini-3.8-live"
    assert (settings.live_context_trigger_tokens, settings.live_context_target_tokens) == (
        32000,
        16000,
    )
    assert settings.agents_dir == Path("agents")


def test_backend_follows_the_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    assert load_settings(None).backend is LiveBackend.GEMINI
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "acme")
    settings = load_settings(None)
    assert settings.backend is LiveBackend.VERTEX
    assert settings.api_version == "v1"
    assert settings.model == "gemini-3.8-live"  # GA on both backends


def test_explicit_backend_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    monkeypatch.setenv("LIVE_BACKEND", "emulator")
    assert load_settings(None).backend is LiveBackend.EMULATOR


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "eighty", "PORT:"),
        ("PORT", "70000", "PORT:"),
        ("LIVE_BACKEND", "openai", "LIVE_BACKEND:"),
        ("LIVE_INPUT_RATE_HZ", "8000", "LIVE_INPUT_RATE_HZ: must be 24000 or 16000"),
        ("LIVE_URL", "http://x", "LIVE_URL must be a ws:// or wss:// URL"),
        ("PUBLIC_URL", "gw.example.com", "PUBLIC_URL must start with"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL:"),
        ("LIVE_CONTEXT_TARGET_TOKENS", "40000", "must be below LIVE_CONTEXT_TRIGGER_TOKENS"),
    ],
)
def test_wrong_values_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        load_settings(None)


def test_vertex_without_a_project_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVE_BACKEND", "vertex")
    with pytest.raises(SettingsError, match="GOOGLE_CLOUD_PROJECT is required"):
        load_settings(None)


def test_env_file_is_read_and_empty_values_are_unset(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("PORT=9999\nPUBLIC_URL=https://gw.example.com/\nLIVE_MODEL=\n")
    settings = load_settings(str(env))
    assert settings.port == 9999
    assert settings.public_url == "https://gw.example.com"
    assert settings.live_model is None


def test_env_example_lists_every_setting() -> None:
    text = (Path(__file__).parent.parent / ".env.example").read_text()
    for name in [*ALL_SETTINGS, *(field.upper() for field in Settings.model_fields)]:
        assert f"\n{name}=" in text, name


def test_secrets_are_not_in_the_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "super-secret")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "also-secret")
    assert "secret" not in repr(load_settings(None))


def test_unknown_keys_in_the_env_file_are_found_with_the_nearest_setting(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("PROT=8080\nPORT=8081\nrecord_calls=off\nCOMPLETELY_ELSE=1\n")
    assert unknown_env_file_keys(env) == [("PROT", "PORT"), ("COMPLETELY_ELSE", None)]
    assert unknown_env_file_keys(tmp_path / "missing.env") == []
    assert unknown_env_file_keys(None) == []
