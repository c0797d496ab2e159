"""Design time only: designs the resampler's low-passes and writes `gateway/audio/filter_taps.py`.

Run `python -m gateway.audio.design_filters` after changing the spec in `gateway.audio.resample`
(band edges, ripple, attenuation, tap quantisation) or `RATE_PAIRS` below; `--check` only
compares the designs with the shipped taps (exit 1 if they differ). This is the one module that
imports scipy, and nothing at run time imports it: scipy is a dev / bench dependency, not a
runtime one (the gateway loads the shipped constants, which saves ~75 MiB per process).
"""

from __future__ import annotations

import argparse
import sys
from math import gcd
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import scipy
from scipy import signal

from gateway.audio.resample import (
    PASSBAND_HZ,
    PASSBAND_RIPPLE_DB,
    STOPBAND_ATTENUATION_DB,
    STOPBAND_HZ,
    TAP_FRACTION_BITS,
    TELEPHONY_RATE_HZ,
    ResampleConfigError,
    band_edges,
    filter_rate_hz,
)

RATE_PAIRS: Final[tuple[tuple[int, int], ...]] = (
    (16000, 8000),
    (24000, 8000),
    (32000, 8000),
    (48000, 8000),
    (24000, 16000),
)
"""(high, low) rates whose filters ship, each at the pair's common multiple with a branch per
output phase: going down `low / gcd` (1 for an integer ratio), going up `high / gcd`. Live
speaks 16 or 24 kHz, carriers 8 or 16 kHz; 32 and 48 kHz are there for other callers."""

TAPS_PATH: Final = Path(__file__).with_name("filter_taps.py")
_MAX_TAPS: Final = 1023
_FREQ_CHECK_POINTS: Final = 8192
_LINE_LENGTH: Final = 100
_INDENT: Final = " " * 8


def design_lowpass(high_rate_hz: int, low_rate_hz: int, phases: int = 1) -> npt.NDArray[np.float64]:
    """Linear-phase low-pass taps at the pair's `filter_rate_hz` with DC gain `phases`.

    Odd length, symmetric, multiples of 2**-TAP_FRACTION_BITS, and each of the `phases`
    polyphase branches (taps p, p + phases, …) sums to exactly 1: an interpolator by `phases`
    then passes DC exactly with no ripple at multiples of `low_rate_hz`, which lets the
    resampler carry its rounding offset through the filter. The shortest equiripple (remez)
    design that still meets PASSBAND_RIPPLE_DB and STOPBAND_ATTENUATION_DB after that, with the
    band edges of `band_edges`.
    """
    passband_hz, stopband_hz = band_edges(high_rate_hz, low_rate_hz)
    fs_hz = filter_rate_hz(high_rate_hz, low_rate_hz)
    if not stopband_hz < high_rate_hz / 2:
        raise ResampleConfigError(
            f"a {high_rate_hz} Hz ↔ {low_rate_hz} Hz filter needs a stopband below "
            f"{high_rate_hz / 2:g} Hz but the spec's starts at {stopband_hz:g} Hz"
        )
    # Normalising the branches can double the passband error, so design for half of it.
    passband_error = 10 ** (PASSBAND_RIPPLE_DB / 2 / 20) - 1
    stopband_error = 10 ** (-STOPBAND_ATTENUATION_DB / 20)
    bands = [0.0, passband_hz, stopband_hz, fs_hz / 2]
    # Bellanger's length estimate, started low and walked up to the first design that passes.
    estimate = (2 / 3) * np.log10(1 / (10 * passband_error * stopband_error))
    estimate *= fs_hz / (stopband_hz - passband_hz)
    for num_taps in range(max(3, int(estimate * 0.8) | 1), _MAX_TAPS + 1, 2):
        prototype = signal.remez(
            num_taps,
            bands,
            [1.0, 0.0],
            weight=[1.0, passband_error / stopband_error],
            fs=fs_hz,
        )
        taps = _normalise_branches(prototype, phases)
        freqs_hz, response = signal.freqz(taps / phases, worN=_FREQ_CHECK_POINTS, fs=fs_hz)
        gain_db = 20 * np.log10(np.maximum(np.abs(response), 1e-12))
        if (
            np.max(np.abs(gain_db[freqs_hz <= passband_hz])) <= PASSBAND_RIPPLE_DB
            and np.max(gain_db[freqs_hz >= stopband_hz]) <= -STOPBAND_ATTENUATION_DB
        ):
            return taps
    raise ResampleConfigError(
        f"no filter of at most {_MAX_TAPS} taps meets the spec at {fs_hz} Hz"
    )


def _normalise_branches(prototype: npt.NDArray[np.float64], phases: int) -> npt.NDArray[np.float64]:
    """Scale each polyphase branch to sum 1, quantise, and put the rounding residue on the
    tap(s) nearest the centre so the taps stay symmetric (hence linear phase)."""
    unit = 2**TAP_FRACTION_BITS
    centre = (len(prototype) - 1) / 2
    units = np.zeros(len(prototype), dtype=np.int64)
    for phase in range(phases):
        index = np.arange(phase, len(prototype), phases)
        branch = np.round(prototype[index] / prototype[index].sum() * unit).astype(np.int64)
        distance = np.abs(index - centre)
        nearest = np.flatnonzero(distance == distance.min())
        residue = unit - int(branch.sum())
        branch[nearest] += residue // len(nearest)  # symmetry makes the residue divisible
        units[index] = branch
    if not np.array_equal(units, units[::-1]):
        raise ResampleConfigError("branch normalisation broke the filter's symmetry")
    return units / float(unit)


def design_all() -> dict[tuple[int, int, int], npt.NDArray[np.float64]]:
    """Every shipped filter, keyed (high rate, low rate, phases)."""
    designs: dict[tuple[int, int, int], npt.NDArray[np.float64]] = {}
    for high_rate_hz, low_rate_hz in RATE_PAIRS:
        common = gcd(high_rate_hz, low_rate_hz)
        for phases in (low_rate_hz // common, high_rate_hz // common):
            designs[(high_rate_hz, low_rate_hz, phases)] = design_lowpass(
                high_rate_hz, low_rate_hz, phases
            )
    return designs


def render(designs: dict[tuple[int, int, int], npt.NDArray[np.float64]]) -> str:
    """The source of `filter_taps.py`: every tap as a float64 literal that round-trips exactly
    (taps are dyadic rationals, so `repr` is exact)."""
    lines = [
        '"""Low-pass taps of `gateway.audio.resample`: GENERATED, do not edit.',
        "",
        "Generated by `python -m gateway.audio.design_filters` (scipy.signal.remez, "
        f"scipy {scipy.__version__}) to the",
        f"spec in `gateway.audio.resample`: passband 0-{PASSBAND_HZ:g} Hz within "
        f"±{PASSBAND_RIPPLE_DB:g} dB, stopband from {STOPBAND_HZ:g} Hz",
        f"at least {STOPBAND_ATTENUATION_DB:g} dB down (edges for a low rate of "
        f"{TELEPHONY_RATE_HZ} Hz, scaled for others: `band_edges`),",
        "each at the pair's common multiple of rates, taps multiples of "
        f"2**-{TAP_FRACTION_BITS}, odd length, symmetric,",
        "every polyphase branch summing to exactly 1.",
        "`tests/audio/test_filter_taps.py` re-designs them and checks they match.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Final",
        "",
        "TAPS: Final[dict[tuple[int, int, int], tuple[float, ...]]] = {",
    ]
    for (high_rate_hz, low_rate_hz, phases), taps in sorted(designs.items()):
        at = filter_rate_hz(high_rate_hz, low_rate_hz)
        lines.append(
            f"    # {high_rate_hz} Hz ↔ {low_rate_hz} Hz: {len(taps)} taps at {at} Hz, "
            f"{phases} phase(s)"
        )
        lines.append(f"    ({high_rate_hz}, {low_rate_hz}, {phases}): (")
        line = ""
        for literal in (repr(float(tap)) + "," for tap in taps):
            if line and len(_INDENT) + len(line) + 1 + len(literal) > _LINE_LENGTH:
                lines.append(_INDENT + line)
                line = ""
            line = f"{line} {literal}" if line else literal
        lines.append(_INDENT + line)
        lines.append("    ),")
    lines.append("}")
    lines.append('"""(high rate, low rate, phases) → taps at the high rate, DC gain `phases`."""')
    return "\n".join(lines) + "\n"


def shipped_differences(designs: dict[tuple[int, int, int], npt.NDArray[np.float64]]) -> list[str]:
    """How the shipped taps differ from `designs` (empty when they match exactly)."""
    from gateway.audio.filter_taps import TAPS

    problems = [f"{key}: not shipped" for key in designs if key not in TAPS]
    problems += [f"{key}: shipped but not designed" for key in TAPS if key not in designs]
    for key, taps in designs.items():
        if key in TAPS and not np.array_equal(np.asarray(TAPS[key]), taps):
            problems.append(f"{key}: the shipped taps are not the {len(taps)} designed")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.audio.design_filters",
        description=f"Design the resampler's low-passes and write {TAPS_PATH.name}.",
    )
    parser.add_argument(
        "--check", action="store_true", help="only compare with the shipped taps (exit 1 if stale)"
    )
    args = parser.parse_args(argv)
    designs = design_all()
    if args.check:
        problems = shipped_differences(designs)
        for problem in problems:
            print(f"{TAPS_PATH.name}: {problem}", file=sys.stderr)
        return 1 if problems else 0
    TAPS_PATH.write_text(render(designs))
    print(f"wrote {len(designs)} filters to {TAPS_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
