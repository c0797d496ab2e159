"""Wideband benchmark: the 16 kHz L16 path (Vonage by default, Plivo / Asterisk when asked).

Run: `.venv/bin/python bench/wideband.py`. Prints a markdown table and replaces the
"## Wideband (bench/wideband.py)" section of bench/RESULTS.md, leaving other sections alone.

Out: 20 ms of Live's 24 kHz PCM16 → 20 ms of 16 kHz L16 (ours: the 3:2 polyphase resampler;
soxr HQ / VHQ as streams; audioop.ratecv). In: 20 ms of 16 kHz L16 → Live's 16 kHz input (ours:
passed through, no resampling step) beside the 8 kHz paths it replaces. Contenders run
interleaved, run by run, median of RUNS; delay and alias rejection are measured on the same
streams, fed in 20 ms chunks.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.codec import machine, ratecv_path
from gateway.audio.codec import L16_ENCODING, MULAW_ENCODING, StreamAudio

SECTION_HEADING = "## Wideband (bench/wideband.py)"
RESULTS_PATH = Path(__file__).with_name("RESULTS.md")
RUNS = 15
FRAMES_PER_RUN = 2000
LIVE_RATE_HZ = 24000
WIDE_RATE_HZ = 16000

Path_ = Callable[[bytes], bytes]


def _soxr(quality: str) -> Path_:
    stream = soxr.ResampleStream(LIVE_RATE_HZ, WIDE_RATE_HZ, 1, dtype="int16", quality=quality)

    def convert(pcm16: bytes) -> bytes:
        out: npt.NDArray[np.int16] = stream.resample_chunk(np.frombuffer(pcm16, dtype=np.int16))
        return out.tobytes()

    return convert


OUT_PATHS: dict[str, Callable[[], Path_]] = {
    "ours (3:2 polyphase)": lambda: StreamAudio(L16_ENCODING, WIDE_RATE_HZ, 16000).encode,
    "soxr HQ": lambda: _soxr("HQ"),
    "soxr VHQ": lambda: _soxr("VHQ"),
    "audioop.ratecv": lambda: ratecv_path(LIVE_RATE_HZ, WIDE_RATE_HZ),
}
IN_PATHS: dict[str, tuple[Callable[[], Path_], int, int]] = {
    # name: (path, bytes per 20 ms frame, bytes per sample)
    "L16 16 kHz → Live 16 kHz (ours: passed through)": (
        lambda: StreamAudio(L16_ENCODING, WIDE_RATE_HZ, 16000).decode,
        640,
        2,
    ),
    "L16 8 kHz → Live 16 kHz (2:1)": (
        lambda: StreamAudio(L16_ENCODING, 8000, 16000).decode,
        320,
        2,
    ),
    "μ-law 8 kHz → Live 16 kHz (2:1, fused μ-law)": (
        lambda: StreamAudio(MULAW_ENCODING, 8000, 16000).decode,
        160,
        1,
    ),
}


def per_frame_us(paths: dict[str, Path_], frames: dict[str, list[bytes]]) -> dict[str, float]:
    for name, path in paths.items():  # warm up
        for frame in frames[name][:300]:
            path(frame)
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(RUNS):
        for name, path in paths.items():
            feed = frames[name]
            start = time.perf_counter_ns()
            for i in range(FRAMES_PER_RUN):
                path(feed[i % len(feed)])
            samples[name].append((time.perf_counter_ns() - start) / FRAMES_PER_RUN / 1000)
    return {name: statistics.median(runs) for name, runs in samples.items()}


def tone(freq_hz: float, rate_hz: int, duration_s: float = 1.2) -> npt.NDArray[np.int16]:
    t = np.arange(round(rate_hz * duration_s)) / rate_hz
    return np.round(16000 * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def stream(make: Callable[[], Path_], x: npt.NDArray[np.int16]) -> npt.NDArray[np.float64]:
    path = make()
    frame = LIVE_RATE_HZ // 50
    out = b"".join(path(x[i : i + frame].tobytes()) for i in range(0, len(x), frame))
    return np.frombuffer(out, dtype=np.int16).astype(np.float64)


def worst_alias_db(make: Callable[[], Path_]) -> tuple[float, int]:
    """The loudest output of a tone from 8 to 12 kHz (above 16 kHz's Nyquist), vs its input."""
    worst, at = -300.0, 0
    for freq_hz in range(8000, 12000, 100):
        x = tone(freq_hz, LIVE_RATE_HZ)
        y = stream(make, x)[1600:17600]  # 1 s after 100 ms
        level = np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(x[2400:26400].astype(np.float64) ** 2))
        db = float(20 * np.log10(max(level, 1e-12)))
        if db > worst:
            worst, at = db, freq_hz
    return worst, at


def passband_error_db(make: Callable[[], Path_]) -> float:
    """Largest gain error of tones from 300 Hz to 6.8 kHz."""
    worst = 0.0
    for freq_hz in range(300, 6801, 500):
        x = tone(freq_hz, LIVE_RATE_HZ)
        y = stream(make, x)[1600:17600]
        level = np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(x[2400:26400].astype(np.float64) ** 2))
        worst = max(worst, abs(float(20 * np.log10(level))))
    return worst


def delay_ms(make: Callable[[], Path_]) -> float:
    """Signal delay plus output held back, vs scipy's zero-delay resample_poly (as bench/codec)."""
    rng = np.random.default_rng(11)
    band = signal.firwin(255, [300, 3000], pass_zero=False, fs=LIVE_RATE_HZ)
    x = np.round(signal.lfilter(band, 1.0, rng.standard_normal(LIVE_RATE_HZ)) * 8000)
    x = x.astype(np.int16)
    path = make()
    frame = LIVE_RATE_HZ // 50
    parts, held, fed, emitted = [], [], 0, 0
    for i in range(0, len(x), frame):
        parts.append(path(x[i : i + frame].tobytes()))
        fed += len(x[i : i + frame])
        emitted += len(parts[-1]) // 2
        held.append(fed * 2 / 3 - emitted)
    y = np.frombuffer(b"".join(parts), dtype=np.int16).astype(np.float64)
    reference = signal.resample_poly(x.astype(np.float64), 2, 3)
    n = min(len(y), len(reference))
    xcorr = signal.correlate(y[:n], reference[:n])
    lags = signal.correlation_lags(n, n)
    peak = int(np.argmax(xcorr))
    left, mid, right = xcorr[peak - 1 : peak + 2]
    fraction = 0.5 * (left - right) / (left - 2 * mid + right)
    held_back = max(float(np.mean(held[len(held) // 2 :])), 0.0)
    return float((lags[peak] + fraction + held_back) / WIDE_RATE_HZ * 1000)


def main() -> None:
    rng = np.random.default_rng(3)
    reply = [
        (rng.standard_normal(LIVE_RATE_HZ // 50) * 3000).astype("<i2").tobytes() for _ in range(50)
    ]
    out_us = per_frame_us(
        {name: make() for name, make in OUT_PATHS.items()}, {name: reply for name in OUT_PATHS}
    )
    in_frames = {
        name: [bytes(rng.integers(0, 256, size, dtype=np.uint8)) for _ in range(50)]
        for name, (_, size, _) in IN_PATHS.items()
    }
    in_us = per_frame_us({name: make() for name, (make, _, _) in IN_PATHS.items()}, in_frames)
    rows = [
        "| out: Live 24 kHz → L16 16 kHz | µs/frame | delay (ms) | worst alias 8–12 kHz (dB) "
        "| passband error to 6.8 kHz (dB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, make in OUT_PATHS.items():
        alias, at = worst_alias_db(make)
        rows.append(
            f"| {name} | {out_us[name]:.2f} | {delay_ms(make):.2f} | {alias:.1f} (at {at} Hz) "
            f"| {passband_error_db(make):.2f} |"
        )
    rows += ["", "| in: caller → Live's 16 kHz input | µs/frame |", "|---|---:|"]
    rows += [f"| {name} | {in_us[name]:.2f} |" for name in IN_PATHS]
    body = "\n".join(rows) + (
        f"\n\nMachine: {machine()}. Median of {RUNS} runs of {FRAMES_PER_RUN} 20 ms frames, "
        "contenders interleaved; delay = signal delay (cross-correlation against scipy's "
        "zero-delay resample_poly) plus output held back by the streaming API; alias = the "
        "loudest output of a full-scale tone between 8 and 12 kHz (which a 16 kHz stream cannot "
        "carry) relative to its input.\n"
    )
    print(body)
    section = f"{SECTION_HEADING}\n\n{body.rstrip()}\n"
    text = RESULTS_PATH.read_text()
    if SECTION_HEADING in text:
        start = text.index(SECTION_HEADING)
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + ("\n" + text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    RESULTS_PATH.write_text(text)


if __name__ == "__main__":
    main()
