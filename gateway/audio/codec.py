"""Per-call audio pipelines between the carrier (8 kHz μ-law, 8 or 16 kHz L16) and Live (PCM16LE
at 16 or 24 kHz in, 24 kHz out): `StreamAudio` picks them for a stream's format.

Each object is stateful (filter history, a dangling byte, a partial frame) and belongs to one
call and one direction. Bytes in, bytes out: no IO here. The μ-law tables are fused into the
resampler (`input_table` / `output_table`), so each 20 ms frame is one pass with no
intermediate PCM arrays.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Final

import numpy as np

from gateway.audio.mulaw import (
    MULAW_DECODE_TABLE,
    MULAW_ENCODE_TABLE,
    MULAW_SILENCE,
    decode_mulaw,
    encode_mulaw,
)
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
    """Cuts an audio byte stream into whole frames of `frame_bytes`, keeping the remainder
    (μ-law by default; `silence` is the byte a short last frame is padded with)."""

    def __init__(self, frame_bytes: int = MULAW_FRAME_BYTES, silence: int = MULAW_SILENCE) -> None:
        if frame_bytes <= 0:
            raise ValueError(f"frame_bytes must be positive, got {frame_bytes}")
        self.frame_bytes: Final = frame_bytes
        self._silence = bytes([silence])
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
        frame = bytes(self._pending).ljust(self.frame_bytes, self._silence)
        self._pending.clear()
        return frame

    def reset(self) -> None:
        """Drop the remainder (barge-in)."""
        self._pending.clear()


MULAW_ENCODING: Final = "audio/x-mulaw"
"""A stream of G.711 μ-law, one byte per sample (`StreamStart.encoding`)."""
L16_ENCODING: Final = "audio/x-l16"
"""A stream of 16-bit linear PCM, little-endian, two bytes per sample."""
AGENT_RATE_HZ: Final = 24000
"""Live's output rate, always."""


class UnsupportedStreamFormat(ValueError):
    """A carrier stream in an encoding or rate the gateway cannot convert; says which."""


class Pcm16Resampler:
    """PCM16LE at one rate → PCM16LE at another (band-limited; a pass-through at equal rates).

    Chunks may split a sample: an odd trailing byte is kept and joined to the next chunk.
    """

    def __init__(self, in_rate_hz: int, out_rate_hz: int) -> None:
        self._resampler = (
            None if in_rate_hz == out_rate_hz else StreamingResampler(in_rate_hz, out_rate_hz)
        )
        self._dangling = b""

    @property
    def passthrough(self) -> bool:
        """Equal rates: bytes pass as they came (no filter, no delay)."""
        return self._resampler is None

    @property
    def group_delay_ms(self) -> float:
        return 0.0 if self._resampler is None else self._resampler.group_delay_ms

    def convert(self, pcm16le: bytes) -> bytes:
        if self._dangling or len(pcm16le) & 1:
            data = self._dangling + bytes(pcm16le)
            whole = len(data) & ~1
            self._dangling = data[whole:]
            pcm16le = data[:whole]
        if self._resampler is None:
            return bytes(pcm16le)
        if not _NATIVE_IS_LE:
            return _swap16(self._resampler.process_bytes(_swap16(pcm16le)))
        return self._resampler.process_bytes(pcm16le)

    def reset(self) -> None:
        if self._resampler is not None:
            self._resampler.reset()
        self._dangling = b""


L16_RATES_HZ: Final = (8000, 16000)
"""The L16 rates carriers stream and the gateway converts: narrowband and wideband."""


class StreamAudio:
    """One call's audio in its carrier's stream format (μ-law at 8 kHz, L16 at 8 or 16 kHz), both
    ways.

    `decode` turns a caller frame into PCM16LE at the Live input rate (16 kHz L16 into a 16 kHz
    Live input is passed through untouched); `encode` turns Live's 24 kHz audio into the stream's
    format (24 → 16 kHz by the 3:2 resampler); `framer` cuts that into 20 ms frames; `from_mulaw`
    converts the gateway's own 8 kHz μ-law sounds (the apology prompt, DTMF tones). Raises
    UnsupportedStreamFormat for a format there is no conversion for.
    """

    def __init__(self, encoding: str, rate_hz: int, live_input_rate_hz: int) -> None:
        self.encoding: Final = encoding
        self.rate_hz: Final = rate_hz
        if encoding == MULAW_ENCODING and rate_hz == MULAW_RATE_HZ:
            self._mulaw = True
            self._decoder: CallerAudioDecoder | Pcm16Resampler = CallerAudioDecoder(
                live_input_rate_hz
            )
            self._encoder: AgentAudioEncoder | Pcm16Resampler = AgentAudioEncoder()
            self.framer = MulawFramer()
        elif encoding == L16_ENCODING and rate_hz in L16_RATES_HZ:
            self._mulaw = False
            self._decoder = Pcm16Resampler(rate_hz, live_input_rate_hz)
            self._encoder = Pcm16Resampler(AGENT_RATE_HZ, rate_hz)
            self.framer = MulawFramer(2 * rate_hz // 50, silence=0)
        else:
            rates = " or ".join(str(rate) for rate in L16_RATES_HZ)
            raise UnsupportedStreamFormat(
                f"no conversion for {encoding} at {rate_hz} Hz (the gateway streams "
                f"{MULAW_ENCODING} at {MULAW_RATE_HZ} Hz and {L16_ENCODING} at {rates} Hz)"
            )
        self.bytes_per_8k_sample: Final = self.bytes_per_sample * rate_hz // MULAW_RATE_HZ
        """Bytes of the stream per 1/8000 s (1 for μ-law, 2 for L16 at 8 kHz, 4 at 16 kHz): the
        real-time budget counts audio in 8 kHz samples whatever the stream's rate (read for
        every caller frame, so set once)."""
        # Bound once: these run for every 20 ms frame.
        decoder, encoder = self._decoder, self._encoder
        self.decode: Callable[[bytes], bytes] = (
            decoder.decode if isinstance(decoder, CallerAudioDecoder) else decoder.convert
        )
        """A caller frame (the stream's format) → PCM16LE at the Live input rate."""
        self.encode: Callable[[bytes], bytes] = (
            encoder.encode if isinstance(encoder, AgentAudioEncoder) else encoder.convert
        )
        """Live's 24 kHz PCM16LE → the stream's format."""

    @property
    def passthrough_in(self) -> bool:
        """Whether caller audio reaches Live as it came (no resampling step)."""
        decoder = self._decoder
        return isinstance(decoder, Pcm16Resampler) and decoder.passthrough

    @property
    def frame_bytes(self) -> int:
        """Bytes of 20 ms of the stream's audio."""
        return self.framer.frame_bytes

    @property
    def bytes_per_sample(self) -> int:
        return 1 if self._mulaw else 2



    def reset_encoder(self) -> None:
        """Barge-in: the agent's audio was cut; its filter history and partial frame go."""
        self._encoder.reset()
        self.framer.reset()

    def from_mulaw(self, mulaw: bytes) -> bytes:
        """8 kHz μ-law (the gateway's prompts and tones) in the stream's format (a whole clip:
        going up to 16 kHz, the filter's tail is flushed so the clip keeps its length)."""
        if self._mulaw:
            return mulaw
        pcm16 = decode_mulaw(mulaw).astype("<i2").tobytes()
        if self.rate_hz == MULAW_RATE_HZ:
            return pcm16
        upsample = Pcm16Resampler(MULAW_RATE_HZ, self.rate_hz)
        delay_samples = round(upsample.group_delay_ms * MULAW_RATE_HZ / 1000)
        wide = upsample.convert(pcm16 + bytes(2 * delay_samples))
        skip = 2 * round(upsample.group_delay_ms * self.rate_hz / 1000)
        return wide[skip : skip + 2 * len(mulaw) * self.rate_hz // MULAW_RATE_HZ]

    def frames(self, audio: bytes) -> list[bytes]:
        """`audio` (the stream's format) as whole 20 ms frames, the last padded with silence."""
        size = self.frame_bytes
        silence = b"\xff" if self._mulaw else b"\x00"
        return [audio[i : i + size].ljust(size, silence) for i in range(0, len(audio), size)]


def _swap16(pcm16: bytes) -> bytes:
    return np.frombuffer(pcm16, dtype=np.int16).byteswap().tobytes()


class PhoneAudio:
    """The phone's side of a stream: 8 kHz μ-law (test audio, the softphone, the WAV mixer) ↔
    the stream's format, frame by frame with filter history kept (no clicks between frames).

    For μ-law streams both ways are the identity; for L16 at 8 kHz a table lookup each way; for
    L16 at 16 kHz the 2:1 band-limited resamplers as well. One per call and direction pair.
    """

    def __init__(self, encoding: str, rate_hz: int) -> None:
        if encoding == MULAW_ENCODING and rate_hz == MULAW_RATE_HZ:
            self._l16 = False
        elif encoding == L16_ENCODING and rate_hz in L16_RATES_HZ:
            self._l16 = True
        else:
            raise UnsupportedStreamFormat(f"no conversion for {encoding} at {rate_hz} Hz")
        self.encoding: Final = encoding
        self.rate_hz: Final = rate_hz
        self._up = Pcm16Resampler(MULAW_RATE_HZ, rate_hz)
        self._down = Pcm16Resampler(rate_hz, MULAW_RATE_HZ)

    def to_stream(self, mulaw: bytes) -> bytes:
        """8 kHz μ-law → the stream's format (`rate_hz / 8000` samples per byte)."""
        if not self._l16:
            return mulaw
        return self._up.convert(decode_mulaw(mulaw).astype("<i2").tobytes())

    def to_mulaw(self, audio: bytes) -> bytes:
        """The stream's format → 8 kHz μ-law."""
        if not self._l16:
            return audio
        return encode_mulaw(np.frombuffer(self._down.convert(audio), dtype="<i2").astype(np.int16))
