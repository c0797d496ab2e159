"""Make the replay fixtures in this folder: real calls, recorded by the gateway's own recorder.

Each fixture is one phone call played in real time against a gateway on loopback whose Live
side is the built-in emulator (scripted per fixture); the caller speaks clips of real speech
(espeak-ng, phone-band filtered, 8 kHz μ-law) and behaves like a Twilio call: it streams a
20 ms frame every 20 ms (silence when not talking), plays the agent's audio at real pace,
echoes marks when their audio has played, honours `clear`. The recording is saved as
`NAME.jsonl.gz` and `NAME.audio.gz` (+ `NAME.txt`, the transcript; `NAME.wav`, ignored by
git). The fixtures committed so far are format 1 (the JSONL alone): they replay as they are.

    .venv/bin/python -m tests.recordings.make_fixtures            # all of them (~1 min)
    .venv/bin/python -m tests.recordings.make_fixtures barge_in   # just one

The caller clips are in `audio/*.ulaw` (committed); a missing clip is made with espeak-ng and
sox (`apt-get install espeak-ng sox`), which only this script needs. Re-run it after an
intended change of behaviour, listen to the WAVs, read the diff of the transcripts, commit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway.agents.config import load_agents
from gateway.audio.codec import PhoneAudio
from gateway.audio.mulaw import MULAW_SILENCE
from gateway.live.emulator.server import EmulatorScript, LiveEmulator
from gateway.ops.logs import configure_logging
from gateway.recording.recorder import RECORDINGS
from gateway.server import create_app
from gateway.settings import load_settings
from gateway.telephony.carriers import PHONES, media_path, new_phone
from gateway.telephony.phone import CarrierPhone
from gateway.telephony.twilio_caller import ACCOUNT_SID, TwilioPhone

HERE = Path(__file__).resolve().parent
AGENTS_DIR = HERE / "agents"
AUDIO_DIR = HERE / "audio"
FRAME_BYTES = 160
FRAME_S = 0.020
SILENCE = bytes([MULAW_SILENCE]) * FRAME_BYTES
MAX_WAIT_S = 15.0
"""Phone time a caller waits for the agent before the generator gives up."""

CLIPS = {
    "opening_hours": "What are your opening hours?",
    "tell_me_about_the_store": "Tell me about your store.",
    "sorry_one_more_thing": "Sorry, one more thing.",
    "return_a_jacket": "Can I return a jacket?",
    "where_is_my_order": "Where is my order A one zero zero one?",
    "thanks_bye": "Thanks, bye.",
}


def clip(name: str) -> list[bytes]:
    """The caller saying CLIPS[name]: 20 ms μ-law frames (made once with espeak-ng + sox)."""
    path = AUDIO_DIR / f"{name}.ulaw"
    if not path.exists():
        _synthesize(CLIPS[name], path)
    data = path.read_bytes()
    data += SILENCE[: -len(data) % FRAME_BYTES] if len(data) % FRAME_BYTES else b""
    return [data[i : i + FRAME_BYTES] for i in range(0, len(data), FRAME_BYTES)]


def _synthesize(text: str, path: Path) -> None:
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        sys.exit(f"{path} is missing: install espeak-ng and sox to make it")
    AUDIO_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "165", "-w", str(wav), text], check=True)
        subprocess.run(
            ["sox", str(wav), "-r", "8000", "-c", "1", "-e", "mu-law", "-t", "raw", str(path),
             "highpass", "200", "lowpass", "3400", "silence", "1", "0.02", "0.5%",
             "reverse", "silence", "1", "0.02", "0.5%", "reverse", "norm", "-6"],
            check=True,
        )  # fmt: skip


class Phone:
    """The carrier's side of a call, in real time: a caller frame every 20 ms, agent audio
    played at 20 ms per frame, marks echoed once played, `clear` honoured (as Twilio does; the
    carrier's frames come from its `CarrierPhone`)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, carrier: CarrierPhone) -> None:
        self.ws = ws
        self.carrier = carrier
        self._audio = PhoneAudio(*carrier.stream_format)  # the answer has been read
        self._playback: deque[str | None] = deque()
        """Agent frames queued in "Twilio" (None) and the marks between them (their names)."""
        self.frames_heard = 0
        self.marks_echoed = 0
        self._ticks = 0
        self._t0 = time.monotonic()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                continue
            event = self.carrier.read(message.data)
            if event.kind == "media":
                self._playback.append(None)
            elif event.kind == "mark":
                self._playback.append(event.name)
            elif event.kind == "clear":
                pending = [m for m in self._playback if m is not None]
                self._playback.clear()
                for name in pending:  # Twilio echoes every pending mark on clear
                    await self._send(self.carrier.mark_played(name))
                    self.marks_echoed += 1

    async def _send(self, message: dict[str, Any] | str | bytes) -> None:
        if self.ws.closed:
            return
        if isinstance(message, dict):
            await self.ws.send_str(json.dumps(message))
        elif isinstance(message, bytes):
            await self.ws.send_bytes(message)
        else:
            await self.ws.send_str(message)

    async def _tick(self, frame: bytes) -> None:
        """One 20 ms step of phone time: the caller's frame out, one agent frame played."""
        self._ticks += 1
        delay = self._t0 + self._ticks * FRAME_S - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # real-time pacing, like a phone line
        await self._send(self.carrier.media(self._audio.to_stream(frame)))
        while self._playback and self._playback[0] is not None:
            await self._echo(self._playback.popleft())
        if self._playback:
            self._playback.popleft()
            self.frames_heard += 1
            while self._playback and self._playback[0] is not None:
                await self._echo(self._playback.popleft())

    async def _echo(self, name: str | None) -> None:
        assert name is not None
        await self._send(self.carrier.mark_played(name))
        self.marks_echoed += 1

    async def say(self, frames: list[bytes]) -> None:
        for frame in frames:
            await self._tick(frame)

    async def pause(self, duration_s: float) -> None:
        for _ in range(round(duration_s / FRAME_S)):
            await self._tick(SILENCE)

    async def until_agent_done(self) -> None:
        """Silence until the agent's next turn has played to its mark."""
        target = self.marks_echoed + 1
        await self._until(lambda: self.marks_echoed >= target and not self._playback)

    async def until_heard(self, frames: int) -> None:
        """Silence until `frames` more agent frames (20 ms each) have played."""
        target = self.frames_heard + frames
        await self._until(lambda: self.frames_heard >= target)

    async def _until(self, done: Callable[[], bool]) -> None:
        for _ in range(round(MAX_WAIT_S / FRAME_S)):
            if done():
                return
            await self._tick(SILENCE)
        raise RuntimeError("the agent never finished speaking")

    async def press(self, digit: str) -> None:
        await self._send(self.carrier.dtmf(digit))

    async def send_raw(self, frame: dict[str, Any] | str | bytes) -> None:
        await self._send(frame)

    async def hang_up(self) -> None:
        try:
            await self._send(self.carrier.stop())
        except NotImplementedError:  # this carrier hangs up by closing the socket
            await self.ws.close()
        await self._reader


CallerScript = Callable[[Phone], Awaitable[None]]


@dataclass(frozen=True)
class Fixture:
    name: str
    agent: str
    to: str
    emulator_script: str
    caller: CallerScript
    live_input_rate_hz: int = 24000
    carrier: str = "twilio"


async def question_answer(phone: Phone) -> None:
    await phone.until_agent_done()  # the greeting
    await phone.say(clip("opening_hours"))
    await phone.until_agent_done()
    await phone.say(clip("thanks_bye"))
    await phone.until_agent_done()
    await phone.hang_up()


async def barge_in(phone: Phone) -> None:
    await phone.say(clip("tell_me_about_the_store"))
    await phone.until_heard(60)  # 1.2 s into a 4 s answer…
    await phone.say(clip("sorry_one_more_thing"))  # …the caller talks over it
    await phone.until_agent_done()
    await phone.hang_up()


async def tool_call(phone: Phone) -> None:
    await phone.say(clip("where_is_my_order"))
    await phone.until_agent_done()
    await phone.hang_up()


async def dtmf(phone: Phone) -> None:
    await phone.until_agent_done()  # "Press 1 for orders."
    await phone.pause(0.3)
    await phone.press("1")
    await phone.until_agent_done()
    await phone.hang_up()


async def hang_up_mid_reply(phone: Phone) -> None:
    await phone.say(clip("return_a_jacket"))
    await phone.until_heard(40)  # 0.8 s into the answer
    await phone.hang_up()


async def malformed_frames(phone: Phone) -> None:
    assert isinstance(phone.carrier, TwilioPhone)
    stream = phone.carrier.stream_sid
    await phone.pause(0.1)
    await phone.send_raw("{definitely not json")
    await phone.send_raw(b"\x00\xff\x10 binary junk")
    await phone.send_raw({"event": "media", "streamSid": stream, "media": {"payload": "%%%"}})
    await phone.send_raw({"event": "media", "streamSid": stream, "media": {"payload": 5}})
    await phone.send_raw({"event": "who_knows", "streamSid": stream, "x": 1})
    await phone.send_raw({"event": "dtmf", "streamSid": stream})
    await phone.send_raw('["an", "array"]')
    await phone.until_agent_done()  # the greeting plays on regardless
    await phone.say(clip("opening_hours"))
    await phone.until_agent_done()
    await phone.hang_up()


FIXTURES = [
    Fixture(
        "question_answer", "support", "+15550001111",
        """turns:
  - say: "We are open nine to five."
  - say: "You're welcome. Goodbye!"
""",
        question_answer,
    ),
    Fixture(
        "barge_in", "plain", "+15550003333",
        """turns:
  - say: "Our store sells clothing, shoes, books, garden tools and much more."
  - say: "Sure, go ahead."
""",
        barge_in,
    ),
    Fixture(
        "tool_call", "orders", "+15550004444",
        """turns:
  - say: "Let me check."
    tool_call: {name: lookup_order, args: {order_id: A1001}}
    after_tool: "Order A1001 has shipped."
""",
        tool_call,
    ),
    Fixture(
        "dtmf", "menu", "+15550002222",
        """turns:
  - say: "Orders. Please say your order number."
""",
        dtmf,
        live_input_rate_hz=16000,
    ),
    Fixture(
        "hang_up_mid_reply", "plain", "+15550003333",
        """turns:
  - say: "Yes, within thirty days, with the receipt, at any store."
""",
        hang_up_mid_reply,
    ),
    Fixture(
        "malformed_frames", "support", "+15550001111",
        """turns:
  - say: "We are open nine to five."
""",
        malformed_frames,
    ),
]  # fmt: skip
FIXTURES += [  # one call per carrier besides Twilio: each replays over its own protocol
    Fixture(
        f"question_answer_{carrier}", "support", "+15550001111",
        """turns:
  - say: "We are open nine to five."
  - say: "You're welcome. Goodbye!"
""",
        question_answer,
        carrier=carrier,
    )
    for carrier in sorted(PHONES)
    if carrier != "twilio"
]  # fmt: skip


@contextlib.asynccontextmanager
async def _gateway(fixture: Fixture, live_url: str, recordings_dir: Path) -> AsyncIterator[str]:
    settings = load_settings(
        env_file=None,
        live_backend="emulator",
        live_url=live_url,
        record_calls="all",
        recordings_dir=recordings_dir,
        live_input_rate_hz=fixture.live_input_rate_hz,
        data_dir=recordings_dir / "data",
    )
    app = create_app(settings, load_agents(AGENTS_DIR))
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
    try:
        yield f"ws://127.0.0.1:{port}{media_path(fixture.carrier)}"
        await app[RECORDINGS].wait_idle()
    finally:
        await runner.cleanup()


def _phone(fixture: Fixture, number: int) -> CarrierPhone:
    if fixture.carrier == "twilio":  # the ids the committed Twilio fixtures were made with
        return TwilioPhone(
            account_sid=ACCOUNT_SID, stream_sid=f"MZ{number:032d}", call_sid=f"CA{number:032d}"
        )
    return new_phone(fixture.carrier)


async def make(fixture: Fixture, number: int) -> None:
    emulator = LiveEmulator(EmulatorScript.from_yaml(fixture.emulator_script))
    live_url = await emulator.start("127.0.0.1", 0)
    with tempfile.TemporaryDirectory() as tmp:
        recordings_dir = Path(tmp)
        try:
            carrier = _phone(fixture, number)
            parameters = {"agent": fixture.agent, "to": fixture.to, "from": "+15551230000"}
            async with (
                _gateway(fixture, live_url, recordings_dir) as media_url,
                aiohttp.ClientSession() as session,
                session.ws_connect(carrier.stream_url(media_url, parameters)) as ws,
            ):
                for frame in carrier.opening(parameters):
                    if isinstance(frame, bytes):
                        await ws.send_bytes(frame)
                    else:
                        await ws.send_str(frame)
                await fixture.caller(Phone(ws, carrier))
        finally:
            await emulator.stop()
        [jsonl] = recordings_dir.glob("*.jsonl")  # noqa: ASYNC240 - a one-off script
        target = HERE / f"{fixture.name}.jsonl.gz"
        with gzip.GzipFile(target, "wb", mtime=0) as out:  # mtime 0: same bytes, same file
            out.write(jsonl.read_bytes())
        audio = jsonl.with_suffix(".audio")  # format 2: the audio beside the JSONL
        if audio.exists():
            with gzip.GzipFile(HERE / f"{fixture.name}.audio.gz", "wb", mtime=0) as out:
                out.write(audio.read_bytes())
        shutil.copy(jsonl.with_suffix(".txt"), HERE / f"{fixture.name}.txt")
        shutil.copy(jsonl.with_suffix(".wav"), HERE / f"{fixture.name}.wav")
    print(f"{target.name}: {target.stat().st_size / 1024:.0f} KiB")


async def main(names: list[str]) -> None:
    configure_logging("warning")
    chosen = [f for f in FIXTURES if not names or f.name in names]
    unknown = set(names) - {f.name for f in FIXTURES}
    if unknown:
        sys.exit(f"unknown fixture(s): {', '.join(sorted(unknown))}")
    for fixture in chosen:
        await make(fixture, FIXTURES.index(fixture) + 1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="fixtures to make (default: all)")
    asyncio.run(main(parser.parse_args().names))
