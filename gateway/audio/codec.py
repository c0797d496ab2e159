"""Per-call audio pipelines between Twilio (8 kHz μ-law) and Live (PCM16LE at 16 or 24 kHz).

Each object is stateful (filter history, a dangling byte, a partial frame) and belongs to one
call and one direction. Bytes in, bytes out: no IO here. The μ-law tables are fused into the
resampler (`input_table` / `output_table`), so each 20 ms frame is one pass with no
intermediate PCM arrays.
"""

from __future__ import annotations

import sys
from typing import Final

import numpy as np

from gateway.audio.mulaw import MULAW_DECODE_TABLE, MULAW_ENCODE_TABLE, MULAW_SILENCE
from gateway.audio.resample import StreamingResampler

MULAW_RATE_HZ: Final = 8000
"""Telephony μ-law (Twilio media streams) is 8 kHz, one byte per sample."""

DEFAULT_LIVE_RATE_HZ: Final = 24000
"""Live's native output rate (and our default input rate)."""

MULAW_FRAME_BYTES: Final = 160
"""20 ms of 8 kHz μ-law: the unit Twilio plays without gaps."""

_NATIVE_IS_LE: Final = sys.byteorder == "little"
"""process_bytes speaks native-endian PCM16; on a big-endian host we swap at the boundary."""


class CallerAudioDecoder:
    """Caller μ-law (8 kHz) → PCM16LE mono at `live_rate_hz` (band-limited upsampling)."""

    def __init__(self, live_rate_hz: int = DEFAULT_LIVE_RATE_HZ) -> None:
        self.live_rate_hz: Final = live_rate_hz
        self._resampler = StreamingResampler(
            MULAW_RATE_HZ, live_rate_hz, input_table=MULAW_DECODE_TABLE
        )

    @property
    def group_delay_ms(self) -> float:
        """Delay the upsampling filter adds (linear phase, same at every frequency)."""
        return self._resampler.group_delay_ms

    def decode(self, mulaw: bytes) -> bytes:
        """Any number of μ-law bytes → `live_rate_hz / 8000` PCM16 samples per byte (new bytes)."""
        pcm16 = self._resampler.process_bytes(mulaw)
        return pcm16 if _NATIVE_IS_LE else _swap16(pcm16)

    def reset(self) -> None:
        """Forget filter history (a new stream starts from silence)."""
        self._resampler.reset()


class AgentAudioEncoder:
    """Agent PCM16LE mono at `live_rate_hz` → μ-law at 8 kHz (anti-aliased downsampling).

    Chunks may split a sample: an odd trailing byte is kept and joined to the next chunk.
    """

    def __init__(self, live_rate_hz: int = DEFAULT_LIVE_RATE_HZ) -> None:
        self.live_rate_hz: Final = live_rate_hz
        self._resampler = StreamingResampler(
            live_rate_hz, MULAW_RATE_HZ, output_table=MULAW_ENCODE_TABLE
        )
        self._dangling = b""

    @property
    def group_delay_ms(self) -> float:
        """Delay the anti-alias filter adds (linear phase, same at every frequency)."""
        return self._resampler.group_delay_ms

    def encode(self, pcm16le: bytes) -> bytes:
        """PCM16LE bytes (any length) → μ-law bytes for the samples complete so far."""
        if self._dangling or len(pcm16le) & 1:
            data = self._dangling + bytes(pcm16le)
            whole = len(data) & ~1
            self._dangling = data[whole:]
            pcm16le = data[:whole]
        return self._resampler.process_bytes(pcm16le if _NATIVE_IS_LE else _swap16(pcm16le))

    def reset(self) -> None:
        """Drop filter history and any dangling byte (barge-in: the agent's audio was cut)."""
        self._resampler.reset()
        self._dangling = b""


class MulawFramer:
    """Cuts a μ-law byte stream into whole frames of `frame_bytes`, keeping the remainder."""

    def __init__(self, frame_bytes: int = MULAW_FRAME_BYTES) -> None:
        if frame_bytes <= 0:
            raise ValueError(f"frame_bytes must be positive, got {frame_bytes}")
        self.frame_bytes: Final = frame_bytes
        self._pending = bytearray()

    @property
    def pending_bytes(self) -> int:
        """Bytes held back until a frame is complete."""
        return len(self._pending)

    def push(self, mulaw: bytes) -> list[bytes]:
        """Append `mulaw`; return every complete frame (oldest first), possibly none."""
        pending = self._pending
        pending += mulaw
        size = self.frame_bytes
        whole = len(pending) - len(pending) % size
        frames = [bytes(pending[i : i + size]) for i in range(0, whole, size)]
        del pending[:whole]
        return frames

    def flush(self) -> bytes | None:
        """The remainder padded with μ-law silence to a whole frame, or None if nothing is held."""
        if not self._pending:
            return None
        frame = bytes(self._pending).ljust(self.frame_bytes, bytes([MULAW_SILENCE]))
        self._pending.clear()
        return frame

    def reset(self) -> None:
        """Drop the remainder (barge-in)."""
        self._pending.clear()


def _swap16(pcm16: bytes) -> bytes:
    return np.frombuffer(pcm16, dtype=np.int16).byteswap().tobytes()
