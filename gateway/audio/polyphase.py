"""Whole-signal resampling between any two rates (a 44.1 kHz WAV → 8 kHz), numpy only.

The same filter and alignment as `scipy.signal.resample_poly` with its defaults, so results
match it to rounding error: the rates reduce to `up / down`; a windowed-sinc low-pass (Kaiser
window, beta 5, `10 * max(up, down)` taps either side of the centre, cutoff at the lower of the
two Nyquist rates, DC gain `up`) is applied at the virtual rate `in * up` and every `down`-th
sample kept, centred so the output has no delay, with zeros beyond both ends. Polyphase: each
output sample is one dot product of about `21 * max(up, down) / up` inputs with one branch of
the filter, in blocks so memory stays small for long files. For `gateway call`'s input files;
calls use the streaming resampler (`gateway.audio.resample`), which is exact and cheaper.
"""

from __future__ import annotations

from math import gcd
from typing import Final

import numpy as np
import numpy.typing as npt

KAISER_BETA: Final = 5.0
"""Window shape (scipy's default `("kaiser", 5.0)`): about 55 dB of stopband rejection."""

HALF_LENGTH_PER_RATE: Final = 10
"""Taps either side of the centre, per unit of `max(up, down)` (scipy's choice)."""

_BLOCK_OUTPUTS: Final = 4096
"""Output samples computed per step (bounds the gathered windows to a few MB)."""

Samples = npt.NDArray[np.float64]


def lowpass(up: int, down: int) -> Samples:
    """The anti-alias / anti-image filter for `up / down` (reduced), at the rate `in * up`."""
    max_rate = max(up, down)
    half_len = HALF_LENGTH_PER_RATE * max_rate
    cutoff = 1.0 / max_rate  # relative to the virtual rate's Nyquist
    centred = np.arange(2 * half_len + 1) - half_len
    taps = cutoff * np.sinc(cutoff * centred) * np.kaiser(2 * half_len + 1, KAISER_BETA)
    result: Samples = taps / taps.sum() * up
    return result


def resample_poly(samples: Samples, up: int, down: int) -> Samples:
    """`samples` (1-D float) at rate r → rate r * up / down; `ceil(len * up / down)` samples."""
    if up < 1 or down < 1:
        raise ValueError(f"up and down must be >= 1, got {up} and {down}")
    common = gcd(up, down)
    up, down = up // common, down // common
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"resample_poly needs 1-D samples, got shape {x.shape}")
    if up == down == 1:
        return x.copy()
    taps = lowpass(up, down)
    half_len = (len(taps) - 1) // 2
    per_branch = -(-len(taps) // up)
    # branches[p, j] = taps[p + j * up]: output sample k sits at t = k * down + half_len on the
    # virtual rate and is sum_j branches[t % up, j] * x[t // up - j].
    padded_taps = np.zeros(per_branch * up)
    padded_taps[: len(taps)] = taps
    branches = padded_taps.reshape(per_branch, up).T
    n_out = -(-len(x) * up // down)
    if n_out == 0:
        return np.zeros(0)
    t = np.arange(n_out, dtype=np.int64) * down + half_len
    phase, newest = t % up, t // up
    # Pad so every window (newest - per_branch + 1 … newest) lies inside the padded input.
    lead = per_branch - 1
    padded = np.zeros(lead + max(len(x), int(newest[-1]) + 1))
    padded[lead : lead + len(x)] = x
    back = np.arange(per_branch)  # window position j holds x[newest - j]
    out = np.empty(n_out)
    for start in range(0, n_out, _BLOCK_OUTPUTS):
        block = slice(start, start + _BLOCK_OUTPUTS)
        windows = padded[(newest[block] + lead)[:, None] - back[None, :]]
        out[block] = np.einsum("ij,ij->i", windows, branches[phase[block]])
    return out


def resample_rate(samples: Samples, in_rate_hz: int, out_rate_hz: int) -> Samples:
    """`samples` at `in_rate_hz` → `out_rate_hz` (any positive integer rates)."""
    if in_rate_hz <= 0 or out_rate_hz <= 0:
        raise ValueError(f"rates must be positive: {in_rate_hz} → {out_rate_hz}")
    common = gcd(in_rate_hz, out_rate_hz)
    return resample_poly(samples, out_rate_hz // common, in_rate_hz // common)
