"""Caller audio for tests: 20 ms μ-law frames of 'speech' (loud, voiced) and of silence."""

from __future__ import annotations

import numpy as np

from gateway.audio.mulaw import MULAW_SILENCE, decode_mulaw, encode_mulaw

FRAME_SAMPLES = 160  # 20 ms at 8 kHz


def speech_frames(duration_ms: int, fundamental_hz: float = 180.0) -> list[bytes]:
    """A voiced, speech-like signal (harmonics of a low fundamental) at about -12 dBFS."""
    n = 8000 * duration_ms // 1000
    t = np.arange(n) / 8000
    signal = sum(np.sin(2 * np.pi * fundamental_hz * k * t) / k for k in range(1, 8))
    pcm = (signal / np.max(np.abs(signal)) * 8000).astype(np.int16)
    mulaw = encode_mulaw(pcm)
    return [mulaw[i : i + FRAME_SAMPLES] for i in range(0, len(mulaw), FRAME_SAMPLES)]


def silence_frames(duration_ms: int) -> list[bytes]:
    return [bytes([MULAW_SILENCE]) * FRAME_SAMPLES] * (duration_ms // 20)


def rms_dbfs(mulaw: bytes) -> float:
    pcm = decode_mulaw(mulaw).astype(np.float64)
    rms = float(np.sqrt(np.mean(pcm**2))) if len(pcm) else 0.0
    return 20 * np.log10(max(rms, 1e-9) / 32768)
