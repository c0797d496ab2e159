"""The emulator speaks words: eSpeak NG speech per Live voice, cached, deterministic, tones as
the fallback (gateway.live.emulator.voice / .espeak)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import structlog

from gateway.live.client import LiveConnector, LiveSession
from gateway.live.emulator import voice as voice_module
from gateway.live.emulator.espeak import (
    Espeak,
    EspeakError,
    EspeakUnavailable,
    EspeakVoice,
    engine,
)
from gateway.live.emulator.server import EmulatorScript, LiveEmulator, spoken_result
from gateway.live.emulator.voice import (
    MAX_DURATION_S,
    VOICES,
    Speech,
    reply_fundamental_hz,
    speak_pcm16,
    speech_duration_s,
    tone_reply_pcm16,
    voice_for,
)
from gateway.live.protocol import PREBUILT_VOICES, ServerMessage, SessionConfig, build_text_input
from tests.live.conftest import FAST, emulator_settings, send_chunks, turn_complete, until
from tests.live.signals import dominant_hz, rms_dbfs, utterance

RATE = 24000
SENTENCE = "Thanks for calling Acme. How can I help you today?"

Floats = npt.NDArray[np.float64]


def samples(pcm: bytes) -> Floats:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def frame_rms(pcm: bytes, frame_ms: int = 20) -> Floats:
    x = samples(pcm)
    n = RATE * frame_ms // 1000
    frames = x[: len(x) // n * n].reshape(-1, n)
    return np.sqrt(np.mean(np.square(frames), axis=1))


def band_fraction(pcm: bytes, low_hz: float, high_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples(pcm))) ** 2
    freqs = np.fft.rfftfreq(len(pcm) // 2, 1 / RATE)
    return float(spectrum[(freqs >= low_hz) & (freqs <= high_hz)].sum() / spectrum.sum())


def spoken_s(pcm: bytes) -> float:
    """How long the audio holds sound: from the first to the last frame above -50 dBFS."""
    loud = np.flatnonzero(frame_rms(pcm) > 32768 * 10 ** (-50 / 20))
    return 0.0 if not len(loud) else (loud[-1] - loud[0] + 1) * 0.02


def median_pitch_hz(pcm: bytes) -> float:
    """Median autocorrelation pitch of the voiced 40 ms frames (60-400 Hz)."""
    x = samples(pcm)
    n = RATE * 40 // 1000
    level = np.sqrt(np.mean(np.square(x)))
    pitches = []
    for start in range(0, len(x) - n, n):
        frame = x[start : start + n] - x[start : start + n].mean()
        if np.sqrt(np.mean(np.square(frame))) < level:
            continue
        ac = np.correlate(frame, frame, "full")[n - 1 :]
        lo, hi = RATE // 400, RATE // 60
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.3 * ac[0]:
            pitches.append(RATE / lag)
    assert len(pitches) >= 5, "too few voiced frames"
    return float(np.median(pitches))


class BrokenEspeak(Espeak):
    def synthesize(self, text: str, voice: EspeakVoice, rate_wpm: int | None = None) -> bytes:
        raise EspeakUnavailable("no libespeak-ng here")


class FlakyEspeak(Espeak):
    """Fails on one text only."""

    def synthesize(self, text: str, voice: EspeakVoice, rate_wpm: int | None = None) -> bytes:
        if text == "Bad text.":
            raise EspeakError("espeak_Synth failed with status 1")
        return engine().synthesize(text, voice, rate_wpm)

    @property  # type: ignore[override]
    def sample_rate_hz(self) -> int:
        return engine().sample_rate_hz

    @sample_rate_hz.setter
    def sample_rate_hz(self, _value: int) -> None:
        pass


# --------------------------------------------------------------------------- the audio


def test_speech_is_speech_like_in_band_with_a_varying_envelope() -> None:
    pcm = speak_pcm16(SENTENCE, "Puck")
    assert len(pcm) == round(speech_duration_s(SENTENCE) * RATE) * 2  # the emulator's timing
    assert band_fraction(pcm, 300, 3400) > 0.6
    assert -22.0 < rms_dbfs(pcm) < -18.0
    envelope = frame_rms(pcm)
    voiced = envelope[envelope > 0.1 * envelope.max()]
    assert np.std(envelope) / np.mean(envelope) > 0.5  # syllables and pauses, not a drone
    assert (envelope < 0.05 * envelope.max()).sum() >= 3  # gaps between words
    assert len(voiced) > 0.4 * len(envelope)
    # Not one of the tones: those have a single dominant fundamental of 120-240 Hz.
    assert pcm != tone_reply_pcm16(SENTENCE, 1)


def test_more_words_take_longer_to_say() -> None:
    texts = ["Yes.", "Yes, it has shipped.", "Yes, your order has shipped today."]
    durations = [spoken_s(speak_pcm16(text, "Kore")) for text in texts]
    assert durations[0] < durations[1] < durations[2]
    for text, duration in zip(texts, durations, strict=True):
        assert 0.5 * speech_duration_s(text) < duration <= speech_duration_s(text)


def test_a_text_too_long_for_the_window_is_spoken_faster_and_still_fits() -> None:
    text = "Your order A1001 has shipped and will arrive on Friday between nine and five."
    pcm = speak_pcm16(text, "Charon")
    assert len(pcm) == round(MAX_DURATION_S * RATE) * 2
    assert spoken_s(pcm) > 0.8 * MAX_DURATION_S


def test_two_voices_sound_different() -> None:
    puck, kore = speak_pcm16(SENTENCE, "Puck"), speak_pcm16(SENTENCE, "Kore")
    assert puck != kore
    assert 70 < median_pitch_hz(puck) < 160 < median_pitch_hz(kore) < 320
    assert median_pitch_hz(kore) > 1.3 * median_pitch_hz(puck)
    assert median_pitch_hz(speak_pcm16(SENTENCE, "Charon")) != median_pitch_hz(puck)


def test_every_live_voice_has_its_own_espeak_voice_and_unknown_names_a_stable_one() -> None:
    assert {name.lower() for name in VOICES} == {name.lower() for name in PREBUILT_VOICES}
    assert len({voice_for(name) for name in PREBUILT_VOICES}) == len(PREBUILT_VOICES)
    assert voice_for("puck") == voice_for("Puck") == voice_for(None)
    assert voice_for("Nova") == voice_for("Nova") and voice_for("Nova") in VOICES.values()
    assert len({voice_for(f"custom-{i}") for i in range(20)}) > 3


def test_text_without_words_is_tones() -> None:
    dots = "." * 20  # the replay's stand-in for audio recorded without a transcription
    assert speak_pcm16(dots, "Puck", reply_number=3) == tone_reply_pcm16(dots, 3)


# --------------------------------------------------------------------------- cache, determinism


def test_a_second_synthesis_is_a_cache_hit_not_an_engine_call() -> None:
    speech = Speech()  # its own cache, the process's engine
    before = engine().calls
    first = speech.speak(SENTENCE, "Leda")
    calls = engine().calls - before
    assert 1 <= calls <= 2  # a second call only to fit the window
    assert speech.speak(SENTENCE, "Leda") is first
    assert engine().calls - before == calls and speech.hits == 1 and speech.misses == 1
    speech.speak(SENTENCE, "Orus")  # another voice is another entry
    assert engine().calls - before > calls and speech.misses == 2


def test_the_cache_keeps_to_its_byte_budget() -> None:
    one = round(speech_duration_s("First reply.") * RATE) * 2
    speech = Speech(budget_bytes=2 * one + 10)
    for text in ("First reply.", "Other reply.", "Third reply."):
        speech.speak(text, "Puck")
    assert speech.cached_bytes <= 2 * one + 10
    assert speech.cached("First reply.", "Puck") is None  # the oldest went first
    assert speech.cached("Third reply.", "Puck") is not None


def test_the_same_text_and_voice_give_the_same_bytes_whatever_came_before() -> None:
    alone = Speech().speak(SENTENCE, "Aoede")
    other = Speech()
    for name in ("Puck", "Zephyr", "Fenrir"):  # other voices, texts and rates in between
        other.speak(f"Something else for {name}, said at some length.", name)
    assert other.speak(SENTENCE, "Aoede") == alone


def test_speech_is_the_same_in_another_process() -> None:
    script = textwrap.dedent(
        f"""
        import hashlib
        from gateway.live.emulator.voice import speak_pcm16
        print(hashlib.sha256(speak_pcm16({SENTENCE!r}, "Fenrir")).hexdigest())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=30
    )
    here = Speech().speak(SENTENCE, "Fenrir")
    assert out.stdout.strip() == hashlib.sha256(here).hexdigest()


def test_concurrent_synthesis_from_threads_gives_the_serial_results() -> None:
    jobs = [(f"Reply {i} for the caller.", name) for i in range(4) for name in ("Puck", "Kore")]
    serial = [Speech().speak(text, name) for text, name in jobs]

    def synth(job: tuple[str, str]) -> bytes:
        return Speech().speak(*job)  # no cache: every call hits the engine

    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            assert list(pool.map(synth, jobs)) == serial


# --------------------------------------------------------------------------- fallback, loading


def test_without_espeak_it_falls_back_to_tones_with_one_warning() -> None:
    speech = Speech(BrokenEspeak())
    with structlog.testing.capture_logs() as logs:
        first = speech.speak(SENTENCE, "Puck", reply_number=2)
        second = speech.speak("Another reply.", "Kore", reply_number=3)
    assert first == tone_reply_pcm16(SENTENCE, 2)
    assert second == tone_reply_pcm16("Another reply.", 3)
    assert dominant_hz(first) == pytest.approx(reply_fundamental_hz(2), abs=2)
    warnings = [e for e in logs if e["event"] == "emulator_speech_unavailable"]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
    assert speech.unavailable is not None and "libespeak-ng" in speech.unavailable


def test_one_failed_text_is_tones_and_speech_goes_on() -> None:
    speech = Speech(FlakyEspeak())
    with structlog.testing.capture_logs() as logs:
        assert speech.speak("Bad text.", "Puck", reply_number=4) == tone_reply_pcm16("Bad text.", 4)
    assert [e["event"] for e in logs] == ["emulator_speech_failed"]
    assert speech.unavailable is None
    assert speech.speak("Good text.", "Puck") == speak_pcm16("Good text.", "Puck")


def test_a_library_that_fails_to_load_is_espeak_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import espeakng_loader

    monkeypatch.setattr(espeakng_loader, "get_library_path", lambda: str(tmp_path / "none.so"))
    fresh = Espeak()  # its own (failing) load; the process's engine is left alone
    with pytest.raises(EspeakUnavailable, match="cannot load libespeak-ng"):
        fresh.load()
    assert Speech(fresh).speak("Hello there.", "Puck") == tone_reply_pcm16("Hello there.", 1)


def test_the_library_and_data_come_from_the_wheel_and_load_only_when_first_used() -> None:
    script = textwrap.dedent(
        """
        from pathlib import Path
        import gateway.live.emulator.server
        from gateway.live.emulator.espeak import engine
        from gateway.live.emulator.voice import speak_pcm16, tone_reply_pcm16
        print("loaded at import:", "libespeak-ng" in Path("/proc/self/maps").read_text())
        print("spoke:", speak_pcm16("Hello.", None) != tone_reply_pcm16("Hello.", 1))
        print(engine().library_path)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=30
    ).stdout.splitlines()
    assert out[:2] == ["loaded at import: False", "spoke: True"]
    import espeakng_loader

    wheel = Path(espeakng_loader.__file__).parent
    assert Path(out[2]).parent == wheel and Path(out[2]).name == "libespeak-ng.so"
    data = Path(espeakng_loader.get_data_path())
    assert data.parent == wheel
    assert (data / "en_dict").is_file() and (data / "voices" / "!v" / "m3").is_file()


# --------------------------------------------------------------------------- in the emulator


def audio_of(messages: list[ServerMessage]) -> bytes:
    return b"".join(chunk for m in messages for chunk in m.audio)


def transcript_of(messages: list[ServerMessage]) -> str:
    return "".join(m.output_transcription or "" for m in messages)


async def one_reply(
    emulator: LiveEmulator, *, voice: str | None = None, speech_ms: int = 600
) -> list[ServerMessage]:
    connector = LiveConnector(emulator_settings(), url_override=emulator.url)
    session: LiveSession = await connector.connect(
        SessionConfig(model="gemini-test-model", voice=voice)
    )
    try:
        await send_chunks(session, utterance(speech_ms, 700))
        return await until(aiter(session), turn_complete)
    finally:
        await session.close()


async def test_the_default_reply_says_how_long_the_caller_spoke_in_the_agents_voice() -> None:
    async with LiveEmulator(speed=FAST) as emulator:
        kore = await one_reply(emulator, voice="Kore", speech_ms=1400)
        puck = await one_reply(emulator, voice="Puck", speech_ms=1400)
    text = transcript_of(kore)
    assert text.startswith("You said something for 1.4 seconds.")
    assert audio_of(kore) == speak_pcm16(text, "Kore")
    assert audio_of(puck) == speak_pcm16(transcript_of(puck), "Puck")
    assert audio_of(kore) != audio_of(puck)


async def test_a_scripted_reply_speaks_its_words() -> None:
    script = EmulatorScript.from_yaml(
        """
turns:
  - say: "Yes."
  - say: "Yes, your order has shipped."
"""
    )
    async with LiveEmulator(script, speed=FAST) as emulator:
        connector = LiveConnector(emulator_settings(), url_override=emulator.url)
        session = await connector.connect(SessionConfig(model="gemini-test-model", voice="Orus"))
        messages = aiter(session)
        await send_chunks(session, utterance(600, 700))
        short = await until(messages, turn_complete)
        await send_chunks(session, utterance(600, 700))
        long = await until(messages, turn_complete)
        await session.close()
    assert transcript_of(short) == "Yes."
    assert transcript_of(long) == "Yes, your order has shipped."
    assert audio_of(short) == speak_pcm16("Yes.", "Orus")
    assert audio_of(long) == speak_pcm16("Yes, your order has shipped.", "Orus")
    assert spoken_s(audio_of(long)) > 2 * spoken_s(audio_of(short))


async def test_a_greeting_says_the_text_the_gateway_sent() -> None:
    async with LiveEmulator(speed=FAST) as emulator:
        connector = LiveConnector(emulator_settings(), url_override=emulator.url)
        session = await connector.connect(SessionConfig(model="gemini-test-model", voice="Leda"))
        await session.send(build_text_input('Greet the caller by saying: "Welcome to Acme!"'))
        greeting = await until(aiter(session), turn_complete)
        await session.close()
    assert transcript_of(greeting) == "Welcome to Acme!"
    assert audio_of(greeting) == speak_pcm16("Welcome to Acme!", "Leda")


async def test_without_espeak_the_emulator_still_answers_in_tones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(voice_module, "_SPEECH", Speech(BrokenEspeak()))
    async with LiveEmulator(speed=FAST) as emulator:
        reply = await one_reply(emulator, voice="Kore")
    assert audio_of(reply) == tone_reply_pcm16(transcript_of(reply), 1)
    assert dominant_hz(audio_of(reply)) == pytest.approx(reply_fundamental_hz(1), abs=2)


def test_a_tool_result_is_spoken_as_a_short_sentence() -> None:
    assert spoken_result({"result": {"status": "shipped", "eta_day": "Friday"}}) == (
        "status shipped, eta day Friday"
    )
    assert spoken_result({"found": True, "items": [1, 2, 3], "note": None}) == (
        "found yes, items 3 items, note none"
    )
    assert spoken_result({}) == "nothing"
    assert len(spoken_result({"text": "word " * 100})) <= 120
