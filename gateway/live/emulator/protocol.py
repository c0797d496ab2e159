"""Gemini Live messages as the *service* sees them, sans-IO: the emulator's half of the protocol.

`parse_client_message` turns one client frame (camelCase or snake_case at any depth, standard
or URL-safe base64) into a typed event and raises `LiveProtocolError` for anything the real
service would reject with close code 1007. The `build_*` functions make the server messages,
in the dialect (`Backend`) of the session: Vertex names its sessions in `setupComplete` and
counts `candidatesTokenCount` where the Developer API counts `responseTokenCount`. What a
model *generation* refuses is decided in `gateway.live.emulator.rules`, from its profile.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.live.models import Backend, ToolBehavior, ToolScheduling
from gateway.live.protocol import (
    DEFAULT_INPUT_RATE_HZ,
    DEFAULT_OUTPUT_RATE_HZ,
    FunctionCall,
    FunctionResponse,
    LiveProtocolError,
    decode_base64,
    expect_list,
    expect_object,
    format_duration,
    load_json_object,
    pcm_rate_from_mime,
    pick,
)

__all__ = [
    "ClientAudio",
    "ClientAudioStreamEnd",
    "ClientContent",
    "ClientEvent",
    "ClientSetup",
    "ClientText",
    "ClientToolResponse",
    "build_generation_complete",
    "build_go_away",
    "build_input_transcription",
    "build_interrupted",
    "build_model_audio",
    "build_output_transcription",
    "build_session_resumption_update",
    "build_setup_complete",
    "build_tool_call",
    "build_tool_call_cancellation",
    "build_turn_complete",
    "build_usage_metadata",
    "parse_client_message",
    "usage_counts",
]


# --------------------------------------------------------------------------- client events


@dataclass(frozen=True, slots=True)
class ClientSetup:
    """The `setup` message: the raw object plus the fields the emulator acts on."""

    raw: Mapping[str, Any]
    model: str
    response_modalities: tuple[str, ...] = ()
    voice: str | None = None
    language_code: str | None = None
    system_instruction: str | None = None
    function_declarations: tuple[Mapping[str, Any], ...] = ()
    activity_detection_disabled: bool = False
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None
    input_transcription: bool = False
    output_transcription: bool = False
    session_resumption: bool = False
    resumption_handle: str | None = None
    context_window_compression: bool = False
    thinking_config: bool = False
    """`generationConfig.thinkingConfig` is present (with any content)."""
    thinking_level: str | None = None
    thinking_budget: int | None = None
    proactivity: bool = False
    """`setup.proactivity` is present."""
    proactive_audio: bool | None = None
    affective_dialog: bool | None = None
    """`generationConfig.enableAffectiveDialog`, None when absent."""
    custom_vocabulary: tuple[str, ...] | None = None
    """`inputAudioTranscription.customVocabulary`, None when absent."""
    initial_history_in_client_content: bool = False
    """`historyConfig.initialHistoryInClientContent`."""
    declared_behaviors: tuple[tuple[str, ToolBehavior], ...] = ()
    """(function name, `behavior`) for the declarations that name one."""

    @property
    def function_names(self) -> tuple[str, ...]:
        return tuple(str(d.get("name")) for d in self.function_declarations)


@dataclass(frozen=True, slots=True)
class ClientAudio:
    """`realtimeInput.audio`: 16-bit little-endian mono PCM at `rate_hz`."""

    pcm16le: bytes
    rate_hz: int


@dataclass(frozen=True, slots=True)
class ClientText:
    """`realtimeInput.text`: text from the caller's side, answered like an utterance."""

    text: str


@dataclass(frozen=True, slots=True)
class ClientAudioStreamEnd:
    """`realtimeInput.audioStreamEnd`: the audio stream paused; flush voice detection."""


@dataclass(frozen=True, slots=True)
class ClientContent:
    """`clientContent`: `text` joins the text parts of all turns with newlines."""

    text: str
    turn_complete: bool
    roles: tuple[str, ...] = ()
    turns: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """(role, text) per turn, as sent."""


@dataclass(frozen=True, slots=True)
class ClientToolResponse:
    """`toolResponse`: answers to earlier tool calls, by id."""

    responses: tuple[FunctionResponse, ...]


ClientEvent = (
    ClientSetup
    | ClientAudio
    | ClientText
    | ClientAudioStreamEnd
    | ClientContent
    | ClientToolResponse
)

_CLIENT_FIELDS: dict[str, str] = {
    "setup": "setup",
    "clientContent": "clientContent",
    "client_content": "clientContent",
    "realtimeInput": "realtimeInput",
    "realtime_input": "realtimeInput",
    "toolResponse": "toolResponse",
    "tool_response": "toolResponse",
}

_REALTIME_FIELDS: dict[str, str] = {
    "audio": "audio",
    "text": "text",
    "audioStreamEnd": "audioStreamEnd",
    "audio_stream_end": "audioStreamEnd",
    "mediaChunks": "mediaChunks",
    "media_chunks": "mediaChunks",
    "video": "video",
    "activityStart": "activityStart",
    "activity_start": "activityStart",
    "activityEnd": "activityEnd",
    "activity_end": "activityEnd",
}


def parse_client_message(frame: str | bytes) -> ClientEvent:
    """Parse one client frame into an event; LiveProtocolError names what is wrong."""
    obj = load_json_object(frame, who="client")
    known = [(key, _CLIENT_FIELDS.get(key)) for key in obj]
    unknown = [key for key, kind in known if kind is None]
    if unknown:
        raise LiveProtocolError(f"unknown client message field(s): {', '.join(unknown)}")
    if len(known) != 1:
        names = ", ".join(key for key, _ in known) or "nothing"
        raise LiveProtocolError(f"a client message must hold exactly one field, got {names}")
    key, kind = known[0]
    value = expect_object(obj[key], key)
    if kind == "realtimeInput":
        return _parse_realtime_input(value)
    if kind == "setup":
        return _parse_setup(value)
    if kind == "clientContent":
        return _parse_client_content(value)
    return _parse_tool_response(value)


def _parse_realtime_input(value: dict[str, Any]) -> ClientEvent:
    fields = [(key, _REALTIME_FIELDS.get(key)) for key, v in value.items() if v is not None]
    unknown = [key for key, kind in fields if kind is None]
    if unknown:
        raise LiveProtocolError(f"unknown realtimeInput field(s): {', '.join(unknown)}")
    if len(fields) != 1:
        names = ", ".join(key for key, _ in fields) or "nothing"
        raise LiveProtocolError(f"realtimeInput must hold exactly one field, got {names}")
    key, kind = fields[0]
    if kind == "audio":
        blob = expect_object(value[key], "realtimeInput.audio")
        mime = pick(blob, "mimeType", "mime_type")
        if not isinstance(mime, str) or not mime.lower().startswith("audio/pcm"):
            raise LiveProtocolError(
                f"realtimeInput.audio.mimeType must be audio/pcm;rate=N, not {mime!r}"
            )
        pcm = decode_base64(blob.get("data"), where="realtimeInput.audio.data")
        if len(pcm) % 2:
            raise LiveProtocolError(
                f"realtimeInput.audio.data holds {len(pcm)} bytes, not 16-bit PCM samples"
            )
        return ClientAudio(pcm, pcm_rate_from_mime(mime) or DEFAULT_INPUT_RATE_HZ)
    if kind == "text":
        text = value[key]
        if not isinstance(text, str):
            raise LiveProtocolError(f"realtimeInput.text must be a string, not {text!r}")
        return ClientText(text)
    if kind == "audioStreamEnd":
        return ClientAudioStreamEnd()
    if kind == "mediaChunks":
        raise LiveProtocolError(
            "realtimeInput.mediaChunks is deprecated and rejected by this model; "
            "send realtimeInput.audio"
        )
    raise LiveProtocolError(f"realtimeInput.{key} is not supported by the Live emulator")


def _parse_setup(setup: dict[str, Any]) -> ClientSetup:
    model = setup.get("model")
    if not isinstance(model, str) or not model:
        raise LiveProtocolError("setup.model is required (e.g. 'models/<id>')")
    generation = expect_object(
        pick(setup, "generationConfig", "generation_config") or {}, "setup.generationConfig"
    )
    modalities = pick(generation, "responseModalities", "response_modalities") or []
    modalities = expect_list(modalities, "setup.generationConfig.responseModalities")
    speech = expect_object(
        pick(generation, "speechConfig", "speech_config") or {}, "generationConfig.speechConfig"
    )
    voice_config = expect_object(
        pick(speech, "voiceConfig", "voice_config") or {}, "speechConfig.voiceConfig"
    )
    prebuilt = expect_object(
        pick(voice_config, "prebuiltVoiceConfig", "prebuilt_voice_config") or {},
        "voiceConfig.prebuiltVoiceConfig",
    )
    voice = pick(prebuilt, "voiceName", "voice_name")

    realtime = expect_object(
        pick(setup, "realtimeInputConfig", "realtime_input_config") or {},
        "setup.realtimeInputConfig",
    )
    activity = expect_object(
        pick(realtime, "automaticActivityDetection", "automatic_activity_detection") or {},
        "realtimeInputConfig.automaticActivityDetection",
    )
    resumption = pick(setup, "sessionResumption", "session_resumption")
    handle = (
        expect_object(resumption, "setup.sessionResumption").get("handle")
        if (resumption is not None)
        else None
    )

    declarations: list[Mapping[str, Any]] = []
    behaviors: list[tuple[str, ToolBehavior]] = []
    for tool in expect_list(setup.get("tools") or [], "setup.tools"):
        tool = expect_object(tool, "setup.tools[]")
        found = pick(tool, "functionDeclarations", "function_declarations") or []
        for declaration in expect_list(found, "tools[].functionDeclarations"):
            declaration = expect_object(declaration, "functionDeclarations[]")
            if not isinstance(declaration.get("name"), str):
                raise LiveProtocolError(f"function declaration without a name: {declaration!r}")
            declarations.append(declaration)
            behavior = _enum_value(
                declaration.get("behavior"), _BEHAVIORS, "functionDeclarations[].behavior"
            )
            if behavior is not None:
                behaviors.append((declaration["name"], behavior))

    thinking = pick(generation, "thinkingConfig", "thinking_config")
    thinking = None if thinking is None else expect_object(thinking, "thinkingConfig")
    level = None if thinking is None else pick(thinking, "thinkingLevel", "thinking_level")
    if level is not None and not isinstance(level, str):
        raise LiveProtocolError(f"thinkingConfig.thinkingLevel must be a string, not {level!r}")
    budget = None if thinking is None else pick(thinking, "thinkingBudget", "thinking_budget")
    proactivity = pick(setup, "proactivity", "proactivity")
    proactivity = None if proactivity is None else expect_object(proactivity, "proactivity")
    proactive = (
        None if proactivity is None else pick(proactivity, "proactiveAudio", "proactive_audio")
    )
    affective = pick(generation, "enableAffectiveDialog", "enable_affective_dialog")
    input_transcription = pick(setup, "inputAudioTranscription", "input_audio_transcription")
    vocabulary = None
    if input_transcription is not None:
        found = pick(
            expect_object(input_transcription, "setup.inputAudioTranscription"),
            "customVocabulary",
            "custom_vocabulary",
        )
        if found is not None:
            vocabulary = tuple(str(v) for v in expect_list(found, "customVocabulary"))
    history = pick(setup, "historyConfig", "history_config")
    history = {} if history is None else expect_object(history, "setup.historyConfig")

    return ClientSetup(
        raw=setup,
        model=model,
        response_modalities=tuple(str(m) for m in modalities),
        voice=voice if isinstance(voice, str) else None,
        language_code=_optional_str(pick(speech, "languageCode", "language_code")),
        system_instruction=_content_text(
            pick(setup, "systemInstruction", "system_instruction"), "setup.systemInstruction"
        ),
        function_declarations=tuple(declarations),
        activity_detection_disabled=bool(activity.get("disabled")),
        prefix_padding_ms=_optional_ms(
            pick(activity, "prefixPaddingMs", "prefix_padding_ms"), "prefixPaddingMs"
        ),
        silence_duration_ms=_optional_ms(
            pick(activity, "silenceDurationMs", "silence_duration_ms"), "silenceDurationMs"
        ),
        input_transcription=input_transcription is not None,
        output_transcription=pick(setup, "outputAudioTranscription", "output_audio_transcription")
        is not None,
        session_resumption=resumption is not None,
        resumption_handle=handle if isinstance(handle, str) and handle else None,
        context_window_compression=pick(
            setup, "contextWindowCompression", "context_window_compression"
        )
        is not None,
        thinking_config=thinking is not None,
        thinking_level=level,
        thinking_budget=_optional_int(budget, "thinkingConfig.thinkingBudget"),
        proactivity=proactivity is not None,
        proactive_audio=None if proactive is None else bool(proactive),
        affective_dialog=None if affective is None else bool(affective),
        custom_vocabulary=vocabulary,
        initial_history_in_client_content=bool(
            pick(history, "initialHistoryInClientContent", "initial_history_in_client_content")
        ),
        declared_behaviors=tuple(behaviors),
    )


E = TypeVar("E")
_BEHAVIORS = {b.wire: b for b in ToolBehavior}
_SCHEDULINGS = {s.wire: s for s in ToolScheduling}


def _enum_value(value: Any, known: Mapping[str, E], where: str) -> E | None:
    """An upper-case proto enum name → its value; absent or *_UNSPECIFIED → None."""
    if value is None:
        return None
    if isinstance(value, str):
        name = value.upper()
        if name in known:
            return known[name]
        if name.endswith("UNSPECIFIED"):
            return None
    raise LiveProtocolError(f"{where} must be one of {', '.join(known)}, not {value!r}")


def _optional_int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise LiveProtocolError(f"{where} must be an integer, not {value!r}")
    try:
        return int(value)  # int64 fields may arrive as JSON strings
    except (TypeError, ValueError):
        raise LiveProtocolError(f"{where} must be an integer, not {value!r}") from None


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _optional_ms(value: Any, where: str) -> int | None:
    if value is None:
        return None
    try:
        ms = int(value)  # int64 fields may arrive as JSON strings
    except (TypeError, ValueError):
        raise LiveProtocolError(f"{where} must be an integer, not {value!r}") from None
    if ms < 0:
        raise LiveProtocolError(f"{where} must be >= 0, not {ms}")
    return ms


def _content_text(value: Any, where: str) -> str | None:
    """The joined text parts of a Content (or a bare string, as some clients send)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    parts = expect_list(expect_object(value, where).get("parts") or [], f"{where}.parts")
    texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return "\n".join(texts)


def _parse_client_content(value: dict[str, Any]) -> ClientContent:
    texts: list[str] = []
    roles: list[str] = []
    turns: list[tuple[str, str]] = []
    for turn in expect_list(value.get("turns") or [], "clientContent.turns"):
        turn = expect_object(turn, "clientContent.turns[]")
        role = turn.get("role")
        roles.append(role if isinstance(role, str) else "")
        text = _content_text(turn, "clientContent.turns[]")
        turns.append((roles[-1], text or ""))
        if text:
            texts.append(text)
    turn_complete = pick(value, "turnComplete", "turn_complete")
    return ClientContent("\n".join(texts), bool(turn_complete), tuple(roles), tuple(turns))


def _parse_tool_response(value: dict[str, Any]) -> ClientToolResponse:
    raw = pick(value, "functionResponses", "function_responses") or []
    responses = []
    for item in expect_list(raw, "toolResponse.functionResponses"):
        item = expect_object(item, "toolResponse.functionResponses[]")
        call_id = item.get("id")
        name = item.get("name")
        if not isinstance(call_id, str) or not call_id:
            raise LiveProtocolError(f"toolResponse function response without an id: {item!r}")
        if not isinstance(name, str):
            raise LiveProtocolError(f"toolResponse function response without a name: {item!r}")
        response = item.get("response")
        response = {} if response is None else expect_object(response, f"{call_id}.response")
        scheduling = _enum_value(
            item.get("scheduling"), _SCHEDULINGS, "functionResponses[].scheduling"
        )
        responses.append(
            FunctionResponse(id=call_id, name=name, response=response, scheduling=scheduling)
        )
    if not responses:
        raise LiveProtocolError("toolResponse.functionResponses is empty")
    return ClientToolResponse(tuple(responses))


# --------------------------------------------------------------------------- server builders


def build_setup_complete(session_id: str | None = None) -> dict[str, Any]:
    """`setupComplete`, with the `sessionId` Vertex names its sessions by."""
    return {"setupComplete": {"sessionId": session_id} if session_id else {}}


def build_model_audio(
    pcm16le: bytes, rate_hz: int = DEFAULT_OUTPUT_RATE_HZ, *, transcription: str | None = None
) -> dict[str, Any]:
    """One chunk of model speech as `serverContent.modelTurn.parts[].inlineData`; with
    `transcription`, its `outputTranscription` piece in the same event (3.x models)."""
    data = base64.b64encode(pcm16le).decode("ascii")
    part = {"inlineData": {"mimeType": f"audio/pcm;rate={rate_hz}", "data": data}}
    content: dict[str, Any] = {"modelTurn": {"parts": [part]}}
    if transcription is not None:
        content["outputTranscription"] = {"text": transcription}
    return {"serverContent": content}


def build_input_transcription(text: str) -> dict[str, Any]:
    return {"serverContent": {"inputTranscription": {"text": text}}}


def build_output_transcription(text: str) -> dict[str, Any]:
    return {"serverContent": {"outputTranscription": {"text": text}}}


def build_interrupted() -> dict[str, Any]:
    return {"serverContent": {"interrupted": True}}


def build_generation_complete() -> dict[str, Any]:
    return {"serverContent": {"generationComplete": True}}


def build_turn_complete(
    usage: Mapping[str, Any] | None = None, *, interaction_status: str | None = None
) -> dict[str, Any]:
    """`turnComplete`, optionally sharing the frame with `usageMetadata` as the service does;
    `interaction_status` (IN_PROGRESS / IDLE) where the model reports it (extended thinking)."""
    content: dict[str, Any] = {"turnComplete": True}
    if interaction_status is not None:
        content["interactionStatus"] = interaction_status
    message: dict[str, Any] = {"serverContent": content}
    if usage is not None:
        message["usageMetadata"] = dict(usage)
    return message


def build_tool_call(calls: Sequence[FunctionCall]) -> dict[str, Any]:
    return {
        "toolCall": {"functionCalls": [{"id": c.id, "name": c.name, "args": c.args} for c in calls]}
    }


def build_tool_call_cancellation(ids: Sequence[str]) -> dict[str, Any]:
    return {"toolCallCancellation": {"ids": list(ids)}}


def build_go_away(time_left_s: float) -> dict[str, Any]:
    return {"goAway": {"timeLeft": format_duration(time_left_s)}}


def build_session_resumption_update(new_handle: str | None, resumable: bool) -> dict[str, Any]:
    update: dict[str, Any] = {"resumable": resumable}
    if new_handle:
        update["newHandle"] = new_handle
    return {"sessionResumptionUpdate": update}


def build_usage_metadata(
    prompt_token_count: int, response_token_count: int, *, backend: Backend = Backend.GEMINI
) -> dict[str, Any]:
    """`usageMetadata` counts (the total is their sum); a frame of its own."""
    return {
        "usageMetadata": usage_counts(prompt_token_count, response_token_count, backend=backend)
    }


def usage_counts(
    prompt_token_count: int, response_token_count: int, *, backend: Backend = Backend.GEMINI
) -> dict[str, Any]:
    """The counts under the dialect's names: Vertex says `candidatesTokenCount`."""
    response_key = "candidatesTokenCount" if backend is Backend.VERTEX else "responseTokenCount"
    return {
        "promptTokenCount": prompt_token_count,
        response_key: response_token_count,
        "totalTokenCount": prompt_token_count + response_token_count,
    }
