"""An emulator script that makes the Live emulator say what the recorded model said.

For `gateway replay --against emulator`: each recorded model turn becomes a scripted turn with
the same words (from its output transcription), the same tool call and the same words after
the tool answered; a turn answering the greeting prompt becomes the script's greeting. The
emulator's voice then has the same length per turn as in a recording made with the emulator.
A turn cut short by a barge-in keeps only the words transcribed before the cut.

Words said before the tool's answer went back are the turn's `say`, words after it its
`after_tool` — within one turn (a blocking call) or, for a non-blocking call answered later,
in the model's next turn (the emulator speaks a non-blocking call's answer as a turn of its
own). The greeting is the turn answering a text that quotes what to say (`clientContent` or
`realtimeInput.text`, by dialect).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from gateway.live.emulator.script import EmulatorScript, ScriptToolCall, ScriptTurn
from gateway.live.emulator.server import quoted_phrase
from gateway.live.emulator.voice import MS_PER_CHAR
from gateway.live.protocol import DEFAULT_OUTPUT_RATE_HZ
from gateway.recording.format import EventKind, Recording

__all__ = ["script_from_recording"]


@dataclass
class _Turn:
    before_tool: list[str] = field(default_factory=list)
    after_tool: list[str] = field(default_factory=list)
    tool_call: ScriptToolCall | None = None
    answered: bool = False
    """The tool's answer has gone back to Live: words from now on are `after_tool`."""
    answer_spoken: bool = True
    """False while the answer (non-blocking, not SILENT) is still to be spoken."""
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
    unanswered: _Turn | None = None
    """A finished turn whose non-blocking call is answered by the model's next turn."""
    for event in recording.events:
        if event.kind == EventKind.LIVE_OUT and "message" in event.data:
            message = event.data["message"]
            if _is_say_this(message):
                awaiting_greeting = True
            answers = (message.get("toolResponse") or {}).get("functionResponses") or []
            for holder in (turn, unanswered):
                if answers and holder is not None and holder.tool_call is not None:
                    holder.answered = True
                    holder.answer_spoken = not any(_spoken_later(a) for a in answers)
            if unanswered is not None and unanswered.answered and unanswered.answer_spoken:
                turns.append(_script_turn(unanswered))  # answered silently: no turn follows
                unanswered = None
            continue
        if event.kind != EventKind.LIVE_IN:
            continue
        message = event.data["message"]
        server = message.get("serverContent") or {}
        calls = (message.get("toolCall") or {}).get("functionCalls") or []
        speaking = bool(server.get("modelTurn") or server.get("outputTranscription") or calls)
        if speaking and turn is None:
            if unanswered is not None and not calls:
                turn, unanswered = unanswered, None  # the answer to its call
                turn.answer_spoken = True
            else:
                turn = _Turn(greeting=awaiting_greeting)
                awaiting_greeting = False
        if turn is not None:
            _add(turn, server, calls)
        if server.get("turnComplete") and turn is not None:
            waiting = not turn.answered or not turn.answer_spoken
            if turn.tool_call is not None and not turn.after_tool and waiting:
                unanswered = turn  # its call's answer comes as a turn of its own
            elif not turn.empty:
                if turn.greeting and greeting is None:
                    greeting = "".join(turn.before_tool) or turn.say()
                else:
                    turns.append(_script_turn(turn))
            turn = None
    # The call ended first: a turn still playing (its turnComplete comes after playback), or a
    # call whose answer never came, still says what it said.
    for last in (unanswered, turn):
        if last is not None and not last.empty and not last.greeting:
            turns.append(_script_turn(last, cut=last is turn))
    return EmulatorScript(greeting=greeting, turns=tuple(turns))


def _is_say_this(message: dict[str, object]) -> bool:
    """A text telling the model what to say (the greeting prompt), however it was sent."""
    content = message.get("clientContent")
    if isinstance(content, dict) and content.get("turnComplete"):
        texts = [
            part.get("text")
            for turn in content.get("turns") or []
            if isinstance(turn, dict)
            for part in turn.get("parts") or []
            if isinstance(part, dict)
        ]
        return any(isinstance(t, str) and quoted_phrase(t) is not None for t in texts)
    realtime = message.get("realtimeInput")
    text = realtime.get("text") if isinstance(realtime, dict) else None
    return isinstance(text, str) and quoted_phrase(text) is not None


def _spoken_later(answer: object) -> bool:
    """A non-blocking call's answer (it has a scheduling) that the model speaks (not SILENT)."""
    if not isinstance(answer, dict):
        return False
    scheduling = answer.get("scheduling")
    return isinstance(scheduling, str) and scheduling.upper() != "SILENT"


def _add(turn: _Turn, server: dict[str, object], calls: list[dict[str, object]]) -> None:
    transcription = server.get("outputTranscription")
    if isinstance(transcription, dict) and isinstance(transcription.get("text"), str):
        # A blocking call's answer is spoken in the turn that made it; a non-blocking call's
        # words in that turn are a filler, its answer is spoken in a turn of its own.
        answer_now = turn.answered and turn.answer_spoken
        target = turn.after_tool if answer_now else turn.before_tool
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


CUT_TURN_MARGIN_S = 1.0
"""A turn the end of the call cut off is scripted this much longer than what was heard, so
the replayed call ends, as the recorded one did, while the model is still speaking."""


def _script_turn(turn: _Turn, *, cut: bool = False) -> ScriptTurn:
    if cut and turn.tool_call is None:
        # Its transcript lags its audio: say as much as was sent, and then some.
        text = turn.say() or ""
        chars = round((turn.audio_s + CUT_TURN_MARGIN_S) * 1000 / MS_PER_CHAR)
        return ScriptTurn(say=text.ljust(chars, "."))
    if turn.tool_call is None:
        return ScriptTurn(say=turn.say())

    return ScriptTurn(
        say=turn.say(), tool_call=turn.tool_call, after_tool="".join(turn.after_tool) or None
    )
