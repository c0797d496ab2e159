"""A readable transcript of a call from Live's input/output transcriptions and call events.

Transcription arrives in fragments (often word by word); consecutive fragments of one speaker
within one turn make one line, stamped with the time of its first fragment:

    [00:01.2] agent: Hello! How can I help you today?
    [00:03.9] caller: where is my order
    [00:04.6] tool: lookup_order {"order_id":"A1001"} -> ok 0.012 s
    [00:06.0] (barge-in)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TranscriptBuilder", "format_clock"]


def format_clock(t_s: float) -> str:
    minutes, seconds = divmod(max(t_s, 0.0), 60.0)
    return f"{int(minutes):02d}:{seconds:04.1f}"


@dataclass
class _Line:
    t_s: float
    speaker: str | None
    text: str


class TranscriptBuilder:
    """Collects lines in call order; `render()` gives the text file's content."""

    def __init__(self, header: str = "") -> None:
        self._header = header
        self._lines: list[_Line] = []
        self._open: dict[str, _Line] = {}
        """The line each speaker is still adding fragments to (closed at a turn boundary)."""

    def set_header(self, header: str) -> None:
        self._header = header

    def speech(self, t_s: float, speaker: str, fragment: str) -> None:
        """A transcription fragment; continues the speaker's open line if it is the latest."""
        if not fragment:
            return
        line = self._open.get(speaker)
        if line is None or self._lines[-1] is not line:
            line = _Line(t_s, speaker, "")
            self._lines.append(line)
            self._open[speaker] = line
        line.text += fragment

    def end_turn(self, speaker: str | None = None) -> None:
        """The next fragment of `speaker` (or of anyone) starts a new line."""
        if speaker is None:
            self._open.clear()
        else:
            self._open.pop(speaker, None)

    def note(self, t_s: float, text: str) -> None:
        """A standalone line (tool call, key press, barge-in, end of call)."""
        self._lines.append(_Line(t_s, None, text))

    def render(self) -> str:
        out = [self._header] if self._header else []
        for line in self._lines:
            text = " ".join(line.text.split())
            if not text:
                continue
            who = f"{line.speaker}: " if line.speaker else ""
            out.append(f"[{format_clock(line.t_s)}] {who}{text}")
        return "\n".join(out) + "\n"
