"""Test signals for the Live tests: tones, silence, chunking and pitch measurement."""

from __future__ import annotations

import numpy as np

RATE_HZ = 24000


def tone_pcm16(
    duration_ms: int, *, freq_hz: float = 300.0, dbfs: float = -10.0, rate_hz: int = RATE_HZ
) -> bytes:
    """A sine whose peak is `dbfs` relative to full scale."""
    t = np.arange(rate_hz * duration_ms // 1000) / rate_hz
    amplitude = 32767 * 10 ** (dbfs / 20)
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype("<i2").tobytes()


def silence_pcm16(duration_ms: int, *, rate_hz: int = RATE_HZ) -> bytes:
    return bytes(rate_hz * duration_ms // 1000 * 2)


def chunked(pcm16: bytes, *, chunk_ms: int = 20, rate_hz: int = RATE_HZ) -> list[bytes]:
    size = rate_hz * chunk_ms // 1000 * 2
    return [pcm16[i : i + size] for i in range(0, len(pcm16), size)]


def utterance(speech_ms: int = 600, silence_ms: int = 700) -> list[bytes]:
    """A caller turn: 300 Hz at -10 dBFS then silence, in 20 ms chunks at 24 kHz."""
    return chunked(tone_pcm16(speech_ms)) + chunked(silence_pcm16(silence_ms))


def dominant_hz(pcm16: bytes, *, rate_hz: int = RATE_HZ) -> float:
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate_hz / len(samples))


def rms_dbfs(pcm16: bytes) -> float:
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float64)
    return float(20 * np.log10(np.sqrt(np.mean(samples**2)) / 32768))
