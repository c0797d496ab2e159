"""What the Live emulator accepts and does per model generation, read from the model's profile.

The emulator impersonates the generation `gateway.live.models.profile_for(setup.model)` names
(unknown ids get the newest profile) in the dialect the model path names: Vertex for
`projects/…/publishers/google/models/x` (or `publishers/…`), the Developer API for `models/x`.
The setup rules shared with agent validation come from `gateway.live.models.refusals`, so
`gateway agents check` and the emulator refuse the same things; the few rules only a live
setup can break (a thinkingConfig at all, the `behavior` field itself) are added here. Nothing
here looks at model names.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.live.emulator.protocol import ClientSetup
from gateway.live.models import (
    Backend,
    ModelProfile,
    SetupFeatures,
    TextChannel,
    ToolBehavior,
    refusals,
)

__all__ = [
    "DEFAULT_FILLER",
    "REASONING_S",
    "THINKING_FILLER",
    "SetupRefusal",
    "dialect_of",
    "interrupt_waits_for_caller",
    "realtime_text_refusal",
    "setup_refusals",
    "tool_behavior",
]

DEFAULT_FILLER = "One moment while I check that."
"""What the model keeps saying after a NON_BLOCKING call when the script gives no `say`."""
THINKING_FILLER = "Let me think about that."
"""Extended thinking: the filler turn spoken before the background reasoning."""
REASONING_S = 0.5
"""Extended thinking: seconds of background reasoning between filler and answer (÷ speed)."""


@dataclass(frozen=True, slots=True)
class SetupRefusal:
    """One thing the model refuses in a setup: the wire `field` and why (naming the model)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def dialect_of(model: str) -> Backend:
    """The dialect a setup's model path belongs to (Vertex paths name a project/publisher)."""
    path = model.lstrip("/")
    if path.startswith(("projects/", "publishers/")):
        return Backend.VERTEX
    return Backend.GEMINI


def setup_refusals(setup: ClientSetup, profile: ModelProfile) -> list[SetupRefusal]:
    """Everything in `setup` the impersonated model refuses (the service closes with 1007)."""
    model = profile.name
    out: list[SetupRefusal] = []

    def shared(field: str, features: SetupFeatures) -> None:
        out.extend(SetupRefusal(field, r.message) for r in refusals(profile, features))

    thinking = "thinkingConfig"
    if profile.thinking == "none":
        if setup.thinking_config:
            out.append(SetupRefusal(thinking, f"{model} does not support thinking; omit it"))
    else:
        if setup.thinking_level is not None:
            shared(f"{thinking}.thinkingLevel", SetupFeatures(thinking_level=setup.thinking_level))
        if setup.thinking_budget is not None:
            shared(
                f"{thinking}.thinkingBudget", SetupFeatures(thinking_budget=setup.thinking_budget)
            )
        if (
            profile.thinking_required
            and setup.thinking_level is None
            and setup.thinking_budget is None
        ):
            wanted = "thinkingLevel" if profile.thinking == "level" else "thinkingBudget"
            out.append(SetupRefusal(thinking, f"{model} requires thinkingConfig.{wanted}"))
    if setup.proactivity:
        # An empty `proactivity` turns nothing off, but a model without it refuses it anyway.
        wanted_on = setup.proactive_audio if setup.proactive_audio is not None else True
        shared("proactivity.proactiveAudio", SetupFeatures(proactive_audio=wanted_on))
    if setup.affective_dialog is not None:
        shared(
            "generationConfig.enableAffectiveDialog",
            SetupFeatures(affective_dialog=setup.affective_dialog),
        )
    if setup.custom_vocabulary is not None:
        shared("inputAudioTranscription.customVocabulary", SetupFeatures(vocabulary=True))
    behaviors = tuple(behavior for _, behavior in setup.declared_behaviors)
    if behaviors and not profile.behavior_field:
        out.append(
            SetupRefusal(
                "functionDeclarations[].behavior",
                f"{model} does not support the behavior field (its calls are blocking)",
            )
        )
    elif behaviors:
        shared("functionDeclarations[].behavior", SetupFeatures(tool_behaviors=behaviors))
    return out


def realtime_text_refusal(profile: ModelProfile, backend: Backend) -> SetupRefusal | None:
    """`realtimeInput.text` where the model takes text only as `clientContent` (Vertex)."""
    if profile.text_channel(backend) is TextChannel.REALTIME_TEXT:
        return None
    where = "Vertex AI" if backend is Backend.VERTEX else backend.value
    return SetupRefusal(
        "realtimeInput.text",
        f"{profile.name} on {where} does not support it; send text as clientContent",
    )


def tool_behavior(profile: ModelProfile, setup: ClientSetup, name: str) -> ToolBehavior:
    """A function's effective behaviour: its declared `behavior`, else the model's default."""
    return profile.tool_behavior(dict(setup.declared_behaviors).get(name))


def interrupt_waits_for_caller(profile: ModelProfile) -> bool:
    """`scheduling: INTERRUPT` waits for the caller to finish speaking (3.8 generation) rather
    than talking over them (2.5). The profile has no field of its own for this: the 3.8
    generation is the one whose calls are NON_BLOCKING by default."""
    return profile.response_scheduling and (
        profile.default_tool_behavior is ToolBehavior.NON_BLOCKING
    )
