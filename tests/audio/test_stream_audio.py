"""StreamAudio: a call's conversions for its carrier's format (μ-law 8 kHz, L16 8 / 16 kHz)."""

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


def level_db(samples: np.ndarray, reference: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(samples.astype(float) ** 2)))
    return 20 * np.log10(max(rms, 1e-9) / float(np.sqrt(np.mean(reference.astype(float) ** 2))))


def test_l16_16k_reaches_a_16k_live_input_untouched() -> None:
    audio = StreamAudio(L16_ENCODING, 16000, 16000)
    assert audio.passthrough_in
    frame = tone(16000, 20, hz=6000).tobytes()  # wideband content survives
    assert audio.decode(frame) == frame
    assert not StreamAudio(L16_ENCODING, 8000, 16000).passthrough_in
    assert not StreamAudio(MULAW_ENCODING, 8000, 16000).passthrough_in


def test_l16_16k_into_a_24k_live_input_is_resampled_3_to_2() -> None:
    audio = StreamAudio(L16_ENCODING, 16000, 24000)
    assert not audio.passthrough_in
    assert len(audio.decode(tone(16000, 20).tobytes())) == 960  # 20 ms at 24 kHz


def test_live_24k_comes_out_at_16k_in_640_byte_frames_without_aliases() -> None:
    audio = StreamAudio(L16_ENCODING, 16000, 16000)
    assert audio.frame_bytes == 640
    reply = tone(24000, 400, hz=5000)
    frames = audio.framer.push(audio.encode(reply.tobytes()))
    assert [len(f) for f in frames] == [640] * 20  # 400 ms of 16 kHz L16
    out = np.frombuffer(b"".join(frames[5:]), "<i2")
    assert abs(level_db(out, reply)) < 0.5  # 5 kHz is in a 16 kHz stream's band
    # 10 kHz (Live's band, above 16 kHz's Nyquist) must not fold back to 6 kHz.
    fresh = StreamAudio(L16_ENCODING, 16000, 16000)
    high = tone(24000, 400, hz=10000)
    folded = np.frombuffer(fresh.encode(high.tobytes()), "<i2")[1600:]
    assert level_db(folded, high) < -60


def test_wideband_prompts_keep_their_length_and_level() -> None:
    wide = StreamAudio(L16_ENCODING, 16000, 16000)
    mulaw_sound = encode_mulaw(tone(8000, 100))
    pcm = np.frombuffer(wide.from_mulaw(mulaw_sound), "<i2")
    assert len(pcm) == 1600  # 100 ms at 16 kHz
    assert abs(level_db(pcm[200:1400], tone(8000, 100))) < 0.5
    frames = wide.frames(wide.from_mulaw(encode_mulaw(tone(8000, 30))))
    assert [len(f) for f in frames] == [640, 640]
    assert frames[1][320:] == bytes(320)


@pytest.mark.parametrize(
    ("encoding", "rate_hz"), [(L16_ENCODING, 24000), (MULAW_ENCODING, 16000), ("audio/opus", 8000)]
)
def test_a_format_without_a_conversion_is_refused_by_name(encoding: str, rate_hz: int) -> None:
    with pytest.raises(UnsupportedStreamFormat, match=f"no conversion for {encoding} at {rate_hz}"):
        StreamAudio(encoding, rate_hz, 16000)


@pytest.mark.parametrize(
    ("encoding", "rate_hz", "per_8k_sample"),
    [(MULAW_ENCODING, 8000, 1), (L16_ENCODING, 8000, 2), (L16_ENCODING, 16000, 4)],
)
def test_the_real_time_budget_counts_every_format_on_the_same_clock(
    encoding: str, rate_hz: int, per_8k_sample: int
) -> None:
    """20 ms is 160 budget samples whatever the format (a 16 kHz caller is not 'twice as fast')."""
    audio = StreamAudio(encoding, rate_hz, 16000)
    assert audio.bytes_per_8k_sample == per_8k_sample
    assert audio.frame_bytes // audio.bytes_per_8k_sample == 160
