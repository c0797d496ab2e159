"""G.711 μ-law ↔ PCM16, bit-exact with the ITU tables (and so with `audioop`).

Both directions are a single numpy gather through a table built once at import: 256 entries to
decode, 65536 entries (one per int16 value, indexed by its uint16 bit pattern) to encode.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

MULAW_SILENCE: Final[int] = 0xFF
"""The μ-law code for zero (+0); pads partial frames."""

_BIAS: Final = 0x84
"""G.711 bias added to the magnitude before finding its segment (33 at 14-bit scale)."""

_CLIP_14BIT: Final = 8159
"""Largest 14-bit magnitude μ-law represents; louder samples saturate to the top code."""


def _build_decode_table() -> npt.NDArray[np.int16]:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    mantissa = codes & 0x0F
    segment = (codes & 0x70) >> 4
    magnitude = (((mantissa << 3) + _BIAS) << segment) - _BIAS
    table = np.where(codes & 0x80, -magnitude, magnitude).astype(np.int16)
    table.flags.writeable = False
    return table


def _build_encode_table() -> npt.NDArray[np.uint8]:
    # Entry i is for the int16 sample whose bits, read as uint16, are i.
    pcm14 = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32) >> 2
    negative = pcm14 < 0
    magnitude = np.minimum(np.where(negative, -pcm14, pcm14), _CLIP_14BIT) + (_BIAS >> 2)
    # Segment = how many times the biased magnitude exceeds 0x3F, 0x7F, ... (at most 7).
    segment = np.zeros_like(magnitude)
    for seg_end in (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF):
        segment += magnitude > seg_end
    code = (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    code = np.where(magnitude > 0x1FFF, 0x7F, code)  # past the last segment: the top code
    mask = np.where(negative, 0x7F, 0xFF)
    table = (code ^ mask).astype(np.uint8)
    table.flags.writeable = False
    return table


MULAW_DECODE_TABLE: Final = _build_decode_table()
"""int16[256], read-only: the sample each μ-law code stands for."""

MULAW_ENCODE_TABLE: Final = _build_encode_table()
"""uint8[65536], read-only: the μ-law code of each int16 sample, indexed by its uint16 bits."""


def decode_mulaw(mulaw: bytes) -> npt.NDArray[np.int16]:
    """μ-law bytes → a new int16 array (one sample per byte; the caller owns the result)."""
    result: npt.NDArray[np.int16] = MULAW_DECODE_TABLE[np.frombuffer(mulaw, dtype=np.uint8)]
    return result


def encode_mulaw(pcm16: npt.NDArray[np.int16]) -> bytes:
    """int16 samples → μ-law bytes (one byte per sample); louder than ±8159·4 saturates."""
    if pcm16.dtype != np.int16:
        raise TypeError(f"encode_mulaw needs int16 samples, got {pcm16.dtype}")
    return MULAW_ENCODE_TABLE[pcm16.view(np.uint16)].tobytes()
