"""eSpeak NG through ctypes: the library and its data from the `espeakng-loader` wheel.

No system package: the wheel ships `libespeak-ng.so` and `espeak-ng-data`. Nothing is loaded
at import; the first `Espeak.synthesize` loads the library (a few MB of RSS). eSpeak's C API
is one global state, so one `Espeak` per process (`engine()`) and a lock around every call.

Output is deterministic (same text, voice and rate → same bytes, whatever was said before):
eSpeak keeps state across texts that its API cannot reset, so each text is synthesised by a
freshly loaded library (dlopen, initialise, synthesise, terminate, dlclose: ~5 ms more), with
its noise generator seeded.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Espeak", "EspeakError", "EspeakUnavailable", "EspeakVoice", "engine"]

_AUDIO_OUTPUT_SYNCHRONOUS: Final = 2
_INITIALIZE_DONT_EXIT: Final = 0x8000
_POS_CHARACTER: Final = 1
_CHARS_UTF8: Final = 1
_ESPEAK_RATE: Final = 1
_ESPEAK_VOLUME: Final = 2
_ESPEAK_PITCH: Final = 3
_ESPEAK_RANGE: Final = 4
_RAND_SEED: Final = 16_000
MIN_RATE_WPM: Final = 80
MAX_RATE_WPM: Final = 600

_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class EspeakError(RuntimeError):
    """eSpeak failed to say one text."""


class EspeakUnavailable(EspeakError):
    """The library or its data cannot be loaded (the package is missing or broken)."""


@dataclass(frozen=True)
class EspeakVoice:
    """An eSpeak voice: a bundled variant (`voices/!v/NAME`), its pitch (0-100, eSpeak's
    base pitch), pitch range (0-100) and base speaking rate (words per minute)."""

    variant: str
    pitch: int = 50
    pitch_range: int = 50
    rate_wpm: int = 175
    language: str = "en-us"


class Espeak:
    """The process's eSpeak NG (use `engine()`). Thread-safe: every call holds the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: tuple[str, bytes] | None = None
        self._chunks: list[bytes] = []
        self._callback = _Callback(self._on_audio)  # kept: the library holds only the pointer
        self.sample_rate_hz = 0
        self.calls = 0
        """Texts synthesised (tests count engine calls to check the caches)."""

    @property
    def library_path(self) -> str | None:
        """The libespeak-ng this engine loads (None before its first use)."""
        return None if self._paths is None else self._paths[0]

    def load(self) -> None:
        """Check that the library and its data load (idempotent); raises EspeakUnavailable."""
        with self._lock:
            if self._paths is None:
                self._close(self._open())

    def synthesize(self, text: str, voice: EspeakVoice, rate_wpm: int | None = None) -> bytes:
        """PCM16LE mono at `sample_rate_hz` saying `text` (deterministic)."""
        rate = voice.rate_wpm if rate_wpm is None else rate_wpm
        rate = min(max(rate, MIN_RATE_WPM), MAX_RATE_WPM)
        data = text.encode("utf-8")
        with self._lock:
            lib = self._open()
            try:
                name = f"{voice.language}+{voice.variant}".encode()
                if lib.espeak_SetVoiceByName(name) != 0:
                    raise EspeakUnavailable(f"eSpeak has no voice {name.decode()!r}")
                lib.espeak_SetParameter(_ESPEAK_RATE, rate, 0)
                lib.espeak_SetParameter(_ESPEAK_PITCH, voice.pitch, 0)
                lib.espeak_SetParameter(_ESPEAK_RANGE, voice.pitch_range, 0)
                lib.espeak_SetParameter(_ESPEAK_VOLUME, 100, 0)
                lib.espeak_ng_SetRandSeed(_RAND_SEED)
                self._chunks = []
                self.calls += 1
                status = lib.espeak_Synth(
                    data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
                )
                pcm, self._chunks = b"".join(self._chunks), []
            finally:
                self._close(lib)
        if status != 0:
            raise EspeakError(f"espeak_Synth failed with status {status}")
        return pcm

    def _on_audio(self, wav: Any, n_samples: int, _events: Any) -> int:
        if n_samples > 0:
            self._chunks.append(ctypes.string_at(wav, n_samples * 2))
        return 0

    def _open(self) -> Any:
        """A freshly loaded, initialised library: eSpeak keeps state from one text to the
        next (glottal phase, noise, intonation) that no call resets, so each text gets a
        library of its own — dlopen'ed, used, dlclose'd (~5 ms)."""
        if self._paths is None:
            try:
                import espeakng_loader
            except ImportError as exc:
                raise EspeakUnavailable(f"espeakng-loader is not installed: {exc}") from None
            try:
                self._paths = (
                    espeakng_loader.get_library_path(),
                    espeakng_loader.get_data_path().encode(),
                )
            except RuntimeError as exc:
                raise EspeakUnavailable(f"no eSpeak data: {exc}") from None
        library, data = self._paths
        try:
            lib = ctypes.CDLL(library)
        except OSError as exc:
            self._paths = None
            raise EspeakUnavailable(f"cannot load libespeak-ng: {exc}") from None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_Callback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None
        lib.espeak_Terminate.argtypes = []
        lib.espeak_Terminate.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Synth.restype = ctypes.c_int
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            _dlclose(lib)
            raise EspeakUnavailable(f"espeak_Initialize failed ({rate}) with data {data!r}")
        lib.espeak_SetSynthCallback(self._callback)
        self.sample_rate_hz = rate
        return lib

    @staticmethod
    def _close(lib: Any) -> None:
        lib.espeak_Terminate()
        _dlclose(lib)


def _dlclose(lib: Any) -> None:
    import _ctypes

    _ctypes.dlclose(lib._handle)


_ENGINE: Espeak | None = None
_ENGINE_LOCK = threading.Lock()


def engine() -> Espeak:
    """The process's one eSpeak (created on first use, loaded on first synthesis)."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = Espeak()
        return _ENGINE
