"""Per-call pipelines: caller μ-law → Live PCM16LE, agent PCM16LE → μ-law, and 20 ms framing."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from gateway.audio.codec import AgentAudioEncoder, CallerAudioDecoder, MulawFramer
from gateway.audio.mulaw import MULAW_SILENCE, decode_mulaw, encode_mulaw
from gateway.audio.resample import StreamingResampler

LIVE_RATES_HZ = [24000, 16000]


def tone_pcm16(
    freq_hz: float, rate_hz: int, duration_s: float, amplitude: float = 8000.0
) -> npt.NDArray[np.int16]:
    t = np.arange(round(rate_hz * duration_s)) / rate_hz
    return np.round(amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def pcm16le(data: bytes) -> npt.NDArray[np.float64]:
    return np.frombuffer(data, dtype="<i2").astype(np.float64)


def rms(x: npt.NDArray[np.float64]) -> float:
    return float(np.sqrt(np.mean(x**2)))


def dominant_hz(x: npt.NDArray[np.float64], rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate_hz / len(x))


def frames(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


# --- caller → Live -------------------------------------------------------------------------


@pytest.mark.parametrize("live_rate_hz", LIVE_RATES_HZ)
def test_decoder_turns_a_20ms_frame_into_20ms_of_pcm16le(live_rate_hz: int) -> None:
    decoder = CallerAudioDecoder(live_rate_hz)
    pcm = decoder.decode(bytes([MULAW_SILENCE]) * 160)
    assert len(pcm) == 2 * live_rate_hz // 50
    assert pcm == bytes(len(pcm))  # silence stays exactly silent


@pytest.mark.parametrize("live_rate_hz", LIVE_RATES_HZ)
def test_decoder_keeps_a_tone_level_and_frequency(live_rate_hz: int) -> None:
    mulaw = encode_mulaw(tone_pcm16(1000, 8000, 0.5))
    decoder = CallerAudioDecoder(live_rate_hz)
    out = pcm16le(b"".join(decoder.decode(frame) for frame in frames(mulaw, 160)))
    steady = out[live_rate_hz // 20 :]  # skip 50 ms
    reference = decode_mulaw(mulaw)[400:].astype(np.float64)
    assert 20 * np.log10(rms(steady) / rms(reference)) == pytest.approx(0.0, abs=0.5)
    assert dominant_hz(steady, live_rate_hz) == pytest.approx(1000, abs=5)


def test_decoder_output_is_little_endian_pcm16_of_the_resampled_signal() -> None:
    mulaw = encode_mulaw(tone_pcm16(440, 8000, 0.1))
    expected = StreamingResampler(8000, 24000).process(decode_mulaw(mulaw))
    assert CallerAudioDecoder().decode(mulaw) == expected.astype("<i2").tobytes()


def test_decoder_output_does_not_depend_on_frame_sizes() -> None:
    mulaw = encode_mulaw(tone_pcm16(700, 8000, 0.3))
    whole = CallerAudioDecoder().decode(mulaw)
    decoder = CallerAudioDecoder()
    sizes = [160, 1, 0, 159, 33, 320, 7]
    parts: list[bytes] = []
    i = 0
    while i < len(mulaw):
        size = sizes[len(parts) % len(sizes)]
        parts.append(decoder.decode(mulaw[i : i + size]))
        i += size
    assert b"".join(parts) == whole


def test_decoder_reset_starts_from_silence() -> None:
    mulaw = encode_mulaw(tone_pcm16(500, 8000, 0.1))
    decoder = CallerAudioDecoder()
    decoder.decode(mulaw)
    decoder.reset()
    assert decoder.decode(mulaw) == CallerAudioDecoder().decode(mulaw)


# --- Live → caller -------------------------------------------------------------------------


@pytest.mark.parametrize("live_rate_hz", LIVE_RATES_HZ)
def test_encoder_turns_20ms_of_pcm16le_into_one_frame(live_rate_hz: int) -> None:
    encoder = AgentAudioEncoder(live_rate_hz)
    mulaw = encoder.encode(bytes(2 * live_rate_hz // 50))
    assert mulaw == bytes([MULAW_SILENCE]) * 160


@pytest.mark.parametrize("live_rate_hz", LIVE_RATES_HZ)
def test_encoder_keeps_a_tone_level_and_frequency(live_rate_hz: int) -> None:
    pcm = tone_pcm16(1000, live_rate_hz, 0.5).astype("<i2").tobytes()
    mulaw = AgentAudioEncoder(live_rate_hz).encode(pcm)
    assert len(mulaw) == 4000
    out = decode_mulaw(mulaw)[400:].astype(np.float64)
    reference = tone_pcm16(1000, 8000, 0.45).astype(np.float64)
    assert 20 * np.log10(rms(out) / rms(reference)) == pytest.approx(0.0, abs=0.5)
    assert dominant_hz(out, 8000) == pytest.approx(1000, abs=5)


def test_encoder_removes_what_8khz_cannot_carry() -> None:
    """A 6 kHz tone from Live must not reach the caller as a 2 kHz alias."""
    pcm = tone_pcm16(6000, 24000, 0.5, amplitude=16000).astype("<i2").tobytes()
    out = decode_mulaw(AgentAudioEncoder().encode(pcm))[400:].astype(np.float64)
    assert rms(out) < 16000 / np.sqrt(2) * 10 ** (-60 / 20)


def test_encoder_keeps_a_dangling_byte_for_the_next_call() -> None:
    pcm = tone_pcm16(800, 24000, 0.2).astype("<i2").tobytes()
    whole = AgentAudioEncoder().encode(pcm)
    encoder = AgentAudioEncoder()
    odd = [961, 1, 3, 0, 477, 1200, 5]
    parts: list[bytes] = []
    i = 0
    while i < len(pcm):
        size = odd[len(parts) % len(odd)]
        parts.append(encoder.encode(pcm[i : i + size]))
        i += size
    assert b"".join(parts) == whole


def test_encoder_output_is_the_mulaw_of_the_resampled_signal() -> None:
    samples = tone_pcm16(300, 24000, 0.1, amplitude=30000)
    expected = encode_mulaw(StreamingResampler(24000, 8000).process(samples))
    assert AgentAudioEncoder().encode(samples.astype("<i2").tobytes()) == expected


def test_encoder_reset_drops_history_and_the_dangling_byte() -> None:
    pcm = tone_pcm16(500, 24000, 0.1).astype("<i2").tobytes()
    encoder = AgentAudioEncoder()
    encoder.encode(pcm[:1001])  # leaves one byte dangling
    encoder.reset()
    assert encoder.encode(pcm) == AgentAudioEncoder().encode(pcm)


def test_round_trip_keeps_level_and_frequency() -> None:
    """Caller tone → Live rate → back to μ-law: what an echoing agent would play back."""
    mulaw = encode_mulaw(tone_pcm16(1200, 8000, 0.5, amplitude=12000))
    decoder, encoder = CallerAudioDecoder(), AgentAudioEncoder()
    back = b"".join(encoder.encode(decoder.decode(frame)) for frame in frames(mulaw, 160))
    assert len(back) == len(mulaw)
    out = decode_mulaw(back)[400:].astype(np.float64)
    reference = decode_mulaw(mulaw)[400:].astype(np.float64)
    assert 20 * np.log10(rms(out) / rms(reference)) == pytest.approx(0.0, abs=0.5)
    assert dominant_hz(out, 8000) == pytest.approx(1200, abs=5)


# --- framing -------------------------------------------------------------------------------


def test_framer_returns_whole_frames_and_keeps_the_rest() -> None:
    framer = MulawFramer()
    assert framer.push(b"\x01" * 100) == []
    assert framer.pending_bytes == 100
    out = framer.push(b"\x02" * 300)
    assert out == [b"\x01" * 100 + b"\x02" * 60, b"\x02" * 160]
    assert framer.pending_bytes == 80
    assert framer.push(b"") == []


def test_framer_flush_pads_with_mulaw_silence() -> None:
    framer = MulawFramer()
    framer.push(b"\x10" * 170)
    tail = framer.flush()
    assert tail == b"\x10" * 10 + bytes([MULAW_SILENCE]) * 150
    assert framer.flush() is None
    assert framer.pending_bytes == 0


def test_framer_flush_with_nothing_held_is_none() -> None:
    framer = MulawFramer()
    assert framer.flush() is None
    framer.push(b"\x00" * 320)
    assert framer.flush() is None


def test_framer_reset_drops_the_remainder() -> None:
    framer = MulawFramer(frame_bytes=4)
    framer.push(b"abcdef")
    framer.reset()
    assert framer.pending_bytes == 0
    assert framer.push(b"wxyz") == [b"wxyz"]


def test_framer_rejects_a_bad_frame_size() -> None:
    with pytest.raises(ValueError, match="frame_bytes"):
        MulawFramer(0)
