"""DTMF tones as 8 kHz μ-law, for the `send_dtmf` built-in (pressing keys in a phone menu).

Each key is the sum of its row and column sine tones (ITU-T Q.23), long enough for any DTMF
receiver (Q.24 asks for ≥ 40 ms tone and ≥ 40 ms pause).
"""

from __future__ import annotations

import numpy as np

from gateway.audio.mulaw import encode_mulaw

__all__ = ["DTMF_FREQUENCIES_HZ", "dtmf_mulaw"]

RATE_HZ = 8000
TONE_MS = 120
GAP_MS = 80
LEVEL = 0.35 * 32767
"""Each of the two tones at about -12 dBFS: loud enough, far from clipping when summed."""

_ROWS_HZ = (697.0, 770.0, 852.0, 941.0)
_COLUMNS_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
_KEYPAD = ("123A", "456B", "789C", "*0#D")
DTMF_FREQUENCIES_HZ: dict[str, tuple[float, float]] = {
    key: (_ROWS_HZ[row], _COLUMNS_HZ[column])
    for row, keys in enumerate(_KEYPAD)
    for column, key in enumerate(keys)
}


def dtmf_mulaw(digits: str, *, tone_ms: int = TONE_MS, gap_ms: int = GAP_MS) -> bytes:
    """μ-law 8 kHz audio pressing `digits` in order (tone, pause, tone, …)."""
    t = np.arange(RATE_HZ * tone_ms // 1000) / RATE_HZ
    gap = np.zeros(RATE_HZ * gap_ms // 1000)
    pieces = []
    for digit in digits.upper():
        low, high = DTMF_FREQUENCIES_HZ[digit]
        pieces.append(LEVEL * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t)))
        pieces.append(gap)
    if not pieces:
        return b""
    pcm = np.concatenate(pieces).astype(np.int16)
    return bytes(encode_mulaw(pcm))
