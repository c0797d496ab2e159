"""Whole-signal resampling for `gateway call`'s input WAVs, numpy only.

It replaced `scipy.signal.resample_poly` in `gateway.softphone.cli`, so it must give the same
samples (it uses the same filter and alignment), and — independently of scipy — speech-band
quality into 8 kHz: a flat telephone band, aliases of what lies above 4 kHz well down.
"""

from __future__ import annotations

import wave
from math import gcd
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy import signal

from gateway.audio.polyphase import lowpass, resample_poly, resample_rate
from gateway.softphone.cli import read_wav_pcm16_8k

RATES_HZ = [44100, 16000, 48000, 22050, 11025, 32000, 24000, 12000, 4000]
MAX_PASSBAND_ERROR_DB = 0.1
MIN_ALIAS_REJECTION_DB = 55.0
ALIAS_FROM_HZ = 5000  # the Kaiser (beta 5) transition band is about 3.4 … 5 kHz


def tone(freq_hz: float, rate_hz: int, duration_s: float = 1.2, amplitude: float = 0.5) -> (
    npt.NDArray[np.float64]
):
    t = np.arange(round(rate_hz * duration_s)) / rate_hz
    return amplitude * np.sin(2 * np.pi * freq_hz * t)


def level_db(y: npt.NDArray[np.float64], amplitude: float = 0.5) -> float:
    """RMS of the steady part (0.1 … 1.1 s at 8 kHz) relative to a sine of `amplitude`."""
    steady = y[800:8800]
    return float(20 * np.log10(max(np.sqrt(np.mean(steady**2)), 1e-12) / (amplitude / np.sqrt(2))))


@pytest.mark.parametrize("rate_hz", RATES_HZ)
@pytest.mark.parametrize("length", [0, 1, 2, 5, 441, 12345])
def test_matches_scipy_resample_poly(rate_hz: int, length: int) -> None:
    x = np.random.default_rng(rate_hz + length).standard_normal(length)
    common = gcd(rate_hz, 8000)
    expected = signal.resample_poly(x, 8000 // common, rate_hz // common)
    ours = resample_rate(x, rate_hz, 8000)
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)


def test_upsampling_and_unreduced_ratios_match_scipy_too() -> None:
    x = np.random.default_rng(1).standard_normal(3001)
    for up, down in [(3, 1), (2, 3), (160, 441), (6, 4)]:
        np.testing.assert_allclose(
            resample_poly(x, up, down), signal.resample_poly(x, up, down), rtol=0, atol=1e-12
        )
    np.testing.assert_array_equal(resample_poly(x, 5, 5), x)


def test_the_filter_is_scipys_firwin_kaiser_design() -> None:
    for up, down in [(80, 441), (1, 2), (3, 1)]:
        max_rate = max(up, down)
        expected = signal.firwin(20 * max_rate + 1, 1 / max_rate, window=("kaiser", 5.0)) * up
        np.testing.assert_allclose(lowpass(up, down), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("rate_hz", [44100, 16000])
@pytest.mark.parametrize("freq_hz", [300, 1000, 2000, 3000, 3400])
def test_the_telephone_band_is_flat(rate_hz: int, freq_hz: int) -> None:
    assert abs(level_db(resample_rate(tone(freq_hz, rate_hz), rate_hz, 8000))) <= (
        MAX_PASSBAND_ERROR_DB
    )


@pytest.mark.parametrize("rate_hz", [44100, 16000])
def test_what_lies_above_the_new_nyquist_does_not_alias(rate_hz: int) -> None:
    for freq_hz in range(ALIAS_FROM_HZ, min(rate_hz // 2, 20000), 250):
        rejection_db = -level_db(resample_rate(tone(freq_hz, rate_hz), rate_hz, 8000))
        assert rejection_db >= MIN_ALIAS_REJECTION_DB, f"{freq_hz} Hz at -{rejection_db:.1f} dB"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="positive"):
        resample_rate(np.zeros(4), 0, 8000)
    with pytest.raises(ValueError, match=">= 1"):
        resample_poly(np.zeros(4), 0, 1)
    with pytest.raises(ValueError, match="1-D"):
        resample_poly(np.zeros((2, 2)), 1, 2)


# --- `gateway call` reads 44.1 kHz and 16 kHz WAVs with it -------------------------------------


@pytest.mark.parametrize("rate_hz", [44100, 16000])
def test_a_wav_at_44k1_or_16k_becomes_clean_8k_speech_band_audio(
    tmp_path: Path, rate_hz: int
) -> None:
    """1 kHz (kept) plus 6 kHz, which a naive decimation folds onto 2 kHz (must not)."""
    x = tone(1000, rate_hz, amplitude=0.25) + tone(6000, rate_hz, amplitude=0.25)
    pcm16 = np.round(x * 32767).astype("<i2")
    path = tmp_path / f"{rate_hz}.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate_hz)
        wav.writeframes(pcm16.tobytes())

    y = np.frombuffer(read_wav_pcm16_8k(path), dtype="<i2").astype(np.float64) / 32768
    assert len(y) == -(-len(pcm16) * 8000 // rate_hz)
    common = gcd(rate_hz, 8000)
    reference = signal.resample_poly(pcm16 / 32768.0, 8000 // common, rate_hz // common)
    assert np.max(np.abs(y * 32768 - np.clip(np.round(reference * 32768), -32768, 32767))) <= 1
    spectrum = np.abs(np.fft.rfft(y[800:8800]))  # 1 s: 1 Hz bins
    assert abs(20 * np.log10(spectrum[1000] / 4000 / 0.25)) <= MAX_PASSBAND_ERROR_DB
    alias_db = 20 * np.log10(spectrum[2000] / spectrum[1000])
    assert alias_db <= -MIN_ALIAS_REJECTION_DB, f"6 kHz folds to 2 kHz at {alias_db:.1f} dB"
