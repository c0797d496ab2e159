"""Deterministic speech-like audio for the Live emulator's replies.

A few harmonics of a per-reply fundamental (so tests can tell replies apart by pitch) under a
syllabic (4 Hz) amplitude envelope, at about -20 dBFS RMS. Duration follows the reply text
(~70 ms per character), bounded so a reply is never silent-short nor endless.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = [
    "LEVEL_DBFS",
    "MAX_DURATION_S",
    "MIN_DURATION_S",
    "MS_PER_CHAR",
    "reply_fundamental_hz",
    "speech_duration_s",
    "synthesize_speech_pcm16",
]

MS_PER_CHAR = 70
MIN_DURATION_S = 0.4
MAX_DURATION_S = 4.0
LEVEL_DBFS = -20.0
"""RMS level relative to full scale."""
FUNDAMENTALS_HZ = (120.0, 140.0, 160.0, 180.0, 200.0, 220.0, 240.0)
HARMONIC_AMPLITUDES = (1.0, 0.5, 0.3, 0.15)
SYLLABLE_RATE_HZ = 4.0
FADE_MS = 10


def reply_fundamental_hz(reply_number: int) -> float:
    """Pitch of reply N (1-based): 120, 140, … 240 Hz, then round again."""
    return FUNDAMENTALS_HZ[(reply_number - 1) % len(FUNDAMENTALS_HZ)]


def speech_duration_s(text: str) -> float:
    """How long the emulator takes to "say" `text`."""
    return min(max(len(text) * MS_PER_CHAR / 1000.0, MIN_DURATION_S), MAX_DURATION_S)


def synthesize_speech_pcm16(text: str, reply_number: int, rate_hz: int = 24000) -> bytes:
    """PCM16LE mono audio for reply `reply_number` saying `text`."""
    n_samples = round(speech_duration_s(text) * rate_hz)
    return _synthesize(n_samples, reply_fundamental_hz(reply_number), rate_hz)


@lru_cache(maxsize=32)
def _synthesize(n_samples: int, f0_hz: float, rate_hz: int) -> bytes:
    t = np.arange(n_samples, dtype=np.float64) / rate_hz
    wave = np.zeros(n_samples, dtype=np.float64)
    for k, amplitude in enumerate(HARMONIC_AMPLITUDES, start=1):
        wave += amplitude * np.sin(2.0 * math.pi * k * f0_hz * t)
    envelope = 0.55 - 0.45 * np.cos(2.0 * math.pi * SYLLABLE_RATE_HZ * t)
    fade = min(round(rate_hz * FADE_MS / 1000), n_samples // 2)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        envelope[:fade] *= ramp
        envelope[-fade:] *= ramp[::-1]
    wave *= envelope
    rms = float(np.sqrt(np.mean(np.square(wave)))) if n_samples else 0.0
    if rms > 0:
        wave *= 32768.0 * 10.0 ** (LEVEL_DBFS / 20.0) / rms
    return np.clip(np.round(wave), -32768, 32767).astype("<i2").tobytes()
