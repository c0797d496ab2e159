"""`gateway call`: call an agent with a WAV file, as a phone would, and save its spoken reply.

The client speaks the media-stream protocol a phone line uses (Twilio's: `connected`, `start`
with the `agent` parameter, 8 kHz μ-law `media` every 20 ms, `mark` echoes, `stop`) and asks
for transcript frames. It says the file, then keeps the line open with silence (as a phone
does) until the agent's reply turn ends with its mark. With an agent that greets, it first
waits for the greeting to finish playing: paced in real time, a turn's mark is echoed when the
audio before it has played out at 8 kHz, not when it arrives. Without `--url` it runs a gateway
and the Live emulator in this process, on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import wave
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import numpy as np
from aiohttp import web

from gateway.agents.config import AgentSet
from gateway.audio.codec import MULAW_FRAME_BYTES, MULAW_RATE_HZ, PhoneAudio
from gateway.audio.mulaw import MULAW_SILENCE, decode_mulaw, encode_mulaw
from gateway.audio.polyphase import resample_rate
from gateway.settings import LiveBackend, Settings
from gateway.telephony.carriers import media_path, new_phone
from gateway.telephony.phone import CarrierPhone
from gateway.telephony.transcript import TRANSCRIPT_PARAMETER

__all__ = [
    "CallClientError",
    "CallResult",
    "agent_has_greeting",
    "call_in_process",
    "mulaw_frames",
    "place_call",
    "read_wav_pcm16_8k",
    "run_call_command",
    "write_wav_pcm16_8k",
]

FRAME_S: Final = 0.020
TRAILING_SILENCE_MS: Final = 1500
"""Silence sent right after the speech, at the same pace, so Live's VAD ends the turn."""
DEFAULT_TIMEOUT_S: Final = 60.0
ACCOUNT_SID: Final = "ACgatewaycall"
Pace = Literal["auto", "realtime", "fast"]


class CallClientError(Exception):
    """The call could not be placed or gave no reply; the message says what happened."""


@dataclass(frozen=True)
class CallResult:
    """What one file call heard. Audio is 8 kHz PCM16LE mono."""

    reply_pcm16: bytes
    greeting_pcm16: bytes = b""
    transcript: tuple[tuple[str, str], ...] = ()
    """(role, text) lines, consecutive pieces of one speaker's turn joined."""
    frames_sent: int = 0
    frames_received: int = 0

    @property
    def reply_duration_s(self) -> float:
        return len(self.reply_pcm16) / 2 / MULAW_RATE_HZ


# ---------------------------------------------------------------------------------- WAV files


def read_wav_pcm16_8k(path: Path) -> bytes:
    """Any PCM WAV (8/16/24/32-bit, any rate, any channels) → 8 kHz PCM16LE mono."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate_hz = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise CallClientError(f"{path}: no such file") from None
    except (wave.Error, EOFError) as exc:
        raise CallClientError(f"{path}: not a PCM WAV file ({exc})") from None
    samples = _pcm_to_float(raw, width)
    if channels > 1:
        samples = samples[: len(samples) // channels * channels].reshape(-1, channels).mean(axis=1)
    if rate_hz != MULAW_RATE_HZ:  # windowed-sinc polyphase, as scipy's resample_poly
        samples = resample_rate(samples, rate_hz, MULAW_RATE_HZ)
    pcm16 = np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")
    if not len(pcm16):
        raise CallClientError(f"{path}: the file has no audio")
    return pcm16.tobytes()


def _pcm_to_float(raw: bytes, width: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    if width == 1:
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    if width == 3:
        bytes3 = np.frombuffer(raw[: len(raw) // 3 * 3], dtype=np.uint8).reshape(-1, 3)
        as32 = (bytes3[:, 0].astype(np.int32) << 8) | (bytes3[:, 1].astype(np.int32) << 16)
        as32 |= bytes3[:, 2].astype(np.int32) << 24
        return as32.astype(np.float64) / 2.0**31
    if width == 4:
        return np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2.0**31
    raise CallClientError(f"unsupported WAV sample width: {width} bytes")


def write_wav_pcm16_8k(path: Path, pcm16: bytes) -> None:
    """Write 8 kHz PCM16LE mono as a WAV file."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(MULAW_RATE_HZ)
        wav.writeframes(pcm16)


def mulaw_frames(pcm16: bytes) -> list[bytes]:
    """8 kHz PCM16LE → 20 ms μ-law frames, the last one padded with μ-law silence."""
    mulaw = encode_mulaw(np.frombuffer(pcm16, dtype="<i2").astype(np.int16))
    frames = [mulaw[i : i + MULAW_FRAME_BYTES] for i in range(0, len(mulaw), MULAW_FRAME_BYTES)]
    if frames and len(frames[-1]) < MULAW_FRAME_BYTES:
        frames[-1] = frames[-1].ljust(MULAW_FRAME_BYTES, bytes([MULAW_SILENCE]))
    return frames


_SILENCE_FRAME: Final = bytes([MULAW_SILENCE]) * MULAW_FRAME_BYTES
_TRANSCRIPT_EVENT: Final = '"transcript"'
"""In a text frame: maybe the gateway's transcript extension (gateway.telephony.transcript)."""


# ------------------------------------------------------------------------------- the protocol


@dataclass
class _Turn:
    mulaw: bytes
    mark: str | None
    """None when the stream ended before the turn's mark."""


@dataclass
class _PendingMark:
    name: str
    audio: bytes
    played_at: float
    """Loop time at which the phone has played the turn's last frame (its playhead)."""
    cleared: asyncio.Event
    """Set by a `clear` (or the end of the stream): the mark is echoed at once."""


async def _wait_until_played(cleared: asyncio.Event, delay_s: float) -> None:
    """Wait `delay_s` of playback, or less if the audio is cleared first."""
    if delay_s > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(cleared.wait(), delay_s)


@dataclass
class _Line:
    """The phone side of one media stream: sends caller frames, collects agent turns.

    It plays what it receives as a phone does: with `realtime` playback every 20 ms media
    frame takes 20 ms from the playhead, and a `mark` is echoed — and its turn counted as
    heard — when the playhead reaches it, not when it arrives (the gateway sends audio faster
    than real time). `clear` drops what is unplayed and echoes pending marks at once, as
    Twilio does. Without `realtime` (fast mode) the audio counts as played on arrival.
    """

    ws: aiohttp.ClientWebSocketResponse
    realtime: bool = False
    phone: CarrierPhone = field(default_factory=lambda: new_phone("twilio"))
    """Speaks the carrier's protocol (gateway.telephony.phone): frames out, frames read back."""
    clock: Callable[[], float] = field(default_factory=lambda: asyncio.get_running_loop().time)
    wait_until_played: Callable[[asyncio.Event, float], Awaitable[None]] = _wait_until_played
    frames_sent: int = 0
    frames_received: int = 0
    transcript: list[list[str]] = field(default_factory=list)
    turns: asyncio.Queue[_Turn] = field(default_factory=asyncio.Queue)
    _audio: bytearray = field(default_factory=bytearray)
    _line_open: bool = False
    _playhead: float = 0.0
    _cleared: asyncio.Event = field(default_factory=asyncio.Event)
    _marks: asyncio.Queue[_PendingMark | None] = field(default_factory=asyncio.Queue)
    _phone_audio: PhoneAudio | None = None

    async def send(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    async def start(self, agent: str | None) -> None:
        for frame in self.phone.opening(_line_parameters(agent)):
            await self.send(frame)

    async def media(self, mulaw: bytes) -> None:
        await self.send(self.phone.media(self._audio_format.to_stream(mulaw)))
        self.frames_sent += 1

    @property
    def _audio_format(self) -> PhoneAudio:
        """μ-law (what `gateway call` plays and saves) ↔ the phone's stream format."""
        if self._phone_audio is None:
            self._phone_audio = PhoneAudio(*self.phone.stream_format)
        return self._phone_audio

    async def stop(self) -> None:
        try:
            frame = self.phone.stop()
        except NotImplementedError:  # this carrier hangs up by closing the socket
            await self.ws.close()
            return
        await self.send(frame)

    async def speak(self, frames: Sequence[bytes]) -> None:
        """Say `frames`, then keep the line open with silence, paced like a phone (`realtime`:
        one frame every 20 ms; else the speech at once)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        for frame in frames:
            await self.media(frame)
            if self.realtime:
                deadline += FRAME_S
                await asyncio.sleep(max(0.0, deadline - loop.time()))
        deadline = loop.time()
        while True:  # a phone line never goes quiet on the wire: silence until hung up
            await self.media(_SILENCE_FRAME)
            deadline += FRAME_S
            await asyncio.sleep(max(0.0, deadline - loop.time()))

    async def receive(self) -> None:
        """Collect agent audio into turns (ended by marks, echoed once played)."""
        player = asyncio.create_task(self._play_marks(), name="call_playback")
        try:
            await self._receive_frames()
        finally:
            self._clear_playback()  # the stream ended: nothing more will play
            self._marks.put_nowait(None)
            await asyncio.gather(player, return_exceptions=True)
            self.turns.put_nowait(_Turn(bytes(self._audio), None))

    async def _receive_frames(self) -> None:
        async for message in self.ws:
            if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                continue
            if message.type is aiohttp.WSMsgType.TEXT and _TRANSCRIPT_EVENT in message.data:
                self._on_transcript(message.data)  # the gateway's own extension, any carrier
                continue
            try:
                event = self.phone.read(message.data)
            except (ValueError, KeyError, TypeError):
                continue
            if event.kind == "media":
                mulaw = self._audio_format.to_mulaw(event.audio)
                self._audio += mulaw
                self.frames_received += 1
                if self.realtime:
                    now = self.clock()
                    self._playhead = max(self._playhead, now) + len(mulaw) / MULAW_RATE_HZ
            elif event.kind == "clear":
                self._audio.clear()
                self._line_open = False
                self._clear_playback()
            elif event.kind == "mark":
                played_at = max(self._playhead, self.clock()) if self.realtime else 0.0
                self._marks.put_nowait(
                    _PendingMark(event.name, bytes(self._audio), played_at, self._cleared)
                )
                self._audio.clear()
                self._line_open = False

    def _on_transcript(self, frame: str) -> None:
        try:
            data = json.loads(frame)
        except json.JSONDecodeError:
            return
        if isinstance(data, dict) and data.get("event") == "transcript":
            self._add_transcript(str(data.get("role", "agent")), str(data.get("text", "")))

    def _clear_playback(self) -> None:
        self._cleared.set()  # pending marks echo now
        self._cleared = asyncio.Event()
        self._playhead = 0.0

    async def _play_marks(self) -> None:
        """Echo each mark when its audio has played, in order; its turn is then heard."""
        while (pending := await self._marks.get()) is not None:
            if self.realtime and not pending.cleared.is_set():
                await self.wait_until_played(pending.cleared, pending.played_at - self.clock())
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.send(self.phone.mark_played(pending.name))
            self.turns.put_nowait(_Turn(pending.audio, pending.name))

    def _add_transcript(self, role: str, text: str) -> None:
        if self._line_open and self.transcript and self.transcript[-1][0] == role:
            self.transcript[-1][1] += text
        else:
            self.transcript.append([role, text])
            self._line_open = True

    async def next_turn(self, what: str) -> bytes:
        """The next agent turn's audio; a call the agent ends after speaking counts as a turn."""
        turn = await self.turns.get()
        if turn.mark is None:
            self.turns.put_nowait(_Turn(b"", None))  # the stream stays ended for later waits
            if not turn.mulaw:
                raise CallClientError(f"the gateway ended the call before the {what}")
        return turn.mulaw


def _line_parameters(agent: str | None) -> dict[str, str]:
    """What `gateway call` tells the gateway about its call."""
    parameters = {TRANSCRIPT_PARAMETER: "1", "from": "gateway-call"}
    if agent:
        parameters["agent"] = agent
    return parameters


async def place_call(
    url: str,
    say_pcm16: bytes,
    *,
    agent: str | None = None,
    wait_for_greeting: bool = False,
    realtime: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    carrier: str = "twilio",
) -> CallResult:
    """Call `url` (a gateway's media stream for `carrier`), say 8 kHz PCM16 `say_pcm16`,
    return the reply."""
    frames = mulaw_frames(say_pcm16) + [_SILENCE_FRAME] * (TRAILING_SILENCE_MS // 20)
    sender: asyncio.Task[None] | None = None
    phone = new_phone(carrier)
    url = phone.stream_url(url, _line_parameters(agent))
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            line = _Line(ws, realtime=realtime, phone=phone)
            receiver = asyncio.create_task(line.receive(), name="call_receiver")
            try:
                await line.start(agent)
                async with asyncio.timeout(timeout_s):
                    greeting = await line.next_turn("greeting") if wait_for_greeting else b""
                    sender = asyncio.create_task(line.speak(frames))
                    reply = await line.next_turn("reply")
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
                await line.stop()  # hang up like a phone: `stop`, then the socket closes
            finally:
                if sender is not None:
                    sender.cancel()
                    await asyncio.gather(sender, return_exceptions=True)
                await ws.close()
                receiver.cancel()
                await asyncio.gather(receiver, return_exceptions=True)
    except TimeoutError:
        raise CallClientError(f"no reply from the agent within {timeout_s:g} s") from None
    except aiohttp.ClientError as exc:
        raise CallClientError(f"cannot call {url}: {exc}") from None
    return CallResult(
        reply_pcm16=_to_pcm16(reply),
        greeting_pcm16=_to_pcm16(greeting),
        transcript=tuple((role, text.strip()) for role, text in line.transcript if text.strip()),
        frames_sent=line.frames_sent,
        frames_received=line.frames_received,
    )


def _to_pcm16(mulaw: bytes) -> bytes:
    return decode_mulaw(mulaw).astype("<i2").tobytes()


async def call_in_process(
    settings: Settings,
    agents: AgentSet,
    say_pcm16: bytes,
    *,
    agent: str | None = None,
    realtime: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    carrier: str = "twilio",
) -> CallResult:
    """Run a gateway on the Live emulator on loopback and call it over `carrier`'s stream."""
    from gateway.server import create_app

    update: dict[str, Any] = {
        "live_backend": LiveBackend.EMULATOR, "live_url": None, "public_url": None
    }
    # Its own loopback gateway, serving this one call: fast mode sends faster than a phone,
    # which the per-call limits (frames per second, caller audio to real time) would refuse.
    update["max_carrier_frames_per_s"] = 0.0
    update["max_caller_audio_speed"] = 0.0
    local = settings.model_copy(update=update)
    runner = web.AppRunner(create_app(local, agents), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
        chosen = agents.for_call(agent, None)
        return await place_call(
            f"ws://127.0.0.1:{port}{media_path(carrier)}",
            say_pcm16,
            agent=chosen.name,
            wait_for_greeting=bool(chosen.greeting),
            realtime=realtime,
            timeout_s=timeout_s,
            carrier=carrier,
        )
    finally:
        await runner.cleanup()


async def agent_has_greeting(media_url: str, agent: str | None) -> bool | None:
    """Ask a running gateway (`GET /softphone/agents`) whether `agent` greets; None if unknown."""
    parts = urlsplit(media_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    agents_url = urlunsplit((scheme, parts.netloc, "/softphone/agents", "", ""))
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
            http.get(agents_url) as response,
        ):
            if response.status != 200:
                return None
            listing = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    name = agent or listing.get("default")
    for entry in listing.get("agents", []):
        if entry.get("name") == name:
            return bool(entry.get("greeting"))
    return None


# ------------------------------------------------------------------------------------ command


def run_call_command(
    settings: Settings,
    *,
    agent: str | None,
    say: Path,
    out: Path,
    url: str | None,
    pace: Pace = "auto",
    timeout_s: float = DEFAULT_TIMEOUT_S,
    carrier: str = "twilio",
) -> int:
    """`gateway call`: 0 on a reply written to `out`, 1 on failure (message on stderr)."""
    try:
        say_pcm16 = read_wav_pcm16_8k(say)
        realtime = pace == "realtime" or (pace == "auto" and url is not None)
        if url is None:
            result = asyncio.run(
                _in_process(settings, say_pcm16, agent, realtime, timeout_s, carrier)
            )
        else:
            result = asyncio.run(_remote(url, say_pcm16, agent, realtime, timeout_s, carrier))
        write_wav_pcm16_8k(out, result.reply_pcm16)
    except CallClientError as exc:
        print(f"gateway call: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"gateway call: {exc}", file=sys.stderr)
        return 1
    for role, text in result.transcript:
        print(f"{role}: {text}")
    print(
        f"reply: {result.reply_duration_s:.2f} s of audio → {out} "
        f"({result.frames_sent} frames sent, {result.frames_received} received)"
    )
    return 0


async def _in_process(
    settings: Settings,
    say_pcm16: bytes,
    agent: str | None,
    realtime: bool,
    timeout_s: float,
    carrier: str,
) -> CallResult:
    from gateway.agents.config import AgentConfigError, load_agents

    try:
        agents = load_agents(settings.agents_dir, default_model=settings.model)
    except AgentConfigError as exc:
        raise CallClientError(f"broken agents:\n{exc}") from None
    if agent is not None and agents.get(agent) is None:
        known = ", ".join(sorted(agents.agents))
        raise CallClientError(f"no agent named {agent!r} in {settings.agents_dir} ({known})")
    return await call_in_process(
        settings,
        agents,
        say_pcm16,
        agent=agent,
        realtime=realtime,
        timeout_s=timeout_s,
        carrier=carrier,
    )


async def _remote(
    url: str, say_pcm16: bytes, agent: str | None, realtime: bool, timeout_s: float, carrier: str
) -> CallResult:
    if urlsplit(url).scheme not in ("ws", "wss"):
        raise CallClientError(f"--url must be a ws:// or wss:// media-stream URL, got {url!r}")
    greets = await agent_has_greeting(url, agent)
    if greets is None:
        print(
            "gateway call: cannot tell whether the agent greets (no /softphone/agents); "
            "not waiting for a greeting",
            file=sys.stderr,
        )
    return await place_call(
        url, say_pcm16, agent=agent, wait_for_greeting=bool(greets), realtime=realtime,
        timeout_s=timeout_s, carrier=carrier,
    )
