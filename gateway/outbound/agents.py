"""What an outbound call needs from its agent, in one place (the API and the media stream
agree through it). The fields and `{{name}}` variables themselves belong to
`gateway.agents.config` and `gateway.outbound.variables`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from gateway.agents.config import AgentConfig

__all__ = [
    "VoicemailPolicy",
    "agent_for_call",
    "missing_variables",
    "voicemail_policy",
    "wants_machine_detection",
]

VoicemailPolicy = Literal["hang_up", "leave_message"]


def voicemail_policy(agent: AgentConfig) -> VoicemailPolicy:
    """What the agent does when a machine answers: `hang_up` (the default) or `leave_message`."""
    return agent.voicemail


def wants_machine_detection(agent: AgentConfig) -> bool:
    """Whether the carrier should tell people from machines for this agent's calls. Both
    policies act on a machine (hang up, or wait for the beep), so every outbound call asks."""
    return voicemail_policy(agent) in ("hang_up", "leave_message")


def missing_variables(agent: AgentConfig, variables: Mapping[str, str]) -> list[str]:
    """The `{{name}}` placeholders an outbound call of `agent` uses that `variables` lacks."""
    return agent.missing_variables(variables, outbound=True)


def agent_for_call(
    agent: AgentConfig, variables: Mapping[str, str], *, machine: bool
) -> AgentConfig:
    """The agent as this outbound call runs it: placeholders filled, the outbound greeting and
    instructions in place — or the voicemail message, when a machine answered and the agent
    leaves one."""
    voicemail = machine and voicemail_policy(agent) == "leave_message"
    return agent.for_call_variables(variables, outbound=True, voicemail=voicemail)
