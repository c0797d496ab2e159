"""Streaming polyphase FIR resampling between integer-related rates (8 kHz ↔ 16 / 24 kHz).

Why not `audioop.ratecv`: it interpolates with no anti-alias filter, so a 6 kHz tone at 24 kHz
leaves a 24k → 8k conversion as a near full-level 2 kHz alias. Here one linear-phase low-pass,
designed once with `scipy.signal.remez`, removes images going up and aliases going down. It runs
as one matrix product per call with the history carried between calls, so a 20 ms frame costs a
few microseconds and the output does not depend on how the input was chunked.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import signal

PASSBAND_HZ: Final = 3400.0
"""Top of the telephone band: 0 … PASSBAND_HZ passes within ±PASSBAND_RIPPLE_DB."""

STOPBAND_HZ: Final = 4600.0
"""From here up everything is at least STOPBAND_ATTENUATION_DB down (no aliases, no images)."""

PASSBAND_RIPPLE_DB: Final = 0.1
"""Design target for the largest passband gain error (the contract is ±0.5 dB)."""

STOPBAND_ATTENUATION_DB: Final = 70.0
"""Design target for stopband rejection (the contract is 60 dB; 10 dB of margin)."""

TELEPHONY_RATE_HZ: Final = 8000
"""The band edges above are for this low rate; a pair with another low rate scales them."""

FRAME_DURATION_MS: Final = 20
"""Typical chunk (one Twilio media frame); the filter's block size divides it when it can."""

TAP_FRACTION_BITS: Final = 20
"""Taps are multiples of 2**-TAP_FRACTION_BITS: with int16 inputs every product and partial sum
is then exact in float64, so the result is independent of summation order (BLAS blocking, chunk
sizes). The rounding costs nothing measurable (≈ -120 dB)."""

_MAX_TAPS: Final = 1023
_FREQ_CHECK_POINTS: Final = 8192
_INT16_MIN: Final = float(np.iinfo(np.int16).min)
_INT16_MAX: Final = float(np.iinfo(np.int16).max)
_FLOAT_BYTES: Final = np.dtype(np.float64).itemsize


class ResampleConfigError(ValueError):
    """The rate pair cannot be resampled (not an integer ratio, or no filter meets the spec)."""


@functools.cache
def design_lowpass(high_rate_hz: int, low_rate_hz: int) -> npt.NDArray[np.float64]:
    """Linear-phase low-pass taps at `high_rate_hz` (odd length, unity DC gain, read-only).

    The shortest equiripple (remez) filter whose quantised taps meet PASSBAND_RIPPLE_DB and
    STOPBAND_ATTENUATION_DB, with the band edges scaled by `low_rate_hz / TELEPHONY_RATE_HZ`.
    """
    scale = low_rate_hz / TELEPHONY_RATE_HZ
    passband_hz, stopband_hz = PASSBAND_HZ * scale, STOPBAND_HZ * scale
    if not stopband_hz < high_rate_hz / 2:
        raise ResampleConfigError(
            f"a {high_rate_hz} Hz ↔ {low_rate_hz} Hz filter needs a stopband below "
            f"{high_rate_hz / 2:g} Hz but the spec's starts at {stopband_hz:g} Hz"
        )
    passband_error = 10 ** (PASSBAND_RIPPLE_DB / 20) - 1
    stopband_error = 10 ** (-STOPBAND_ATTENUATION_DB / 20)
    bands = [0.0, passband_hz, stopband_hz, high_rate_hz / 2]
    # Bellanger's length estimate, started a little low and walked up to the first that passes.
    estimate = (2 / 3) * np.log10(1 / (10 * passband_error * stopband_error))
    estimate *= high_rate_hz / (stopband_hz - passband_hz)
    first = max(3, int(estimate * 0.9) | 1)
    for num_taps in range(first, _MAX_TAPS + 1, 2):
        taps = signal.remez(
            num_taps, bands, [1.0, 0.0], weight=[1.0, passband_error / stopband_error],
            fs=high_rate_hz,
        )
        taps = np.round(taps * 2.0**TAP_FRACTION_BITS) / 2.0**TAP_FRACTION_BITS
        freqs_hz, response = signal.freqz(taps, worN=_FREQ_CHECK_POINTS, fs=high_rate_hz)
        gain_db = 20 * np.log10(np.maximum(np.abs(response), 1e-12))
        passband_db = gain_db[freqs_hz <= passband_hz]
        stopband_db = gain_db[freqs_hz >= stopband_hz]
        if (
            np.max(np.abs(passband_db)) <= PASSBAND_RIPPLE_DB
            and np.max(stopband_db) <= -STOPBAND_ATTENUATION_DB
        ):
            result: npt.NDArray[np.float64] = taps.astype(np.float64)
            result.flags.writeable = False
            return result
    raise ResampleConfigError(
        f"no filter of at most {_MAX_TAPS} taps meets the spec at {high_rate_hz} Hz"
    )


@dataclass(frozen=True)
class _BlockFilter:
    """A polyphase FIR as one matrix over blocks of the input (shared, read-only).

    Output "groups" (`up` samples each, one per `down` inputs) are computed `block` per row.
    Row r reads a window of `history + row_in` inputs (`row_in` = block * down) that starts
    `row_in` after row r - 1's, so all rows are one strided view of the input line, and its
    outputs are that window times `matrix` ((history + row_in) × block * up).
    """

    up: int
    down: int
    block: int
    row_in: int
    history: int
    matrix: npt.NDArray[np.float64]
    num_taps: int


BLOCK_GROUPS = 20


@functools.cache
def _block_filter(in_rate_hz: int, out_rate_hz: int) -> _BlockFilter:
    high_rate_hz, low_rate_hz = max(in_rate_hz, out_rate_hz), min(in_rate_hz, out_rate_hz)
    ratio = high_rate_hz // low_rate_hz
    up, down = (ratio, 1) if out_rate_hz > in_rate_hz else (1, ratio)
    taps = design_lowpass(high_rate_hz, low_rate_hz) * up  # interpolation gain: exact (integer)
    block = BLOCK_GROUPS
    row_in = block * down
    # Output (group i, phase p) has its newest input at offset (down - 1) + i * down from the
    # row's start; the input at offset s meets tap ((newest - s) * up + p). The oldest input
    # any output of a row needs is `history` before the row's start.
    history = (len(taps) - 1) // up - (down - 1)
    offset = np.arange(-history, row_in)[:, None]
    group = np.repeat(np.arange(block), up)[None, :]
    phase = np.tile(np.arange(up), block)[None, :]
    tap_index = ((down - 1 + group * down) - offset) * up + phase
    valid = (tap_index >= 0) & (tap_index < len(taps))
    matrix = np.where(valid, taps[np.clip(tap_index, 0, len(taps) - 1)], 0.0)
    matrix.flags.writeable = False
    return _BlockFilter(up, down, block, row_in, history, matrix, len(taps))


class StreamingResampler:
    """Resample int16 mono audio chunk by chunk, e.g. 8000 ↔ 24000 Hz, carrying filter history.

    Every input sample is used as soon as it arrives: going up, n samples in give n * ratio out;
    going down, one sample comes out per `ratio` in (the phase is carried across calls). The
    output is identical however the input is chunked. One instance per direction per call.
    """

    def __init__(self, in_rate_hz: int, out_rate_hz: int) -> None:
        if in_rate_hz <= 0 or out_rate_hz <= 0:
            raise ResampleConfigError(f"rates must be positive: {in_rate_hz} → {out_rate_hz}")
        high, low = max(in_rate_hz, out_rate_hz), min(in_rate_hz, out_rate_hz)
        if high % low:
            raise ResampleConfigError(
                f"{in_rate_hz} Hz → {out_rate_hz} Hz is not an integer ratio"
            )
        self.in_rate_hz: Final = in_rate_hz
        self.out_rate_hz: Final = out_rate_hz
        self._identity = high == low
        if self._identity:
            self._group_delay_ms = 0.0
            self._num_taps = 0
            return
        spec = _block_filter(in_rate_hz, out_rate_hz)
        self._up = spec.up
        self._down = spec.down
        self._block = spec.block
        self._row_in = spec.row_in
        self._history = spec.history
        self._matrix = spec.matrix
        self._num_taps = spec.num_taps
        self._group_delay_ms = (spec.num_taps - 1) / 2 / high * 1000
        # History line: samples [base, end) are live; [0, base) is consumed; after `end` is
        # space for new input. The line is compacted (rarely) when the space runs out.
        frame_in = in_rate_hz * FRAME_DURATION_MS // 1000
        self._context = self._history + self._down - 1
        self._line = np.zeros(8 * frame_in + 4 * self._row_in + self._down)
        self._base = 0
        self._end = self._context
        frame_rows = -(-frame_in // self._row_in) + 1
        self._out = np.empty((frame_rows, self._block * self._up))

    @property
    def group_delay_ms(self) -> float:
        """Delay of the linear-phase filter, in ms of signal time (same at every frequency)."""
        return self._group_delay_ms

    @property
    def num_taps(self) -> int:
        """Length of the low-pass at the high rate (0 when the rates are equal)."""
        return self._num_taps

    def reset(self) -> None:
        """Forget all history (e.g. on barge-in): the next chunk starts from silence."""
        if self._identity:
            return
        self._base = 0
        self._end = self._context
        self._line[: self._context] = 0.0

    def process(self, pcm16: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        """Resample one chunk (any length, including 0); returns a new int16 array.

        Samples are rounded to nearest and saturate at the int16 limits.
        """
        if pcm16.dtype != np.int16 or pcm16.ndim != 1:
            raise TypeError(f"process needs a 1-D int16 array, got {pcm16.dtype} {pcm16.shape}")
        if self._identity:
            return pcm16.copy()
        start = self._reserve(pcm16.shape[0])
        end = start + pcm16.shape[0]
        self._line[start:end] = pcm16
        exact = self._filter(end)
        np.rint(exact, out=exact)
        np.minimum(exact, _INT16_MAX, out=exact)
        np.maximum(exact, _INT16_MIN, out=exact)
        return exact.astype(np.int16)

    def _reserve(self, count: int) -> int:
        """Make room for `count` new samples (plus a row of read-ahead); returns where they go."""
        end = self._end
        needed = end + count + 2 * self._row_in
        if needed > self._line.shape[0]:
            live = end - self._base
            line = self._line
            if live + count + 2 * self._row_in > line.shape[0]:
                line = np.zeros(2 * (live + count + 2 * self._row_in))
            line[:live] = self._line[self._base : end]
            self._line = line
            self._base = 0
            self._end = end = live
        return end

    def _filter(self, end: int) -> npt.NDArray[np.float64]:
        """Run the filter over the live line up to `end`; returns the exact outputs (a view)."""
        base = self._base
        row_in = self._row_in
        groups = (end - base - self._history) // self._down
        self._end = end
        if groups <= 0:
            return self._out[:0].reshape(-1)
        rows = -(-groups // self._block)
        if rows > self._out.shape[0]:
            self._out = np.empty((2 * rows, self._out.shape[1]))
        windows: npt.NDArray[np.float64] = np.ndarray(
            (rows, self._history + row_in), np.float64, self._line, base * _FLOAT_BYTES,
            (row_in * _FLOAT_BYTES, _FLOAT_BYTES),
        )
        out = self._out[:rows]
        np.dot(windows, self._matrix, out=out)
        self._base = base + groups * self._down
        return out.reshape(-1)[: groups * self._up]
