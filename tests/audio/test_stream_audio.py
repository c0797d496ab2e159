"""StreamAudio: a call's conversions for its carrier's stream format (μ-law or L16, 8 kHz)."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.audio.codec import (
    L16_ENCODING,
    MULAW_ENCODING,
    StreamAudio,
    UnsupportedStreamFormat,
)
from gateway.audio.mulaw import decode_mulaw, encode_mulaw


def tone(rate_hz: int, ms: int, hz: float = 440.0) -> np.ndarray:
    t = np.arange(rate_hz * ms // 1000) / rate_hz
    return (np.sin(2 * np.pi * hz * t) * 8000).astype("<i2")


def test_l16_8k_goes_to_live_at_16k_and_comes_back_as_320_byte_frames() -> None:
    audio = StreamAudio(L16_ENCODING, 8000, 16000)
    pcm = audio.decode(tone(8000, 20).tobytes())
    assert len(pcm) == 640  # 20 ms at 16 kHz, 16-bit
    frames = audio.framer.push(audio.encode(tone(24000, 200).tobytes()))
    assert [len(f) for f in frames] == [320] * 10  # 200 ms of L16 at 8 kHz
    samples = np.frombuffer(b"".join(frames[2:]), "<i2").astype(float)
    assert 4000 < np.sqrt(np.mean(samples**2)) < 7000  # the tone, at its level (8000/√2)


def test_l16_and_mulaw_streams_carry_the_same_sound() -> None:
    mulaw, l16 = StreamAudio(MULAW_ENCODING, 8000, 24000), StreamAudio(L16_ENCODING, 8000, 24000)
    reply = tone(24000, 200).tobytes()
    as_mulaw = decode_mulaw(mulaw.encode(reply)).astype(float)
    as_l16 = np.frombuffer(l16.encode(reply), "<i2").astype(float)
    assert len(as_mulaw) == len(as_l16) == 1600
    assert np.max(np.abs(as_mulaw - as_l16)) < 300  # μ-law's quantisation, nothing else
    caller = tone(8000, 20)
    via_mulaw = np.frombuffer(mulaw.decode(encode_mulaw(caller)), "<i2").astype(float)
    via_l16 = np.frombuffer(l16.decode(caller.tobytes()), "<i2").astype(float)
    assert len(via_mulaw) == len(via_l16) == 480
    assert np.max(np.abs(via_mulaw - via_l16)) < 300


def test_the_gateways_own_sounds_are_converted_and_framed() -> None:
    l16 = StreamAudio(L16_ENCODING, 8000, 16000)
    mulaw_sound = encode_mulaw(tone(8000, 30))  # 240 samples: one and a half frames
    frames = l16.frames(l16.from_mulaw(mulaw_sound))
    assert [len(f) for f in frames] == [320, 320]
    assert frames[1][160:] == bytes(160)  # padded with silence
    same = StreamAudio(MULAW_ENCODING, 8000, 16000)
    assert same.frames(same.from_mulaw(mulaw_sound))[1][80:] == b"\xff" * 80


@pytest.mark.parametrize(
    ("encoding", "rate_hz"), [(L16_ENCODING, 16000), (MULAW_ENCODING, 16000), ("audio/opus", 8000)]
)
def test_a_format_without_a_conversion_is_refused_by_name(encoding: str, rate_hz: int) -> None:
    with pytest.raises(UnsupportedStreamFormat, match=f"no conversion for {encoding} at {rate_hz}"):
        StreamAudio(encoding, rate_hz, 16000)
