"""An emulator script that makes the Live emulator say what the recorded model said.

For `gateway replay --against emulator`: each recorded model turn becomes a scripted turn with
the same words (from its output transcription), the same tool call and the same words after
the tool answered; a turn answering the greeting prompt becomes the script's greeting. The
emulator's voice then has the same length per turn as in a recording made with the emulator.
A turn cut short by a barge-in keeps only the words transcribed before the cut.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from gateway.live.emulator_script import EmulatorScript, ScriptToolCall, ScriptTurn
from gateway.live.emulator_voice import MS_PER_CHAR
from gateway.live.protocol import DEFAULT_OUTPUT_RATE_HZ
from gateway.recording_format import EventKind, Recording

__all__ = ["script_from_recording"]


@dataclass
class _Turn:
    before_tool: list[str] = field(default_factory=list)
    after_tool: list[str] = field(default_factory=list)
    tool_call: ScriptToolCall | None = None
    audio_s: float = 0.0
    greeting: bool = False

    @property
    def empty(self) -> bool:
        return not (self.before_tool or self.after_tool or self.tool_call or self.audio_s)

    def say(self) -> str | None:
        text = "".join(self.before_tool)
        if text or self.tool_call is not None:
            return text or None
        # Audio without a transcription: text of the same spoken length.
        return "." * max(round(self.audio_s * 1000 / MS_PER_CHAR), 1)


def script_from_recording(recording: Recording) -> EmulatorScript:
    """The script (greeting + turns) that replays `recording`'s model side on the emulator."""
    greeting: str | None = None
    turns: list[ScriptTurn] = []
    awaiting_greeting = False
    turn: _Turn | None = None
    for event in recording.events:
        if event.kind == EventKind.LIVE_OUT and "message" in event.data:
            content = event.data["message"].get("clientContent")
            if isinstance(content, dict) and content.get("turnComplete"):
                awaiting_greeting = True
            continue
        if event.kind != EventKind.LIVE_IN:
            continue
        message = event.data["message"]
        server = message.get("serverContent") or {}
        calls = (message.get("toolCall") or {}).get("functionCalls") or []
        speaking = bool(server.get("modelTurn") or server.get("outputTranscription") or calls)
        if speaking and turn is None:
            turn = _Turn(greeting=awaiting_greeting)
            awaiting_greeting = False
        if turn is not None:
            _add(turn, server, calls)
        if server.get("turnComplete") and turn is not None:
            if not turn.empty:
                if turn.greeting and greeting is None:
                    greeting = "".join(turn.before_tool) or turn.say()
                else:
                    turns.append(_script_turn(turn))
            turn = None
    return EmulatorScript(greeting=greeting, turns=tuple(turns))


def _add(turn: _Turn, server: dict[str, object], calls: list[dict[str, object]]) -> None:
    transcription = server.get("outputTranscription")
    if isinstance(transcription, dict) and isinstance(transcription.get("text"), str):
        target = turn.after_tool if turn.tool_call is not None else turn.before_tool
        target.append(transcription["text"])
    model_turn = server.get("modelTurn")
    if isinstance(model_turn, dict):
        for part in model_turn.get("parts") or []:
            data = (part.get("inlineData") or {}).get("data") if isinstance(part, dict) else None
            if isinstance(data, str):
                samples = len(base64.b64decode(data)) // 2
                turn.audio_s += samples / DEFAULT_OUTPUT_RATE_HZ
    if calls and turn.tool_call is None:
        call = calls[0]
        args = call.get("args")
        turn.tool_call = ScriptToolCall(
            name=str(call.get("name")), args=args if isinstance(args, dict) else {}
        )


def _script_turn(turn: _Turn) -> ScriptTurn:
    if turn.tool_call is None:
        return ScriptTurn(say=turn.say())
    return ScriptTurn(
        say=turn.say(), tool_call=turn.tool_call, after_tool="".join(turn.after_tool) or None
    )
