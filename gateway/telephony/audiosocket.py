"""Asterisk's AudioSocket (TCP): a sans-IO codec for its frames, and a `CallerTransport` over
asyncio streams that paces what we send.

The dialplan's `AudioSocket(uuid,host:port)` (or `Dial(AudioSocket/host:port/uuid)`, or ARI
externalMedia) connects to us; every message is a 3-byte header, kind (1 byte) and payload
length (2 bytes, big-endian), then the payload:

* `0x00` hang-up (no payload; closing the socket is enough too);
* `0x01` the call's UUID, 16 bytes binary: always the first frame Asterisk sends;
* `0x03` a DTMF digit, 1 ASCII byte (Asterisk 20.x / 21.x / 22.x and later);
* `0x10` audio: signed linear 16-bit little-endian, 8 kHz, mono (320 bytes per 20 ms);
  `0x11`-`0x18` carry higher rates in recent releases: refused here (8 kHz only for now);
* `0xff` an error, its optional payload an error code (Asterisk's: bit-packed 0x01 hang-up of
  the calling party, 0x02 frame forwarding error, 0x04 memory error).

Asterisk reads only `0x10` and `0x00` from us (any other kind ends the call) and writes each
audio frame to the channel the moment it arrives: no jitter buffer, no marks, no clear. So the
pacing is ours: `AudioSocketTransport` queues outbound audio and writes one frame per 20 ms
slot (`FrameClock`); a mark is echoed (as a local frame the codec reads as `MarkEcho`) when
the audio queued before it has been written, and clear drops what is not yet written (and
echoes the marks it drops, as Twilio does). The call's marks and clears are local frames
(`LOCAL_MARK`, `LOCAL_CLEAR`) that never reach the wire; the transport refuses them from it.

Docs and source relied on:
https://docs.asterisk.org/Configuration/Channel-Drivers/AudioSocket/ (kinds, length, payload),
https://docs.asterisk.org/Latest_API/API_Documentation/Dialplan_Applications/AudioSocket
(AudioSocket(uuid,service): does not answer, precede it with Answer()),
https://github.com/asterisk/asterisk/blob/master/res/res_audiosocket.c
(`ast_audiosocket_init` sends the 0x01 UUID frame; `ast_audiosocket_receive_frame` accepts
only hang-up and audio, length ≥ 1),
https://github.com/asterisk/asterisk/blob/master/apps/app_audiosocket.c (`ast_write` of each
received frame at once; the channel must be up),
https://github.com/CyCoreSystems/audiosocket (the protocol's origin; Asterisk error codes).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Protocol

import structlog

from gateway.telephony.base import (
    CarrierEvent,
    CarrierNotice,
    Dtmf,
    MarkEcho,
    MediaFrame,
    StreamStart,
    StreamStop,
    TelephonyProtocolError,
    UnknownEvent,
)
from gateway.telephony.carrier import L16

__all__ = [
    "DTMF_KEYS",
    "FRAME_BYTES",
    "FRAME_INTERVAL_S",
    "HANGUP_FRAME",
    "KIND_AUDIO",
    "KIND_DTMF",
    "KIND_ERROR",
    "KIND_HANGUP",
    "KIND_UUID",
    "LOCAL_CLEAR",
    "LOCAL_MARK",
    "MAX_FRAME_PAYLOAD_BYTES",
    "AudioSocketCodec",
    "AudioSocketTransport",
    "FrameClock",
    "FrameHeader",
    "RealTimeClock",
    "build_frame",
    "parse_header",
]

log = structlog.get_logger("gateway.telephony.audiosocket")

KIND_HANGUP: Final = 0x00
KIND_UUID: Final = 0x01
KIND_DTMF: Final = 0x03
KIND_AUDIO: Final = 0x10
"""Signed linear 16-bit little-endian, 8 kHz, mono."""
KIND_ERROR: Final = 0xFF
_OTHER_RATES: Final = range(0x11, 0x19)  # slin at 12 … 192 kHz (recent releases)
LOCAL_MARK: Final = 0xF0
"""Not AudioSocket: a mark (payload: its name) between the call and the transport, and its
echo back; never written to, and refused from, the socket."""
LOCAL_CLEAR: Final = 0xF1
"""Not AudioSocket: "drop queued audio", from the call to the transport."""
_LOCAL_KINDS: Final = frozenset({LOCAL_MARK, LOCAL_CLEAR})

HEADER: Final = struct.Struct("!BH")
HANGUP_FRAME: Final = b"\x00\x00\x00"
FRAME_BYTES: Final = 320
"""20 ms of 8 kHz 16-bit audio."""
FRAME_INTERVAL_S: Final = 0.020
MAX_FRAME_PAYLOAD_BYTES: Final = 1920
"""Largest payload we read (120 ms of 8 kHz audio; Asterisk sends 20 ms): a longer length is
refused before any of its payload is read."""
_MAX_MARK_NAME_BYTES: Final = 255
_SAMPLE_RATE_HZ: Final = 8000
DTMF_KEYS: Final = frozenset(b"0123456789*#ABCD")
_ERROR_CODES: Final = ((0x01, "hangup of calling party"), (0x02, "frame forwarding error"),
                       (0x04, "memory (allocation) error"))  # fmt: skip


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """A frame's kind and payload length, as the 3-byte header says."""

    kind: int
    length: int


def parse_header(header: bytes) -> FrameHeader:
    if len(header) != HEADER.size:
        raise TelephonyProtocolError(f"AudioSocket header is {len(header)} bytes, not 3")
    kind, length = HEADER.unpack(header)
    return FrameHeader(kind, length)


def build_frame(kind: int, payload: bytes = b"") -> bytes:
    """One frame: header and payload; ValueError past the 16-bit length."""
    if len(payload) > 0xFFFF:
        raise ValueError(f"AudioSocket payload is {len(payload)} bytes, over 65535")
    return HEADER.pack(kind, len(payload)) + payload


def _error_detail(payload: bytes) -> str:
    if len(payload) != 1:
        return f"error code {payload.hex() or '(none)'}"
    code = payload[0]
    names = [name for bit, name in _ERROR_CODES if code & bit]
    return f"error code 0x{code:02x}" + (f": {', '.join(names)}" if names else "")


# ------------------------------------------------------------------------------------ codec


class AudioSocketCodec:
    """One AudioSocket connection's frames (whole frames, as the transport splits them):
    UUID → StreamStart (L16, 8 kHz), audio → MediaFrame, DTMF → Dtmf, hang-up → StreamStop,
    error → CarrierNotice, a local mark echo → MarkEcho."""

    name: Final = "audiosocket"

    def __init__(self, custom_parameters: Mapping[str, str] | None = None) -> None:
        self._parameters = MappingProxyType(dict(custom_parameters or {}))
        self._start: StreamStart | None = None
        self._chunk = 0
        self._samples = 0

    def parse(self, frame: str | bytes) -> CarrierEvent:
        if isinstance(frame, str):
            raise TelephonyProtocolError("AudioSocket frames are binary, got text")
        data = bytes(frame)
        header = parse_header(data[: HEADER.size])
        payload = data[HEADER.size :]
        if header.length != len(payload):
            raise TelephonyProtocolError(
                f"AudioSocket frame length says {header.length} bytes, carries {len(payload)}"
            )
        kind = header.kind
        if kind == KIND_AUDIO:
            return self._audio(payload)
        if kind == KIND_UUID:
            return self._uuid(payload)
        if kind == KIND_DTMF:
            if len(payload) != 1 or payload[0] not in DTMF_KEYS:
                raise TelephonyProtocolError(
                    f"DTMF payload must be one key of 0-9, *, #, A-D, got {payload[:8]!r}"
                )
            return Dtmf(self._stream_sid, chr(payload[0]), "inbound", None)
        if kind == KIND_HANGUP:
            start = self._start
            if start is None:
                return StreamStop("", "", "", None)
            return StreamStop(start.stream_sid, start.call_sid, start.account_sid, None)
        if kind == KIND_ERROR:
            return CarrierNotice(self._stream_sid, "error", _error_detail(payload))
        if kind == LOCAL_MARK:
            return MarkEcho(self._stream_sid, payload.decode("utf-8", "replace"), None)
        if kind in _OTHER_RATES:
            raise TelephonyProtocolError(
                f"AudioSocket audio kind 0x{kind:02x} is not 8 kHz (0x10): not supported"
            )
        return UnknownEvent(event=f"0x{kind:02x}", raw=MappingProxyType({"length": header.length}))

    @property
    def _stream_sid(self) -> str:
        return self._start.stream_sid if self._start is not None else ""

    def _uuid(self, payload: bytes) -> StreamStart:
        if len(payload) != 16:
            raise TelephonyProtocolError(f"UUID payload is {len(payload)} bytes, not 16")
        call_id = str(uuid.UUID(bytes=payload))
        if self._start is not None:
            if self._start.call_sid != call_id:
                raise TelephonyProtocolError("a second UUID, for another call, on one socket")
            return self._start
        self._start = StreamStart(
            stream_sid=call_id,
            call_sid=call_id,
            account_sid="",
            tracks=("inbound",),
            custom_parameters=self._parameters,
            encoding=L16,
            sample_rate_hz=_SAMPLE_RATE_HZ,
            channels=1,
            sequence_number=None,
        )
        return self._start

    def _audio(self, payload: bytes) -> MediaFrame:
        start = self._start
        if start is None:
            raise TelephonyProtocolError("audio before the UUID frame")
        size = len(payload)
        if size == 0 or size % 2:
            raise TelephonyProtocolError(f"audio payload is {size} bytes, not whole samples")
        if size > MAX_FRAME_PAYLOAD_BYTES:
            raise TelephonyProtocolError(
                f"audio payload is {size} bytes, over the limit of "
                f"MAX_FRAME_PAYLOAD_BYTES={MAX_FRAME_PAYLOAD_BYTES}"
            )
        timestamp_ms = self._samples * 1000 // _SAMPLE_RATE_HZ
        self._chunk += 1
        self._samples += size // 2
        return MediaFrame(start.stream_sid, "inbound", self._chunk, timestamp_ms, payload, None)

    def build_media(self, stream_sid: str, audio: bytes) -> bytes:
        """An audio frame (8 kHz 16-bit PCM, little-endian)."""
        if not audio or len(audio) % 2:
            raise ValueError(f"audio is {len(audio)} bytes, not whole 16-bit samples")
        return build_frame(KIND_AUDIO, audio)

    def build_mark(self, stream_sid: str, name: str) -> bytes:
        """A local mark: the transport echoes it once the audio before it is written."""
        raw = name.encode("utf-8")
        if not raw or len(raw) > _MAX_MARK_NAME_BYTES:
            raise ValueError(f"mark name must be 1-{_MAX_MARK_NAME_BYTES} bytes of UTF-8")
        return build_frame(LOCAL_MARK, raw)

    def build_clear(self, stream_sid: str) -> bytes:
        """A local clear: the transport drops the audio it has not written yet."""
        return build_frame(LOCAL_CLEAR)

    def build_hangup(self) -> bytes:
        return HANGUP_FRAME


# -------------------------------------------------------------------------------- pacing


class FrameClock(Protocol):
    """When the next 20 ms frame may be written (tests pass a clock they step by hand)."""

    async def next_slot(self) -> None:
        """Return when the next frame may go."""
        ...

    def restart(self) -> None:
        """The queue ran dry: the next frame may go at once."""
        ...


class RealTimeClock:
    """One slot per `interval_s` on absolute deadlines (no drift from write times); a clock
    more than a slot behind (a stalled loop) starts again from now instead of bursting."""

    def __init__(
        self,
        interval_s: float = FRAME_INTERVAL_S,
        *,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._interval_s = interval_s
        self._now = now
        self._sleep = sleep
        self._next_at: float | None = None

    async def next_slot(self) -> None:
        now = self._now()
        next_at = self._next_at
        if next_at is None or next_at < now - self._interval_s:
            next_at = now
        if next_at > now:
            await self._sleep(next_at - now)
        self._next_at = next_at + self._interval_s

    def restart(self) -> None:
        self._next_at = None


# ------------------------------------------------------------------------------ transport


class _Mark:
    __slots__ = ("name",)

    def __init__(self, name: bytes) -> None:
        self.name = name


class AudioSocketTransport:
    """`CallerTransport` over one AudioSocket TCP connection (asyncio streams).

    `receive` returns whole frames (coping with partial reads; a length over
    MAX_FRAME_PAYLOAD_BYTES or a local kind from the peer ends the stream, `error` says why),
    and the local echoes of marks. `send` queues: a writer task writes audio one frame per
    `clock` slot. `close` lets queued audio play out (up to `drain_timeout_s`) unless the
    caller is gone, then sends the hang-up frame and closes the socket.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        clock: FrameClock | None = None,
        drain_timeout_s: float = 5.0,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._clock: FrameClock = clock if clock is not None else RealTimeClock()
        self._drain_timeout_s = drain_timeout_s
        self._queue: deque[bytes | _Mark] = deque()
        self._queue_ready = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._echoes: deque[bytes] = deque()
        self._echo_ready = asyncio.Event()
        self._pacer: asyncio.Task[None] | None = None
        self._read: asyncio.Task[bytes | None] | None = None
        self._closed = False
        self._peer_gone = False
        self._broken = False
        self.error: str | None = None
        """Why the stream was ended from our side (a frame that broke the protocol)."""
        self.frames_written = 0
        self.frames_cleared = 0
        self.text_frames_dropped = 0
        """Text the call sent (e.g. transcripts): AudioSocket carries audio only."""

    @property
    def queued_frames(self) -> int:
        """Audio frames queued, not yet written."""
        return sum(1 for item in self._queue if not isinstance(item, _Mark))

    # ------------------------------------------------------------------------ receive

    async def receive(self) -> bytes | None:
        while True:
            if self._echoes:
                return self._echoes.popleft()
            if self._peer_gone or self._closed:
                return None
            read = self._read
            if read is None:
                read = self._read = asyncio.create_task(self._read_frame())
            self._echo_ready.clear()
            echo = asyncio.create_task(self._echo_ready.wait())
            try:
                await asyncio.wait({read, echo}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                echo.cancel()
            if read.done():  # the read task lives on across calls: no half-read frame is lost
                self._read = None
                frame = read.result()
                if frame is None:
                    self._peer_gone = True
                    return None
                if frame[0] == KIND_HANGUP:
                    self._peer_gone = True
                return frame

    async def _read_frame(self) -> bytes | None:
        try:
            header = await self._reader.readexactly(HEADER.size)
            kind, length = HEADER.unpack(header)
            if kind in _LOCAL_KINDS:
                self._refuse(f"kind 0x{kind:02x} is not an AudioSocket kind")
                return None
            if length > MAX_FRAME_PAYLOAD_BYTES:
                self._refuse(
                    f"frame of kind 0x{kind:02x} declares length {length}, over the limit "
                    f"of MAX_FRAME_PAYLOAD_BYTES={MAX_FRAME_PAYLOAD_BYTES}"
                )
                return None
            return header + await self._reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                self.error = f"connection closed inside a frame ({len(exc.partial)} bytes read)"
                log.warning("audiosocket_truncated", error=self.error)
            return None
        except (ConnectionError, OSError) as exc:
            log.debug("audiosocket_read_failed", error=repr(exc))
            return None

    def _refuse(self, error: str) -> None:
        self.error = error
        log.warning("audiosocket_frame_refused", error=error)

    # --------------------------------------------------------------------------- send

    async def send(self, frame: str | bytes) -> None:
        self._accept([frame])

    def send_now(self, frames: Sequence[str | bytes]) -> bool:
        """Queues them all (it never waits: the writer task paces them)."""
        if self._closed or self._broken:
            return False
        self._accept(frames)
        return True

    def _accept(self, frames: Sequence[str | bytes]) -> None:
        if self._closed or self._broken:
            raise ConnectionResetError("AudioSocket connection is closed")
        items: list[bytes | _Mark | None] = []
        for frame in frames:
            if isinstance(frame, str):
                self.text_frames_dropped += 1
                continue
            data = bytes(frame)
            header = parse_header(data[: HEADER.size])
            if header.length != len(data) - HEADER.size:
                raise ValueError(f"frame length says {header.length}, carries more or less")
            if header.kind == KIND_AUDIO:
                items.append(data)
            elif header.kind == LOCAL_MARK:
                items.append(_Mark(data[HEADER.size :]))
            elif header.kind == LOCAL_CLEAR:
                items.append(None)
            else:  # Asterisk ends the call on any kind but audio and hang-up (see close)
                raise ValueError(f"we send audio only, not kind 0x{header.kind:02x}")
        for item in items:
            if item is None:
                self._clear()
            else:
                self._queue.append(item)
        if self._queue:
            self._drained.clear()
            self._queue_ready.set()
            if self._pacer is None:
                self._pacer = asyncio.create_task(self._pace(), name="audiosocket_pacer")

    def _clear(self) -> None:
        """Drop what is not yet written; the marks among it are echoed (nothing waits)."""
        queue = self._queue
        while queue:
            item = queue.popleft()
            if isinstance(item, _Mark):
                self._echo(item)
            else:
                self.frames_cleared += 1
        self._clock.restart()

    def _echo(self, mark: _Mark) -> None:
        self._echoes.append(build_frame(LOCAL_MARK, mark.name))
        self._echo_ready.set()

    async def _pace(self) -> None:
        """The only writer: marks at the head are echoed, audio goes one frame per slot."""
        queue = self._queue
        try:
            while True:
                while queue and isinstance(queue[0], _Mark):
                    mark = queue.popleft()
                    assert isinstance(mark, _Mark)
                    self._echo(mark)
                if not queue:
                    self._clock.restart()
                    self._drained.set()
                    self._queue_ready.clear()
                    await self._queue_ready.wait()
                    continue
                await self._clock.next_slot()
                if not queue or isinstance(queue[0], _Mark):  # cleared while we waited
                    continue
                frame = queue.popleft()
                assert isinstance(frame, bytes)
                self._writer.write(frame)
                await self._writer.drain()
                self.frames_written += 1
        except (ConnectionError, OSError) as exc:
            self._broken = True
            self._drained.set()
            log.info("audiosocket_write_failed", error=repr(exc))

    # -------------------------------------------------------------------------- close

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not (self._peer_gone or self._broken) and not self._drained.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._drain_timeout_s):
                    await self._drained.wait()
        for task in (self._pacer, self._read):
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in (self._pacer, self._read) if t is not None), return_exceptions=True
        )
        with contextlib.suppress(ConnectionError, OSError):
            if not (self._peer_gone or self._broken):
                self._writer.write(HANGUP_FRAME)
            self._writer.close()
            await self._writer.wait_closed()
