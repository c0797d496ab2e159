"""The Live emulator's voice: real synthetic speech of its replies, one voice per Live voice.

`speak_pcm16(text, voice)` is eSpeak NG (`gateway.live.emulator.espeak`, bundled by the
`espeakng-loader` wheel) saying `text` in the eSpeak voice that `voice_for(voice)` maps the
agent's Live voice to (`Puck`, `Kore`, … each its own variant and pitch; an unknown name a
stable hash-based one), resampled to the output rate and levelled to about -20 dBFS RMS.

The emulator's timing does not change with the voice: a text's audio lasts exactly
`speech_duration_s(text)` (~70 ms per character, 0.4 to 4 s), as the tones did. eSpeak speaks
at its voice's rate, faster (up to 600 wpm) when the text would not fit, slower when it would
leave much of the window silent; what remains is silence, what still overflows is cut with a
fade. Output is deterministic (same text + voice → same bytes) and cached per (text, voice,
rate) under a byte budget, so a benchmark's repeated replies cost one synthesis each.

Tones remain the fallback — a few harmonics of a per-reply fundamental (120, 140, … 240 Hz)
under a 4 Hz syllabic envelope: for text with nothing to pronounce (the replay's "....."
stand-ins for untranscribed audio) and, with one warning, when eSpeak cannot be loaded.
"""

from __future__ import annotations

import asyncio
import math
import threading
import zlib
from collections import OrderedDict
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import structlog

from gateway.live.emulator.espeak import (
    MAX_RATE_WPM,
    Espeak,
    EspeakError,
    EspeakUnavailable,
    EspeakVoice,
    engine,
)

__all__ = [
    "CACHE_BUDGET_BYTES",
    "LEVEL_DBFS",
    "MAX_DURATION_S",
    "MIN_DURATION_S",
    "MS_PER_CHAR",
    "VOICES",
    "Speech",
    "reply_fundamental_hz",
    "speak_pcm16",
    "speak_pcm16_async",
    "speech",
    "speech_duration_s",
    "tone_reply_pcm16",
    "voice_for",
]

log = structlog.get_logger(__name__)

MS_PER_CHAR = 70
MIN_DURATION_S = 0.4
MAX_DURATION_S = 4.0
LEVEL_DBFS = -20.0
"""RMS level of the speech (and of the tones) relative to full scale."""
PEAK_LIMIT = 0.95
CACHE_BUDGET_BYTES = 16 * 1024 * 1024
"""Speech kept per process (~90 four-second replies at 24 kHz)."""
FUNDAMENTALS_HZ = (120.0, 140.0, 160.0, 180.0, 200.0, 220.0, 240.0)
HARMONIC_AMPLITUDES = (1.0, 0.5, 0.3, 0.15)
SYLLABLE_RATE_HZ = 4.0
FADE_MS = 10
SILENCE_THRESHOLD = 64
"""eSpeak samples at or below this (about -54 dBFS) around the speech are trimmed."""
CHARS_PER_S = 15.0
"""About how fast eSpeak speaks at a voice's own rate (13-18 characters a second)."""
SLOWEST_FACTOR = 0.7
"""Slowest speaking rate used to fill the window, relative to the voice's rate."""
DEFAULT_VOICE = "Puck"

_MALE = ("m3", "m1", "m7", "m2", "m5", "m4", "m6", "m8")
_FEMALE = ("f2", "f3", "f1", "f4", "f5")
_MALE_VOICES = (
    "Puck", "Charon", "Fenrir", "Orus", "Enceladus", "Iapetus", "Umbriel", "Algieba",
    "Algenib", "Rasalgethi", "Alnilam", "Schedar", "Achird", "Zubenelgenubi", "Sadachbia",
    "Sadaltager",
)  # fmt: skip
_FEMALE_VOICES = (
    "Zephyr", "Kore", "Leda", "Aoede", "Callirrhoe", "Autonoe", "Despina", "Erinome",
    "Laomedeia", "Achernar", "Gacrux", "Pulcherrima", "Vindemiatrix", "Sulafat",
)  # fmt: skip


def _palette() -> dict[str, EspeakVoice]:
    voices: dict[str, EspeakVoice] = {}
    for i, name in enumerate(_MALE_VOICES):
        variant = _MALE[i % len(_MALE)]
        pitch = 40 + 9 * (i // len(_MALE)) + (i % 3) * 3
        voices[name] = EspeakVoice(variant, pitch=pitch, rate_wpm=170 + (i % 4) * 5)
    for i, name in enumerate(_FEMALE_VOICES):
        variant = _FEMALE[i % len(_FEMALE)]
        pitch = 55 + 10 * (i // len(_FEMALE)) + (i % 2) * 4
        voices[name] = EspeakVoice(variant, pitch=pitch, rate_wpm=170 + (i % 3) * 5)
    return voices


VOICES: dict[str, EspeakVoice] = _palette()
"""The Live prebuilt voices (case as Live spells them) → their eSpeak voice."""
_VOICES_LOWER = {name.lower(): voice for name, voice in VOICES.items()}
_PALETTE = tuple(VOICES[name] for name in sorted(VOICES))


def voice_for(name: str | None) -> EspeakVoice:
    """The eSpeak voice for a Live voice name (None: Live's default, Puck); a name not
    listed gets a stable choice from its CRC-32 (the same in every process)."""
    key = (name or DEFAULT_VOICE).lower()
    known = _VOICES_LOWER.get(key)
    if known is not None:
        return known
    return _PALETTE[zlib.crc32(key.encode("utf-8")) % len(_PALETTE)]


def speech_duration_s(text: str) -> float:
    """How long the emulator takes to say `text`."""
    return min(max(len(text) * MS_PER_CHAR / 1000.0, MIN_DURATION_S), MAX_DURATION_S)


def _samples_for(text: str, rate_hz: int) -> int:
    return round(speech_duration_s(text) * rate_hz)


def _speakable(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


# --------------------------------------------------------------------------- speech


class Speech:
    """Synthesis with its cache; thread-safe. One per process (`speech()`), or a private one
    around a given engine (tests)."""

    def __init__(self, espeak: Espeak | None = None, budget_bytes: int = CACHE_BUDGET_BYTES):
        self._engine = espeak
        self._budget = budget_bytes
        self._cache: OrderedDict[tuple[str, EspeakVoice, int], bytes] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()
        self.unavailable: str | None = None
        """Why eSpeak could not be used (then every text is tones), else None."""
        self.hits = 0
        self.misses = 0

    @property
    def engine(self) -> Espeak:
        if self._engine is None:
            self._engine = engine()
        return self._engine

    @property
    def cached_bytes(self) -> int:
        return self._cached_bytes

    def cached(self, text: str, voice: str | None, rate_hz: int = 24000) -> bytes | None:
        """The cached speech for (text, voice, rate), None if it would need synthesis."""
        key = (text, voice_for(voice), rate_hz)
        with self._lock:
            pcm = self._cache.get(key)
            if pcm is not None:
                self._cache.move_to_end(key)
                self.hits += 1
        return pcm

    def speak(
        self, text: str, voice: str | None, *, reply_number: int = 1, rate_hz: int = 24000
    ) -> bytes:
        """PCM16LE mono at `rate_hz`, `speech_duration_s(text)` long, saying `text`; tones
        (pitched by `reply_number`) without words to say or without eSpeak."""
        if not _speakable(text) or self.unavailable is not None:
            return tone_reply_pcm16(text, reply_number, rate_hz)
        pcm = self.cached(text, voice, rate_hz)
        if pcm is not None:
            return pcm
        espeak_voice = voice_for(voice)
        try:
            pcm = _render(self.engine, text, espeak_voice, rate_hz)
        except EspeakUnavailable as exc:
            with self._lock:
                first = self.unavailable is None
                self.unavailable = str(exc)
            if first:
                log.warning("emulator_speech_unavailable", reason=str(exc), fallback="tones")
            return tone_reply_pcm16(text, reply_number, rate_hz)
        except EspeakError as exc:  # this text only
            log.warning("emulator_speech_failed", reason=str(exc), chars=len(text))
            return tone_reply_pcm16(text, reply_number, rate_hz)
        with self._lock:
            self.misses += 1
            key = (text, espeak_voice, rate_hz)
            if key not in self._cache:
                self._cache[key] = pcm
                self._cached_bytes += len(pcm)
                while self._cached_bytes > self._budget and len(self._cache) > 1:
                    _, evicted = self._cache.popitem(last=False)
                    self._cached_bytes -= len(evicted)
        return pcm

    async def speak_async(
        self, text: str, voice: str | None, *, reply_number: int = 1, rate_hz: int = 24000
    ) -> bytes:
        """`speak`, synthesising in a worker thread (a cache hit or tones stay on the loop)."""
        if not _speakable(text) or self.unavailable is not None:
            return tone_reply_pcm16(text, reply_number, rate_hz)
        pcm = self.cached(text, voice, rate_hz)
        if pcm is not None:
            return pcm
        return await asyncio.to_thread(
            self.speak, text, voice, reply_number=reply_number, rate_hz=rate_hz
        )


_SPEECH = Speech()


def speech() -> Speech:
    """The process's synthesis and cache."""
    return _SPEECH


def speak_pcm16(
    text: str, voice: str | None, *, reply_number: int = 1, rate_hz: int = 24000
) -> bytes:
    """`speech().speak(…)`."""
    return _SPEECH.speak(text, voice, reply_number=reply_number, rate_hz=rate_hz)


async def speak_pcm16_async(
    text: str, voice: str | None, *, reply_number: int = 1, rate_hz: int = 24000
) -> bytes:
    """`speech().speak_async(…)`."""
    return await _SPEECH.speak_async(text, voice, reply_number=reply_number, rate_hz=rate_hz)


def _render(espeak: Espeak, text: str, voice: EspeakVoice, rate_hz: int) -> bytes:
    """eSpeak's speech fitted to the text's window, resampled and levelled."""
    n_out = _samples_for(text, rate_hz)
    window_s = n_out / rate_hz
    # First guess: eSpeak says ~15 characters a second at a voice's rate; aim a little fast.
    guess = voice.rate_wpm * (len(text) / CHARS_PER_S) / window_s * 1.08
    rate = min(max(math.ceil(guess), math.ceil(voice.rate_wpm * SLOWEST_FACTOR)), MAX_RATE_WPM)
    raw = _trimmed(espeak.synthesize(text, voice, rate))
    in_rate = espeak.sample_rate_hz
    factor = len(raw) / (window_s * in_rate)
    if factor > 1.0 or (factor < 0.75 and rate > voice.rate_wpm * SLOWEST_FACTOR):
        # Too long (what still overflows is cut), or much of the window silent: once more.
        retry = min(max(math.ceil(rate * factor * (1.03 if factor > 1.0 else 1.0)), 1), 10**4)
        retry = min(max(retry, math.ceil(voice.rate_wpm * SLOWEST_FACTOR)), MAX_RATE_WPM)
        if retry != rate:
            raw = _trimmed(espeak.synthesize(text, voice, retry))
    samples = _resample(raw.astype(np.float64), in_rate, rate_hz)
    out = np.zeros(n_out, dtype=np.float64)
    spoken = min(len(samples), n_out)
    out[:spoken] = samples[:spoken]
    fade = min(round(rate_hz * FADE_MS / 1000), spoken // 2)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        out[:fade] *= ramp
        out[spoken - fade : spoken] *= ramp[::-1]
    if spoken:
        rms = float(np.sqrt(np.mean(np.square(out[:spoken]))))
        peak = float(np.max(np.abs(out[:spoken])))
        if rms > 0:
            target = 32768.0 * 10.0 ** (LEVEL_DBFS / 20.0)
            out *= min(target / rms, PEAK_LIMIT * 32767.0 / peak)
    return np.clip(np.round(out), -32768, 32767).astype("<i2").tobytes()


def _resample(x: npt.NDArray[np.float64], in_hz: int, out_hz: int) -> npt.NDArray[np.float64]:
    """Whole-signal FFT resampling (band-limited; a few ms for seconds of speech): the input is
    zero-padded to a length whose transform sizes at both rates are smooth numbers."""
    if in_hz == out_hz or not len(x):
        return x
    common = math.gcd(in_hz, out_hz)
    down, up = in_hz // common, out_hz // common
    blocks = 1 << max(0, math.ceil(math.log2(len(x) / down)))
    padded = np.zeros(blocks * down)
    padded[: len(x)] = x
    n_out = blocks * up
    spectrum = np.fft.rfft(padded)
    out = np.fft.irfft(spectrum, n_out) * (n_out / len(padded))
    return out[: math.ceil(len(x) * up / down)]


def _trimmed(pcm: bytes) -> npt.NDArray[np.int16]:
    """The samples without eSpeak's leading and trailing silence."""
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > SILENCE_THRESHOLD)
    if not len(loud):
        return samples[:0]
    return samples[loud[0] : loud[-1] + 1]


# --------------------------------------------------------------------------- tones


def reply_fundamental_hz(reply_number: int) -> float:
    """Pitch of tone reply N (1-based): 120, 140, … 240 Hz, then round again."""
    return FUNDAMENTALS_HZ[(reply_number - 1) % len(FUNDAMENTALS_HZ)]


def tone_reply_pcm16(text: str, reply_number: int, rate_hz: int = 24000) -> bytes:
    """The tone fallback: PCM16LE mono for reply `reply_number` "saying" `text`."""
    return _tones(_samples_for(text, rate_hz), reply_fundamental_hz(reply_number), rate_hz)


@lru_cache(maxsize=32)
def _tones(n_samples: int, f0_hz: float, rate_hz: int) -> bytes:
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
