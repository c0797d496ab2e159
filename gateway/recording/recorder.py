"""The call recorder: every event of a call, both directions, to `RECORDINGS_DIR`.

Per recorded call four files share one name (`20251125T142700Z-CA123….*`):
`.jsonl` (every event, see `format`), `.audio` (the audio of those events, raw, once per
direction), `.wav` (stereo: caller left, agent right, as the caller heard it, see `audio`) and
`.txt` (the transcript).

`CallRecorder` is a `CallObserver`, attached to every call; it switches itself on in
`call_started` when the agent's `recording` is on (or `RECORD_CALLS=all`). Its hooks run on the
call's hot path, so they only append to a bounded in-memory queue; a writer task hands batches
to a worker thread every FLUSH_INTERVAL_S, which serialises and writes them. A full queue (the
disk cannot keep up) or a write error (full disk, permissions) stops the recording of that call
with one log line; the call never notices.

What a caller sends is bounded before it reaches the disk: a call's files stop growing at
`MAX_RECORDING_BYTES_PER_CALL` (the recording then ends with `recording_stopped`, still
readable and replayable), and junk frames — malformed, or of a kind Twilio never sends — are
kept as their first JUNK_FRAME_CHARS with their length (`truncated_from`), not in full.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import json
import re
import struct
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import numpy as np
import structlog
from aiohttp import web

from gateway import gateway_version
from gateway.audio.codec import MULAW_RATE_HZ, PhoneAudio, UnsupportedStreamFormat
from gateway.call.hooks import CallObserver, CallView
from gateway.live.protocol import FunctionCall, FunctionResponse, ServerMessage
from gateway.recording.audio import StereoCallMixer
from gateway.recording.format import (
    AUDIO_RECORD,
    AUDIO_SUFFIX,
    CALLER_AUDIO_SENT,
    CALLER_MEDIA_HEAD,
    FORMAT_VERSION,
    AudioRecordKind,
    EventKind,
    encode_event,
    server_message_to_wire,
)
from gateway.recording.transcript import TranscriptBuilder
from gateway.telephony.base import (
    Dtmf,
    MediaFrame,
    MediaStreamCodec,
    StreamStop,
    TelephonyProtocolError,
    UnknownEvent,
)
from gateway.telephony.carrier import L16, MULAW
from gateway.telephony.twilio import (
    MAX_FRAME_CHARS,
    MAX_STREAMING_FRAME_CHARS,
    TwilioCodec,
    build_media,
)

if TYPE_CHECKING:
    from gateway.call.outcome import CallStats, EndReason
    from gateway.settings import Settings

__all__ = [
    "DEFAULT_MAX_RECORDING_BYTES",
    "JUNK_FRAME_CHARS",
    "MAX_QUEUED_EVENTS",
    "RECORDINGS",
    "CallRecorder",
    "RecordCalls",
    "RecordingFiles",
    "RecordingSink",
    "Recordings",
    "add_recordings",
]

log = structlog.get_logger("gateway.recording")

MAX_QUEUED_EVENTS: Final = 4096
"""Events waiting for the writer (≈ 20 s of a busy call, a few MB); more stops the recording."""
FLUSH_INTERVAL_S: Final = 0.5
"""The writer wakes at most this often (or when FLUSH_EVENTS are waiting, or the call ends):
one hand-off to the worker thread per half second of a call, not one per event (a thread
hand-off wakes the loop and the thread, which cost more than writing the events)."""
FLUSH_EVENTS: Final = 512
"""Events that wake the writer before FLUSH_INTERVAL_S (a burst, e.g. a long Live reply)."""
MAX_EVENTS_BEFORE_START: Final = 64
"""Frames kept from before `start` (normally `connected` and `start`), oldest dropped first."""
MAX_CHARS_BEFORE_START: Final = 64 * 1024
"""…and at most this much of them (a `start` is up to 32 KiB), oldest dropped first."""
DEFAULT_MAX_RECORDING_BYTES: Final = 256 * 1024 * 1024
"""MAX_RECORDING_BYTES_PER_CALL's default: a call-minute in which the agent never stops talking
is ~6 MiB (JSONL and audio ~4.3, most of it Live's 24 kHz audio; WAV ~1.8), so ~40 minutes."""
JUNK_FRAME_CHARS: Final = 256
"""A junk caller frame is recorded as its first this many chars (bytes, if binary)."""
MAX_BYTES_REASON: Final = "max_bytes"
"""`recording_stopped` / `recording_disabled` reason: the call's byte budget is spent."""
_TOOL_TEXT_CHARS: Final = 200


class RecordCalls(StrEnum):
    """The `RECORD_CALLS` setting: which calls are recorded."""

    AGENT = "agent"
    """As the agent's `recording` field says (default)."""
    ALL = "all"
    """Every call, whatever the agent says (debugging, making test fixtures)."""
    OFF = "off"
    """None (replays, or a gateway that must not keep audio)."""


@dataclass(frozen=True)
class RecordingFiles:
    """Where one call's recording went."""

    jsonl: Path
    wav: Path
    txt: Path
    complete: bool
    """False when the recording was stopped early (queue full or write error)."""
    audio: Path | None = None
    """The format-2 side file holding the call's audio (gateway.recording.format)."""


# An event on its way to the writer: (seconds since the call's first frame, kind, payload).
_Item = tuple[float, EventKind, Any]


@dataclass(frozen=True, slots=True)
class _Truncated:
    """A caller frame too big to be anything but junk, cut in the hook (bounded queue)."""

    head: str | bytes
    length: int


def _junk_fields(frame: str | bytes, length: int) -> dict[str, Any]:
    """How a junk frame is recorded: its head, and how long it was."""
    head = frame[:JUNK_FRAME_CHARS]
    if isinstance(head, bytes):
        return {"frame_b64": base64.b64encode(head).decode("ascii"), "truncated_from": length}
    return {"frame": head, "truncated_from": length}


def _size(payload: Any) -> int:
    """Roughly what an early (pre-`start`) event holds in memory, in chars."""
    if isinstance(payload, str | bytes):
        return len(payload)
    if isinstance(payload, _Truncated):
        return len(payload.head)
    return JUNK_FRAME_CHARS  # an error event (its detail is clipped by the call)


class RecordingSink:
    """Writes one call's files, a batch at a time, from a worker thread (never the loop).

    Opens nothing until the first batch, so a call that is not recorded costs no file.
    With `max_bytes` (0: no limit) the JSONL and the WAV together stop growing at that size:
    `full` is set and later events are not written (the final `recording_stopped` line and
    the transcript come on top).
    """

    def __init__(
        self,
        directory: Path,
        stem: str,
        *,
        max_bytes: int = 0,
        codec: MediaStreamCodec | None = None,
    ) -> None:
        self.directory = directory
        self.stem = stem
        self._codec: MediaStreamCodec = codec or TwilioCodec()
        """The carrier's codec, this writer's own: frames are parsed in the order they came."""
        self._twilio = isinstance(self._codec, TwilioCodec)
        """Outbound media kept as its μ-law (AGENT_MEDIA records) is rebuilt as Twilio frames;
        other carriers' frames out stay JSONL text (their audio still reaches the WAV)."""
        self._clear_frame: str | bytes | None = None
        self._caller_audio = _MULAW_AUDIO
        self._agent_audio = _MULAW_AUDIO
        """The stream's format → the WAV mixer's 8 kHz μ-law, per direction (L16 at 16 kHz
        keeps filter history); set from the stream's start."""
        self.max_bytes = max_bytes
        self.full = False
        """The byte budget is spent; nothing more is written but the closing line."""
        self._jsonl: IO[str] | None = None
        self._jsonl_bytes = 0
        self._audio: IO[bytes] | None = None
        self._audio_out = bytearray()
        """Audio records of the batch being written (one write per batch)."""
        self._audio_bytes = 0
        self._audio_records = 0
        self._energy_due: list[tuple[int, bytes]] = []
        """(offset in the batch's audio, PCM) of caller-audio records whose loudness is still
        to be filled in: computed for the whole batch in one numpy call, not one per chunk."""
        self._agent_media_head: str | None = None
        """Everything of this call's outbound media frames before the payload."""
        self._mixer: StereoCallMixer | None = None
        self._transcript = TranscriptBuilder()
        self._files: RecordingFiles | None = None
        self._last_t = 0.0

    def write(self, batch: list[_Item]) -> None:
        if self._jsonl is None:
            self._open()
        assert self._jsonl is not None and self._mixer is not None
        assert self._audio is not None
        lines = []
        audio = self._audio_out
        for t, kind, payload in batch:
            if self.full:
                break
            if self.max_bytes:
                self._mixer.room_bytes = self._room()
            undo = (len(audio), self._audio_records, self._audio_bytes)
            fields = self._fields(t, kind, payload)
            size = 0
            if fields is not None:
                fields["a"] = self._audio_records
                line = encode_event(t, kind, fields)
                # Bytes on disk; nearly every line is ASCII, counted without a copy.
                size = (len(line) if line.isascii() else len(line.encode("utf-8"))) + 1
            if self.max_bytes and size > self._room():
                del audio[undo[0] :]  # the event's audio records go with it
                self._audio_records, self._audio_bytes = undo[1], undo[2]
                self.full = True
                break
            self._last_t = t
            if fields is not None:
                self._jsonl_bytes += size
                lines.append(line)
        if self._energy_due:
            self._fill_energies(audio)
        if audio:
            self._audio.write(audio)
            self._audio.flush()
            audio.clear()
        if lines:
            self._jsonl.write("\n".join(lines) + "\n")
            self._jsonl.flush()

    def _room(self) -> int:
        """Bytes the budget still allows, JSONL, audio and WAV together."""
        assert self._mixer is not None
        return self.max_bytes - self._jsonl_bytes - self._audio_bytes - self._mixer.bytes_written

    def _fill_energies(self, audio: bytearray) -> None:
        """Write the sum of squares into each caller-audio record of the batch."""
        due = [(offset, pcm) for offset, pcm in self._energy_due if offset < len(audio)]
        self._energy_due.clear()
        sizes = {len(pcm) for _, pcm in due}
        if len(sizes) == 1 and (size := sizes.pop()) >= 2:  # the usual case: 20 ms chunks
            rows = np.frombuffer(b"".join(pcm for _, pcm in due), dtype="<i2")
            rows = rows[: len(due) * (size // 2)].reshape(len(due), size // 2).astype(np.float64)
            energies = np.einsum("ij,ij->i", rows, rows).tolist()
        else:
            energies = []
            for _, pcm in due:
                samples = np.frombuffer(pcm, dtype="<i2", count=len(pcm) // 2).astype(np.float64)
                energies.append(float(np.dot(samples, samples)))
        for (offset, _), energy in zip(due, energies, strict=True):
            _ENERGY.pack_into(audio, offset, energy)

    def _audio_record(self, kind: int, t: float, body: bytes | bytearray) -> int:
        """Append one audio record to the batch; returns its index in the side file."""
        self._audio_out += AUDIO_RECORD.pack(kind, t, len(body))
        self._audio_out += body
        self._audio_bytes += AUDIO_RECORD.size + len(body)
        index = self._audio_records
        self._audio_records += 1
        return index

    def finish(self, stopped_reason: str | None) -> RecordingFiles:
        """Close the JSONL (noting an early stop), finish the WAV, write the transcript."""
        if self._jsonl is None:
            self._open()
        assert self._jsonl is not None and self._files is not None and self._mixer is not None
        if stopped_reason is not None:
            fields: dict[str, Any] = {"reason": stopped_reason}
            if stopped_reason == MAX_BYTES_REASON:
                fields["max_bytes"] = self.max_bytes
            fields["a"] = self._audio_records
            stopped = encode_event(self._last_t, EventKind.RECORDING_STOPPED, fields)
            self._jsonl.write(stopped + "\n")
        self._jsonl.close()
        if self._audio is not None:
            self._audio.close()
        if self.max_bytes:
            self._mixer.room_bytes = self._room()
        self._mixer.close()
        self._files.txt.write_text(self._transcript.render(), encoding="utf-8")
        return dataclasses.replace(self._files, complete=stopped_reason is None)

    def abort(self) -> None:
        """Close whatever is open, quietly (the disk already failed once)."""
        if self._mixer is not None:
            self._mixer.abort()
        for file in (self._jsonl, self._audio):
            if file is not None:
                with contextlib.suppress(Exception):
                    file.close()

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 1000):
            stem = self.stem if attempt == 1 else f"{self.stem}-{attempt}"
            path = self.directory / f"{stem}.jsonl"
            try:
                self._jsonl = path.open("x", encoding="utf-8")
            except FileExistsError:
                continue
            audio_path = path.with_suffix(AUDIO_SUFFIX)
            self._audio = audio_path.open("xb")
            self._files = RecordingFiles(
                jsonl=path,
                wav=path.with_suffix(".wav"),
                txt=path.with_suffix(".txt"),
                complete=False,
                audio=audio_path,
            )
            self._mixer = StereoCallMixer(self._files.wav)
            return
        raise FileExistsError(f"{self.directory}: too many recordings named {self.stem}")

    # ------------------------------------------------------------------ one event

    def _fields(self, t: float, kind: EventKind, payload: Any) -> dict[str, Any] | None:
        """An event's JSONL fields, or None when it went to the audio file whole."""
        if kind is EventKind.TWILIO_IN:
            if isinstance(payload, tuple):  # (frame, the call's parse of it)
                frame, media = payload
                if self._caller_media(t, frame, media):
                    return None
                payload = frame
            if isinstance(payload, _Truncated):
                return _junk_fields(payload.head, payload.length)
            if self._caller_frame(t, payload) and len(payload) > JUNK_FRAME_CHARS:
                return _junk_fields(payload, len(payload))
            if isinstance(payload, bytes):
                return {"frame_b64": base64.b64encode(payload).decode("ascii")}
            return {"frame": payload}
        if kind is EventKind.TWILIO_OUT:
            if isinstance(payload, tuple):  # (frame, the audio the call built it from)
                frame, audio = payload
                if isinstance(frame, str) and self._built_agent_media(t, frame, audio):
                    return None
                if not self._twilio:  # another carrier's frame: kept whole, its audio heard
                    assert self._mixer is not None
                    self._mixer.agent_audio(self._agent_audio.to_mulaw(audio))
                    return _frame_fields(frame)
                payload = frame
            if isinstance(payload, str) and self._agent_media(t, payload):
                return None
            self._agent_frame(payload)
            return _frame_fields(payload)
        if kind is EventKind.LIVE_OUT:
            if isinstance(payload, tuple):
                pcm16le, rate_hz = payload
                body = CALLER_AUDIO_SENT.pack(rate_hz, len(pcm16le) // 2, 0.0)
                self._audio_record(AudioRecordKind.CALLER_AUDIO_SENT, t, body)
                offset = len(self._audio_out) - _ENERGY.size  # the body ends in its energy
                self._energy_due.append((offset, pcm16le))
                return None
            return {"message": dict(payload)}
        if kind is EventKind.LIVE_IN:
            self._live_message(t, payload)

            def live_audio(chunk: bytes) -> int:
                return self._audio_record(AudioRecordKind.LIVE_AUDIO, t, chunk)

            return {"message": server_message_to_wire(payload, audio_ref=live_audio)}
        if kind is EventKind.TOOL_CALL:
            call: FunctionCall = payload
            args = json.dumps(call.args, separators=(",", ":"), ensure_ascii=False)
            self._transcript.note(t, f"tool: {call.name} {_clip(args)}")
            return {"id": call.id, "name": call.name, "args": call.args}
        if kind is EventKind.TOOL_RESULT:
            response, duration_s, outcome = payload
            text = json.dumps(response.response, separators=(",", ":"), ensure_ascii=False)
            self._transcript.note(
                t, f"tool: {response.name} -> {outcome} in {duration_s:.3f} s: {_clip(text)}"
            )
            return {
                "id": response.id,
                "name": response.name,
                "response": response.response,
                "duration_s": round(duration_s, 6),
                "outcome": outcome,
            }
        if kind is EventKind.BARGE_IN:
            self._transcript.note(t, "(barge-in: the caller talked over the agent)")
            self._transcript.end_turn("agent")
            return {"frames_dropped": payload}
        if kind is EventKind.ERROR:
            error, detail = payload
            self._transcript.note(t, f"(error: {error}: {_clip(detail)})")
            return {"error": error, "detail": detail}
        if kind is EventKind.LIVE_CLOSED:
            return {"code": payload}
        if kind is EventKind.LIVE_RECONNECTED:
            self._transcript.note(t, "(Live reconnected)")
            return {"close_code": payload}
        if kind is EventKind.CALL_STARTED:
            self._transcript.set_header(_transcript_header(payload))
            self._caller_audio, self._agent_audio = _stream_audio(payload)
            stream_sid = payload.get("stream_sid")
            if isinstance(stream_sid, str):
                if self._twilio:
                    self._agent_media_head = build_media(stream_sid, b"")[: -len(_MEDIA_TAIL)]
                self._clear_frame = self._codec.build_clear(stream_sid)
            return dict(payload)
        if kind is EventKind.CALL_ENDED:
            self._transcript.note(t, f"(call ended: {payload['reason']})")
            return dict(payload)
        raise ValueError(f"unexpected event kind {kind}")

    def _caller_media(self, t: float, frame: str | bytes, media: MediaFrame) -> bool:
        """A caller media frame the call parsed, kept as an audio record: its text around the
        payload and the μ-law. False (keep it as a JSONL line) when the payload's base64 is not
        found verbatim in the text (not canonical): the record must rebuild the frame exactly."""
        if not isinstance(frame, str):
            return False
        payload = binascii.b2a_base64(media.payload, newline=False).decode("ascii")
        at = frame.find(payload) if payload else -1
        if at < 0:
            return False
        head = frame[:at].encode("utf-8")
        tail = frame[at + len(payload) :].encode("utf-8")
        if len(head) > 0xFFFF or len(tail) > 0xFFFF:
            return False
        assert self._mixer is not None
        if media.track in ("inbound", "inbound_track", ""):
            self._mixer.caller_audio(self._caller_audio.to_mulaw(media.payload), media.timestamp_ms)
        body = CALLER_MEDIA_HEAD.pack(len(head), len(tail)) + head + tail + media.payload
        self._audio_record(AudioRecordKind.CALLER_MEDIA, t, body)
        return True

    def _built_agent_media(self, t: float, frame: str, mulaw: bytes) -> bool:
        """An outbound media frame with the μ-law the call built it from: kept as that μ-law
        when the frame is this stream's `build_media` shape (checked by length and head, not
        by decoding it again)."""
        head = self._agent_media_head
        if (
            head is None
            or len(frame) != len(head) + 4 * -(-len(mulaw) // 3) + len(_MEDIA_TAIL)
            or not frame.startswith(head)
            or not frame.endswith(_MEDIA_TAIL)
        ):
            return False
        assert self._mixer is not None
        self._mixer.agent_audio(mulaw)
        self._audio_record(AudioRecordKind.AGENT_MEDIA, t, mulaw)
        return True

    def _agent_media(self, t: float, frame: str) -> bool:
        """An outbound media frame (built by `build_media` for this stream) kept as its μ-law."""
        head = self._agent_media_head
        if head is None or not frame.startswith(head) or not frame.endswith(_MEDIA_TAIL):
            return False
        payload = frame[len(head) : -len(_MEDIA_TAIL)]
        try:
            mulaw = binascii.a2b_base64(payload, strict_mode=True)
        except (binascii.Error, ValueError):
            return False
        if binascii.b2a_base64(mulaw, newline=False).decode("ascii") != payload:
            return False  # not canonical: the record could not rebuild it exactly
        assert self._mixer is not None
        self._mixer.agent_audio(mulaw)
        self._audio_record(AudioRecordKind.AGENT_MEDIA, t, mulaw)
        return True

    def _caller_frame(self, t: float, frame: str | bytes) -> bool:
        """Feed the WAV and transcript; True when the frame is junk (malformed or unknown)."""
        assert self._mixer is not None
        try:
            event = self._codec.parse(frame)
        except TelephonyProtocolError:
            return True  # malformed: kept in the JSONL (cut short), not audible
        if isinstance(event, UnknownEvent):
            return True
        if isinstance(event, MediaFrame):
            if event.track in ("inbound", "inbound_track", ""):
                audio = self._caller_audio.to_mulaw(event.payload)
                self._mixer.caller_audio(audio, event.timestamp_ms)
        elif isinstance(event, Dtmf):
            self._transcript.note(t, f"caller pressed {event.digit}")
        elif isinstance(event, StreamStop):
            self._mixer.caller_hung_up()
            self._transcript.note(t, "(caller hung up)")
        return False

    def _agent_frame(self, frame: str | bytes) -> None:
        assert self._mixer is not None
        if frame == self._clear_frame:
            self._mixer.agent_cleared()
            return
        if not self._twilio or not isinstance(frame, str):
            return  # its audio came with `agent_media`; nothing else in it is audible
        try:
            message = json.loads(frame)
            event = message.get("event")
            if event == "media":
                self._mixer.agent_audio(base64.b64decode(message["media"]["payload"]))
            elif event == "clear":
                self._mixer.agent_cleared()
        except (ValueError, KeyError, TypeError, AttributeError):
            return  # not a frame we built; kept in the JSONL only

    def _live_message(self, t: float, message: ServerMessage) -> None:
        if message.input_transcription:
            self._transcript.speech(t, "caller", message.input_transcription)
        if message.output_transcription:
            self._transcript.speech(t, "agent", message.output_transcription)
        if message.turn_complete or message.interrupted:
            self._transcript.end_turn()


_MULAW_AUDIO: Final = PhoneAudio(MULAW, MULAW_RATE_HZ)
"""μ-law streams go to the mixer as they are (stateless, so shared)."""


def _stream_audio(meta: Mapping[str, Any]) -> tuple[PhoneAudio, PhoneAudio]:
    """(caller, agent) converters for the stream `meta` (a call_started payload) describes."""
    encoding, rate_hz = meta.get("encoding"), meta.get("sample_rate_hz")
    if encoding != L16 or not isinstance(rate_hz, int):
        return _MULAW_AUDIO, _MULAW_AUDIO
    try:
        return PhoneAudio(L16, rate_hz), PhoneAudio(L16, rate_hz)
    except UnsupportedStreamFormat:  # the call ends at once; nothing audible to mix
        return _MULAW_AUDIO, _MULAW_AUDIO


def _frame_fields(frame: str | bytes) -> dict[str, Any]:
    """How a whole frame is kept in the JSONL: text as it is, binary as base64."""
    if isinstance(frame, bytes):
        return {"frame_b64": base64.b64encode(frame).decode("ascii")}
    return {"frame": frame}


def _clip(text: str) -> str:
    return text if len(text) <= _TOOL_TEXT_CHARS else text[: _TOOL_TEXT_CHARS - 3] + "..."


def _transcript_header(meta: Mapping[str, Any]) -> str:
    return (
        f"# call {meta.get('call_sid')} · agent {meta.get('agent')} · from {meta.get('from')} "
        f"to {meta.get('to')} · {meta.get('started_at')}"
    )


SinkFactory = Callable[..., RecordingSink]
"""Makes a call's sink: `(directory, stem, *, max_bytes)`, like RecordingSink."""


class Recordings:
    """The recordings of one gateway: where they go, which calls, and writers still running."""

    def __init__(
        self,
        directory: Path,
        mode: RecordCalls = RecordCalls.AGENT,
        *,
        live_input_rate_hz: int = 16000,
        live_backend: str | None = None,
        max_queued_events: int = MAX_QUEUED_EVENTS,
        flush_events: int = FLUSH_EVENTS,
        max_recording_bytes: int = DEFAULT_MAX_RECORDING_BYTES,
        sink_factory: SinkFactory = RecordingSink,
    ) -> None:
        self.directory = directory
        self.mode = mode
        self.live_input_rate_hz = live_input_rate_hz
        self.live_backend = live_backend
        self.max_queued_events = max_queued_events
        self.flush_events = flush_events
        """Queued events that wake the writer at once (1: every event, as tests want)."""
        self.max_recording_bytes = max_recording_bytes
        """Per call, JSONL, audio and WAV together (0: no limit): MAX_RECORDING_BYTES_PER_CALL."""
        self.sink_factory = sink_factory
        self.written: list[RecordingFiles] = []
        """Recordings finished by this gateway, oldest first (complete or stopped early)."""
        self.on_written: list[Callable[[RecordingFiles], None]] = []
        """Called with each recording as it is finished, right after it joins `written`."""
        self._writers: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> Recordings:
        return cls(
            settings.recordings_dir,
            RecordCalls(settings.record_calls),
            live_input_rate_hz=settings.live_input_rate_hz,
            live_backend=settings.backend.value,
            max_recording_bytes=settings.max_recording_bytes_per_call,
        )

    def recorder(
        self, carrier: str = "twilio", codec: MediaStreamCodec | None = None
    ) -> CallRecorder:
        """A fresh observer for one call on `carrier` (inert unless the call is recorded).
        `codec`: a codec of that carrier for the writer alone (it parses the frames the call
        did not hand over parsed, on the worker thread; never the call's own instance)."""
        return CallRecorder(self, carrier, codec or TwilioCodec())

    def wants(self, agent: object) -> bool:
        """Whether a call answered by `agent` is recorded."""
        if self.mode is RecordCalls.ALL:
            return True
        if self.mode is RecordCalls.OFF:
            return False
        return getattr(agent, "recording", False) is True

    async def wait_idle(self) -> None:
        """Until every recording started so far is written (or given up)."""
        while self._writers:
            await asyncio.wait(list(self._writers))

    async def aclose(self, timeout_s: float = 10.0) -> None:
        """At shutdown: let writers finish for up to `timeout_s`, then cut them short."""
        if not self._writers:
            return
        _, pending = await asyncio.wait(list(self._writers), timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    def _track(self, task: asyncio.Task[None]) -> None:
        self._writers.add(task)
        task.add_done_callback(self._writers.discard)


RECORDINGS = web.AppKey("recordings", Recordings)


def add_recordings(app: web.Application, settings: Settings) -> Recordings:
    """Give the app its `Recordings` (app[RECORDINGS]); unfinished files are completed at
    cleanup (bounded), so a shutdown right after a call still leaves a whole recording."""
    recordings = Recordings.from_settings(settings)
    app[RECORDINGS] = recordings

    async def finish_writing(_: web.Application) -> None:
        await recordings.aclose()

    app.on_cleanup.append(finish_writing)
    if settings.recordings_url:  # uploads each finished recording; stops after the writers
        from gateway.recording.upload import add_uploader

        recordings.on_written.append(add_uploader(app, settings).recording_written)
    return recordings


class _State(StrEnum):
    WAITING = "waiting"  # before `call_started`: frames kept in case the call is recorded
    ON = "on"
    OFF = "off"


class CallRecorder(CallObserver):
    """Records one call (see the module docstring). Hooks only enqueue; they never block."""

    def __init__(
        self, recordings: Recordings, carrier: str = "twilio", codec: MediaStreamCodec | None = None
    ) -> None:
        self._recordings = recordings
        self._carrier = carrier
        self._codec = codec or TwilioCodec()
        self._state = _State.WAITING
        self._t0: float | None = None
        self._early: deque[_Item] = deque()
        self._early_chars = 0
        self._pending: list[_Item] = []
        self._wakeup = asyncio.Event()
        self._closing = False
        self._stopped_reason: str | None = None
        self._sink: RecordingSink | None = None
        self._log = log
        self.files: RecordingFiles | None = None
        """Set once the recording is written."""
        self.done = asyncio.Event()
        """Set when the writer has finished (written, stopped, or never started)."""

    @property
    def recording(self) -> bool:
        return self._state is _State.ON

    # ------------------------------------------------------------------ hooks (hot path)

    def _push(self, kind: EventKind, payload: Any) -> None:
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        item = (now - self._t0, kind, payload)
        if self._state is _State.WAITING:
            self._keep_early(item)
            return
        pending = self._pending
        pending.append(item)
        if len(pending) > self._recordings.max_queued_events:
            self._stop("queue_full", queued_events=len(pending))
        elif len(pending) >= self._recordings.flush_events and not self._wakeup.is_set():
            self._wakeup.set()

    def _keep_early(self, item: _Item) -> None:
        """Before `start`: keep the latest frames, bounded in count and in size."""
        early = self._early
        early.append(item)
        self._early_chars += _size(item[2])
        while len(early) > 1 and (
            len(early) > MAX_EVENTS_BEFORE_START or self._early_chars > MAX_CHARS_BEFORE_START
        ):
            self._early_chars -= _size(early.popleft()[2])

    def carrier_in(self, frame: str | bytes) -> None:
        state = self._state
        if state is _State.OFF:
            return
        # Bigger than any frame Twilio sends (after `start`, than any but `start`): junk,
        # cut here so the queue holds no more than its head.
        limit = MAX_STREAMING_FRAME_CHARS if state is _State.ON else _MAX_START_FRAME_CHARS
        if len(frame) > limit:
            self._push(EventKind.TWILIO_IN, _Truncated(frame[:JUNK_FRAME_CHARS], len(frame)))
        else:
            self._push(EventKind.TWILIO_IN, frame)

    def caller_media(self, frame: MediaFrame) -> None:
        """The call's parse of the frame just recorded: the writer then keeps it compactly."""
        if self._state is _State.ON and self._pending:
            t, kind, raw = self._pending[-1]
            if kind is EventKind.TWILIO_IN and isinstance(raw, str):
                self._pending[-1] = (t, kind, (raw, frame))

    def carrier_out(self, frame: str | bytes) -> None:
        if self._state is _State.ON:
            self._push(EventKind.TWILIO_OUT, frame)

    def agent_media(self, mulaw: bytes) -> None:
        """The μ-law of the media frame just recorded: the writer keeps it without decoding."""
        if self._state is _State.ON and self._pending:
            t, kind, raw = self._pending[-1]
            if kind is EventKind.TWILIO_OUT and isinstance(raw, str | bytes):
                self._pending[-1] = (t, kind, (raw, mulaw))

    def live_out(self, message: Mapping[str, Any]) -> None:
        if self._state is _State.ON:
            self._push(EventKind.LIVE_OUT, message)

    def live_audio_out(self, pcm16le: bytes, rate_hz: int) -> None:
        if self._state is _State.ON:
            self._push(EventKind.LIVE_OUT, (pcm16le, rate_hz))

    def live_in(self, message: ServerMessage) -> None:
        if self._state is _State.ON:
            self._push(EventKind.LIVE_IN, message)

    def barge_in(self, frames_dropped: int) -> None:
        if self._state is _State.ON:
            self._push(EventKind.BARGE_IN, frames_dropped)

    def tool_call(self, call: FunctionCall) -> None:
        if self._state is _State.ON:
            self._push(EventKind.TOOL_CALL, call)

    def tool_result(self, response: FunctionResponse, duration_s: float, outcome: str) -> None:
        if self._state is _State.ON:
            self._push(EventKind.TOOL_RESULT, (response, duration_s, outcome))

    def error(self, kind: str, detail: str) -> None:
        if self._state is not _State.OFF:
            self._push(EventKind.ERROR, (kind, detail))

    def live_closed(self, code: int | None) -> None:
        if self._state is _State.ON:
            self._push(EventKind.LIVE_CLOSED, code)

    def live_reconnected(self, close_code: int | None) -> None:
        if self._state is _State.ON:
            self._push(EventKind.LIVE_RECONNECTED, close_code)

    # ------------------------------------------------------------------ start and end

    def call_started(self, call: CallView) -> None:
        early = list(self._early)
        self._early.clear()
        self._early_chars = 0
        if not self._recordings.wants(call.agent) or call.start is None:
            self._state = _State.OFF
            self.done.set()
            return
        start = call.start
        params = dict(start.custom_parameters)
        started_at = datetime.now(UTC)
        self._log = log.bind(call_sid=start.call_sid, stream_sid=start.stream_sid)
        meta = {
            "format": FORMAT_VERSION,
            "carrier": self._carrier,
            "call_sid": start.call_sid,
            "stream_sid": start.stream_sid,
            "account_sid": start.account_sid,
            "agent": getattr(call.agent, "name", None),
            "from": params.get("from"),
            "to": params.get("to"),
            "custom_parameters": params,
            "encoding": start.encoding,
            "sample_rate_hz": start.sample_rate_hz,
            "live_input_rate_hz": self._recordings.live_input_rate_hz,
            "live_backend": self._recordings.live_backend,
            "live_model": call.session.model if call.session is not None else None,
            "live_dialect": call.session.backend.value if call.session is not None else None,
            "gateway_version": gateway_version(),
            "started_at": started_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        self._pending = early
        self._state = _State.ON
        self._push(EventKind.CALL_STARTED, meta)
        stem = f"{started_at:%Y%m%dT%H%M%SZ}-{_safe(start.call_sid or start.stream_sid)}"
        self._sink = self._recordings.sink_factory(
            self._recordings.directory,
            stem,
            max_bytes=self._recordings.max_recording_bytes,
            codec=self._codec,
        )
        task = asyncio.get_running_loop().create_task(
            self._write_loop(self._sink), name=f"recording-{start.call_sid}"
        )
        self._recordings._track(task)
        self._log.info("recording_started", directory=str(self._recordings.directory), stem=stem)

    def call_ended(self, reason: EndReason, stats: CallStats) -> None:
        if self._state is _State.WAITING:
            self._state = _State.OFF
            self.done.set()
        if self._state is not _State.ON:
            return
        counts = {k: v for k, v in dataclasses.asdict(stats).items() if k != "started_monotonic"}
        now = time.monotonic()
        duration_s = now - self._t0 if self._t0 is not None else 0.0
        self._push(
            EventKind.CALL_ENDED,
            {"reason": str(reason), "duration_s": round(duration_s, 3), "stats": counts},
        )
        self._closing = True
        self._wakeup.set()

    def _stop(self, reason: str, **fields: Any) -> None:
        """Stop recording this call (one log line); the writer closes the files."""
        if self._state is not _State.ON:
            return
        self._state = _State.OFF
        self._stopped_reason = reason
        self._pending = []
        self._closing = True
        self._wakeup.set()
        # A spent budget is policy, not a failure.
        emit = self._log.warning if reason == MAX_BYTES_REASON else self._log.error
        emit("recording_disabled", reason=reason, **fields)

    # ------------------------------------------------------------------ writer (off the hot path)

    async def _write_loop(self, sink: RecordingSink) -> None:
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(FLUSH_INTERVAL_S):
                        await self._wakeup.wait()
                self._wakeup.clear()
                batch, self._pending = self._pending, []
                if batch and self._stopped_reason is None:
                    await asyncio.to_thread(sink.write, batch)
                    if sink.full:
                        self._stop(MAX_BYTES_REASON, max_bytes=sink.max_bytes)
                if self._closing and not self._pending:
                    break
            files = await asyncio.to_thread(sink.finish, self._stopped_reason)
        except asyncio.CancelledError:
            sink.abort()
            raise
        except Exception as exc:
            if self._state is _State.ON:
                self._stop("write_failed", error=repr(exc))
            await asyncio.to_thread(sink.abort)
            return
        else:
            self.files = files
            self._recordings.written.append(files)
            for callback in self._recordings.on_written:
                callback(files)
            if files.complete:
                self._log.info("recording_written", jsonl=str(files.jsonl))
        finally:
            self.done.set()


_ENERGY: Final = struct.Struct("<d")
"""The last field of a CALLER_AUDIO_SENT body (format.CALLER_AUDIO_SENT): filled in per batch."""
_MEDIA_TAIL: Final = '"}}'
"""What follows the payload in an outbound media frame (`telephony.twilio.build_media`)."""
_MAX_START_FRAME_CHARS: Final = max(MAX_STREAMING_FRAME_CHARS, *MAX_FRAME_CHARS.values())
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name)[:64] or "call"
