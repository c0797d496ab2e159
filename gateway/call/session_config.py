"""Agent YAML → Live `setup`: the one place that decides what the model is told for a call.

The generation-specific shape (thinking, tool behaviour, vocabulary…) is applied by
`gateway.live.protocol.build_setup` from the model's profile (gateway.live.models).
"""

from __future__ import annotations

from gateway.agents.config import AgentConfig
from gateway.live.models import Backend
from gateway.live.protocol import SessionConfig, VadConfig
from gateway.telephony.base import StreamStart


def session_config_for(
    agent: AgentConfig,
    start: StreamStart,
    *,
    default_model: str,
    backend: Backend = Backend.GEMINI,
    compression_trigger_tokens: int | None = None,
    compression_target_tokens: int | None = None,
) -> SessionConfig:
    """The Live session settings for one call answered by `agent`.

    The model id may be bare (`gemini-…`); the Live client expands it to the backend's path.
    Tool declarations come from the agent's resolved tools (python, http and built-ins alike).
    """
    vad = agent.vad
    return SessionConfig(
        model=agent.model_id(default_model),
        voice=agent.voice,
        language_code=agent.language,
        system_instruction=agent.instructions,
        function_declarations=agent.toolset.declarations,
        vad=VadConfig(
            start_sensitivity=vad.start_sensitivity,
            end_sensitivity=vad.end_sensitivity,
            prefix_padding_ms=vad.prefix_padding_ms,
            silence_duration_ms=vad.silence_duration_ms,
        ),
        input_transcription=agent.transcription.input,
        output_transcription=agent.transcription.output,
        compression_trigger_tokens=compression_trigger_tokens,
        compression_target_tokens=compression_target_tokens,
        thinking_level=agent.thinking_level,
        thinking_budget=agent.thinking_budget,
        proactive_audio=agent.proactive_audio,
        affective_dialog=agent.affective_dialog,
        vocabulary=agent.vocabulary,
        tool_behaviors=agent.tool_behaviors,
        backend=backend,
    )
