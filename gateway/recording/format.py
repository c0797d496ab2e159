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

**Format 2** (what the recorder writes; format 1 files — the JSONL alone — still read and
replay) keeps the audio out of the JSON: once per direction, raw, in a side file
`<stem>.audio` (or `<stem>.audio.gz` beside a `.jsonl.gz`), a sequence of records
`kind u8, t f64, length u32, body` (little-endian):

* 1 `CALLER_MEDIA` — a `twilio_in` media frame, rebuilt exactly: `u16 head, u16 tail`
  lengths, the frame's text before and after its base64 payload, then the μ-law;
* 2 `AGENT_MEDIA` — a `twilio_out` media frame: the μ-law (the frame is
  `telephony.twilio.build_media` of the call's stream);
* 3 `CALLER_AUDIO_SENT` — caller audio sent to Live, only what the replay compares:
  `u32 rate_hz, u32 samples, f64 sum of squares`;
* 4 `LIVE_AUDIO` — PCM16LE of an audio part of a `live_in` message, whose `inlineData` says
  `"ref": N` (the record's index) instead of carrying `data`.

Every JSONL line of format 2 carries `a`, the number of audio records written before it, so
reading merges both files back into one sequence of events in the order the gateway saw
them. `read_recording` returns format 2 events in format 1's shape (a frame as text, Live
audio as base64), except caller audio sent to Live, which is `audio_energy: [samples, sum of
squares]` with `rate_hz`.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import struct
from collections.abc import Callable, Iterator, Mapping
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
from gateway.telephony.twilio import build_media

__all__ = [
    "AUDIO_RECORD",
    "AUDIO_SUFFIX",
    "FORMAT_VERSION",
    "AudioRecordKind",
    "EventKind",
    "RecordedEvent",
    "Recording",
    "RecordingFormatError",
    "encode_event",
    "read_recording",
    "server_message_to_wire",
]

FORMAT_VERSION = 2
AUDIO_SUFFIX = ".audio"
"""The side file of a format-2 recording: `<stem>.audio` beside `<stem>.jsonl`."""
AUDIO_RECORD = struct.Struct("<BdI")
"""An audio record's header: kind, t (seconds, as the JSONL's `t`), body length in bytes."""
CALLER_MEDIA_HEAD = struct.Struct("<HH")
CALLER_AUDIO_SENT = struct.Struct("<IId")


class AudioRecordKind:
    CALLER_MEDIA = 1
    AGENT_MEDIA = 2
    CALLER_AUDIO_SENT = 3
    LIVE_AUDIO = 4


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


def server_message_to_wire(
    message: ServerMessage, audio_ref: Callable[[bytes], int] | None = None
) -> dict[str, Any]:
    """A parsed Live server message back in wire form (camelCase, audio base64).

    `parse_server_message(encode_message(server_message_to_wire(m)))` equals `m` except for
    `unknown_fields`, which the parser does not keep. With `audio_ref` each audio chunk is
    handed to it and the part says `"ref": <what it returned>` instead of carrying `data`
    (format 2: the audio goes to the side file).
    """
    wire: dict[str, Any] = {}
    if message.setup_complete:
        wire["setupComplete"] = {}
    content: dict[str, Any] = {}
    mime = f"audio/pcm;rate={message.audio_rate_hz}"
    parts: list[dict[str, Any]] = [
        {"inlineData": {"mimeType": mime, "ref": audio_ref(chunk)}}
        if audio_ref is not None
        else {"inlineData": {"mimeType": mime, "data": base64.b64encode(chunk).decode("ascii")}}
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
    """Load and check a `.jsonl` (or gzipped `.jsonl.gz`) recording, with its `.audio` side
    file when it has one (format 2); RecordingFormatError names the bad line or record."""
    path = Path(path)
    text = _read_text(path)
    lines: list[tuple[str, dict[str, Any]]] = []
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
        lines.append((where, obj))
    if not lines:
        raise RecordingFormatError(f"{path}: empty recording")
    has_audio_file = any("a" in obj for _, obj in lines)
    records = _read_audio_records(audio_path_for(path)) if has_audio_file else []
    stream_sid = next(
        (
            obj.get("stream_sid")
            for _, obj in lines
            if obj.get("kind") == EventKind.CALL_STARTED and isinstance(obj.get("stream_sid"), str)
        ),
        None,
    )
    events: list[RecordedEvent] = []
    next_record = 0

    def audio_events_until(count: int, where: str) -> None:
        nonlocal next_record
        if count > len(records):
            raise RecordingFormatError(f"{where}: refers to audio record #{count - 1}, the "
                                       f"audio file has {len(records)}")
        while next_record < count:
            event = _audio_event(records[next_record], stream_sid, next_record)
            next_record += 1
            if event is not None:
                events.append(RecordedEvent(len(events), event[0], event[1], event[2]))

    for where, obj in lines:
        if has_audio_file:
            count = obj.pop("a", None)
            if not isinstance(count, int) or isinstance(count, bool) or count < next_record:
                raise RecordingFormatError(f"{where}: `a` must count the audio records so far")
            audio_events_until(count, where)
        t = obj.pop("t", None)
        kind = obj.pop("kind", None)
        if not isinstance(t, int | float) or isinstance(t, bool):
            raise RecordingFormatError(f"{where}: `t` must be a number of seconds, got {t!r}")
        if kind not in _KINDS:
            raise RecordingFormatError(f"{where}: unknown event kind {kind!r}")
        if kind == EventKind.LIVE_IN and has_audio_file:
            _inline_live_audio(where, obj, records)
        _check_fields(where, kind, obj)
        events.append(RecordedEvent(len(events), float(t), kind, obj))
    audio_events_until(len(records), f"{path}")
    return Recording(path, tuple(events))


def audio_path_for(path: Path) -> Path:
    """The side file of the recording at `path` (`x.jsonl` → `x.audio`, `x.jsonl.gz` →
    `x.audio.gz`)."""
    name = path.name
    if name.endswith(".jsonl.gz"):
        return path.with_name(name[: -len(".jsonl.gz")] + AUDIO_SUFFIX + ".gz")
    return path.with_name(name.removesuffix(".jsonl") + AUDIO_SUFFIX)


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
        if data[:2] == _GZIP_MAGIC:
            data = gzip.decompress(data)
        return data.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise RecordingFormatError(f"{path}: cannot read: {exc}") from None


_AudioRecord = tuple[int, float, bytes]


def _read_audio_records(path: Path) -> list[_AudioRecord]:
    try:
        data = path.read_bytes()
        if data[:2] == _GZIP_MAGIC:
            data = gzip.decompress(data)
    except (OSError, EOFError) as exc:
        raise RecordingFormatError(f"{path}: cannot read the audio of a format-2 recording: "
                                   f"{exc}") from None
    return list(_audio_records(path, data))


def _audio_records(path: Path, data: bytes) -> Iterator[_AudioRecord]:
    offset = 0
    index = 0
    while offset < len(data):
        if offset + AUDIO_RECORD.size > len(data):
            raise RecordingFormatError(f"{path}: audio record #{index} is cut short")
        kind, t, length = AUDIO_RECORD.unpack_from(data, offset)
        offset += AUDIO_RECORD.size
        if offset + length > len(data):
            raise RecordingFormatError(f"{path}: audio record #{index} is cut short")
        yield kind, t, data[offset : offset + length]
        offset += length
        index += 1


def _audio_event(
    record: _AudioRecord, stream_sid: str | None, index: int
) -> tuple[float, str, dict[str, Any]] | None:
    """The event an audio record stands for, in format 1's shape (None: Live audio, which
    belongs to its `live_in` line)."""
    kind, t, body = record
    if kind == AudioRecordKind.CALLER_MEDIA:
        head_len, tail_len = CALLER_MEDIA_HEAD.unpack_from(body)
        start = CALLER_MEDIA_HEAD.size
        head = body[start : start + head_len].decode("utf-8")
        tail = body[start + head_len : start + head_len + tail_len].decode("utf-8")
        mulaw = body[start + head_len + tail_len :]
        payload = binascii.b2a_base64(mulaw, newline=False).decode("ascii")
        return t, EventKind.TWILIO_IN, {"frame": head + payload + tail}
    if kind == AudioRecordKind.AGENT_MEDIA:
        if stream_sid is None:
            raise RecordingFormatError(f"audio record #{index}: agent audio before call_started")
        return t, EventKind.TWILIO_OUT, {"frame": build_media(stream_sid, body)}
    if kind == AudioRecordKind.CALLER_AUDIO_SENT:
        rate_hz, samples, sum_squares = CALLER_AUDIO_SENT.unpack(body)
        return t, EventKind.LIVE_OUT, {"audio_energy": [samples, sum_squares], "rate_hz": rate_hz}
    if kind == AudioRecordKind.LIVE_AUDIO:
        return None
    raise RecordingFormatError(f"audio record #{index}: unknown kind {kind}")


def _inline_live_audio(where: str, obj: Mapping[str, Any], records: list[_AudioRecord]) -> None:
    """Put each referenced Live audio record back into its part as base64 `data`."""
    message = obj.get("message")
    content = message.get("serverContent") if isinstance(message, dict) else None
    turn = content.get("modelTurn") if isinstance(content, dict) else None
    parts = turn.get("parts") if isinstance(turn, dict) else None
    for part in parts if isinstance(parts, list) else ():
        inline = part.get("inlineData") if isinstance(part, dict) else None
        if not isinstance(inline, dict) or "ref" not in inline:
            continue
        ref = inline.pop("ref")
        if not isinstance(ref, int) or not 0 <= ref < len(records):
            raise RecordingFormatError(f"{where}: audio `ref` {ref!r} is not an audio record")
        if records[ref][0] != AudioRecordKind.LIVE_AUDIO:
            raise RecordingFormatError(f"{where}: audio `ref` {ref} is not Live audio")
        inline["data"] = base64.b64encode(records[ref][2]).decode("ascii")


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
        if "audio_energy" in obj:
            energy = obj["audio_energy"]
            if not (
                isinstance(energy, list)
                and len(energy) == 2
                and isinstance(obj.get("rate_hz"), int)
            ):
                raise RecordingFormatError(
                    f"{where}: live_out audio_energy needs [samples, sum of squares] and rate_hz"
                )
        elif "audio" in obj:
            if not isinstance(obj["audio"], str) or not isinstance(obj.get("rate_hz"), int):
                raise RecordingFormatError(
                    f"{where}: live_out audio needs `audio` (base64) and `rate_hz` (int)"
                )
        elif not isinstance(obj.get("message"), dict):
            raise RecordingFormatError(f"{where}: live_out needs `audio` or a `message` object")
    elif kind == EventKind.LIVE_IN and not isinstance(obj.get("message"), dict):
        raise RecordingFormatError(f"{where}: live_in needs a `message` object")
