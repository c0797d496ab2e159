"""Compare what a replayed gateway sent with what the recording says it sent, and explain it.

Each output stream (to Twilio, to Live) is cut into *audio runs* (consecutive media frames /
caller-audio chunks) and the single events between them (mark, clear, clientContent,
toolResponse, …). Single events must match exactly and in order. An audio run matches when its
frame count is within `Tolerance.frames` and its loudness within `Tolerance.rms_db`: timing
decides exactly where a barge-in cuts a reply, and the bytes of resampled audio are not the
contract — what the caller hears is.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from gateway.audio.codec import L16_ENCODING, MULAW_ENCODING, MULAW_RATE_HZ
from gateway.audio.mulaw import decode_mulaw

__all__ = [
    "OutputItem",
    "StreamDiff",
    "Tolerance",
    "carrier_item",
    "compare_stream",
    "live_item",
    "live_item_from_wire",
    "twilio_item",
]

SILENCE_DBFS: Final = -120.0
"""Loudness reported for an empty or all-zero run (log of zero)."""


@dataclass(frozen=True)
class Tolerance:
    """How far a replay may drift from its recording and still pass."""

    frames: int = 3
    """Audio frames (20 ms each) a run may gain or lose, e.g. where a barge-in cut the reply."""
    rms_db: float = 3.0
    """Loudness difference allowed per audio run, in dB."""


@dataclass(frozen=True)
class OutputItem:
    """One event the gateway sent: audio (PCM16 samples for loudness) or a single event."""

    label: str
    """`media`/`audio` for audio, else a short name (`mark turn-1`, `clear`, `toolResponse`)."""
    content: Any = None
    """What must match exactly (None for audio)."""
    pcm16: bytes | None = None
    rate_hz: int | None = None
    energy: tuple[int, float] | None = None
    """(samples, sum of their squares) when only the loudness was recorded (format 2)."""

    @property
    def is_audio(self) -> bool:
        return self.pcm16 is not None or self.energy is not None

    def samples_and_energy(self) -> tuple[int, float]:
        """How many samples, and the sum of their squares (for a run's loudness)."""
        if self.energy is not None:
            return self.energy
        samples = np.frombuffer(self.pcm16 or b"", dtype="<i2").astype(np.float64)
        return len(samples), float(np.dot(samples, samples))


def twilio_item(frame: str | bytes) -> OutputItem:
    """A frame the gateway wrote to Twilio."""
    try:
        message = json.loads(frame)
    except ValueError:
        return OutputItem("unparsable frame", content=frame)
    if not isinstance(message, dict):
        return OutputItem("unparsable frame", content=message)
    event = message.get("event")
    if event == "media":
        payload = message.get("media", {}).get("payload", "")
        try:
            mulaw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError, TypeError):
            return OutputItem("media with bad payload", content=message)
        return OutputItem("media", pcm16=decode_mulaw(mulaw).astype("<i2").tobytes(), rate_hz=8000)
    if event == "mark":
        name = message.get("mark", {}).get("name")
        return OutputItem(f"mark {name}", content=message)
    return OutputItem(str(event), content=message)


def carrier_item(
    frame: str | bytes, carrier: str = "twilio", stream_format: tuple[str, int] | None = None
) -> OutputItem:
    """A frame the gateway wrote to `carrier` (read as that carrier's phone reads it), its
    audio in the stream's `stream_format` (encoding, rate; default μ-law at 8 kHz)."""
    if carrier == "twilio":
        return twilio_item(frame)
    from gateway.telephony.carriers import new_phone  # the other carriers' phones, if any

    try:
        event = new_phone(carrier).read(frame)
    except (ValueError, KeyError, TypeError):
        return OutputItem("unparsable frame", content=frame)
    if event.kind == "media":
        encoding, rate_hz = stream_format or (MULAW_ENCODING, MULAW_RATE_HZ)
        if encoding == L16_ENCODING:
            usable = len(event.audio) & ~1
            return OutputItem("media", pcm16=event.audio[:usable], rate_hz=rate_hz)
        pcm16 = decode_mulaw(event.audio).astype("<i2").tobytes()
        return OutputItem("media", pcm16=pcm16, rate_hz=MULAW_RATE_HZ)
    if event.kind == "mark":
        return OutputItem(f"mark {event.name}", content=event.name)
    return OutputItem(event.kind, content=frame)


def live_item(message: Mapping[str, Any]) -> OutputItem:
    """A client message the gateway sent to Live, parsed from its wire JSON."""
    realtime = message.get("realtimeInput")
    if isinstance(realtime, Mapping) and isinstance(realtime.get("audio"), Mapping):
        audio = realtime["audio"]
        rate = _rate(str(audio.get("mimeType", "")))
        try:
            pcm = base64.b64decode(str(audio.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            return OutputItem("audio with bad data", content=dict(message))
        return OutputItem("audio", pcm16=pcm, rate_hz=rate)
    kinds = ",".join(message) or "{}"
    if isinstance(realtime, Mapping):
        kinds = "realtimeInput." + ",".join(realtime)
    return OutputItem(kinds, content=_plain(message))


def live_item_from_wire(frame: str | bytes) -> OutputItem:
    try:
        message = json.loads(frame)
    except ValueError:
        return OutputItem("unparsable frame", content=frame)
    if not isinstance(message, dict):
        return OutputItem("unparsable frame", content=message)
    return live_item(message)


def _rate(mime: str) -> int | None:
    for param in mime.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip() == "rate" and value.strip().isdigit():
            return int(value)
    return None


def _plain(value: Any) -> Any:
    """JSON round trip, so recorded and observed messages compare as the same types."""
    return json.loads(json.dumps(value))


# --------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class _Run:
    """Consecutive audio items [start, start+count) of a stream."""

    start: int
    items: tuple[OutputItem, ...]

    @property
    def count(self) -> int:
        return len(self.items)

    def rms_dbfs(self) -> float:
        totals = [item.samples_and_energy() for item in self.items]
        samples = sum(count for count, _ in totals)
        if not samples:
            return SILENCE_DBFS
        rms = math.sqrt(sum(energy for _, energy in totals) / samples)
        return max(20 * math.log10(rms / 32768), SILENCE_DBFS) if rms > 0 else SILENCE_DBFS

    def rates(self) -> set[int | None]:
        return {item.rate_hz for item in self.items}

    def describe(self, audio_label: str) -> str:
        if not self.count:
            return f"no {audio_label}"
        return f"{audio_label}×{self.count} ({self.rms_dbfs():.1f} dBFS)"


@dataclass(frozen=True)
class _Shape:
    runs: list[_Run]
    """runs[i] is the audio before singles[i]; the last run follows the last single."""
    singles: list[tuple[int, OutputItem]]


def _shape(items: Sequence[OutputItem]) -> _Shape:
    runs: list[_Run] = []
    singles: list[tuple[int, OutputItem]] = []
    run_start = 0
    audio: list[OutputItem] = []
    for index, item in enumerate(items):
        if item.is_audio:
            if not audio:
                run_start = index
            audio.append(item)
            continue
        runs.append(_Run(run_start if audio else index, tuple(audio)))
        audio = []
        singles.append((index, item))
    runs.append(_Run(run_start if audio else len(items), tuple(audio)))
    return _Shape(runs, singles)


@dataclass(frozen=True)
class StreamDiff:
    """The first place a replayed stream departs from its recording."""

    stream: str
    index: int
    """Position (0-based) of the first differing event in the stream."""
    run_end: int | None
    """When the difference is an audio run: the position after its (longer) end."""
    expected: str
    got: str
    expected_context: str
    got_context: str
    expected_total: int
    got_total: int

    def _where(self) -> str:
        if self.run_end is None or self.run_end - self.index <= 1:
            return f"event #{self.index}"
        return f"event #{self.index}, in the audio run #{self.index}–#{self.run_end - 1}"

    def render(self) -> str:
        return "\n".join(
            [
                f"{self.stream}: first difference at {self._where()} "
                f"(recorded {self.expected_total} events, replay sent {self.got_total})",
                f"  expected: {self.expected}",
                f"  got:      {self.got}",
                f"  recorded: {self.expected_context}",
                f"  replayed: {self.got_context}",
            ]
        )


def compare_stream(
    stream: str,
    expected: Sequence[OutputItem],
    got: Sequence[OutputItem],
    tolerance: Tolerance,
) -> StreamDiff | None:
    """None when `got` matches `expected` within `tolerance`, else where and how it differs."""
    audio_label = "media" if stream == "twilio_out" else "audio"
    want, have = _shape(expected), _shape(got)
    for position in range(max(len(want.runs), len(have.runs))):
        run_want = want.runs[position] if position < len(want.runs) else None
        run_have = have.runs[position] if position < len(have.runs) else None
        problem = _compare_runs(run_want, run_have, tolerance, audio_label)
        if problem is not None:
            runs = [run for run in (run_want, run_have) if run is not None]
            index = min(run.start for run in runs)
            run_end = max(run.start + run.count for run in runs)
            return _diff(
                stream, index, problem, want, have, expected, got, 2 * position, audio_label,
                run_end,
            )
        single_want = want.singles[position] if position < len(want.singles) else None
        single_have = have.singles[position] if position < len(have.singles) else None
        if single_want is None and single_have is None:
            continue
        if (
            single_want is None
            or single_have is None
            or single_want[1].label != single_have[1].label
            or single_want[1].content != single_have[1].content
        ):
            index = min(s[0] for s in (single_want, single_have) if s is not None)
            problem = (
                _describe_single(single_want[1] if single_want else None),
                _describe_single(single_have[1] if single_have else None),
            )
            return _diff(
                stream, index, problem, want, have, expected, got, 2 * position + 1, audio_label
            )
    return None


def _compare_runs(
    want: _Run | None, have: _Run | None, tolerance: Tolerance, audio_label: str
) -> tuple[str, str] | None:
    want_count = want.count if want else 0
    have_count = have.count if have else 0
    describe_want = want.describe(audio_label) if want else f"no {audio_label}"
    describe_have = have.describe(audio_label) if have else f"no {audio_label}"
    if abs(want_count - have_count) > tolerance.frames:
        note = f"  [frame count off by {have_count - want_count:+d}, tolerance ±{tolerance.frames}]"
        return describe_want, describe_have + note
    if want and have and want.count and have.count:
        if want.rates() != have.rates():
            return (
                f"{describe_want} at {sorted(map(str, want.rates()))} Hz",
                f"{describe_have} at {sorted(map(str, have.rates()))} Hz",
            )
        delta_db = have.rms_dbfs() - want.rms_dbfs()
        # A run no longer than the frame tolerance may be nothing but the edge of a cut
        # (a hang-up or barge-in a frame earlier or later): its loudness says nothing.
        edge_only = min(want.count, have.count) <= tolerance.frames
        if abs(delta_db) > tolerance.rms_db and not edge_only:
            note = f"  [loudness off by {delta_db:+.1f} dB, tolerance ±{tolerance.rms_db:g} dB]"
            return describe_want, describe_have + note
    return None


def _describe_single(item: OutputItem | None) -> str:
    if item is None:
        return "(nothing: the stream ends here)"
    text = json.dumps(item.content, ensure_ascii=False, separators=(",", ":"))
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{item.label}: {text}"


def _context(shape: _Shape, around: int, audio_label: str, width: int = 3) -> str:
    """A compact picture of the stream near segment `around` (runs even, singles odd)."""
    segments: list[str] = []
    for position, run in enumerate(shape.runs):
        segments.append(run.describe(audio_label) if run.count else "")
        if position < len(shape.singles):
            segments.append(shape.singles[position][1].label)
    first = max(around - 2 * width, 0)
    last = min(around + 2 * width + 1, len(segments))
    shown = [s for s in segments[first:last] if s]
    prefix = "… " if first > 0 else ""
    suffix = " …" if last < len(segments) else ""
    return prefix + " | ".join(shown) + suffix if shown else "(nothing)"


def _diff(
    stream: str,
    index: int,
    problem: tuple[str, str],
    want: _Shape,
    have: _Shape,
    expected: Sequence[OutputItem],
    got: Sequence[OutputItem],
    segment: int,
    audio_label: str,
    run_end: int | None = None,
) -> StreamDiff:
    return StreamDiff(
        stream=stream,
        index=index,
        run_end=run_end,
        expected=problem[0],
        got=problem[1],
        expected_context=_context(want, segment, audio_label),
        got_context=_context(have, segment, audio_label),
        expected_total=len(expected),
        got_total=len(got),
    )
