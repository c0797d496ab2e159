"""Every Live model generation × both backends, for suites that run against each of them.

A `Generation` says which model and dialect a gateway under test speaks; the emulator
impersonates that generation (it reads the model from the setup, the dialect from the model
path), so the same test proves the call path on each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from gateway.live.auth import fixed_token_provider
from gateway.live.client import LiveConnector
from gateway.live.models import LIVE_38, NATIVE_AUDIO_25, PROFILES, Backend, ModelProfile
from gateway.settings import Settings

TEST_PROJECT = "test-project"
TEST_API_KEY = "test-api-key"  # sent only to the emulator on loopback


@dataclass(frozen=True)
class Generation:
    profile: ModelProfile
    backend: Backend

    @property
    def model(self) -> str:
        """The model id a user of this backend names (2.5 has one id per backend)."""
        if self.profile is NATIVE_AUDIO_25:
            if self.backend is Backend.VERTEX:
                return "gemini-live-2.5-flash-native-audio"
            return "gemini-2.5-flash-native-audio-preview-12-2025"
        return self.profile.model_ids[0]

    def settings_overrides(self) -> dict[str, Any]:
        """Settings for a gateway that speaks this generation to a Live side on loopback."""
        overrides: dict[str, Any] = {"live_model": self.model, "live_backend": self.backend.value}
        if self.backend is Backend.VERTEX:
            overrides["google_cloud_project"] = TEST_PROJECT
        else:
            overrides["gemini_api_key"] = TEST_API_KEY
        return overrides

    def connector(self, settings: Settings, **kwargs: Any) -> LiveConnector:
        """A plain connector for `settings`; on Vertex with a fixed token (loopback only)."""
        if self.backend is Backend.VERTEX:
            kwargs.setdefault("token_provider", fixed_token_provider("test-token"))
        return LiveConnector(settings, **kwargs)

    def __str__(self) -> str:
        return f"{self.profile.name}-{self.backend.value}"


GENERATIONS: tuple[Generation, ...] = tuple(
    Generation(profile, backend) for profile in PROFILES for backend in Backend
)
DEFAULT_GENERATION = Generation(LIVE_38, Backend.GEMINI)

EVERY_GENERATION = pytest.mark.parametrize("generation", GENERATIONS, indirect=True, ids=str)
"""Run a test (taking the `generation` fixture) against every generation × backend."""
