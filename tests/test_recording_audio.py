"""The stereo WAV of a call: caller left, agent right, on the caller's clock, cuts audible."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from gateway.audio.mulaw import encode_mulaw
from gateway.recording.audio import StereoCallMixer

FRAME = 160  # samples in a 20 ms frame


def level_frame(level: int) -> bytes:
    """20 ms of a constant level (positive), as μ-law."""
    return encode_mulaw(np.full(FRAME, level, dtype=np.int16))


def read(path: Path) -> npt.NDArray[np.int16]:
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8000)
        return np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)


def caller(mixer: StereoCallMixer, frames: int, start_frame: int, level: int = 0) -> None:
    for k in range(start_frame, start_frame + frames):
        mixer.caller_audio(level_frame(level), timestamp_ms=20 * k)


def test_caller_frames_sit_at_their_timestamps_and_agent_frames_play_in_sequence(
    tmp_path: Path,
) -> None:
    mixer = StereoCallMixer(tmp_path / "call.wav")
    caller(mixer, 5, 0, level=1000)  # 0–100 ms
    for _ in range(10):  # sent at once at 100 ms: Twilio plays them one after another
        mixer.agent_audio(level_frame(3000))
    caller(mixer, 20, 5)  # 100–500 ms of silence from the caller
    mixer.close()
    stereo = read(tmp_path / "call.wav")
    assert len(stereo) == 25 * FRAME
    left, right = stereo[:, 0], stereo[:, 1]
    assert (left[: 5 * FRAME] > 900).all() and not left[5 * FRAME :].any()
    assert not right[: 5 * FRAME].any()
    assert (right[5 * FRAME : 15 * FRAME] > 2900).all()  # 200 ms of agent from 100 ms on
    assert not right[15 * FRAME :].any()


def test_clear_silences_what_twilio_had_not_played_yet(tmp_path: Path) -> None:
    mixer = StereoCallMixer(tmp_path / "call.wav")
    caller(mixer, 5, 0)
    for _ in range(50):  # a 1 s answer, all sent at 100 ms
        mixer.agent_audio(level_frame(3000))
    caller(mixer, 10, 5, level=1000)  # the caller talks over it, 100–300 ms…
    mixer.agent_cleared()  # …and the gateway clears at 300 ms
    caller(mixer, 10, 15)
    mixer.agent_audio(level_frame(2000))  # the next answer starts at 500 ms
    mixer.close()
    right = read(tmp_path / "call.wav")[:, 1]
    assert (right[5 * FRAME : 15 * FRAME] == right[5 * FRAME]).all()  # heard until the cut
    assert right[5 * FRAME] > 2900
    assert not right[15 * FRAME : 25 * FRAME].any()  # the rest of the answer: never heard
    assert (right[25 * FRAME : 26 * FRAME] > 1900).all()
    assert len(right) == 26 * FRAME


def test_hanging_up_cuts_the_agent_like_clear(tmp_path: Path) -> None:
    mixer = StereoCallMixer(tmp_path / "call.wav")
    caller(mixer, 5, 0)
    for _ in range(50):
        mixer.agent_audio(level_frame(3000))
    caller(mixer, 5, 5)
    mixer.caller_hung_up()
    mixer.close()
    stereo = read(tmp_path / "call.wav")
    assert len(stereo) == 10 * FRAME  # not the 1.1 s the agent would have needed


def test_a_long_call_is_written_as_it_goes_and_a_wild_timestamp_is_ignored(
    tmp_path: Path,
) -> None:
    path = tmp_path / "call.wav"
    mixer = StereoCallMixer(path)
    caller(mixer, 150, 0, level=500)  # 3 s
    assert path.stat().st_size > 2 * 8000 * 2 * 2  # more than 2 s already on disk
    mixer.caller_audio(level_frame(500), timestamp_ms=10**9)  # a broken clock: appended
    mixer.close()
    stereo = read(path)
    assert len(stereo) == 151 * FRAME
    assert (stereo[:, 0] > 400).all()


def test_late_caller_frames_land_where_their_timestamp_says(tmp_path: Path) -> None:
    mixer = StereoCallMixer(tmp_path / "call.wav")
    mixer.caller_audio(level_frame(1000), timestamp_ms=0)
    mixer.caller_audio(level_frame(3000), timestamp_ms=40)  # frame 20 ms is late…
    mixer.caller_audio(level_frame(2000), timestamp_ms=20)  # …and arrives now
    mixer.close()
    left = read(tmp_path / "call.wav")[:, 0]
    levels = [int(np.median(left[k * FRAME : (k + 1) * FRAME])) for k in range(3)]
    assert levels[0] < levels[1] < levels[2]
