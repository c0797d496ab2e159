"""Streaming polyphase FIR resampling between telephony and Live rates (8 / 16 kHz ↔ 16 / 24 kHz).

Why not `audioop.ratecv`: it interpolates with no anti-alias filter, so a 6 kHz tone at 24 kHz
leaves a 24k → 8k conversion as a near full-level 2 kHz alias. Here a linear-phase low-pass
removes images going up and aliases going down: an equiripple (remez) design to the spec below,
made at design time by `gateway.audio.design_filters` and shipped as constants in
`gateway.audio.filter_taps` (so scipy is not a runtime dependency).

How it stays cheap (a 20 ms frame costs a few µs, about what soxr's C++ costs): every call is
one BLAS matrix product over blocks of the input plus two table lookups, and the history stays
in a small line buffer that new bytes are copied into. How it stays exact: taps are multiples of
2**-TAP_FRACTION_BITS and samples are integers, so every product and partial sum is exact in
float64; the result is independent of summation order, hence of how the input is chunked.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

PASSBAND_HZ: Final = 3400.0
"""Top of the telephone band: 0 … PASSBAND_HZ passes within ±PASSBAND_RIPPLE_DB."""

STOPBAND_HZ: Final = 4600.0
"""From here up everything is at least STOPBAND_ATTENUATION_DB down (no aliases, no images)."""

PASSBAND_RIPPLE_DB: Final = 0.2
"""Design target for the largest passband gain error, quantised taps included (contract ±0.5)."""

STOPBAND_ATTENUATION_DB: Final = 70.0
"""Design target for stopband rejection, quantised taps included (contract 60 dB)."""

TELEPHONY_RATE_HZ: Final = 8000
"""The band edges above are for this low rate; a rate pair with another low rate scales them."""

TAP_FRACTION_BITS: Final = 20
"""Taps are multiples of 2**-TAP_FRACTION_BITS (quantisation error ≈ -120 dB)."""

BLOCK_GROUPS: Final = 10
"""Outputs (per input sample going up, per `ratio` inputs going down) per row of the matrix
product. Small rows waste fewer multiplications on the zeros outside each output's taps; 10
divides a 20 ms frame (160 samples at 8 kHz) and measured fastest."""

_OFFSET: Final = 32768.5
"""Added to every sample on the way in (exactly, inside the matrix product) so the output is
`round_half_up(y) + 32768` after truncation: non-negative, and an index into a 65536-entry
saturating output table (indices below 0 or above 65535 clip to the int16 limits)."""

_PCM16_SILENCE: Final = 0
_MAX_CACHED_ROWS: Final = 32
"""Buffers for up to this many rows (320 outputs) are kept between calls; bigger chunks allocate."""
_MAX_CACHED_ROW_COUNTS: Final = 8
_MAX_CACHED_PLANS: Final = 64
_PLAN_KEY_STRIDE: Final = 1 << 16
"""Plans are keyed by chunk bytes * stride + context samples (the context is far below this)."""


class ResampleConfigError(ValueError):
    """The rate pair cannot be resampled (no filter ships for it, or none meets the spec)."""


def band_edges(high_rate_hz: int, low_rate_hz: int) -> tuple[float, float]:
    """(passband top, stopband start) in Hz of the low-pass between two rates.

    The telephone-band edges scaled by `low_rate_hz / TELEPHONY_RATE_HZ`. A pair whose ratio is
    not an integer (24 ↔ 16 kHz) has its filter at the rates' common multiple (48 kHz), where a
    stopband from the low rate's Nyquist costs little (≈ 120 taps, ≈ 1.2 ms), so there it
    starts no higher than that: nothing above 8 kHz folds back into a 16 kHz stream.
    """
    scale = low_rate_hz / TELEPHONY_RATE_HZ
    passband_hz, stopband_hz = PASSBAND_HZ * scale, STOPBAND_HZ * scale
    if high_rate_hz % low_rate_hz:
        stopband_hz = min(stopband_hz, low_rate_hz / 2)
    return passband_hz, stopband_hz


def filter_rate_hz(high_rate_hz: int, low_rate_hz: int) -> int:
    """The rate the pair's low-pass runs at: the least common multiple of the two rates."""
    return high_rate_hz * low_rate_hz // math.gcd(high_rate_hz, low_rate_hz)


@functools.cache
def lowpass_taps(high_rate_hz: int, low_rate_hz: int, phases: int = 1) -> npt.NDArray[np.float64]:
    """The shipped linear-phase low-pass between two rates with DC gain `phases` (read-only).

    It runs at `filter_rate_hz` (the high rate, for an integer ratio). Odd length, symmetric,
    multiples of 2**-TAP_FRACTION_BITS, and each of the `phases`
    polyphase branches (taps p, p + phases, …) sums to exactly 1: an interpolator by `phases`
    then passes DC exactly with no ripple at multiples of `low_rate_hz`, which lets the
    resampler carry its rounding offset through the filter. The shortest equiripple (remez)
    design meeting PASSBAND_RIPPLE_DB and STOPBAND_ATTENUATION_DB after that, band edges from
    `band_edges`: designed by `gateway.audio.design_filters` (the only
    user of scipy) and shipped as constants in `gateway.audio.filter_taps`.
    """
    _passband_hz, stopband_hz = band_edges(high_rate_hz, low_rate_hz)
    if not stopband_hz < high_rate_hz / 2:
        raise ResampleConfigError(
            f"a {high_rate_hz} Hz ↔ {low_rate_hz} Hz filter needs a stopband below "
            f"{high_rate_hz / 2:g} Hz but the spec's starts at {stopband_hz:g} Hz"
        )
    # Imported here, not at the top: design_filters reads the spec above to regenerate the taps.
    from gateway.audio.filter_taps import TAPS

    shipped = TAPS.get((high_rate_hz, low_rate_hz, phases))
    if shipped is None:
        raise ResampleConfigError(
            f"no filter ships for {high_rate_hz} Hz ↔ {low_rate_hz} Hz with {phases} phase(s): add "
            "the pair to RATE_PAIRS in gateway/audio/design_filters.py and run "
            "`python -m gateway.audio.design_filters`"
        )
    taps = np.array(shipped, dtype=np.float64)
    taps.flags.writeable = False
    return taps


design_lowpass = lowpass_taps
"""The name from when the taps were designed at import (kept for callers and tests)."""


@dataclass(frozen=True)
class _BlockFilter:
    """A polyphase FIR as one matrix over blocks of the input (shared by all instances).

    Output groups (`up` samples, one group per `down` inputs) are computed `block` per row.
    Row r reads a `window` of inputs starting `row_in` (= block * down) after row r - 1's, so
    all rows are one strided view of the input line; its outputs are window @ matrix. The
    first `history` inputs of a window are the context from before the row.
    """

    up: int
    down: int
    block: int
    row_in: int
    history: int
    window: int
    matrix: npt.NDArray[np.float64]
    """window × (block * up): for inputs that already carry _OFFSET."""
    matrix_offset: npt.NDArray[np.float64]
    """(window + 1) × (block * up): the extra last row adds _OFFSET from a constant 1 input."""
    num_taps: int
    lag: int
    """Filter-rate samples each output comes after its nominal time, on top of the filter's
    own delay: output j is the filter's output at j * down - lag, so that every output is
    computed from inputs already received (0 for an integer ratio, 2 for 3:2 and 2:3)."""


@functools.cache
def _block_filter(in_rate_hz: int, out_rate_hz: int) -> _BlockFilter:
    high_rate_hz, low_rate_hz = max(in_rate_hz, out_rate_hz), min(in_rate_hz, out_rate_hz)
    common = math.gcd(in_rate_hz, out_rate_hz)
    up, down = out_rate_hz // common, in_rate_hz // common
    if up == down == 1:
        taps: npt.NDArray[np.float64] = np.ones(1)
    else:
        taps = lowpass_taps(high_rate_hz, low_rate_hz, up)
    block = BLOCK_GROUPS
    row_in = block * down
    # At the filter rate (inputs every `up` samples, outputs every `down`), output j = i * up + p
    # of a row (group i, phase p) sits at j * down + down - 1 from the row's start, so every
    # output of group i has all its inputs within the group's `down`; the input at offset s
    # meets tap (that position - s * up). For an integer ratio this is the newest input of the
    # group going down, and phase p after input i going up; with the `down - 1` inputs of
    # silence the line starts with, output j is the filter's output at j * down - `lag`
    # (0 for an integer ratio; see `_BlockFilter.lag`). The oldest input any output of a row
    # needs lies `history` before the row's start.
    history = max((len(taps) - down) // up, 0)
    offset = np.arange(-history, row_in)[:, None]
    group = np.repeat(np.arange(block), up)[None, :]
    phase = np.tile(np.arange(up), block)[None, :]
    tap_index = (group * up + phase) * down + down - 1 - offset * up
    valid = (tap_index >= 0) & (tap_index < len(taps))
    matrix = np.where(valid, taps[np.clip(tap_index, 0, len(taps) - 1)], 0.0)
    # Every column holds one whole branch, so it sums to exactly 1 and passes _OFFSET through.
    if not np.all(matrix.sum(axis=0) == 1.0):
        raise ResampleConfigError("a polyphase branch does not sum to 1")
    matrix_offset = np.vstack([matrix, np.full((1, matrix.shape[1]), _OFFSET)])
    matrix.flags.writeable = False
    matrix_offset.flags.writeable = False
    return _BlockFilter(
        up,
        down,
        block,
        row_in,
        history,
        history + row_in,
        matrix,
        matrix_offset,
        len(taps),
        (down - 1) * (up - 1),
    )


def _offset_binary_table(
    table: npt.NDArray[Any] | None,
) -> npt.NDArray[Any]:
    """Output table indexed by sample + 32768 (from one indexed by the int16 bit pattern)."""
    offset_binary = np.arange(65536, dtype=np.uint16) ^ np.uint16(0x8000)
    if table is None:
        return offset_binary.view(np.int16).copy()
    if table.shape != (65536,):
        raise ValueError(f"output_table needs 65536 entries, got shape {table.shape}")
    result: npt.NDArray[Any] = np.ascontiguousarray(table[offset_binary])
    return result


@dataclass(frozen=True, slots=True)
class _RowBuffers:
    """Per row count: the strided windows over the line plus the buffers one call reuses."""

    windows: npt.NDArray[Any]
    """rows × window view of the line (the inputs of each row, overlapping)."""
    floats: npt.NDArray[np.float64]
    """PCM16 input only: the windows as floats plus a last column of 1s (feeds the offset row)."""
    float_windows: npt.NDArray[np.float64]
    indices: npt.NDArray[np.intp]
    """Rounded outputs as output-table indices."""
    out: npt.NDArray[Any]
    """Output-table entries; copied out (tobytes) before the next call reuses them."""


class _Plan(NamedTuple):
    """What one chunk length does, given the context length it arrives after.

    A tuple so the hot path unpacks it in one step.
    """

    write: slice
    """Where the chunk's bytes go in the line."""
    keep_to: slice
    keep_from: slice
    """The context for the next call, moved to the front of the line afterwards."""
    next_live: int
    outputs: int
    """-1 when the rows are all whole, else how many outputs of them are real."""
    buffers: _RowBuffers | None
    """None when the chunk completes no output (going down, fewer inputs than the ratio)."""


class StreamingResampler:
    """Resample mono audio chunk by chunk, e.g. 8000 ↔ 24000 Hz, carrying the filter history.

    Every input sample is used as soon as it arrives: the rates reduce to `up / down` (8 → 24
    kHz is 3 / 1, 24 → 16 kHz is 2 / 3) and each `down` inputs give `up` outputs, the phase
    carrying across calls.
    Output samples are rounded (half up) and saturate at the int16 limits, and are the same
    however the input is chunked. One instance per direction per call; not thread-safe.

    `process` takes and returns int16 arrays. `process_bytes` is the fast path codecs use,
    with the sample conversions fused in: given `input_table` (256 int16 values) the input is
    one byte per sample standing for `input_table[byte]` (μ-law decoding); given
    `output_table` (65536 entries indexed by the int16 sample's bits read as uint16) each
    output sample becomes its entry (μ-law encoding). Without tables both sides of
    `process_bytes` are native-endian PCM16.
    """

    def __init__(
        self,
        in_rate_hz: int,
        out_rate_hz: int,
        *,
        input_table: npt.NDArray[np.int16] | None = None,
        output_table: npt.NDArray[Any] | None = None,
    ) -> None:
        if in_rate_hz <= 0 or out_rate_hz <= 0:
            raise ResampleConfigError(f"rates must be positive: {in_rate_hz} → {out_rate_hz}")
        self.in_rate_hz: Final = in_rate_hz
        self.out_rate_hz: Final = out_rate_hz
        spec = _block_filter(in_rate_hz, out_rate_hz)
        self._spec = spec
        self._group_delay_ms = ((spec.num_taps - 1) / 2 + spec.lag) / (in_rate_hz * spec.up) * 1000
        self._plain = input_table is None and output_table is None
        output = _offset_binary_table(output_table)
        if input_table is None:
            decode: npt.NDArray[np.float64] | None = None
            matrix = spec.matrix_offset
            line_dtype: np.dtype[Any] = np.dtype(np.int16)
            self._silence = _PCM16_SILENCE
        else:
            if input_table.shape != (256,):
                raise ValueError(f"input_table needs 256 entries, got shape {input_table.shape}")
            zeros = np.flatnonzero(input_table == 0)
            if not len(zeros):
                raise ValueError("input_table needs a code for silence (value 0)")
            decode = input_table.astype(np.float64) + _OFFSET
            matrix = spec.matrix
            line_dtype = np.dtype(np.uint8)
            self._silence = int(zeros[-1])
        self._decode = decode
        self._output = output
        self._hot = (decode, matrix, output)  # unpacked in one step by the hot path
        self._itemsize = line_dtype.itemsize
        # The line: `_live` samples of context at the start (history, plus inputs waiting for
        # their group when going down), then the new input, then read-ahead for a partial last
        # row. Grown when a chunk does not fit.
        self._context = spec.history + spec.down - 1
        self._live = self._context
        frame_in = in_rate_hz // 50  # 20 ms
        capacity = self._context + 4 * frame_in + 2 * spec.row_in
        self._line = np.full(capacity, self._silence, line_dtype)
        self._line_bytes = self._line.data.cast("B")
        self._row_buffers: dict[int, _RowBuffers] = {}
        self._plans: dict[int, _Plan] = {}

    @property
    def group_delay_ms(self) -> float:
        """Delay of the linear-phase filter in ms of signal time, the same at every frequency
        (its half length, plus the lag of a non-integer ratio's output phases)."""
        return self._group_delay_ms

    @property
    def num_taps(self) -> int:
        """Length of the low-pass at the high rate (1 when the rates are equal)."""
        return self._spec.num_taps

    def reset(self) -> None:
        """Forget all history (e.g. on barge-in): the next chunk starts from silence."""
        self._live = self._context
        self._line[: self._context] = self._silence

    def process(self, pcm16: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        """Resample one chunk of int16 samples (any length, including 0); returns a new array."""
        if not self._plain:
            raise TypeError("this resampler has sample tables: use process_bytes")
        if pcm16.dtype != np.int16 or pcm16.ndim != 1:
            raise TypeError(f"process needs a 1-D int16 array, got {pcm16.dtype} {pcm16.shape}")
        return np.frombuffer(self.process_bytes(pcm16.tobytes()), dtype=np.int16).copy()

    def process_bytes(self, data: bytes) -> bytes:
        """Resample one chunk of bytes (formats: see the class doc); returns new bytes.

        The per-frame hot path: everything that depends only on the chunk length and the
        context length (slices, row count, buffers) comes from a cached `_Plan`.
        """
        plan = self._plans.get(len(data) * _PLAN_KEY_STRIDE + self._live) or self._plan(len(data))
        write, keep_to, keep_from, next_live, outputs, buffers = plan
        line_bytes = self._line_bytes
        line_bytes[write] = data
        if buffers is None:  # going down, not enough input yet for one output
            self._live = next_live
            return b""
        decode, matrix, output = self._hot
        if decode is not None:
            exact = decode.take(buffers.windows).dot(matrix)
        else:
            buffers.float_windows[...] = buffers.windows
            exact = buffers.floats.dot(matrix)
        # Keep the context the next call needs at the front of the line; the product above has
        # already read the old positions.
        line_bytes[keep_to] = line_bytes[keep_from]
        self._live = next_live
        if outputs < 0:  # whole rows: round and map into the reusable buffers
            indices = buffers.indices
            indices[...] = exact  # truncates: exact carries +_OFFSET, see there
            mapped = output.take(indices, mode="clip", out=buffers.out)
        else:
            mapped = output.take(exact.reshape(-1)[:outputs].astype(np.intp), mode="clip")
        result: bytes = mapped.tobytes()
        return result

    def _plan(self, num_bytes: int) -> _Plan:
        """Work out (and cache) what a chunk of `num_bytes` does with the current context."""
        itemsize = self._itemsize
        if num_bytes % itemsize:
            raise ValueError(f"process_bytes needs whole {itemsize}-byte samples, got {num_bytes}")
        spec = self._spec
        live = self._live
        end = live + num_bytes // itemsize
        if end + spec.row_in > self._line.shape[0]:
            self._grow(end)
        groups = max((end - spec.history) // spec.down, 0)
        consumed = groups * spec.down
        rows = -(-groups // spec.block)
        buffers = self._row_buffers.get(rows) if groups else None
        cache = buffers is not None or not groups
        if groups and buffers is None:
            buffers = self._new_row_buffers(rows)
            # Keep buffers for frame-sized chunks only, and only a few sizes: hundreds of calls
            # each hold a pair of resamplers. Plans refer to buffers, so they go too.
            cache = rows <= _MAX_CACHED_ROWS
            if cache:
                if len(self._row_buffers) >= _MAX_CACHED_ROW_COUNTS:
                    self._row_buffers.clear()
                    self._plans.clear()
                self._row_buffers[rows] = buffers
        plan = _Plan(
            write=slice(live * itemsize, end * itemsize),
            keep_to=slice(0, (end - consumed) * itemsize),
            keep_from=slice(consumed * itemsize, end * itemsize),
            next_live=end - consumed,
            outputs=-1 if groups == rows * spec.block else groups * spec.up,
            buffers=buffers,
        )
        if cache:
            if len(self._plans) >= _MAX_CACHED_PLANS:
                self._plans.clear()
            self._plans[num_bytes * _PLAN_KEY_STRIDE + live] = plan
        return plan

    def _grow(self, end: int) -> None:
        """Reallocate the line so `end` samples plus a row of read-ahead fit."""
        line = np.full(2 * (end + self._spec.row_in), self._silence, self._line.dtype)
        line[: self._live] = self._line[: self._live]
        self._line = line
        self._line_bytes = line.data.cast("B")
        self._row_buffers.clear()
        self._plans.clear()

    def _new_row_buffers(self, rows: int) -> _RowBuffers:
        spec = self._spec
        line = self._line
        itemsize = self._itemsize
        windows: npt.NDArray[Any] = np.ndarray(
            (rows, spec.window), line.dtype, line, 0, (spec.row_in * itemsize, itemsize)
        )
        floats = np.ones((rows, spec.window + 1) if self._decode is None else (0, 1))
        outputs = (rows, spec.block * spec.up)
        return _RowBuffers(
            windows=windows,
            floats=floats,
            float_windows=floats[:, : spec.window],
            indices=np.empty(outputs, dtype=np.intp),
            out=np.empty(outputs, dtype=self._output.dtype),
        )
