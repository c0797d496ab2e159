"""μ-law: bit-exact with the standard tables (audioop) for every code and every int16 sample."""

from __future__ import annotations

import audioop

import numpy as np
import pytest

from gateway.audio.mulaw import (
    MULAW_DECODE_TABLE,
    MULAW_ENCODE_TABLE,
    MULAW_SILENCE,
    decode_mulaw,
    encode_mulaw,
)

ALL_CODES = bytes(range(256))
ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)


def test_decode_matches_audioop_for_all_256_codes() -> None:
    expected = np.frombuffer(audioop.ulaw2lin(ALL_CODES, 2), dtype=np.int16)
    np.testing.assert_array_equal(decode_mulaw(ALL_CODES), expected)


def test_encode_matches_audioop_for_all_65536_samples() -> None:
    expected = audioop.lin2ulaw(ALL_SAMPLES.tobytes(), 2)
    assert encode_mulaw(ALL_SAMPLES) == expected


def test_tables_are_read_only_and_shaped_for_direct_indexing() -> None:
    assert MULAW_DECODE_TABLE.shape == (256,) and MULAW_DECODE_TABLE.dtype == np.int16
    assert MULAW_ENCODE_TABLE.shape == (65536,) and MULAW_ENCODE_TABLE.dtype == np.uint8
    assert not MULAW_DECODE_TABLE.flags.writeable
    assert not MULAW_ENCODE_TABLE.flags.writeable


def test_silence_code_is_zero_both_ways() -> None:
    assert decode_mulaw(bytes([MULAW_SILENCE]))[0] == 0
    assert encode_mulaw(np.zeros(3, dtype=np.int16)) == bytes([MULAW_SILENCE]) * 3


def test_decode_then_encode_returns_the_code() -> None:
    # Every code except -0 (0x7F, which decodes to 0 like +0) survives a round trip.
    decoded = decode_mulaw(ALL_CODES)
    reencoded = encode_mulaw(decoded)
    assert [c for c in range(256) if reencoded[c] != c] == [0x7F]


def test_decode_returns_a_new_writable_array() -> None:
    pcm16 = decode_mulaw(b"\x00\x80")
    pcm16[0] = 1  # must not touch the table
    assert decode_mulaw(b"\x00")[0] == MULAW_DECODE_TABLE[0]


def test_empty_input() -> None:
    assert decode_mulaw(b"").shape == (0,)
    assert encode_mulaw(np.zeros(0, dtype=np.int16)) == b""


def test_encode_accepts_strided_views() -> None:
    samples = ALL_SAMPLES[::7]
    assert encode_mulaw(samples) == audioop.lin2ulaw(samples.tobytes(), 2)


def test_encode_rejects_other_dtypes() -> None:
    with pytest.raises(TypeError, match="int16"):
        encode_mulaw(np.zeros(4, dtype=np.int32))
