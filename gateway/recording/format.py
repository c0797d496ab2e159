"""The call-recording format: one JSON object per line, one line per event, in the order the
gateway saw them. Pure code (no IO but `read_recording`), shared by the recorder and the replayer.

Every line has `t` (seconds since the call's first frame, monotonic clock) and `kind`:

| kind | fields | what |
|---|---|---|
| `twilio_in` | `frame` (text) or `frame_b64` (binary) | a raw carrier frame, malformed too |
| `twilio_in` | … and `truncated_from` | junk (malformed or unknown) cut to 256 chars: its length |
| `twilio_out` | `frame` | a frame actually written to the carrier |
| `live_out` | `audio` (base64 PCM16LE), `rate_hz` | caller audio sent to Live |
| `live_out` | `message` | any other client message, in wire form |
| `live_in` | `message` | a server message, in wire form (audio base64) |
| `tool_call` | `id`, `name`, `args` | the model asked for a tool |
| `tool_result` | `id`, `name`, `response`, `duration_s`, `outcome` | the tool finished |
| `barge_in` | `frames_dropped` | Live said `interrupted` |
| `error` | `error`, `detail` | something the call survived or ended on |
| `live_closed` | `code` | Live ended the session (WebSocket close code, null if none) |
| `live_reconnected` | `close_code` | the Live connection dropped and a new session took over |
| `call_started` | `format`, `call_sid`, `stream_sid`, `agent`, `from`, `to`, … | call metadata |
| `call_ended` | `reason`, `duration_s`, `stats` | the last event of a whole recording |
| `recording_stopped` | `reason` | cut short: `queue_full`, `write_failed` or `max_bytes` |
| `recording_stopped` | … and `max_bytes` | the call's MAX_RECORDING_BYTES_PER_CALL was spent |
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from gateway.live.emulator.protocol import (
    build_go_away,
    build_session_resumption_update,
    build_tool_call,
    build_tool_call_cancellation,
)
from gateway.live.protocol import ServerMessage

__all__ = [
    "FORMAT_VERSION",
    "EventKind",
    "RecordedEvent",
    "Recording",
    "RecordingFormatError",
    "encode_event",
    "read_recording",
    "server_message_to_wire",
]

FORMAT_VERSION = 1


class EventKind(StrEnum):
    TWILIO_IN = "twilio_in"
    TWILIO_OUT = "twilio_out"
    LIVE_OUT = "live_out"
    LIVE_IN = "live_in"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    BARGE_IN = "barge_in"
    ERROR = "error"
    LIVE_CLOSED = "live_closed"
    LIVE_RECONNECTED = "live_reconnected"
    CALL_STARTED = "call_started"
    CALL_ENDED = "call_ended"
    RECORDING_STOPPED = "recording_stopped"


class RecordingFormatError(ValueError):
    """A recording file cannot be read; the message names the file and the line."""


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode_event(t: float, kind: EventKind, fields: Mapping[str, Any]) -> str:
    """One JSONL line (without the newline): `t` and `kind` first, then the fields."""
    return _ENCODER.encode({"t": round(t, 6), "kind": kind.value, **fields})


def server_message_to_wire(message: ServerMessage) -> dict[str, Any]:
    """A parsed Live server message back in wire form (camelCase, audio base64).

    `parse_server_message(encode_message(server_message_to_wire(m)))` equals `m` except for
    `unknown_fields`, which the parser does not keep.
    """
    wire: dict[str, Any] = {}
    if message.setup_complete:
        wire["setupComplete"] = {}
    content: dict[str, Any] = {}
    parts: list[dict[str, Any]] = [
        {
            "inlineData": {
                "mimeType": f"audio/pcm;rate={message.audio_rate_hz}",
                "data": base64.b64encode(chunk).decode("ascii"),
            }
        }
        for chunk in message.audio
    ]
    parts.extend({"text": text} for text in message.text)
    if parts:
        content["modelTurn"] = {"parts": parts}
    if message.input_transcription is not None:
        content["inputTranscription"] = {"text": message.input_transcription}
    if message.output_transcription is not None:
        content["outputTranscription"] = {"text": message.output_transcription}
    if message.interrupted:
        content["interrupted"] = True
    if message.generation_complete:
        content["generationComplete"] = True
    if message.turn_complete:
        content["turnComplete"] = True
    if content:
        wire["serverContent"] = content
    if message.tool_calls:
        wire.update(build_tool_call(message.tool_calls))
    if message.tool_call_cancellation_ids:
        wire.update(build_tool_call_cancellation(message.tool_call_cancellation_ids))
    if message.go_away_time_left_s is not None:
        wire.update(build_go_away(message.go_away_time_left_s))
    if message.resumption_handle is not None or message.resumable is not None:
        update = build_session_resumption_update(message.resumption_handle, True)
        if message.resumable is None:
            del update["sessionResumptionUpdate"]["resumable"]
        else:
            update["sessionResumptionUpdate"]["resumable"] = message.resumable
        wire.update(update)
    if message.usage is not None:
        wire["usageMetadata"] = dict(message.usage)
    return wire


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One line of a recording: its 0-based position, time, kind and remaining fields."""

    index: int
    t: float
    kind: str
    data: Mapping[str, Any]

    def frame(self) -> str | bytes:
        """The raw frame of a `twilio_in` / `twilio_out` event."""
        if "frame_b64" in self.data:
            return base64.b64decode(self.data["frame_b64"])
        frame = self.data.get("frame")
        if not isinstance(frame, str):
            raise RecordingFormatError(f"event #{self.index} ({self.kind}) has no frame")
        return frame


@dataclass(frozen=True)
class Recording:
    """A whole recording file, events in recorded order."""

    path: Path
    events: tuple[RecordedEvent, ...]

    def of_kind(self, *kinds: str) -> list[RecordedEvent]:
        return [event for event in self.events if event.kind in kinds]

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The `call_started` fields (empty if the call never started)."""
        started = self.of_kind(EventKind.CALL_STARTED)
        return started[0].data if started else {}

    @property
    def end_reason(self) -> str | None:
        """Why the call ended, or None when the recording is incomplete."""
        ended = self.of_kind(EventKind.CALL_ENDED)
        reason = ended[-1].data.get("reason") if ended else None
        return reason if isinstance(reason, str) else None

    @property
    def complete(self) -> bool:
        return self.end_reason is not None and not self.of_kind(EventKind.RECORDING_STOPPED)


_KINDS = frozenset(kind.value for kind in EventKind)
_GZIP_MAGIC = b"\x1f\x8b"


def read_recording(path: str | Path) -> Recording:
    """Load and check a `.jsonl` (or gzipped `.jsonl.gz`) recording; RecordingFormatError
    names the bad line."""
    path = Path(path)
    try:
        data = path.read_bytes()
        if data[:2] == _GZIP_MAGIC:
            data = gzip.decompress(data)
        text = data.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise RecordingFormatError(f"{path}: cannot read: {exc}") from None
    events: list[RecordedEvent] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise RecordingFormatError(f"{where}: not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise RecordingFormatError(f"{where}: expected a JSON object per line")
        t = obj.pop("t", None)
        kind = obj.pop("kind", None)
        if not isinstance(t, int | float) or isinstance(t, bool):
            raise RecordingFormatError(f"{where}: `t` must be a number of seconds, got {t!r}")
        if kind not in _KINDS:
            raise RecordingFormatError(f"{where}: unknown event kind {kind!r}")
        _check_fields(where, kind, obj)
        events.append(RecordedEvent(len(events), float(t), kind, obj))
    if not events:
        raise RecordingFormatError(f"{path}: empty recording")
    return Recording(path, tuple(events))


def _check_fields(where: str, kind: str, obj: Mapping[str, Any]) -> None:
    """The fields the replayer relies on, so a hand-edited file fails here, not mid-replay."""
    if kind in (EventKind.TWILIO_IN, EventKind.TWILIO_OUT):
        if not isinstance(obj.get("frame"), str) and not isinstance(obj.get("frame_b64"), str):
            raise RecordingFormatError(f"{where}: {kind} needs a `frame` string")
        if "frame_b64" in obj:
            try:
                base64.b64decode(obj["frame_b64"], validate=True)
            except (binascii.Error, ValueError):
                raise RecordingFormatError(f"{where}: `frame_b64` is not base64") from None
    elif kind == EventKind.LIVE_OUT:
        if "audio" in obj:
            if not isinstance(obj["audio"], str) or not isinstance(obj.get("rate_hz"), int):
                raise RecordingFormatError(
                    f"{where}: live_out audio needs `audio` (base64) and `rate_hz` (int)"
                )
        elif not isinstance(obj.get("message"), dict):
            raise RecordingFormatError(f"{where}: live_out needs `audio` or a `message` object")
    elif kind == EventKind.LIVE_IN and not isinstance(obj.get("message"), dict):
        raise RecordingFormatError(f"{where}: live_in needs a `message` object")
