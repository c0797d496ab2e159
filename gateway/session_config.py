"""Agent YAML → Live `setup`: the one place that decides what the model is told for a call."""

from __future__ import annotations

from gateway.agents import AgentConfig
from gateway.live.protocol import SessionConfig
from gateway.telephony.base import StreamStart


def session_config_for(
    agent: AgentConfig, start: StreamStart, *, default_model: str
) -> SessionConfig:
    """The Live session settings for one call answered by `agent`.

    The model id may be bare (`gemini-…`); the Live client expands it to the backend's path.
    """
    return SessionConfig(
        model=agent.model or default_model,
        voice=agent.voice,
        language_code=agent.language,
        system_instruction=agent.instructions,
    )
