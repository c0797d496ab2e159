"""Energy voice-activity detection for the Live emulator, clocked by audio samples.

Time is the duration of audio fed so far, never the wall clock, so the same audio gives the
same events however it is chunked or paced. Audio is judged in 10 ms frames: speech starts once
`prefix_padding_ms` of consecutive frames are above the RMS threshold and ends after
`silence_duration_ms` of frames below it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["EnergyVad", "SpeechEnded", "SpeechStarted", "VadEvent"]

FRAME_MS = 10
DEFAULT_THRESHOLD_DBFS = -40.0
DEFAULT_PREFIX_PADDING_MS = 40
DEFAULT_SILENCE_DURATION_MS = 500
FULL_SCALE = 32768.0


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """Speech confirmed at `time_s`; it began at `speech_start_s` (both on the audio clock)."""

    time_s: float
    speech_start_s: float


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """Speech ended (detected at `time_s`); `duration_s` spans first to last voiced frame."""

    time_s: float
    duration_s: float


VadEvent = SpeechStarted | SpeechEnded


class EnergyVad:
    """Streaming RMS voice detector over PCM16LE chunks at any (even changing) sample rate."""

    def __init__(
        self,
        *,
        threshold_dbfs: float = DEFAULT_THRESHOLD_DBFS,
        prefix_padding_ms: int = DEFAULT_PREFIX_PADDING_MS,
        silence_duration_ms: int = DEFAULT_SILENCE_DURATION_MS,
    ) -> None:
        self._threshold_rms = FULL_SCALE * 10.0 ** (threshold_dbfs / 20.0)
        self._prefix_s = max(prefix_padding_ms, FRAME_MS) / 1000.0
        self._silence_s = max(silence_duration_ms, FRAME_MS) / 1000.0
        self._time_s = 0.0
        self._pending: npt.NDArray[np.int16] = np.empty(0, dtype=np.int16)
        self._pending_rate_hz = 0
        self._speaking = False
        self._voiced_run_start_s: float | None = None
        self._speech_start_s = 0.0
        self._last_voiced_end_s = 0.0
        self._silence_run_s = 0.0

    @property
    def time_s(self) -> float:
        """Audio clock: seconds of audio fed so far (including a pending partial frame)."""
        if self._pending_rate_hz:
            return self._time_s + len(self._pending) / self._pending_rate_hz
        return self._time_s

    @property
    def speaking(self) -> bool:
        return self._speaking

    def feed(self, pcm16le: bytes, rate_hz: int) -> list[VadEvent]:
        """Consume one chunk; return the events it completes, in order."""
        samples = np.frombuffer(pcm16le, dtype="<i2").astype(np.int16, copy=False)
        events: list[VadEvent] = []
        if self._pending_rate_hz and rate_hz != self._pending_rate_hz:
            self._flush_pending(events)
        self._pending_rate_hz = rate_hz
        if len(self._pending):
            samples = np.concatenate((self._pending, samples))
        frame_len = max(1, round(rate_hz * FRAME_MS / 1000))
        n_frames = len(samples) // frame_len
        if n_frames:
            frames = samples[: n_frames * frame_len].reshape(n_frames, frame_len)
            rms = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
            frame_s = frame_len / rate_hz
            for level in rms.tolist():
                self._frame(level > self._threshold_rms, frame_s, events)
        self._pending = samples[n_frames * frame_len :].copy()
        return events

    def flush(self) -> list[VadEvent]:
        """End of the audio stream: judge the partial frame and end any ongoing speech."""
        events: list[VadEvent] = []
        self._flush_pending(events)
        if self._speaking:
            self._end_speech(events)
        return events

    def _flush_pending(self, events: list[VadEvent]) -> None:
        if len(self._pending) and self._pending_rate_hz:
            level = float(np.sqrt(np.mean(np.square(self._pending, dtype=np.float64))))
            self._frame(
                level > self._threshold_rms, len(self._pending) / self._pending_rate_hz, events
            )
        self._pending = np.empty(0, dtype=np.int16)

    def _frame(self, voiced: bool, frame_s: float, events: list[VadEvent]) -> None:
        start_s = self._time_s
        self._time_s = end_s = start_s + frame_s
        if not self._speaking:
            if not voiced:
                self._voiced_run_start_s = None
                return
            if self._voiced_run_start_s is None:
                self._voiced_run_start_s = start_s
            if end_s - self._voiced_run_start_s >= self._prefix_s - 1e-9:
                self._speaking = True
                self._speech_start_s = self._voiced_run_start_s
                self._last_voiced_end_s = end_s
                self._silence_run_s = 0.0
                events.append(SpeechStarted(time_s=end_s, speech_start_s=self._speech_start_s))
            return
        if voiced:
            self._last_voiced_end_s = end_s
            self._silence_run_s = 0.0
            return
        self._silence_run_s += frame_s
        if self._silence_run_s >= self._silence_s - 1e-9:
            self._end_speech(events)

    def _end_speech(self, events: list[VadEvent]) -> None:
        self._speaking = False
        self._voiced_run_start_s = None
        self._silence_run_s = 0.0
        duration_s = self._last_voiced_end_s - self._speech_start_s
        events.append(SpeechEnded(time_s=self._time_s, duration_s=duration_s))
