"""Streaming resampler: flat passband, no aliases or images, ≤ 2 ms delay, chunking-invariant."""

from __future__ import annotations

import audioop
import itertools
from math import gcd

import numpy as np
import numpy.typing as npt
import pytest
from scipy import signal

from gateway.audio.mulaw import MULAW_DECODE_TABLE, MULAW_ENCODE_TABLE, decode_mulaw, encode_mulaw
from gateway.audio.resample import (
    PASSBAND_HZ,
    STOPBAND_HZ,
    ResampleConfigError,
    StreamingResampler,
    band_edges,
    design_lowpass,
    filter_rate_hz,
)

UP = [(8000, 24000), (8000, 16000), (16000, 24000)]
DOWN = [(24000, 8000), (16000, 8000), (24000, 16000)]
PAIRS = UP + DOWN
PASSBAND_TONES_HZ = [300, 500, 1000, 2000, 3000, 3400]
WIDEBAND_TONES_HZ = [5000, 6000, 6800]
"""Also in the passband when the low rate is 16 kHz (its edges scale with it)."""
AMPLITUDE = 16384  # -6 dBFS
SETTLE_S = 0.05  # skip the start transient (the filters are < 2 ms long)
MEASURE_S = 1.0  # whole cycles of every integer-Hz tone at every rate

MAX_PASSBAND_ERROR_DB = 0.5
MIN_REJECTION_DB = 60.0
MAX_GROUP_DELAY_MS = 2.0


def edges(in_rate_hz: int, out_rate_hz: int) -> tuple[float, float]:
    return band_edges(max(in_rate_hz, out_rate_hz), min(in_rate_hz, out_rate_hz))


def up_down(in_rate_hz: int, out_rate_hz: int) -> tuple[int, int]:
    common = gcd(in_rate_hz, out_rate_hz)
    return out_rate_hz // common, in_rate_hz // common


def lag(in_rate_hz: int, out_rate_hz: int) -> int:
    """Output j is the filter-rate sample j * down - lag (0 for integer ratios)."""
    up, down = up_down(in_rate_hz, out_rate_hz)
    return (down - 1) * (up - 1)


def passband_cases() -> list[tuple[int, int, int]]:
    cases = []
    for in_rate_hz, out_rate_hz in PAIRS:
        passband_hz, _ = edges(in_rate_hz, out_rate_hz)
        tones = PASSBAND_TONES_HZ + [f for f in WIDEBAND_TONES_HZ if f <= passband_hz]
        cases += [(in_rate_hz, out_rate_hz, f) for f in tones]
    return cases


def tone(
    freq_hz: float, rate_hz: int, duration_s: float = SETTLE_S + MEASURE_S + 0.01
) -> npt.NDArray[np.int16]:
    t = np.arange(round(rate_hz * duration_s)) / rate_hz
    return np.round(AMPLITUDE * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def stream(
    resampler: StreamingResampler, pcm16: npt.NDArray[np.int16], frame_ms: int = 20
) -> npt.NDArray[np.int16]:
    """Feed `pcm16` in frames the way calls do and join the outputs."""
    frame = resampler.in_rate_hz * frame_ms // 1000
    parts = [resampler.process(pcm16[i : i + frame]) for i in range(0, len(pcm16), frame)]
    return np.concatenate(parts)


def steady(pcm16: npt.NDArray[np.int16], rate_hz: int) -> npt.NDArray[np.float64]:
    """The measurement window: MEASURE_S after SETTLE_S."""
    start = round(SETTLE_S * rate_hz)
    return pcm16[start : start + round(MEASURE_S * rate_hz)].astype(np.float64)


def rms(x: npt.NDArray[np.float64]) -> float:
    return float(np.sqrt(np.mean(x**2)))


def level_db(out: npt.NDArray[np.float64], ref: npt.NDArray[np.float64]) -> float:
    return float(20 * np.log10(max(rms(out), 1e-9) / rms(ref)))


# --- passband ------------------------------------------------------------------------------


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz", "freq_hz"), passband_cases())
def test_passband_is_flat_within_half_a_db(in_rate_hz: int, out_rate_hz: int, freq_hz: int) -> None:
    x = tone(freq_hz, in_rate_hz)
    y = stream(StreamingResampler(in_rate_hz, out_rate_hz), x)
    gain_db = level_db(steady(y, out_rate_hz), steady(x, in_rate_hz))
    assert abs(gain_db) <= MAX_PASSBAND_ERROR_DB, f"{freq_hz} Hz: {gain_db:+.3f} dB"


# --- stopband: no aliases going down -------------------------------------------------------


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), DOWN)
def test_no_aliases_going_down(in_rate_hz: int, out_rate_hz: int) -> None:
    """Every tone from the stopband edge to just below the input Nyquist comes out ≥ 60 dB
    down (to 8 kHz: from STOPBAND_HZ; 24 → 16 kHz: from 8 kHz, nothing folds back)."""
    _, stopband_hz = edges(in_rate_hz, out_rate_hz)
    assert stopband_hz <= max(STOPBAND_HZ, out_rate_hz / 2)
    for freq_hz in range(int(stopband_hz), in_rate_hz // 2, 100):  # 4.6k/8k … 11.9k / 7.9k
        x = tone(freq_hz, in_rate_hz)
        y = stream(StreamingResampler(in_rate_hz, out_rate_hz), x)
        rejection_db = -level_db(steady(y, out_rate_hz), steady(x, in_rate_hz))
        assert rejection_db >= MIN_REJECTION_DB, f"{freq_hz} Hz leaks at -{rejection_db:.1f} dB"


def test_six_khz_tone_does_not_alias_to_two_khz() -> None:
    x = tone(6000, 24000)
    y = stream(StreamingResampler(24000, 8000), x)
    assert level_db(steady(y, 8000), steady(x, 24000)) <= -MIN_REJECTION_DB


def test_audioop_ratecv_aliases_where_we_do_not() -> None:
    """Why audioop.ratecv is not used: 6 kHz at 24 kHz comes out at 8 kHz as a loud 2 kHz tone."""
    x = tone(6000, 24000)
    aliased, _ = audioop.ratecv(x.tobytes(), 2, 1, 24000, 8000, None)
    theirs = steady(np.frombuffer(aliased, dtype=np.int16), 8000)
    assert level_db(theirs, steady(x, 24000)) > -1.0  # near full level
    spectrum = np.abs(np.fft.rfft(theirs))  # 1 Hz bins over MEASURE_S
    assert int(np.argmax(spectrum)) == 2000
    ours = steady(stream(StreamingResampler(24000, 8000), x), 8000)
    assert level_db(ours, steady(x, 24000)) <= -MIN_REJECTION_DB


# --- stopband: no images going up ----------------------------------------------------------


@pytest.mark.parametrize(
    ("in_rate_hz", "out_rate_hz", "freq_hz"),
    [
        (i, o, f)
        for i, o in UP
        for f in (300, 1000, 2000, 3000, 3400, 6800)
        if f <= edges(i, o)[0]  # 6800 Hz only from 16 kHz (in its passband)
    ],
)
def test_no_images_going_up(in_rate_hz: int, out_rate_hz: int, freq_hz: int) -> None:
    """Energy at ≥ the stopband edge (images at 8k - f, 8k + f, ..., or 16k - f from 16 kHz)
    is ≥ 60 dB below the tone."""
    _, stopband_hz = edges(in_rate_hz, out_rate_hz)
    y = steady(
        stream(StreamingResampler(in_rate_hz, out_rate_hz), tone(freq_hz, in_rate_hz)), out_rate_hz
    )
    power = np.abs(np.fft.rfft(y)) ** 2  # 1 Hz bins, the tone and its images bin-centred
    freqs_hz = np.arange(len(power))
    images_db = 10 * np.log10(power[freqs_hz >= stopband_hz].sum() / power[freq_hz])
    assert images_db <= -MIN_REJECTION_DB, f"images at {images_db:.1f} dB"


# --- delay ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), PAIRS)
def test_group_delay_is_at_most_2_ms(in_rate_hz: int, out_rate_hz: int) -> None:
    resampler = StreamingResampler(in_rate_hz, out_rate_hz)
    filter_rate = filter_rate_hz(max(in_rate_hz, out_rate_hz), min(in_rate_hz, out_rate_hz))
    assert filter_rate == in_rate_hz * up_down(in_rate_hz, out_rate_hz)[0]
    assert resampler.group_delay_ms <= MAX_GROUP_DELAY_MS
    assert resampler.group_delay_ms == pytest.approx(
        ((resampler.num_taps - 1) / 2 + lag(in_rate_hz, out_rate_hz)) / filter_rate * 1000
    )


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), PAIRS)
def test_impulse_peaks_after_the_group_delay(in_rate_hz: int, out_rate_hz: int) -> None:
    """At the filter rate, input n sits at n * up and output j at j * down - lag; an impulse
    placed so its filter's centre lands on an output peaks there, symmetrically."""
    resampler = StreamingResampler(in_rate_hz, out_rate_hz)
    up, down = up_down(in_rate_hz, out_rate_hz)
    delay = (resampler.num_taps - 1) // 2 + lag(in_rate_hz, out_rate_hz)  # filter-rate samples
    assert delay / (in_rate_hz * up) * 1000 == pytest.approx(resampler.group_delay_ms)
    x = np.zeros(in_rate_hz // 10, dtype=np.int16)
    at = next(n for n in range(100, 400) if (n * up + delay) % down == 0)
    expected_peak = (at * up + delay) // down
    x[at] = 20000
    y = stream(resampler, x)
    assert int(np.argmax(y)) == expected_peak
    # Linear phase: the response is symmetric about its peak.
    half = 5
    around = y[expected_peak - half : expected_peak + half + 1].astype(int)
    np.testing.assert_allclose(around, around[::-1], atol=1)


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), PAIRS)
def test_cross_correlation_delay_matches_group_delay(in_rate_hz: int, out_rate_hz: int) -> None:
    """Band-limited noise against a zero-delay reference (scipy's resample_poly)."""
    rng = np.random.default_rng(7)
    noise = rng.standard_normal(in_rate_hz)  # 1 s
    band = signal.firwin(255, [300, 3000], pass_zero=False, fs=in_rate_hz)
    x = np.round(signal.lfilter(band, 1.0, noise) * 8000).astype(np.int16)
    y = stream(StreamingResampler(in_rate_hz, out_rate_hz), x).astype(np.float64)
    up, down = up_down(in_rate_hz, out_rate_hz)
    reference = signal.resample_poly(x.astype(np.float64), up, down)[: len(y)]
    lags = signal.correlation_lags(len(y), len(reference))
    xcorr = signal.correlate(y, reference)
    peak = int(np.argmax(xcorr))
    # Parabolic interpolation between output samples.
    left, mid, right = xcorr[peak - 1 : peak + 2]
    fraction = 0.5 * (left - right) / (left - 2 * mid + right)
    measured_ms = (lags[peak] + fraction) / out_rate_hz * 1000
    expected_ms = StreamingResampler(in_rate_hz, out_rate_hz).group_delay_ms
    assert measured_ms == pytest.approx(expected_ms, abs=0.05)
    assert measured_ms <= MAX_GROUP_DELAY_MS


# --- streaming: chunking, reset, saturation ------------------------------------------------


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), [*PAIRS, (8000, 48000), (8000, 8000)])
def test_output_does_not_depend_on_chunking(in_rate_hz: int, out_rate_hz: int) -> None:
    rng = np.random.default_rng(in_rate_hz + out_rate_hz)
    x = rng.integers(-32768, 32768, size=in_rate_hz // 2, dtype=np.int16)  # full-scale noise
    whole = StreamingResampler(in_rate_hz, out_rate_hz).process(x)
    for _ in range(3):
        chunked = StreamingResampler(in_rate_hz, out_rate_hz)
        parts, i = [], 0
        while i < len(x):
            size = int(rng.choice([0, 1, 2, 3, 7, 160, 161, 479, 480, 1000]))
            parts.append(chunked.process(x[i : i + size]))
            i += size
        assert np.concatenate(parts).tobytes() == whole.tobytes()


@pytest.mark.parametrize(
    ("in_rate_hz", "out_rate_hz"), [(8000, 24000), (24000, 8000), (24000, 16000), (16000, 24000)]
)
def test_many_distinct_chunk_sizes_give_the_same_output(in_rate_hz: int, out_rate_hz: int) -> None:
    """Sizes from 1 sample to 0.4 s: cached and uncached per-size buffers, and cache turnover."""
    rng = np.random.default_rng(11)
    x = rng.integers(-32768, 32768, size=in_rate_hz * 3, dtype=np.int16)
    whole = StreamingResampler(in_rate_hz, out_rate_hz).process(x)
    chunked = StreamingResampler(in_rate_hz, out_rate_hz)
    sizes = itertools.cycle([*range(1, 330, 7), 2801, 9600, 1291])
    parts, i = [], 0
    while i < len(x):
        size = next(sizes)
        parts.append(chunked.process(x[i : i + size]))
        i += size
    assert np.concatenate(parts).tobytes() == whole.tobytes()


def test_output_lengths() -> None:
    up = StreamingResampler(8000, 24000)
    assert len(up.process(np.zeros(160, dtype=np.int16))) == 480
    assert len(up.process(np.zeros(1, dtype=np.int16))) == 3
    assert len(up.process(np.zeros(0, dtype=np.int16))) == 0
    down = StreamingResampler(24000, 8000)
    # One output per 3 inputs, the first on the very first input; the phase carries over.
    sizes = (1, 1, 1, 1, 480, 2, 1)
    lengths = [len(down.process(np.zeros(n, dtype=np.int16))) for n in sizes]
    assert lengths == [1, 0, 0, 1, 160, 0, 1]
    # 3:2 and 2:3: `up` outputs per `down` inputs, as soon as a group's first input arrives.
    three_two = StreamingResampler(24000, 16000)
    lengths = [len(three_two.process(np.zeros(n, dtype=np.int16))) for n in (1, 1, 1, 480, 4)]
    assert lengths == [2, 0, 0, 320, 4]
    two_three = StreamingResampler(16000, 24000)
    lengths = [len(two_three.process(np.zeros(n, dtype=np.int16))) for n in (1, 1, 320, 3)]
    assert lengths == [3, 0, 480, 6]


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), PAIRS)
def test_reset_forgets_history(in_rate_hz: int, out_rate_hz: int) -> None:
    rng = np.random.default_rng(3)
    first = rng.integers(-20000, 20000, size=333, dtype=np.int16)
    second = rng.integers(-20000, 20000, size=480, dtype=np.int16)
    used = StreamingResampler(in_rate_hz, out_rate_hz)
    used.process(first)
    used.reset()
    fresh = StreamingResampler(in_rate_hz, out_rate_hz)
    np.testing.assert_array_equal(used.process(second), fresh.process(second))


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), PAIRS)
def test_matches_scipy_reference_and_saturates(in_rate_hz: int, out_rate_hz: int) -> None:
    """A full-scale square wave overshoots int16: the output saturates, never wraps around."""
    square = np.where(np.arange(in_rate_hz // 4) // 5 % 2 == 0, 32767, -32768).astype(np.int16)
    y = stream(StreamingResampler(in_rate_hz, out_rate_hz), square)
    up, down = up_down(in_rate_hz, out_rate_hz)
    taps = design_lowpass(max(in_rate_hz, out_rate_hz), min(in_rate_hz, out_rate_hz), up)
    # Output j is the filter-rate sample j * down - lag (see the impulse test).
    at_filter_rate = signal.upfirdn(taps, square.astype(np.float64), up, 1)
    lagged = np.concatenate([np.zeros(lag(in_rate_hz, out_rate_hz)), at_filter_rate])
    exact = lagged[::down][: len(y)]
    assert exact.max() > 32767.5 and exact.min() < -32768.5  # the test means something
    expected = np.clip(np.floor(exact + 0.5), -32768, 32767)
    np.testing.assert_array_equal(y, expected)


def test_fused_tables_match_separate_conversions() -> None:
    rng = np.random.default_rng(5)
    mulaw = rng.integers(0, 256, size=1000, dtype=np.uint8).tobytes()
    fused_up = StreamingResampler(8000, 24000, input_table=MULAW_DECODE_TABLE)
    assert (
        fused_up.process_bytes(mulaw)
        == StreamingResampler(8000, 24000).process(decode_mulaw(mulaw)).tobytes()
    )
    pcm16 = rng.integers(-32768, 32768, size=2400, dtype=np.int16)
    fused_down = StreamingResampler(24000, 8000, output_table=MULAW_ENCODE_TABLE)
    assert fused_down.process_bytes(pcm16.tobytes()) == encode_mulaw(
        StreamingResampler(24000, 8000).process(pcm16)
    )


# --- the filter and configuration ----------------------------------------------------------


@pytest.mark.parametrize(
    ("high_rate_hz", "low_rate_hz", "phases"),
    [
        (24000, 8000, 3),
        (24000, 8000, 1),
        (16000, 8000, 2),
        (16000, 8000, 1),
        (24000, 16000, 2),
        (24000, 16000, 3),
    ],
)
def test_designed_filter_meets_the_spec_analytically(
    high_rate_hz: int, low_rate_hz: int, phases: int
) -> None:
    taps = design_lowpass(high_rate_hz, low_rate_hz, phases)
    passband_hz, stopband_hz = band_edges(high_rate_hz, low_rate_hz)
    fs_hz = filter_rate_hz(high_rate_hz, low_rate_hz)
    assert len(taps) % 2 == 1
    np.testing.assert_array_equal(taps, taps[::-1])  # linear phase
    for phase in range(phases):
        assert taps[phase::phases].sum() == 1.0  # exactly: every branch passes DC
    freqs_hz, response = signal.freqz(taps / phases, worN=1 << 15, fs=fs_hz)
    gain_db = 20 * np.log10(np.maximum(np.abs(response), 1e-12))
    assert np.max(np.abs(gain_db[freqs_hz <= passband_hz])) <= MAX_PASSBAND_ERROR_DB
    assert np.max(gain_db[freqs_hz >= stopband_hz]) <= -MIN_REJECTION_DB
    assert (len(taps) - 1) / 2 / fs_hz * 1000 <= MAX_GROUP_DELAY_MS


def test_band_edges() -> None:
    assert band_edges(24000, 8000) == (PASSBAND_HZ, STOPBAND_HZ)
    assert band_edges(16000, 8000) == (PASSBAND_HZ, STOPBAND_HZ)
    # 3:2 — the stopband starts at the 16 kHz side's Nyquist, not at the scaled 9.2 kHz.
    assert band_edges(24000, 16000) == (2 * PASSBAND_HZ, 8000.0)
    assert filter_rate_hz(24000, 16000) == 48000 and filter_rate_hz(24000, 8000) == 24000


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), [(8000, 11025), (44100, 16000), (0, 8000)])
def test_rejects_non_integer_ratios(in_rate_hz: int, out_rate_hz: int) -> None:
    with pytest.raises(ResampleConfigError):
        StreamingResampler(in_rate_hz, out_rate_hz)


def test_rejects_wrong_input() -> None:
    resampler = StreamingResampler(8000, 24000)
    with pytest.raises(TypeError, match="int16"):
        resampler.process(np.zeros(4, dtype=np.float64))
    with pytest.raises(ValueError, match="whole"):
        resampler.process_bytes(b"\x00\x00\x00")
    fused = StreamingResampler(8000, 24000, input_table=MULAW_DECODE_TABLE)
    with pytest.raises(TypeError, match="process_bytes"):
        fused.process(np.zeros(4, dtype=np.int16))
