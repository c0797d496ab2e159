"""The official google-genai SDK holds a session with the emulator under every model profile,
on both backends: what the SDK sends for each generation the emulator accepts, and what the
emulator answers the SDK parses (every frame validates against `LiveServerMessage`)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from gateway.live.emulator.server import LiveEmulator
from gateway.live.models import Backend
from tests.generations import GENERATIONS, Generation
from tests.live.conftest import FAST
from tests.live.sdk import validate_server_frame
from tests.live.test_emulator import tls_contexts, tls_files, utterance

__all__ = ["tls_files"]  # the fixture, shared with test_emulator


def _config(generation: Generation) -> Any:
    from google.genai import types

    profile = generation.profile
    declaration: dict[str, Any] = {"name": "lookup_order", "description": "Look up an order."}
    if profile.behavior_field:
        declaration["behavior"] = profile.default_tool_behavior.wire
    fields: dict[str, Any] = {
        "response_modalities": [types.Modality.AUDIO],
        "tools": [types.Tool(function_declarations=[types.FunctionDeclaration(**declaration)])],
        "output_audio_transcription": types.AudioTranscriptionConfig(),
    }
    if profile.transcription_vocabulary:
        fields["input_audio_transcription"] = types.AudioTranscriptionConfig(
            custom_vocabulary=["Acme", "A1001"]
        )
    if profile.thinking == "level":
        fields["thinking_config"] = types.ThinkingConfig(
            thinking_level=types.ThinkingLevel(profile.thinking_levels[0].upper())
        )
    elif profile.thinking == "budget":
        fields["thinking_config"] = types.ThinkingConfig(thinking_budget=0)
    if profile.proactive_audio == "opt_in":
        fields["proactivity"] = types.ProactivityConfig(proactive_audio=True)
    return types.LiveConnectConfig(**fields)


def _client(generation: Generation, port: int, client_tls: ssl.SSLContext) -> Any:
    from google import genai
    from google.genai import types
    from google.oauth2.credentials import Credentials

    base = f"http://127.0.0.1:{port}"
    args = {"ssl": client_tls}
    if generation.backend is Backend.VERTEX:
        return genai.Client(
            vertexai=True,
            project="test-project",
            location="us-central1",
            credentials=Credentials(token="test-token"),
            http_options=types.HttpOptions(base_url=base, async_client_args=args),
        )
    return genai.Client(
        api_key="test",
        http_options=types.HttpOptions(base_url=base, api_version="v1beta", async_client_args=args),
    )


@pytest.mark.parametrize("generation", GENERATIONS, ids=str)
async def test_the_sdk_holds_a_session_under_every_profile(
    tls_files: tuple[Path, Path], generation: Generation
) -> None:
    from google.genai import types

    server_tls, client_tls = tls_contexts(tls_files)
    emulator = LiveEmulator(speed=FAST, record_frames=True)
    await emulator.start(ssl_context=server_tls)
    try:
        client = _client(generation, emulator.port, client_tls)
        audio = b""
        async with client.aio.live.connect(
            model=generation.model, config=_config(generation)
        ) as session:
            for chunk in utterance():
                await session.send_realtime_input(
                    audio=types.Blob(data=chunk, mime_type="audio/pcm;rate=24000")
                )
            async for message in session.receive():  # ends after turn_complete
                if message.data:
                    audio += message.data
        assert len(audio) > 4800  # at least 100 ms of speech came back
        await emulator.wait_closed_sessions(1)
        assert len(emulator.client_setups) == 1, "the emulator refused the SDK's setup"
        model_path = emulator.client_setups[0].model
        assert model_path.endswith(f"models/{generation.model}")
        assert model_path.startswith("projects/") is (generation.backend is Backend.VERTEX)
        for frame in emulator.sent_frames:
            validate_server_frame(frame)
    finally:
        await emulator.stop()
