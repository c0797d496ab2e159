"""What each Gemini Live model generation accepts, in one typed table.

The Live API's rules changed with every generation (thinking, tool behaviour, proactive audio,
affective dialog, mid-session text, transcription vocabulary). They live here and nowhere else:
`build_setup` shapes the `setup` from an agent's wishes and the model's `ModelProfile`, agent
validation refuses what the profile refuses, the call sends text the way the profile says, and
the emulator impersonates a generation by the same profile. Nothing else looks at model names.

Sources (read December 2026; the newer page wins where they disagree), listed per profile in
`ModelProfile.sources`: ai.google.dev model pages and the Live API guides (capabilities, tools,
thinking, session management), and the Agent Platform (formerly Vertex AI) pages "Gemini 3.8
Live developer guide", "Migrate from Gemini 2.5 Flash Live API Native Audio to Gemini 3.8
Live" and "Asynchronous function calling". Facts: /work/shared/LIVE_PROTOCOL.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

__all__ = [
    "DEFAULT_MODEL",
    "FLASH_LIVE_31",
    "LIVE_38",
    "LIVE_38_EXTENDED_THINKING",
    "NATIVE_AUDIO_25",
    "NEWEST_PROFILE",
    "PROFILES",
    "THINKING_LEVELS",
    "Backend",
    "ModelProfile",
    "Refusal",
    "SetupFeatures",
    "TextChannel",
    "ThinkingShape",
    "ToolBehavior",
    "ToolScheduling",
    "bare_model_id",
    "is_known_model",
    "profile_for",
    "refusals",
]


class Backend(StrEnum):
    """The Live dialect spoken: the Developer API (also the emulator's default) or Vertex."""

    GEMINI = "gemini"
    VERTEX = "vertex"


class ToolBehavior(StrEnum):
    """`FunctionDeclaration.behavior`: does the model wait for the tool's answer?"""

    BLOCKING = "blocking"
    NON_BLOCKING = "non_blocking"

    @property
    def wire(self) -> str:
        return self.value.upper()


class ToolScheduling(StrEnum):
    """`FunctionResponse.scheduling` (NON_BLOCKING calls only): when the answer is spoken."""

    INTERRUPT = "interrupt"
    """Interrupt what the model is saying and answer now (after the caller finishes talking)."""
    WHEN_IDLE = "when_idle"
    """Answer once the model has finished what it is saying (the service default)."""
    SILENT = "silent"
    """Add the answer to the conversation without speaking it."""

    @property
    def wire(self) -> str:
        return self.value.upper()


class TextChannel(StrEnum):
    """How text (greeting, reminders, DTMF) reaches the model mid-call."""

    REALTIME_TEXT = "realtime_text"
    """`realtimeInput.text` — handled like caller input."""
    CLIENT_CONTENT = "client_content"
    """`clientContent` with a user-role turn and `turnComplete: true`."""


ThinkingShape = Literal["budget", "level", "none"]
"""`thinkingConfig.thinkingBudget` (tokens), `thinkingConfig.thinkingLevel`, or no thinking
config at all."""

THINKING_LEVELS = ("minimal", "low", "medium", "high")


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """One model generation: what its `setup` accepts, its defaults, how text reaches it."""

    name: str
    """The profile's own name: its canonical model id."""
    generation: str
    """Human name of the generation, for tables and messages."""
    model_ids: tuple[str, ...]
    """Model ids (bare, no `models/` path) served by this profile."""
    thinking: ThinkingShape
    thinking_levels: tuple[str, ...] = ()
    """The `thinkingLevel` values accepted (lower-case), when `thinking` is "level"."""
    default_thinking: str | None = None
    """What the model does with no thinking config ("dynamic", "minimal", …; None: none)."""
    thinking_required: bool = False
    """A setup without `thinkingConfig` is refused: `default_thinking` is then sent."""
    proactive_audio: Literal["opt_in", "always_on", "unsupported"] = "unsupported"
    """`proactivity.proactiveAudio`: may be turned on; always on (false is an error); refused."""
    affective_dialog: bool = False
    """`generationConfig.enableAffectiveDialog` accepted (opt-in)."""
    tool_behaviors: tuple[ToolBehavior, ...] = (ToolBehavior.BLOCKING,)
    """Tool behaviours the model offers."""
    default_tool_behavior: ToolBehavior = ToolBehavior.BLOCKING
    behavior_field: bool = False
    """`functionDeclarations[].behavior` is known to the model (sent for every tool)."""
    server_cancels_blocking_calls: bool = False
    """New caller input cancels a running BLOCKING call (`toolCallCancellation`)."""
    response_scheduling: bool = False
    """`FunctionResponse.scheduling` accepted (for NON_BLOCKING calls)."""
    mid_session_client_content: bool = True
    """`clientContent` accepted after the first model turn (not only as initial history)."""
    initial_history_config: bool = False
    """History is given as `clientContent` right after setup only when the setup says so
    (`historyConfig.initialHistoryInClientContent: true`)."""
    realtime_text_backends: tuple[Backend, ...] = (Backend.GEMINI,)
    """Backends on which this model takes `realtimeInput.text` (elsewhere: `clientContent`)."""
    transcription_vocabulary: bool = False
    """`inputAudioTranscription.customVocabulary` accepted."""
    turn_coverage_default: str = "TURN_INCLUDES_ONLY_ACTIVITY"
    multi_part_events: bool = False
    """One server event may carry several parts (audio and transcript together)."""
    interaction_status: bool = False
    """The server reports `interactionStatus` (IN_PROGRESS while it reasons in the background)."""
    input_rate_hz: int = 16000
    """The documented input audio rate (other rates are resampled by the service)."""
    sources: tuple[str, ...] = ()
    """The documentation pages these rules come from."""

    def text_channel(self, backend: Backend) -> TextChannel:
        """How mid-call text goes to this model on `backend`."""
        if backend in self.realtime_text_backends:
            return TextChannel.REALTIME_TEXT
        return TextChannel.CLIENT_CONTENT

    def tool_behavior(self, wanted: ToolBehavior | None) -> ToolBehavior:
        """The behaviour a tool gets: what the agent asked for, else the model's default."""
        return wanted if wanted is not None else self.default_tool_behavior

    @property
    def setup_thinking_level(self) -> str | None:
        """The level sent when the agent names none (only where thinking is required)."""
        return self.default_thinking if self.thinking_required else None


_DEV_MODELS = "https://ai.google.dev/gemini-api/docs/models"
_LIVE_TOOLS = "https://ai.google.dev/gemini-api/docs/live-tools"
_LIVE_SESSION = "https://ai.google.dev/gemini-api/docs/live-session"
_LIVE_THINKING = "https://ai.google.dev/gemini-api/docs/live-api/thinking"
_AGENT_PLATFORM = "https://docs.cloud.google.com/gemini-enterprise-agent-platform/models"
_VERTEX_25 = f"{_AGENT_PLATFORM}/gemini/2-5-flash-live-api"
_VERTEX_38_GUIDE = f"{_AGENT_PLATFORM}/guides/gemini-3-8-live"
_VERTEX_MIGRATE = f"{_AGENT_PLATFORM}/live-api/migrate-from-gemini-2-5-to-gemini-3-8-live"
_VERTEX_ASYNC_FC = f"{_AGENT_PLATFORM}/live-api/asynchronous-function-calling"
_VERTEX_PROACTIVE = "https://cloud.google.com/vertex-ai/generative-ai/docs/live-api/proactive-audio"
_SDK_TYPES = "google-genai 3.6.1 google/genai/types.py"

NATIVE_AUDIO_25 = ModelProfile(
    name="gemini-2.5-flash-native-audio",
    generation="2.5 Flash native audio",
    model_ids=(
        "gemini-2.5-flash-native-audio-preview-12-2025",
        "gemini-2.5-flash-native-audio-preview-09-2025",
        "gemini-live-2.5-flash-native-audio",
    ),
    thinking="budget",
    default_thinking="dynamic",
    proactive_audio="opt_in",
    affective_dialog=True,
    tool_behaviors=(ToolBehavior.BLOCKING, ToolBehavior.NON_BLOCKING),
    default_tool_behavior=ToolBehavior.BLOCKING,
    behavior_field=True,
    response_scheduling=True,
    turn_coverage_default="TURN_INCLUDES_ONLY_ACTIVITY",
    sources=(
        f"{_VERTEX_25} (model id, proactive audio preview, VAD defaults)",
        f"{_VERTEX_PROACTIVE} (proactive audio opt-in)",
        f"{_DEV_MODELS}/gemini-3.1-flash-live-preview (migrating from 2.5: thinkingBudget, "
        "async calls, proactive audio and affective dialog, turn coverage)",
        f"{_LIVE_TOOLS} (behavior NON_BLOCKING opt-in, scheduling)",
    ),
)

FLASH_LIVE_31 = ModelProfile(
    name="gemini-3.1-flash-live-preview",
    generation="3.1 Flash Live (legacy preview)",
    model_ids=("gemini-3.1-flash-live-preview",),
    thinking="level",
    thinking_levels=THINKING_LEVELS,
    default_thinking="minimal",
    proactive_audio="unsupported",
    affective_dialog=False,
    tool_behaviors=(ToolBehavior.BLOCKING,),
    default_tool_behavior=ToolBehavior.BLOCKING,
    response_scheduling=False,
    mid_session_client_content=True,
    initial_history_config=True,
    turn_coverage_default="TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO",
    multi_part_events=True,
    sources=(
        f"{_DEV_MODELS}/gemini-3.1-flash-live-preview (thinkingLevel default minimal, "
        "synchronous calls only, no proactive audio / affective dialog, several parts per "
        "event, clientContent throughout the session, turn coverage)",
        f"{_LIVE_SESSION} (historyConfig.initialHistoryInClientContent)",
    ),
)

LIVE_38 = ModelProfile(
    name="gemini-3.8-live",
    generation="3.8 Live (GA)",
    model_ids=("gemini-3.8-live",),
    thinking="none",
    default_thinking=None,
    proactive_audio="always_on",
    affective_dialog=False,
    tool_behaviors=(ToolBehavior.BLOCKING, ToolBehavior.NON_BLOCKING),
    default_tool_behavior=ToolBehavior.NON_BLOCKING,
    behavior_field=True,
    server_cancels_blocking_calls=True,
    response_scheduling=True,
    mid_session_client_content=True,
    initial_history_config=True,
    transcription_vocabulary=True,
    turn_coverage_default="TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO",
    multi_part_events=True,
    sources=(
        f"{_DEV_MODELS}/gemini-3.8-live (migrating from 3.1: omit thinkingConfig, NON_BLOCKING "
        "default, scheduling, clientContent with roles, proactive audio always on, affective "
        "dialog removed, turn coverage)",
        f"{_VERTEX_MIGRATE} (BLOCKING calls cancelled on new input; INTERRUPT waits for the "
        "caller; informative tool results: status, retryable)",
        f"{_VERTEX_ASYNC_FC} (non-blocking by default)",
        f"{_VERTEX_38_GUIDE} (custom_vocabulary in AudioTranscriptionConfig)",
    ),
)

LIVE_38_EXTENDED_THINKING = ModelProfile(
    name="gemini-3.8-live-extended-thinking",
    generation="3.8 Live Extended Thinking",
    model_ids=("gemini-3.8-live-extended-thinking",),
    thinking="level",
    thinking_levels=("low", "medium", "high"),
    default_thinking="low",
    thinking_required=True,
    proactive_audio="always_on",
    affective_dialog=False,
    tool_behaviors=(ToolBehavior.NON_BLOCKING,),
    default_tool_behavior=ToolBehavior.NON_BLOCKING,
    behavior_field=True,
    response_scheduling=True,
    mid_session_client_content=True,
    initial_history_config=True,
    transcription_vocabulary=True,
    turn_coverage_default="TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO",
    multi_part_events=True,
    interaction_status=True,
    sources=(
        f"{_DEV_MODELS}/gemini-3.8-live-extended-thinking (async function calls only, "
        "thinking required)",
        f"{_LIVE_THINKING} (interactionStatus IN_PROGRESS / IDLE, conversational fillers)",
        f"{_SDK_TYPES} (InteractionStatus; REQUIRES_ACTION is a deprecated IDLE)",
    ),
)

PROFILES: tuple[ModelProfile, ...] = (
    NATIVE_AUDIO_25,
    FLASH_LIVE_31,
    LIVE_38,
    LIVE_38_EXTENDED_THINKING,
)
"""Oldest first."""
NEWEST_PROFILE = LIVE_38
"""What a model id the table does not know is treated as (Google's current GA model)."""
DEFAULT_MODEL = "gemini-3.8-live"
"""Google's default Live model on both backends."""

_BY_ID = {model_id: profile for profile in PROFILES for model_id in profile.model_ids}


def bare_model_id(model: str) -> str:
    """`models/x` or `projects/p/locations/l/publishers/google/models/x` → `x`."""
    return model.rsplit("/", 1)[-1]


def profile_for(model: str) -> ModelProfile:
    """The profile of `model` (bare id or full path); unknown ids get `NEWEST_PROFILE`."""
    return _BY_ID.get(bare_model_id(model), NEWEST_PROFILE)


def is_known_model(model: str) -> bool:
    return bare_model_id(model) in _BY_ID


@dataclass(frozen=True, slots=True)
class SetupFeatures:
    """What a setup asks of the model, generation-neutral: agents and the emulator alike."""

    thinking_level: str | None = None
    thinking_budget: int | None = None
    proactive_audio: bool | None = None
    affective_dialog: bool | None = None
    vocabulary: bool = False
    tool_behaviors: tuple[ToolBehavior, ...] = ()
    """Behaviours asked for explicitly, one per tool that names one."""
    scheduling: bool = False
    """Some tool asks for a response scheduling."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """One thing `profile` refuses: `field` is the agent field (thinking, proactive_audio, …)."""

    field: str
    message: str


def refusals(
    profile: ModelProfile, features: SetupFeatures, *, model: str | None = None
) -> list[Refusal]:
    """Everything in `features` the model refuses (the real service closes with 1007);
    messages name `model` as its user wrote it (default: the profile's own name)."""
    model = model or profile.name
    out: list[Refusal] = []
    if features.thinking_level is not None:
        if profile.thinking != "level":
            hint = " (it takes a thinking budget in tokens)" if profile.thinking == "budget" else ""
            out.append(Refusal("thinking", f"{model} does not support thinking_level{hint}"))
        elif features.thinking_level.lower() not in profile.thinking_levels:
            levels = ", ".join(profile.thinking_levels)
            out.append(
                Refusal(
                    "thinking",
                    f"{model} takes thinking_level {levels}, not {features.thinking_level!r}",
                )
            )
    if features.thinking_budget is not None and profile.thinking != "budget":
        hint = " (it takes a thinking level)" if profile.thinking == "level" else ""
        out.append(Refusal("thinking", f"{model} does not support thinking_budget{hint}"))
    if features.proactive_audio is not None:
        if profile.proactive_audio == "unsupported":
            out.append(Refusal("proactive_audio", f"{model} does not support proactive audio"))
        elif profile.proactive_audio == "always_on" and not features.proactive_audio:
            out.append(
                Refusal(
                    "proactive_audio",
                    f"{model} always has proactive audio on; it cannot be turned off",
                )
            )
    if features.affective_dialog is not None and not profile.affective_dialog:
        out.append(Refusal("affective_dialog", f"{model} does not support affective dialog"))
    if features.vocabulary and not profile.transcription_vocabulary:
        out.append(
            Refusal("vocabulary", f"{model} does not support a custom transcription vocabulary")
        )
    for behavior in dict.fromkeys(features.tool_behaviors):
        if behavior not in profile.tool_behaviors:
            out.append(
                Refusal("behavior", f"{model} does not support {behavior.value} function calls")
            )
    if features.scheduling and not profile.response_scheduling:
        out.append(
            Refusal("scheduling", f"{model} does not support function response scheduling")
        )
    return out
