"""The Live emulator hears words: a small-grammar pocketsphinx recogniser over caller utterances.

Optional (the `emulator-asr` extra): without pocketsphinx importable, or without `on_words`
triggers in the script, the emulator behaves as before — `inputTranscription` says how long the
caller spoke. With both, each utterance the VAD segments (16 kHz mono PCM16) is decoded against
a JSGF grammar built from the triggers: a loop of common filler words, optionally followed by
one trigger's words with each `{slot}` as spoken letters then digits, then more filler. The
grammar keeps recognition of synthetic (eSpeak) speech usable and fast (median ~0.3 s, up to
~1 s, per utterance on one core) where pocketsphinx's general language model is not. Spoken
digits are reliable; a letter right after a keyword less so ("order A 1 0 0 1" often loses the
"A"). The decoder is built lazily at the first utterance (pocketsphinx and its ~30 MB model
are never loaded by an idle emulator), cached per grammar, and used under a process-wide lock
in a worker thread; decoding is deterministic (the same audio gives the same words, whatever
was heard before).
"""

from __future__ import annotations

import importlib.util
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gateway.live.emulator.script import WordTrigger

__all__ = [
    "HEARING_RATE_HZ",
    "Heard",
    "Recognizer",
    "available",
    "match_trigger",
    "recognizer_for",
    "to_hearing_rate",
]

HEARING_RATE_HZ = 16000
"""What the recogniser's acoustic model wants (and what Live receives): 16 kHz mono int16."""

LETTERS = {chr(c): chr(c).upper() for c in range(ord("a"), ord("z") + 1)}
DIGITS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
FILLER = "i want to check my please the hello yes no thanks is where can you".split()
"""The garbage loop: words a caller says around a trigger. Letters and digits are left out so
they are only heard inside a slot."""

_LOCK = threading.Lock()
_RECOGNIZERS: dict[str, Recognizer] = {}


def available() -> bool:
    """Whether pocketsphinx is importable (without importing it)."""
    try:
        return importlib.util.find_spec("pocketsphinx") is not None
    except (ImportError, ValueError):
        return False


def to_hearing_rate(pcm16le: bytes, rate_hz: int) -> bytes:
    """Caller audio at `rate_hz` as 16 kHz PCM16 (linear interpolation; Live sends 16 kHz)."""
    if rate_hz == HEARING_RATE_HZ or not pcm16le:
        return pcm16le
    x = np.frombuffer(pcm16le, dtype="<i2").astype(np.float64)
    n_out = max(1, round(len(x) * HEARING_RATE_HZ / rate_hz))
    positions = np.arange(n_out) * (rate_hz / HEARING_RATE_HZ)
    y = np.interp(positions, np.arange(len(x)), x)
    pcm: bytes = np.clip(np.round(y), -32768, 32767).astype("<i2").tobytes()
    return pcm


def grammar_for(triggers: tuple[WordTrigger, ...]) -> str:
    """The JSGF grammar: filler, then optionally one trigger (slots as letters-then-digits)."""
    keywords = {word for trigger in triggers for word in trigger.words}
    filler = [word for word in FILLER if word not in keywords]
    alternatives = []
    for trigger in triggers:
        parts = ["<slot>" if trigger.slot_of(item) else item for item in trigger.when_heard]
        alternatives.append("(" + " ".join(parts) + ")")
    return (
        "#JSGF V1.0;\ngrammar emulator;\n"
        f"public <utterance> = <filler>* [({' | '.join(alternatives)}) <filler>*];\n"
        "<slot> = <letter>* <digit>+;\n"
        f"<letter> = {' | '.join(LETTERS)};\n"
        f"<digit> = {' | '.join(DIGITS)};\n"
        f"<filler> = {' | '.join(filler)};\n"
    )


class Recognizer:
    """One pocketsphinx decoder for one grammar; `hear` is thread-safe (process-wide lock)."""

    def __init__(self, grammar: str) -> None:
        self.grammar = grammar
        self._decoder: Any = None

    def _load(self) -> Any:
        from pocketsphinx import Decoder

        with tempfile.TemporaryDirectory(prefix="emulator-hearing-") as tmp:
            path = Path(tmp) / "emulator.gram"
            path.write_text(self.grammar, encoding="ascii")
            # cmn=batch: cepstral mean from the utterance itself, not carried over from earlier
            # ones, so an utterance's words never depend on what was heard before.
            return Decoder(lm=None, jsgf=str(path), cmn="batch", loglevel="FATAL")

    def hear(self, pcm16le: bytes) -> str:
        """The words heard in one 16 kHz utterance, lowercase, space-separated ("" if none)."""
        with _LOCK:
            if self._decoder is None:
                self._decoder = self._load()
            decoder = self._decoder
            decoder.start_utt()
            decoder.process_raw(pcm16le, full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp()
        return " ".join(hyp.hypstr.split()) if hyp is not None else ""


def recognizer_for(triggers: tuple[WordTrigger, ...]) -> Recognizer:
    """The process's recogniser for these triggers (decoder loaded at its first `hear`)."""
    grammar = grammar_for(triggers)
    with _LOCK:
        recognizer = _RECOGNIZERS.get(grammar)
        if recognizer is None:
            recognizer = _RECOGNIZERS[grammar] = Recognizer(grammar)
        return recognizer


@dataclass(frozen=True, slots=True)
class Heard:
    """A trigger found in an utterance, with its slots' values ("B234")."""

    trigger: WordTrigger
    slots: dict[str, str]


def match_trigger(words: str, triggers: tuple[WordTrigger, ...]) -> Heard | None:
    """The first trigger (in script order) whose `when_heard` occurs in `words`."""
    tokens = words.split()
    for trigger in triggers:
        for start in range(len(tokens)):
            slots = _match_at(tokens, start, trigger)
            if slots is not None:
                return Heard(trigger, slots)
    return None


def _match_at(tokens: list[str], start: int, trigger: WordTrigger) -> dict[str, str] | None:
    slots: dict[str, str] = {}
    i = start
    for item in trigger.when_heard:
        slot = trigger.slot_of(item)
        if slot is None:
            if i >= len(tokens) or tokens[i] != item:
                return None
            i += 1
            continue
        value = []
        while i < len(tokens) and tokens[i] in LETTERS:
            value.append(LETTERS[tokens[i]])
            i += 1
        digits = 0
        while i < len(tokens) and tokens[i] in DIGITS:
            value.append(DIGITS[tokens[i]])
            i += 1
            digits += 1
        if not digits:
            return None
        slots[slot] = "".join(value)
    return slots
