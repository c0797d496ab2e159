"""Gemini Live (BidiGenerateContent) messages as the gateway sees them, sans-IO.

Builders turn typed values into the JSON-able dicts the gateway sends; `parse_server_message`
turns one server frame (JSON text in a text *or* binary WebSocket frame) into a frozen
`ServerMessage`. Nothing here touches a socket. Wire facts: /work/shared/LIVE_PROTOCOL.md.
The parser is on the audio hot path (~50 frames/s per call): plain `json.loads` and dict
lookups, no validation library.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from gateway.live.models import (
    Backend,
    SetupFeatures,
    TextChannel,
    ToolBehavior,
    ToolScheduling,
    profile_for,
    refusals,
)

__all__ = [
    "ACTIVITY_HANDLING",
    "DEFAULT_INPUT_RATE_HZ",
    "DEFAULT_OUTPUT_RATE_HZ",
    "PREBUILT_VOICES",
    "FunctionCall",
    "FunctionResponse",
    "LiveProtocolError",
    "ServerMessage",
    "SessionConfig",
    "VadConfig",
    "build_audio_input",
    "build_audio_stream_end",
    "build_client_content",
    "build_history",
    "build_setup",
    "build_text_input",
    "build_text_turn",
    "build_tool_response",
    "decode_base64",
    "encode_audio_input",
    "encode_audio_input_utf8",
    "encode_message",
    "expect_list",
    "expect_object",
    "format_duration",
    "load_json_object",
    "parse_duration_s",
    "parse_server_message",
    "pcm_rate_from_mime",
    "pick",
    "setup_features",
]

DEFAULT_OUTPUT_RATE_HZ = 24000
"""Live output audio is always 24 kHz PCM16 mono."""
DEFAULT_INPUT_RATE_HZ = 16000
"""What the service assumes for `audio/pcm` without a `rate=` parameter."""
ACTIVITY_HANDLING = "START_OF_ACTIVITY_INTERRUPTS"

PREBUILT_VOICES: tuple[str, ...] = (
    "Zephyr", "Puck", "Charon", "Kore", "Fenrir", "Leda", "Orus", "Aoede", "Callirrhoe",
    "Autonoe", "Enceladus", "Iapetus", "Umbriel", "Algieba", "Despina", "Erinome", "Algenib",
    "Rasalgethi", "Laomedeia", "Achernar", "Alnilam", "Schedar", "Gacrux", "Pulcherrima",
    "Achird", "Zubenelgenubi", "Vindemiatrix", "Sadachbia", "Sadaltager", "Sulafat",
)  # fmt: skip
"""The 30 prebuilt Live voices (default Puck)."""

_SENSITIVITIES = ("high", "low")


class LiveProtocolError(ValueError):
    """A Live message is malformed or breaks a protocol rule; the message says which."""


# --------------------------------------------------------------------------- typed values


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """A tool call requested by the model; answer it with a `FunctionResponse` of the same id."""

    id: str
    name: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FunctionResponse:
    """The result of one tool call; `response` is any JSON object (e.g. {"result": ...}).

    `scheduling` (NON_BLOCKING calls only) says when the model speaks the answer.
    """

    id: str
    name: str
    response: dict[str, Any]
    scheduling: ToolScheduling | None = None


@dataclass(frozen=True, slots=True)
class VadConfig:
    """Server-side voice activity detection (`realtimeInputConfig.automaticActivityDetection`).

    None leaves the service default in place.
    """

    start_sensitivity: Literal["high", "low"] | None = None
    end_sensitivity: Literal["high", "low"] | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None

    def __post_init__(self) -> None:
        for name in ("start_sensitivity", "end_sensitivity"):
            value = getattr(self, name)
            if value is not None and value not in _SENSITIVITIES:
                raise LiveProtocolError(f"VadConfig.{name} must be 'high' or 'low', not {value!r}")
        for name in ("prefix_padding_ms", "silence_duration_ms"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < 0):
                raise LiveProtocolError(f"VadConfig.{name} must be >= 0 ms, not {value!r}")


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Everything the `setup` message carries for one Live session.

    `model` is the full model path ("models/x" or "projects/p/locations/l/publishers/google/
    models/x"); `function_declarations` are {"name", "description", "parameters"} dicts with an
    OpenAPI-style schema (type names are upper-cased on the wire, as the SDK does).
    """

    model: str
    voice: str | None = None
    language_code: str | None = None
    system_instruction: str | None = None
    function_declarations: tuple[dict[str, Any], ...] = ()
    vad: VadConfig = VadConfig()
    input_transcription: bool = True
    output_transcription: bool = True
    resumption_handle: str | None = None
    session_resumption: bool = True
    context_window_compression: bool = True
    compression_trigger_tokens: int | None = None
    """`contextWindowCompression.triggerTokens`: context size that starts a compression."""
    compression_target_tokens: int | None = None
    """`contextWindowCompression.slidingWindow.targetTokens`: what a compression keeps."""
    temperature: float | None = None
    thinking_level: str | None = None
    """`thinkingConfig.thinkingLevel` (lower-case: minimal, low, medium, high)."""
    thinking_budget: int | None = None
    """`thinkingConfig.thinkingBudget` in tokens (0 off, -1 dynamic)."""
    proactive_audio: bool | None = None
    affective_dialog: bool | None = None
    vocabulary: tuple[str, ...] = ()
    """Custom transcription vocabulary for the caller's speech."""
    tool_behaviors: tuple[tuple[str, ToolBehavior], ...] = ()
    """Behaviour asked for per tool name; other tools get the model's default."""
    initial_history: tuple[tuple[str, str], ...] = ()
    """(role, text) turns the session starts from (a resumption without a handle)."""
    backend: Backend = Backend.GEMINI
    """The dialect the session speaks (decides how mid-call text is sent)."""

    @property
    def text_channel(self) -> TextChannel:
        """How mid-call text reaches this model on this backend."""
        return profile_for(self.model).text_channel(self.backend)


# --------------------------------------------------------------------------- client builders


def build_setup(config: SessionConfig) -> dict[str, Any]:
    """The first client message: `{"setup": {...}}` in camelCase, audio out, barge-in on.

    Shaped by the model's profile (gateway.live.models): only what that generation accepts is
    sent; a wish it refuses is a LiveProtocolError rather than a silently different call.
    """
    if not config.model:
        raise LiveProtocolError("SessionConfig.model is empty; the setup needs a model path")
    profile = profile_for(config.model)
    problems = refusals(profile, setup_features(config))
    if problems:
        raise LiveProtocolError("; ".join(f"{p.field}: {p.message}" for p in problems))
    generation: dict[str, Any] = {"responseModalities": ["AUDIO"]}
    speech: dict[str, Any] = {}
    if config.voice:
        speech["voiceConfig"] = {"prebuiltVoiceConfig": {"voiceName": config.voice}}
    if config.language_code:
        speech["languageCode"] = config.language_code
    if speech:
        generation["speechConfig"] = speech
    if config.temperature is not None:
        generation["temperature"] = config.temperature
    thinking_level = config.thinking_level
    if thinking_level is None and config.thinking_budget is None:
        thinking_level = profile.setup_thinking_level
    if thinking_level is not None:
        generation["thinkingConfig"] = {"thinkingLevel": thinking_level.upper()}
    elif config.thinking_budget is not None:
        generation["thinkingConfig"] = {"thinkingBudget": config.thinking_budget}
    if config.affective_dialog is not None:
        generation["enableAffectiveDialog"] = config.affective_dialog

    setup: dict[str, Any] = {"model": config.model, "generationConfig": generation}
    if config.system_instruction:
        setup["systemInstruction"] = {"parts": [{"text": config.system_instruction}]}
    if config.function_declarations:
        behaviors = dict(config.tool_behaviors)
        declarations = []
        for declaration in config.function_declarations:
            out = _function_declaration(declaration)
            if profile.behavior_field:
                out["behavior"] = profile.tool_behavior(behaviors.get(out["name"])).wire
            declarations.append(out)
        setup["tools"] = [{"functionDeclarations": declarations}]

    activity: dict[str, Any] = {}
    vad = config.vad
    if vad.start_sensitivity is not None:
        activity["startOfSpeechSensitivity"] = f"START_SENSITIVITY_{vad.start_sensitivity.upper()}"
    if vad.end_sensitivity is not None:
        activity["endOfSpeechSensitivity"] = f"END_SENSITIVITY_{vad.end_sensitivity.upper()}"
    if vad.prefix_padding_ms is not None:
        activity["prefixPaddingMs"] = vad.prefix_padding_ms
    if vad.silence_duration_ms is not None:
        activity["silenceDurationMs"] = vad.silence_duration_ms
    realtime: dict[str, Any] = {"activityHandling": ACTIVITY_HANDLING}
    if activity:
        realtime["automaticActivityDetection"] = activity
    setup["realtimeInputConfig"] = realtime

    if config.session_resumption or config.resumption_handle:
        setup["sessionResumption"] = (
            {"handle": config.resumption_handle} if config.resumption_handle else {}
        )
    if config.context_window_compression:
        sliding: dict[str, Any] = {}
        if config.compression_target_tokens is not None:
            sliding["targetTokens"] = config.compression_target_tokens
        compression: dict[str, Any] = {"slidingWindow": sliding}
        if config.compression_trigger_tokens is not None:
            compression["triggerTokens"] = config.compression_trigger_tokens
        setup["contextWindowCompression"] = compression
    if config.input_transcription:
        transcription: dict[str, Any] = {}
        if config.vocabulary:
            transcription["customVocabulary"] = list(config.vocabulary)
        setup["inputAudioTranscription"] = transcription
    if config.output_transcription:
        setup["outputAudioTranscription"] = {}
    if config.proactive_audio is not None:
        setup["proactivity"] = {"proactiveAudio": config.proactive_audio}
    if config.initial_history and profile.initial_history_config:
        setup["historyConfig"] = {"initialHistoryInClientContent": True}
    return {"setup": setup}


def setup_features(config: SessionConfig) -> SetupFeatures:
    """What `config` asks of the model, for `gateway.live.models.refusals`."""
    return SetupFeatures(
        thinking_level=config.thinking_level,
        thinking_budget=config.thinking_budget,
        proactive_audio=config.proactive_audio,
        affective_dialog=config.affective_dialog,
        vocabulary=bool(config.vocabulary) and config.input_transcription,
        tool_behaviors=tuple(behavior for _, behavior in config.tool_behaviors),
    )


def _function_declaration(declaration: Mapping[str, Any]) -> dict[str, Any]:
    name = declaration.get("name")
    if not isinstance(name, str) or not name:
        raise LiveProtocolError(f"function declaration without a name: {dict(declaration)!r}")
    out = dict(declaration)
    if "parameters" in out:
        out["parameters"] = _normalise_schema(out["parameters"])
    return out


def _normalise_schema(schema: Any) -> Any:
    """Upper-case OpenAPI type names ("object" → "OBJECT") the way the SDK sends them."""
    if not isinstance(schema, Mapping):
        return schema
    out = dict(schema)
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = kind.upper()
    properties = out.get("properties")
    if isinstance(properties, Mapping):
        out["properties"] = {key: _normalise_schema(value) for key, value in properties.items()}
    if "items" in out:
        out["items"] = _normalise_schema(out["items"])
    for key in ("anyOf", "any_of"):
        variants = out.get(key)
        if isinstance(variants, list):
            out[key] = [_normalise_schema(variant) for variant in variants]
    return out


def build_audio_input(pcm16le: bytes, rate_hz: int) -> dict[str, Any]:
    """One chunk of caller audio (16-bit little-endian mono PCM at `rate_hz`)."""
    return {
        "realtimeInput": {
            "audio": {
                "data": base64.b64encode(pcm16le).decode("ascii"),
                "mimeType": f"audio/pcm;rate={rate_hz}",
            }
        }
    }


def encode_audio_input(pcm16le: bytes, rate_hz: int) -> str:
    """`encode_message(build_audio_input(...))` without the dict: the per-20-ms fast path."""
    data = base64.b64encode(pcm16le).decode("ascii")
    return (
        '{"realtimeInput":{"audio":{"data":"'
        + data
        + '","mimeType":"audio/pcm;rate='
        + str(int(rate_hz))
        + '"}}}'
    )


def encode_audio_input_utf8(pcm16le: bytes, rate_hz: int) -> bytes:
    """`encode_audio_input` as the UTF-8 bytes of the frame (what goes on the wire)."""
    return b"".join(
        (
            b'{"realtimeInput":{"audio":{"data":"',
            binascii.b2a_base64(pcm16le, newline=False),
            b'","mimeType":"audio/pcm;rate=',
            str(int(rate_hz)).encode("ascii"),
            b'"}}}',
        )
    )


def build_text_input(text: str) -> dict[str, Any]:
    """Realtime text from the caller side (e.g. "The caller pressed 1."); the model replies."""
    return {"realtimeInput": {"text": text}}


def build_audio_stream_end() -> dict[str, Any]:
    """Tells the service the caller's audio stream paused (flushes its VAD)."""
    return {"realtimeInput": {"audioStreamEnd": True}}


def build_client_content(text: str, *, turn_complete: bool = True) -> dict[str, Any]:
    """A user-role text turn in the conversation history; with turn_complete the model answers
    (on 3.x models it also interrupts what the model is saying)."""
    return {
        "clientContent": {
            "turns": [{"role": "user", "parts": [{"text": text}]}],
            "turnComplete": turn_complete,
        }
    }


def build_history(turns: Sequence[tuple[str, str]], *, initial: bool) -> dict[str, Any]:
    """The conversation so far as `clientContent` (roles `user` / `model`), not answered.

    `initial`: the setup carried `historyConfig.initialHistoryInClientContent`, so the history
    ends with `turnComplete: true` (which then triggers no model call); otherwise it goes
    without `turnComplete`, which adds it to the context without an answer.
    """
    return {
        "clientContent": {
            "turns": [{"role": role, "parts": [{"text": text}]} for role, text in turns],
            "turnComplete": initial,
        }
    }


def build_text_turn(text: str, channel: TextChannel) -> dict[str, Any]:
    """Text the model should answer mid-call, the way its backend and generation take it."""
    if channel is TextChannel.REALTIME_TEXT:
        return build_text_input(text)
    return build_client_content(text)


def build_tool_response(responses: Sequence[FunctionResponse]) -> dict[str, Any]:
    """Answers to one or more `FunctionCall`s, matched by id."""
    return {"toolResponse": {"functionResponses": [_function_response(r) for r in responses]}}


def _function_response(response: FunctionResponse) -> dict[str, Any]:
    out: dict[str, Any] = {"id": response.id, "name": response.name, "response": response.response}
    if response.scheduling is not None:
        out["scheduling"] = response.scheduling.wire
    return out


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode_message(message: Mapping[str, Any]) -> str:
    """Compact JSON text for one WebSocket frame."""
    return _ENCODER.encode(message)


# --------------------------------------------------------------------------- shared helpers


def pick(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    """obj[camel] or obj[snake] (the service accepts both spellings), None when absent."""
    value = obj.get(camel)
    if value is None:
        value = obj.get(snake)
    return value


_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


def decode_base64(data: Any, *, where: str = "data") -> bytes:
    """Decode standard or URL-safe base64, padding optional; LiveProtocolError otherwise."""
    if not isinstance(data, str):
        raise LiveProtocolError(f"{where} must be a base64 string, not {type(data).__name__}")
    try:  # the usual case, canonical standard base64: validated in C, no regex pass
        return binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        pass
    text = "".join(data.split()).translate(_URLSAFE_TO_STANDARD).rstrip("=")
    if len(text) % 4 == 1:
        raise LiveProtocolError(f"{where} is not valid base64 (bad length {len(data)})")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LiveProtocolError(f"{where} is not valid base64: {exc}") from None


@lru_cache(maxsize=64)
def pcm_rate_from_mime(mime_type: str) -> int | None:
    """The `rate=N` parameter of e.g. "audio/pcm;rate=24000", None when absent or invalid."""
    for param in mime_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "rate":
            try:
                rate = int(value.strip())
            except ValueError:
                return None
            return rate if rate > 0 else None
    return None


def parse_duration_s(value: Any) -> float:
    """A protobuf Duration ("50s", "1.5s", or {"seconds": 1, "nanos": 5e8}) in seconds."""
    seconds: float | None = None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("s"):
            text = text[:-1]
        try:
            seconds = float(text)
        except ValueError:
            seconds = None
    elif isinstance(value, Mapping):
        whole = value.get("seconds", 0)
        nanos = value.get("nanos", 0)
        try:
            seconds = float(whole) + float(nanos) / 1e9
        except (TypeError, ValueError):
            seconds = None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    if seconds is None or not math.isfinite(seconds):
        raise LiveProtocolError(f"not a duration: {value!r} (expected e.g. '50s')")
    return seconds


def format_duration(seconds: float) -> str:
    """Seconds as a protobuf Duration string: 50 → "50s", 1.5 → "1.5s"."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:.9f}".rstrip("0") + "s"


# --------------------------------------------------------------------------- server messages


@dataclass(frozen=True, slots=True)
class ServerMessage:
    """Everything one server frame said; several fields may be set at once.

    `audio` holds decoded PCM16LE chunks (in order) at `audio_rate_hz`; `text` holds model text
    parts (thought parts are skipped). `resumption_handle` is None when the update carried no
    (or an empty) handle. `unknown_fields` lists top-level keys this parser does not know.
    """

    setup_complete: bool = False
    audio: tuple[bytes, ...] = ()
    audio_rate_hz: int = DEFAULT_OUTPUT_RATE_HZ
    text: tuple[str, ...] = ()
    input_transcription: str | None = None
    output_transcription: str | None = None
    interrupted: bool = False
    generation_complete: bool = False
    turn_complete: bool = False
    tool_calls: tuple[FunctionCall, ...] = ()
    tool_call_cancellation_ids: tuple[str, ...] = ()
    go_away_time_left_s: float | None = None
    resumption_handle: str | None = None
    resumable: bool | None = None
    usage: Mapping[str, Any] | None = None
    session_id: str | None = None
    """`setupComplete.sessionId` (Vertex names its sessions; log it with the call)."""
    interaction_status: str | None = None
    """`serverContent.interactionStatus`: IN_PROGRESS while the model works in the background
    (extended thinking), IDLE once it is done; None when not reported."""
    unknown_fields: tuple[str, ...] = ()


_SETUP_COMPLETE = 1
_SERVER_CONTENT = 2
_TOOL_CALL = 3
_TOOL_CALL_CANCELLATION = 4
_GO_AWAY = 5
_RESUMPTION_UPDATE = 6
_USAGE = 7

_SERVER_FIELDS: dict[str, int] = {
    "setupComplete": _SETUP_COMPLETE,
    "setup_complete": _SETUP_COMPLETE,
    "serverContent": _SERVER_CONTENT,
    "server_content": _SERVER_CONTENT,
    "toolCall": _TOOL_CALL,
    "tool_call": _TOOL_CALL,
    "toolCallCancellation": _TOOL_CALL_CANCELLATION,
    "tool_call_cancellation": _TOOL_CALL_CANCELLATION,
    "goAway": _GO_AWAY,
    "go_away": _GO_AWAY,
    "sessionResumptionUpdate": _RESUMPTION_UPDATE,
    "session_resumption_update": _RESUMPTION_UPDATE,
    "usageMetadata": _USAGE,
    "usage_metadata": _USAGE,
}


def load_json_object(frame: str | bytes, *, who: str) -> dict[str, Any]:
    """json.loads a text or binary frame and insist on an object."""
    if isinstance(frame, bytearray | memoryview):
        frame = bytes(frame)
    try:
        obj = json.loads(frame)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise LiveProtocolError(f"{who} frame is not valid UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise LiveProtocolError(f"{who} frame is not valid JSON (nested too deeply)") from None
    if not isinstance(obj, dict):
        raise LiveProtocolError(f"{who} frame must be a JSON object, got {type(obj).__name__}")
    return obj


def expect_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise LiveProtocolError(f"{where} must be an object, got {type(value).__name__}")
    return value


def expect_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise LiveProtocolError(f"{where} must be a list, got {type(value).__name__}")
    return value


def parse_server_message(frame: str | bytes) -> ServerMessage:
    """Parse one server frame; raise LiveProtocolError if it is not a usable Live message."""
    obj = load_json_object(frame, who="server")
    fields: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in obj.items():
        kind = _SERVER_FIELDS.get(key)
        if kind is None:
            unknown.append(key)
        elif value is None:
            continue
        elif kind == _SERVER_CONTENT:
            _parse_server_content(expect_object(value, key), fields)
        elif kind == _SETUP_COMPLETE:
            fields["setup_complete"] = True
            session_id = pick(expect_object(value, key), "sessionId", "session_id")
            if isinstance(session_id, str) and session_id:
                fields["session_id"] = session_id
        elif kind == _TOOL_CALL:
            fields["tool_calls"] = _parse_tool_call(expect_object(value, key))
        elif kind == _TOOL_CALL_CANCELLATION:
            ids = expect_list(pick(expect_object(value, key), "ids", "ids") or [], f"{key}.ids")
            if not all(isinstance(i, str) for i in ids):
                raise LiveProtocolError(f"{key}.ids must be strings: {ids!r}")
            fields["tool_call_cancellation_ids"] = tuple(ids)
        elif kind == _GO_AWAY:
            time_left = pick(expect_object(value, key), "timeLeft", "time_left")
            fields["go_away_time_left_s"] = (
                0.0 if time_left is None else parse_duration_s(time_left)
            )
        elif kind == _RESUMPTION_UPDATE:
            update = expect_object(value, key)
            handle = pick(update, "newHandle", "new_handle")
            if handle is not None and not isinstance(handle, str):
                raise LiveProtocolError(f"{key}.newHandle must be a string: {handle!r}")
            fields["resumption_handle"] = handle or None
            resumable = update.get("resumable")
            fields["resumable"] = None if resumable is None else bool(resumable)
        else:  # _USAGE
            fields["usage"] = expect_object(value, key)
    if unknown:
        fields["unknown_fields"] = tuple(unknown)
    return ServerMessage(**fields)


def _parse_server_content(content: dict[str, Any], fields: dict[str, Any]) -> None:
    turn = pick(content, "modelTurn", "model_turn")
    if turn is not None:
        parts = expect_list(expect_object(turn, "modelTurn").get("parts") or [], "modelTurn.parts")
        audio: list[bytes] = []
        texts: list[str] = []
        for part in parts:
            if not isinstance(part, dict):
                raise LiveProtocolError(f"modelTurn.parts items must be objects: {part!r}")
            inline = pick(part, "inlineData", "inline_data")
            if inline is not None:
                blob = expect_object(inline, "inlineData")
                mime = pick(blob, "mimeType", "mime_type")
                if mime is None or (isinstance(mime, str) and mime.startswith("audio/")):
                    audio.append(decode_base64(blob.get("data", ""), where="inlineData.data"))
                    rate = pcm_rate_from_mime(mime) if mime else None
                    if rate is not None:
                        fields["audio_rate_hz"] = rate
            text = part.get("text")
            if isinstance(text, str) and not part.get("thought"):
                texts.append(text)
        if audio:
            fields["audio"] = tuple(audio)
        if texts:
            fields["text"] = tuple(texts)
    transcription = pick(content, "inputTranscription", "input_transcription")
    if transcription is not None:
        fields["input_transcription"] = _transcription_text(transcription, "inputTranscription")
    transcription = pick(content, "outputTranscription", "output_transcription")
    if transcription is not None:
        fields["output_transcription"] = _transcription_text(transcription, "outputTranscription")
    if content.get("interrupted"):
        fields["interrupted"] = True
    if pick(content, "generationComplete", "generation_complete"):
        fields["generation_complete"] = True
    if pick(content, "turnComplete", "turn_complete"):
        fields["turn_complete"] = True
    status = pick(content, "interactionStatus", "interaction_status")
    if status is not None:
        if not isinstance(status, str):
            raise LiveProtocolError(f"serverContent.interactionStatus must be a string: {status!r}")
        status = status.upper()
        fields["interaction_status"] = "IDLE" if status == "REQUIRES_ACTION" else status


def _transcription_text(value: Any, where: str) -> str | None:
    text = expect_object(value, where).get("text")
    if text is not None and not isinstance(text, str):
        raise LiveProtocolError(f"{where}.text must be a string: {text!r}")
    return text


def _parse_tool_call(value: dict[str, Any]) -> tuple[FunctionCall, ...]:
    raw_calls = expect_list(
        pick(value, "functionCalls", "function_calls") or [], "toolCall.functionCalls"
    )
    calls = []
    for raw in raw_calls:
        call = expect_object(raw, "toolCall.functionCalls[]")
        name = call.get("name")
        if not isinstance(name, str) or not name:
            raise LiveProtocolError(f"toolCall function call without a name: {call!r}")
        call_id = call.get("id") or ""
        if not isinstance(call_id, str):
            raise LiveProtocolError(f"toolCall function call id must be a string: {call!r}")
        args = call.get("args")
        args = {} if args is None else expect_object(args, f"toolCall {name} args")
        calls.append(FunctionCall(id=call_id, name=name, args=args))
    return tuple(calls)
