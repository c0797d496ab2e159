"""The call as the caller heard it: a stereo WAV (caller left, agent right, 8 kHz PCM16).

Time is the caller's stream clock: each inbound media frame sits at its Twilio `timestamp`
(ms since the stream started; the running end of the previous frame when missing or absurd).
Agent frames are placed the way Twilio plays them: from the caller clock at the moment they
were sent, or right after the previous agent frame if that one is still playing. `clear` cuts
the agent channel at the caller clock: audio Twilio had buffered but not yet played is removed,
so a barge-in is audible as the agent stopping mid-word; a hang-up (`stop`) cuts it the same
way. Frames dropped by the gateway before reaching Twilio never appear.

The mixer streams: everything older than `LATE_FRAME_MARGIN_S` behind the caller clock is final
and written out, so memory stays bounded on long calls (agent audio scheduled ahead is held).
`room_bytes` caps what it may still write (the recording's byte budget); the file stays valid.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from gateway.audio.mulaw import decode_mulaw

__all__ = ["SAMPLE_RATE_HZ", "StereoCallMixer"]

SAMPLE_RATE_HZ: Final = 8000
LATE_FRAME_MARGIN_S: Final = 0.5
"""Caller frames may arrive this late (out of order) and still land in the WAV."""
MAX_TIMESTAMP_JUMP_S: Final = 10.0
"""A caller timestamp further ahead than this is distrusted (the frame goes at the running end)."""
_WRITE_CHUNK_SAMPLES: Final = SAMPLE_RATE_HZ  # write at least 1 s at a time
_FRAME_BYTES: Final = 4  # one stereo sample of 16-bit PCM
_WAV_HEADER_BYTES: Final = 44
_SILENCE_CODE: Final = b"\xff"
"""The μ-law code of a zero sample."""


class _Track:
    """One channel from `base` (already written) onwards, as μ-law codes: a frame is placed
    with one byte copy, and decoded to PCM only when written out (one numpy call a second,
    not two per 20 ms frame)."""

    def __init__(self) -> None:
        self.base = 0
        self.codes = bytearray()

    @property
    def end(self) -> int:
        return self.base + len(self.codes)

    def place(self, position: int, mulaw: bytes) -> None:
        start = position - self.base
        if start < 0:  # too late: that part is already written
            mulaw = mulaw[-start:]
            start = 0
        codes = self.codes
        if start > len(codes):  # a gap before it: silence
            codes += _SILENCE_CODE * (start - len(codes))
        codes[start : start + len(mulaw)] = mulaw

    def silence_from(self, position: int) -> None:
        start = max(position - self.base, 0)
        codes = self.codes
        if start < len(codes):
            codes[start:] = _SILENCE_CODE * (len(codes) - start)

    def take(self, until: int) -> npt.NDArray[np.int16]:
        """Samples [base, until) (silence-padded) as PCM, removed from the track."""
        count = until - self.base
        codes = self.codes
        chunk = bytes(codes[:count])
        del codes[:count]
        if len(chunk) < count:
            chunk += _SILENCE_CODE * (count - len(chunk))
        self.base = until
        return decode_mulaw(chunk)


class StereoCallMixer:
    """Writes the call's stereo WAV incrementally. Not thread-safe: one writer thread owns it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._wav: wave.Wave_write | None = None
        self._caller = _Track()
        self._agent = _Track()
        self._caller_clock = 0
        """End of the latest caller frame, in samples: "now" on the phone line."""
        self._agent_playhead = 0
        self.room_bytes: int | None = None
        """Sample bytes the WAV may still grow by (None: no limit); beyond, audio is cut."""
        self.bytes_written = 0
        """Header and samples written so far."""

    def caller_audio(self, mulaw: bytes, timestamp_ms: int | None) -> None:
        position = self._caller_clock
        if timestamp_ms is not None:
            stamped = timestamp_ms * SAMPLE_RATE_HZ // 1000
            if stamped <= self._caller_clock + MAX_TIMESTAMP_JUMP_S * SAMPLE_RATE_HZ:
                position = stamped
        self._caller.place(position, mulaw)
        self._caller_clock = max(self._caller_clock, position + len(mulaw))
        self._write_final()

    def agent_audio(self, mulaw: bytes) -> None:
        start = max(self._agent_playhead, self._caller_clock)
        self._agent.place(start, mulaw)
        self._agent_playhead = start + len(mulaw)

    def agent_cleared(self) -> None:
        """Twilio's `clear`: what was buffered but not yet heard is gone."""
        self._agent.silence_from(self._caller_clock)
        self._agent_playhead = min(self._agent_playhead, self._caller_clock)

    def caller_hung_up(self) -> None:
        """`stop`: agent audio still buffered at Twilio was never heard."""
        self.agent_cleared()

    def close(self) -> None:
        """Write what is left (up to the end of the last sound) and finish the file."""
        end = max(self._caller_clock, self._agent_playhead, self._caller.base)
        self._write_until(end)
        if self._wav is not None:
            self._wav.close()
            self._wav = None

    def abort(self) -> None:
        """Close without writing more (after a write error)."""
        wav, self._wav = self._wav, None
        if wav is not None:
            try:
                wav.close()
            except Exception:  # the file is already broken; nothing more to save
                pass

    def _write_final(self) -> None:
        final = self._caller_clock - int(LATE_FRAME_MARGIN_S * SAMPLE_RATE_HZ)
        if final - self._caller.base >= _WRITE_CHUNK_SAMPLES:
            self._write_until(final)

    def _write_until(self, until: int) -> None:
        if until <= self._caller.base and self._wav is not None:
            return
        if self._wav is None:
            wav = wave.open(str(self.path), "wb")  # closed in close() / abort()
            wav.setnchannels(2)
            wav.setsampwidth(2)
            wav.setframerate(SAMPLE_RATE_HZ)
            self._wav = wav
            self.bytes_written = _WAV_HEADER_BYTES
        if until <= self._caller.base:
            return
        left = self._caller.take(until)
        right = self._agent.take(until)
        data = np.column_stack((left, right)).astype("<i2").tobytes()
        if self.room_bytes is not None and len(data) > self.room_bytes:
            data = data[: max(0, self.room_bytes) // _FRAME_BYTES * _FRAME_BYTES]
        if data:
            self._wav.writeframes(data)
            self.bytes_written += len(data)
            if self.room_bytes is not None:
                self.room_bytes -= len(data)
