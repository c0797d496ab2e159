"""The built-in Gemini Live emulator: the real wire protocol over a loopback WebSocket server.

It lets the gateway (LIVE_BACKEND=emulator) and its tests hold whole conversations offline:
energy VAD on the caller's audio (clocked by audio samples, so results never depend on pacing),
deterministic synthetic speech (eSpeak NG, a voice per Live voice) faster than real time,
barge-in, greetings, scripted tool calls, session-resumption handles and goAway. Each
connection is one `_EmulatorSession`; a failure in one is logged and closes only that one.

Each session impersonates the model generation its `setup.model` names
(`gateway.live.models.profile_for`; unknown ids get the newest profile) in the dialect of the
model path (`gateway.live.emulator.rules.dialect_of`):

- Vertex (`projects/…/publishers/google/models/x`): `setupComplete.sessionId`, usage counted as
  `candidatesTokenCount`, `realtimeInput.text` refused (1007: text goes as `clientContent`).
- What the profile refuses in the setup closes the session with 1007, the reason naming the
  field and the model (thinking config, proactivity, affective dialog, transcription
  vocabulary, tool `behavior`; `rules.setup_refusals`, shared with agent checks).
- Tool calls by behaviour (the declaration's `behavior`, else the profile's default). BLOCKING:
  the reply waits for the toolResponse; caller speech cancels the call (`toolCallCancellation`).
  NON_BLOCKING: the model keeps talking (the turn's `say`, or a filler) and ends its turn; the
  call survives barge-ins, and its answer is spoken as the response's `scheduling` says —
  INTERRUPT now (on the 3.8 generation once the caller stops talking), WHEN_IDLE (default) once
  the model is idle, SILENT never.
- Extended thinking: each caller turn gets a filler turn, background reasoning (÷ speed), then
  the answer turn; every `turnComplete` carries `interactionStatus` (IN_PROGRESS while more is
  coming — reasoning, a pending NON_BLOCKING call, a waiting answer — else IDLE).
- 3.x models put an audio chunk and its `outputTranscription` piece in one event; 2.5 sends one
  part per event.
- `historyConfig.initialHistoryInClientContent`: the clientContent right after setup, up to the
  one with `turnComplete`, is history (`LiveEmulator.histories`), never answered.

Text to say: `clientContent` with `turnComplete` (and `realtimeInput.text` holding a "quoted
phrase", the gateway's greeting on the Developer API) is spoken as its quoted phrase (else a
default greeting), interrupting the model; `clientContent` without `turnComplete` is context;
other realtime text is answered like a caller turn.

A model turn's audio "plays" for its duration on the caller's audio clock while the caller
streams audio (so a real-time caller can barge in until the reply has really played), and for
its duration ÷ `speed` (the emulator's pacing) once the caller sends none;
`generationComplete` comes when the audio is generated, `turnComplete` when it has played.
Caller speech starting before then interrupts it: `interrupted`, cancellation of pending
BLOCKING calls, then one `turnComplete`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from http import HTTPStatus
from pathlib import Path
from typing import Any

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from gateway.live.emulator import hearing
from gateway.live.emulator.protocol import (
    ClientAudio,
    ClientAudioStreamEnd,
    ClientContent,
    ClientEvent,
    ClientSetup,
    ClientText,
    ClientToolResponse,
    build_generation_complete,
    build_go_away,
    build_input_transcription,
    build_interrupted,
    build_model_audio,
    build_output_transcription,
    build_session_resumption_update,
    build_setup_complete,
    build_tool_call,
    build_tool_call_cancellation,
    build_turn_complete,
    parse_client_message,
    usage_counts,
)
from gateway.live.emulator.rules import (
    DEFAULT_FILLER,
    REASONING_S,
    THINKING_FILLER,
    dialect_of,
    interrupt_waits_for_caller,
    realtime_text_refusal,
    setup_refusals,
    tool_behavior,
)
from gateway.live.emulator.script import (
    EmulatorScript,
    EmulatorScriptError,
    ScriptToolCall,
    ScriptTurn,
    WordTrigger,
)
from gateway.live.emulator.vad import (
    DEFAULT_PREFIX_PADDING_MS,
    DEFAULT_SILENCE_DURATION_MS,
    EnergyVad,
    SpeechStarted,
    VadEvent,
)
from gateway.live.emulator.voice import reply_fundamental_hz, speak_pcm16_async
from gateway.live.models import (
    NEWEST_PROFILE,
    Backend,
    ModelProfile,
    ToolBehavior,
    ToolScheduling,
    profile_for,
)
from gateway.live.protocol import (
    DEFAULT_OUTPUT_RATE_HZ,
    PREBUILT_VOICES,
    FunctionCall,
    FunctionResponse,
    LiveProtocolError,
    encode_message,
)

__all__ = [
    "DEFAULT_GREETING",
    "DEFAULT_PATH",
    "EmulatorFaults",
    "EmulatorScript",
    "EmulatorScriptError",
    "LiveEmulator",
    "ScriptToolCall",
    "ScriptTurn",
    "default_reply_text",
    "greeting_text",
    "load_script",
    "quoted_phrase",
    "reply_fundamental_hz",
    "serve_emulator",
    "spoken_result",
]

log = structlog.get_logger(__name__)

DEFAULT_PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
"""The path in `LiveEmulator.url`; the emulator accepts any path."""
DEFAULT_GREETING = "Hello! How can I help you today?"
DEFAULT_AFTER_TOOL = "Here is what I found: {summary}."
"""What a tool's answer is spoken as, without a scripted `after_tool`: {summary} is a short
spoken summary of the result (`spoken_result`)."""
MAX_SUMMARY_CHARS = 120
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
CLOSE_INVALID_ARGUMENT = 1007
CLOSE_INTERNAL_ERROR = 1011
CALLER_STREAMING_S = 0.1
"""Caller audio arrived this recently (wall time): the caller streams in real time (a phone,
the softphone), so its audio clock, not the emulator's pacing, says when a turn has played."""
MAX_CLOSE_REASON_BYTES = 123
AUDIO_TOKENS_PER_S = 25
_HEARING_LEAD_BYTES = 2 * hearing.HEARING_RATE_HZ * 300 // 1000
"""Audio kept before speech starts (300 ms at 16 kHz), so the recogniser hears its onset."""
_HEARING_MAX_BYTES = 2 * hearing.HEARING_RATE_HZ * 30
"""At most the last 30 s of an utterance are heard."""
_VOICES_LOWER = frozenset(v.lower() for v in PREBUILT_VOICES)
_QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”')


def quoted_phrase(content: str) -> str | None:
    """The first "quoted" (or “quoted”) phrase of `content`, None if there is none."""
    for match in _QUOTED.finditer(content):
        quoted = (match.group(1) or match.group(2) or "").strip()
        if quoted:
            return quoted
    return None


def greeting_text(content: str) -> str:
    """What the emulator says when told to speak: the first "quoted" text, else a greeting."""
    return quoted_phrase(content) or DEFAULT_GREETING


def default_reply_text(reply_number: int, *, speech_s: float | None, text: str | None) -> str:
    """The reply to an unscripted caller turn (an utterance of `speech_s` or a text input)."""
    if text is not None:
        return f'You said "{text}". This is reply number {reply_number}.'
    seconds = speech_s or 0.0
    return f"You said something for {seconds:.1f} seconds. This is reply number {reply_number}."


@dataclass
class EmulatorFaults:
    """What goes wrong, on purpose. Read live, so a test may change it mid-session; the
    one-shot faults are `LiveEmulator` methods (`go_away`, `close_sessions`, `drop_sessions`,
    `refuse_next`, `hold_setup`)."""

    setup_delay_s: float = 0.0
    """Pause before each `setupComplete` (a slow connect)."""
    message_delay_s: float = 0.0
    """Pause before every server message (a slow or congested link)."""


@dataclass
class _Conversation:
    """What survives a session resumption."""

    replies: int = 0
    caller_turns: int = 0


@dataclass(frozen=True)
class _Plan:
    """What one model response says: speech, a scripted tool call, the answer after it."""

    say: str | None
    tool_call: ScriptToolCall | None = None
    after_tool: str | None = None
    prompt_tokens: int = 0
    think_first: bool = False
    """Extended thinking: a filler turn and background reasoning come before the answer."""
    unscripted: tuple[float | None, str | None] | None = None
    """(speech_s, text) of an unscripted caller turn: `say` is the default reply, numbered
    when the response starts."""


@dataclass(frozen=True)
class _AsyncCall:
    """A NON_BLOCKING call whose toolResponse has not arrived yet."""

    name: str
    after_tool: str | None
    prompt_tokens: int = 0


class _Reply:
    """One model response (one model turn; two with extended thinking): the task streaming it,
    its BLOCKING calls and the playback window of the model turn in progress."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.task: asyncio.Task[None] | None = None
        self.pending: dict[str, asyncio.Future[FunctionResponse]] = {}
        """BLOCKING calls the response waits for (cancelled by a barge-in)."""
        self.in_turn = False
        """A model turn is open: generating, waiting on a call or playing; a barge-in now
        interrupts it. False between the turns of an extended-thinking response."""
        self.audio_s = 0.0
        self.play_end_wall = 0.0
        """Loop time by which the turn's audio has played (its duration ÷ speed)."""
        self.end_clock_s = 0.0
        """Caller-audio time by which the turn's audio has played (its duration)."""
        self.played_out = asyncio.Event()
        """Set when the caller's audio clock passes `end_clock_s`."""


class LiveEmulator:
    """A Gemini Live stand-in on a websockets server (use on loopback).

    `speed` divides the pause between reply chunks (`chunk_ms / speed`); it is read per chunk,
    so tests may change it mid-session. Everything tests want to assert is recorded here:
    `setups` (raw setup objects) / `client_setups` (parsed), `generations` (the profile and
    dialect each accepted setup got), `tool_responses`, `client_texts` (realtimeInput.text and
    clientContent text, initial history included), `histories` (initial-history clientContent,
    absorbed unanswered), `request_headers` (lower-cased names), `request_paths` and, with
    `record_frames`, every frame sent in `sent_frames`.
    """

    def __init__(
        self,
        script: EmulatorScript | None = None,
        *,
        chunk_ms: int = 40,
        speed: float = 4.0,
        record_frames: bool = False,
        binary_frames: bool = True,
    ) -> None:
        if chunk_ms <= 0:
            raise ValueError(f"chunk_ms must be > 0, not {chunk_ms}")
        if not speed > 0:
            raise ValueError(f"speed must be > 0, not {speed}")
        self.script = script or EmulatorScript()
        self.chunk_ms = chunk_ms
        self.speed = speed
        self.record_frames = record_frames
        self.binary_frames = binary_frames

        self.sessions_opened = 0
        self.sessions_closed = 0
        self.setups: list[dict[str, Any]] = []
        self.client_setups: list[ClientSetup] = []
        self.generations: list[tuple[ModelProfile, Backend]] = []
        self.histories: list[ClientContent] = []
        self.tool_responses: list[FunctionResponse] = []
        self.client_texts: list[str] = []
        self.request_headers: list[dict[str, str]] = []
        self.request_paths: list[str] = []
        self.sent_frames: list[str] = []

        self._sessions: set[_EmulatorSession] = set()
        self._handles: dict[str, _Conversation] = {}
        self._changed = asyncio.Condition()
        self._server: Server | None = None
        self.reasoning_s = REASONING_S
        """Extended thinking: background reasoning between filler and answer (÷ speed), read
        live."""
        self.playback_follows_caller = True
        """While the caller streams audio, a turn plays on the caller's clock (as the real
        service paces it); False: always by the emulator's pacing (÷ speed), so a turn ends —
        and its mark goes out — while a real-time caller is still hearing it."""
        self.faults = EmulatorFaults()
        """Fault injection, read live: tests and benchmarks may change it mid-session."""
        self.hearing = bool(self.script.on_words) and hearing.available()
        """The emulator hears words (gateway.live.emulator.hearing): the script has `on_words`
        triggers and pocketsphinx is importable. Read at each session's setup."""
        self.heard: list[str] = []
        """What the recogniser heard in each caller utterance, with `hearing` on."""
        self.audio_chunks_received = 0
        self.audio_bytes_received = 0
        self.record_audio = False
        """With True, `received_audio` keeps every audio chunk as (session id, PCM16LE)."""
        self.received_audio: list[tuple[int, bytes]] = []
        self.resumed_handles: list[str] = []
        """Handles that resumed a saved conversation (unknown ones are not listed)."""
        self.refused_connections = 0
        self._refusals: list[int | None] = []
        self._setup_gate = asyncio.Event()
        self._setup_gate.set()
        self._audio_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._url: str | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, ssl_context: ssl.SSLContext | None = None
    ) -> str:
        """Listen on host:port (0 = any free port); return the ws:// (or wss://) URL."""
        if self._server is not None:
            raise RuntimeError("the emulator is already started")
        self._server = await serve(
            self._handle,
            host,
            port,
            ssl=ssl_context,
            compression=None,
            max_size=MAX_MESSAGE_BYTES,
            process_request=self._on_request,
        )
        self._port = int(self._server.sockets[0].getsockname()[1])
        url_host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        if ":" in url_host:
            url_host = f"[{url_host}]"
        scheme = "wss" if ssl_context is not None else "ws"
        self._url = f"{scheme}://{url_host}:{self._port}{DEFAULT_PATH}"
        log.info("emulator_started", url=self._url)
        return self._url

    async def stop(self) -> None:
        """Close every session (1001) and stop listening. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await server.wait_closed()
        log.info("emulator_stopped", url=self._url)

    async def __aenter__(self) -> LiveEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the emulator is not started")
        return self._url

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not started")
        return self._port

    # ------------------------------------------------------------------ test helpers

    async def wait_opened_sessions(self, n: int) -> None:
        await self._wait_for(lambda: self.sessions_opened >= n)

    async def wait_closed_sessions(self, n: int) -> None:
        """Return once at least n sessions have ended (event-based, no polling)."""
        await self._wait_for(lambda: self.sessions_closed >= n)

    async def wait_client_texts(self, predicate: Callable[[list[str]], bool]) -> None:
        """Until `predicate(client_texts)` holds (the texts sessions received so far)."""
        await self._wait_for(lambda: predicate(self.client_texts))

    async def wait_tool_responses(self, n: int) -> None:
        await self._wait_for(lambda: len(self.tool_responses) >= n)

    async def interrupt_sessions(self) -> None:
        """Send `interrupted` to every open session, as the service does when it hears the
        caller over the model (for tests of what the carrier side does with a late `clear`)."""
        for session in list(self._sessions):
            await session.send_quietly(build_interrupted())

    async def go_away(self, time_left_s: float = 50.0) -> None:
        """Send `goAway` to every open session (the emulator does not cut them itself)."""
        for session in list(self._sessions):
            await session.send_quietly(build_go_away(time_left_s))

    async def close_sessions(
        self, code: int = CLOSE_INTERNAL_ERROR, reason: str = "emulated internal error"
    ) -> None:
        """Close every open session with `code` (e.g. 1011 to exercise resumption)."""
        await asyncio.gather(*(s.close(code, reason) for s in list(self._sessions)))

    async def drop_sessions(self) -> None:
        """Cut every open session's TCP connection without a close frame (the client sees 1006)."""
        for session in list(self._sessions):
            session.drop()

    def refuse_next(self, n: int = 1, *, close_code: int | None = None) -> None:
        """Refuse the next `n` connections: HTTP 503 at the upgrade, or — with `close_code` —
        accept, read the setup and close with that code instead of `setupComplete`."""
        self._refusals.extend([close_code] * n)

    def hold_setup(self) -> None:
        """Hold `setupComplete` of new sessions until `release_setup()` (a slow service)."""
        self._setup_gate.clear()

    def release_setup(self) -> None:
        self._setup_gate.set()

    async def wait_audio_chunks(self, n: int) -> None:
        """Return once `audio_chunks_received` >= n (counted across all sessions)."""
        if self.audio_chunks_received >= n:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._audio_waiters.append((n, future))
        await future

    def _on_audio(self, session_id: int, pcm16le: bytes) -> None:
        self.audio_chunks_received += 1
        self.audio_bytes_received += len(pcm16le)
        if self.record_audio:
            self.received_audio.append((session_id, pcm16le))
        if self._audio_waiters:
            waiting = []
            for n, future in self._audio_waiters:
                if self.audio_chunks_received >= n:
                    if not future.done():
                        future.set_result(None)
                else:
                    waiting.append((n, future))
            self._audio_waiters = waiting

    async def _wait_for(self, predicate: Callable[[], bool]) -> None:
        async with self._changed:
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ server side

    def _on_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.request_paths.append(request.path)
        self.request_headers.append({k.lower(): v for k, v in request.headers.raw_items()})
        if self._refusals and self._refusals[0] is None:
            self._refusals.pop(0)
            self.refused_connections += 1
            log.info("emulator_connection_refused", status=503)
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "emulated refusal\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        self.sessions_opened += 1
        session = _EmulatorSession(self, ws, self.sessions_opened)
        self._sessions.add(session)
        await self._notify()
        try:
            await session.run()
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("emulator_session_failed", session=session.id)
            await session.close(CLOSE_INTERNAL_ERROR, "emulator internal error")
        finally:
            await session.shutdown()
            self._sessions.discard(session)
            self.sessions_closed += 1
            await self._notify()
            log.info("emulator_session_closed", session=session.id, code=ws.close_code)

    def _save_handle(self, session_id: int, conversation: _Conversation) -> str:
        handle = f"emu-{session_id}-{conversation.replies}-{uuid.uuid4().hex[:8]}"
        self._handles[handle] = replace(conversation)
        return handle

    def _resume(self, handle: str) -> _Conversation | None:
        saved = self._handles.get(handle)
        return replace(saved) if saved is not None else None


class _EmulatorSession:
    """One BidiGenerateContent connection: setup, then caller events and model replies."""

    def __init__(self, emulator: LiveEmulator, ws: ServerConnection, session_id: int) -> None:
        self.id = session_id
        self._emu = emulator
        self._ws = ws
        self._setup: ClientSetup | None = None
        self._profile: ModelProfile = NEWEST_PROFILE
        self._backend = Backend.GEMINI
        self._vad = EnergyVad()
        self._hearing: hearing.Recognizer | None = None
        self._utterance = bytearray()
        """Caller audio (16 kHz) of the utterance in progress and a little before it."""
        self._last_audio_at = -1e9
        """Loop time the latest caller audio arrived."""
        self._conversation = _Conversation()
        self._reply: _Reply | None = None
        self._waiting: deque[_Plan] = deque()
        """Responses that start once the model is idle (WHEN_IDLE answers, queued turns)."""
        self._deferred: list[_Plan] = []
        """INTERRUPT answers waiting for the caller to finish speaking (3.8 generation)."""
        self._async_calls: dict[str, _AsyncCall] = {}
        self._turn_lock = asyncio.Lock()
        """Held while a turn ends (turnComplete) or is interrupted: exactly one of the two."""
        self._history_open = False
        self._model_turns = 0
        self._next_call_id = 0
        self._log = log.bind(session=session_id)

    async def run(self) -> None:
        try:
            setup = parse_client_message(await self._ws.recv())
            if not isinstance(setup, ClientSetup):
                raise LiveProtocolError(
                    f"the first message must be setup, got {type(setup).__name__}"
                )
            emu = self._emu
            code = emu._refusals[0] if emu._refusals else None
            if code is not None:
                emu._refusals.pop(0)
                emu.refused_connections += 1
                await self.close(code, "emulated refusal")
                return
            self._configure(setup)
            if emu.faults.setup_delay_s > 0:
                await asyncio.sleep(emu.faults.setup_delay_s)
            await emu._setup_gate.wait()
            session_id = None
            if self._backend is Backend.VERTEX:
                session_id = f"emu-session-{self.id}-{uuid.uuid4().hex[:8]}"
            await self._send(build_setup_complete(session_id))
            if setup.session_resumption:
                handle = self._emu._save_handle(self.id, self._conversation)
                await self._send(build_session_resumption_update(handle, True))
            async for frame in self._ws:
                await self._dispatch(parse_client_message(frame))
        except LiveProtocolError as exc:
            self._log.info("emulator_session_rejected", reason=str(exc))
            await self.close(CLOSE_INVALID_ARGUMENT, str(exc))

    async def shutdown(self) -> None:
        reply, self._reply = self._reply, None
        if reply is not None and reply.task is not None and not reply.task.done():
            reply.task.cancel()
            await asyncio.wait([reply.task])

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code, _close_reason(reason))

    async def send_quietly(self, message: dict[str, Any]) -> None:
        try:
            await self._send(message)
        except ConnectionClosed:
            pass

    def drop(self) -> None:
        """Abort the TCP connection: no close frame, so the client sees 1006."""
        self._ws.transport.abort()

    async def _send(self, message: dict[str, Any]) -> None:
        if self._emu.faults.message_delay_s > 0:
            await asyncio.sleep(self._emu.faults.message_delay_s)
        text = encode_message(message)
        if self._emu.record_frames:
            self._emu.sent_frames.append(text)
        await self._ws.send(text.encode() if self._emu.binary_frames else text)

    def _configure(self, setup: ClientSetup) -> None:
        modalities = tuple(m.upper() for m in setup.response_modalities)
        if modalities and modalities != ("AUDIO",):
            raise LiveProtocolError(
                f"responseModalities {list(setup.response_modalities)} not supported by this "
                "native-audio model; use ['AUDIO']"
            )
        if setup.voice is not None and setup.voice.lower() not in _VOICES_LOWER:
            raise LiveProtocolError(f"unknown prebuilt voice {setup.voice!r}")
        if setup.activity_detection_disabled:
            raise LiveProtocolError("the emulator supports automatic activity detection only")
        profile = profile_for(setup.model)
        backend = dialect_of(setup.model)
        problems = setup_refusals(setup, profile)
        if problems:
            self._log.info("emulator_setup_refused", refusals=[str(p) for p in problems])
            raise LiveProtocolError(str(problems[0]))
        self._setup = setup
        self._profile = profile
        self._backend = backend
        self._history_open = (
            setup.initial_history_in_client_content and profile.initial_history_config
        )
        self._emu.setups.append(dict(setup.raw))
        self._emu.client_setups.append(setup)
        self._emu.generations.append((profile, backend))
        prefix_ms = setup.prefix_padding_ms
        silence_ms = setup.silence_duration_ms
        self._vad = EnergyVad(
            prefix_padding_ms=DEFAULT_PREFIX_PADDING_MS if prefix_ms is None else prefix_ms,
            silence_duration_ms=DEFAULT_SILENCE_DURATION_MS if silence_ms is None else silence_ms,
        )
        if self._emu.hearing:
            self._hearing = hearing.recognizer_for(self._emu.script.on_words)
        if setup.resumption_handle is not None:
            resumed = self._emu._resume(setup.resumption_handle)
            if resumed is None:
                self._log.warning("emulator_unknown_handle", handle=setup.resumption_handle)
            else:
                self._conversation = resumed
                self._emu.resumed_handles.append(setup.resumption_handle)
        self._log.info(
            "emulator_session_setup",
            model=setup.model,
            profile=profile.name,
            backend=backend.value,
            voice=setup.voice,
            tools=list(setup.function_names),
            resumed=setup.resumption_handle is not None,
        )

    # ------------------------------------------------------------------ caller events

    async def _dispatch(self, event: ClientEvent) -> None:
        if self._history_open and not isinstance(event, ClientContent):
            self._history_open = False  # realtime input: the conversation has begun
        if isinstance(event, ClientAudio):
            self._emu._on_audio(self.id, event.pcm16le)
            self._last_audio_at = asyncio.get_running_loop().time()
            if self._hearing is not None:
                self._utterance += hearing.to_hearing_rate(event.pcm16le, event.rate_hz)
            for vad_event in self._vad.feed(event.pcm16le, event.rate_hz):
                await self._on_vad(vad_event)
            if self._hearing is not None:
                keep = _HEARING_MAX_BYTES if self._vad.speaking else _HEARING_LEAD_BYTES
                del self._utterance[: max(0, len(self._utterance) - keep)]
            reply = self._reply
            if reply is not None and self._vad.time_s >= reply.end_clock_s:
                reply.played_out.set()
        elif isinstance(event, ClientToolResponse):
            await self._on_tool_response(event)
            await self._emu._notify()
        elif isinstance(event, ClientText):
            refusal = realtime_text_refusal(self._profile, self._backend)
            if refusal is not None:
                raise LiveProtocolError(str(refusal))
            self._emu.client_texts.append(event.text)
            await self._emu._notify()
            if quoted_phrase(event.text) is not None:
                await self._launch(self._greeting_plan(event.text))
            else:
                await self._launch(self._caller_plan(text=event.text))
        elif isinstance(event, ClientContent):
            await self._on_client_content(event)
        elif isinstance(event, ClientAudioStreamEnd):
            for vad_event in self._vad.flush():
                await self._on_vad(vad_event)
        else:
            raise LiveProtocolError("setup may only be sent once, as the first message")

    async def _on_client_content(self, event: ClientContent) -> None:
        if event.text:
            self._emu.client_texts.append(event.text)
        if self._history_open:  # initial history: absorbed, never answered
            self._emu.histories.append(event)
            self._history_open = not event.turn_complete
            await self._emu._notify()
            return
        if not self._profile.mid_session_client_content and self._model_turns:
            raise LiveProtocolError(
                f"clientContent: {self._profile.name} takes it only as initial history"
            )
        if event.turn_complete:  # answered, interrupting what the model is saying
            if quoted_phrase(event.text) is not None:  # "say exactly: …" (the greeting)
                await self._launch(self._greeting_plan(event.text))
            else:  # text from the caller's side (Vertex's DTMF, prompts): like realtime text
                await self._launch(self._caller_plan(text=event.text))
        # without turnComplete: context for the next turn, no answer
        await self._emu._notify()

    async def _on_vad(self, event: VadEvent) -> None:
        if isinstance(event, SpeechStarted):
            await self._interrupt_if_active(more_coming=False)
            return
        assert self._setup is not None
        words = await self._hear()
        if self._setup.input_transcription:
            text = words or f"(caller speech {event.duration_s:.1f} s)"
            await self._send(build_input_transcription(text))
        heard = hearing.match_trigger(words, self._emu.script.on_words) if words else None
        if heard is not None:
            plan = _trigger_plan(heard, event.duration_s, self._profile.interaction_status)
            self._log.info("emulator_heard_trigger", words=words, slots=heard.slots)
        else:
            plan = self._caller_plan(speech_s=event.duration_s)
        if self._deferred:  # INTERRUPT answers held while the caller spoke go first
            first, *rest = self._deferred
            self._deferred = []
            self._waiting.extendleft(reversed([*rest, plan]))
            await self._launch(first)
        else:
            await self._launch(plan)

    async def _hear(self) -> str:
        """The words in the utterance just ended ("" with hearing off or nothing heard)."""
        recognizer = self._hearing
        if recognizer is None:
            return ""
        pcm, self._utterance = bytes(self._utterance), bytearray()
        words = await asyncio.to_thread(recognizer.hear, pcm)
        self._emu.heard.append(words)
        return words

    async def _on_tool_response(self, event: ClientToolResponse) -> None:
        for response in event.responses:
            self._emu.tool_responses.append(response)
            reply = self._reply
            future = reply.pending.pop(response.id, None) if reply is not None else None
            if future is not None:  # a BLOCKING call: the reply resumes (scheduling ignored)
                if not future.done():
                    future.set_result(response)
                continue
            call = self._async_calls.pop(response.id, None)
            if call is None:
                self._log.warning("emulator_unexpected_tool_response", id=response.id)
                continue
            await self._answer(call, response)

    async def _answer(self, call: _AsyncCall, response: FunctionResponse) -> None:
        """A NON_BLOCKING call's result, spoken when its `scheduling` says."""
        scheduling = response.scheduling or ToolScheduling.WHEN_IDLE
        self._log.info("emulator_tool_answer", id=response.id, scheduling=scheduling.wire)
        plan = _Plan(
            _after_tool_text(call.after_tool, response),
            prompt_tokens=call.prompt_tokens + len(json.dumps(response.response)) // 4 + 1,
        )
        if scheduling is ToolScheduling.SILENT:
            if self._profile.interaction_status and self._reply is None and not self._busy():
                await self._send(build_turn_complete(interaction_status="IDLE"))
        elif scheduling is ToolScheduling.INTERRUPT:
            if interrupt_waits_for_caller(self._profile) and self._vad.speaking:
                self._deferred.append(plan)
            else:
                await self._launch(plan)
        else:
            self._waiting.append(plan)
            await self._start_waiting()

    async def _interrupt_if_active(self, *, more_coming: bool) -> None:
        """Stop the response in progress: `interrupted`, cancellation of its BLOCKING calls,
        one `turnComplete` — or, between extended-thinking turns, stop it silently."""
        reply = self._reply
        if reply is None:
            return
        self._reply = None
        async with self._turn_lock:
            was_in_turn = reply.in_turn
            reply.in_turn = False
            if reply.task is not None and not reply.task.done():
                reply.task.cancel()
                await asyncio.wait([reply.task])
            if not was_in_turn:
                return
            await self._send(build_interrupted())
            if reply.pending:
                await self._send(build_tool_call_cancellation(list(reply.pending)))
            await self._send(build_turn_complete(interaction_status=self._status(more_coming)))
        self._log.info("emulator_reply_interrupted", reply=reply.number)

    # ------------------------------------------------------------------ model turns

    def _caller_plan(self, *, speech_s: float | None = None, text: str | None = None) -> _Plan:
        """The response to a caller turn: the next scripted turn, else the default reply."""
        index = self._conversation.caller_turns
        self._conversation.caller_turns += 1
        turns = self._emu.script.turns
        prompt_tokens = (
            round((speech_s or 0.0) * AUDIO_TOKENS_PER_S) if text is None else len(text) // 4 + 1
        )
        think = self._profile.interaction_status
        if index < len(turns):
            turn = turns[index]
            return _Plan(turn.say, turn.tool_call, turn.after_tool, prompt_tokens, think)
        return _Plan(
            None, prompt_tokens=prompt_tokens, think_first=think, unscripted=(speech_s, text)
        )

    def _greeting_plan(self, content: str) -> _Plan:
        """Text the model is told to say: the script's greeting, the quoted phrase, a default."""
        text = self._emu.script.greeting or greeting_text(content)
        return _Plan(text, prompt_tokens=len(content) // 4 + 1)

    async def _launch(self, plan: _Plan) -> None:
        """Start a response now, interrupting the one in progress."""
        await self._interrupt_if_active(more_coming=True)
        self._conversation.replies += 1
        number = self._conversation.replies
        if plan.unscripted is not None:
            speech_s, text = plan.unscripted
            plan = replace(plan, say=default_reply_text(number, speech_s=speech_s, text=text))
        reply = _Reply(number)
        reply.task = asyncio.create_task(
            self._run_reply(reply, plan), name=f"emulator-reply-{self.id}-{number}"
        )
        self._reply = reply
        voice = self._setup.voice if self._setup is not None else None
        self._log.info("emulator_reply_started", reply=number, voice=voice)

    async def _start_waiting(self) -> None:
        """Start the next waiting response if the model is idle and the caller is not talking."""
        if self._reply is None and self._waiting and not self._vad.speaking:
            await self._launch(self._waiting.popleft())

    def _busy(self) -> bool:
        """More model output is on its way: pending NON_BLOCKING calls or waiting responses."""
        return bool(self._async_calls or self._waiting or self._deferred)

    def _status(self, more_coming: bool) -> str | None:
        """`interactionStatus` for a turnComplete, where the model reports it."""
        if not self._profile.interaction_status:
            return None
        return "IN_PROGRESS" if more_coming or self._busy() else "IDLE"

    async def _run_reply(self, reply: _Reply, plan: _Plan) -> None:
        try:
            if plan.think_first:
                filler = _Plan(THINKING_FILLER, prompt_tokens=plan.prompt_tokens)
                await self._model_turn(reply, filler, more_coming=True)
                await asyncio.sleep(self._emu.reasoning_s / self._emu.speed)  # background reasoning
                plan = replace(plan, prompt_tokens=0)
            await self._model_turn(reply, plan, more_coming=False)
            assert self._setup is not None
            if self._setup.session_resumption and not self._async_calls:
                handle = self._emu._save_handle(self.id, self._conversation)
                await self._send(build_session_resumption_update(handle, True))
        except ConnectionClosed:
            return
        except Exception:
            self._log.exception("emulator_reply_failed", reply=reply.number)
            await self.close(CLOSE_INTERNAL_ERROR, "emulator internal error")
            return
        if self._reply is reply:
            self._reply = None
            await self._start_waiting()

    async def _model_turn(self, reply: _Reply, plan: _Plan, *, more_coming: bool) -> None:
        """One model turn: speech and tool call, generationComplete, the playback window, then
        turnComplete (with interactionStatus where the model reports it)."""
        assert self._setup is not None
        reply.in_turn = True
        reply.audio_s = 0.0
        reply.play_end_wall = asyncio.get_running_loop().time()
        reply.end_clock_s = self._vad.time_s
        call = plan.tool_call
        if call is None:
            if plan.say:
                await self._speak(reply, plan.say)
        elif tool_behavior(self._profile, self._setup, call.name) is ToolBehavior.BLOCKING:
            if plan.say:
                await self._speak(reply, plan.say)
            response = await self._blocking_call(reply, call)
            await self._speak(reply, _after_tool_text(plan.after_tool, response))
        else:  # NON_BLOCKING: the call runs while the model keeps talking
            await self._async_call(call, plan.after_tool, plan.prompt_tokens)
            await self._speak(reply, plan.say or DEFAULT_FILLER)
        await self._send(build_generation_complete())
        await self._await_playback(reply)
        usage = usage_counts(
            plan.prompt_tokens, round(reply.audio_s * AUDIO_TOKENS_PER_S), backend=self._backend
        )
        async with self._turn_lock:
            reply.in_turn = False
            self._model_turns += 1
            status = self._status(more_coming)
            await self._send(build_turn_complete(usage, interaction_status=status))

    async def _await_playback(self, reply: _Reply) -> None:
        """Until the turn's audio has played: on the caller's audio clock while the caller
        streams (a real-time caller hears it at its own pace, so a late barge-in still
        interrupts), else by the emulator's pacing (a test that stopped sending audio)."""
        loop = asyncio.get_running_loop()
        while self._vad.time_s < reply.end_clock_s:
            now = loop.time()
            streaming = (
                self._emu.playback_follows_caller
                and now - self._last_audio_at < CALLER_STREAMING_S
            )
            if not streaming and now >= reply.play_end_wall:
                return
            wait_s = CALLER_STREAMING_S if streaming else reply.play_end_wall - now
            reply.played_out.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reply.played_out.wait(), wait_s)

    async def _blocking_call(self, reply: _Reply, call: ScriptToolCall) -> FunctionResponse:
        call_id = self._new_call_id()
        future: asyncio.Future[FunctionResponse] = asyncio.get_running_loop().create_future()
        reply.pending[call_id] = future
        await self._send_tool_call(call_id, call)
        return await future

    async def _async_call(
        self, call: ScriptToolCall, after_tool: str | None, prompt_tokens: int
    ) -> None:
        call_id = self._new_call_id()
        self._async_calls[call_id] = _AsyncCall(call.name, after_tool, prompt_tokens)
        await self._send_tool_call(call_id, call)

    def _new_call_id(self) -> str:
        self._next_call_id += 1
        return f"fc-{self._next_call_id}"

    async def _send_tool_call(self, call_id: str, call: ScriptToolCall) -> None:
        assert self._setup is not None
        if self._setup.session_resumption:
            await self._send(build_session_resumption_update(None, False))
        await self._send(build_tool_call([FunctionCall(call_id, call.name, dict(call.args))]))
        self._log.info("emulator_tool_call", id=call_id, name=call.name)

    async def _speak(self, reply: _Reply, text: str) -> None:
        """Stream `text` as audio chunks with outputTranscription pieces, faster than real time
        (in the same events on models with multi-part events)."""
        assert self._setup is not None
        loop = asyncio.get_running_loop()
        rate_hz = DEFAULT_OUTPUT_RATE_HZ
        pcm = await speak_pcm16_async(
            text, self._setup.voice, reply_number=reply.number, rate_hz=rate_hz
        )
        duration_s = len(pcm) / 2 / rate_hz
        reply.end_clock_s = max(reply.end_clock_s, self._vad.time_s) + duration_s
        reply.audio_s += duration_s
        together = self._profile.multi_part_events
        transcribe = self._setup.output_transcription
        pieces = _transcript_pieces(text)
        next_piece = 0
        chunk_bytes = max(2, rate_hz * self._emu.chunk_ms // 1000 * 2)
        for offset in range(0, len(pcm), chunk_bytes):
            end = min(offset + chunk_bytes, len(pcm))
            progress = end / len(pcm)
            due = []
            while next_piece < len(pieces) and pieces[next_piece][1] <= progress + 1e-9:
                due.append(pieces[next_piece][0])
                next_piece += 1
            piece = "".join(due) if due and transcribe else None
            chunk = pcm[offset:end]
            if together:
                await self._send(build_model_audio(chunk, rate_hz, transcription=piece))
            else:
                await self._send(build_model_audio(chunk, rate_hz))
                if piece is not None:
                    await self._send(build_output_transcription(piece))
            chunk_s = len(chunk) / 2 / rate_hz
            reply.play_end_wall = max(reply.play_end_wall, loop.time()) + chunk_s / self._emu.speed
            if end < len(pcm):
                await asyncio.sleep(self._emu.chunk_ms / 1000.0 / self._emu.speed)


def _trigger_plan(heard: hearing.Heard, speech_s: float, think_first: bool) -> _Plan:
    """An `on_words` trigger's turn, its `{slot}`s filled with what was heard."""
    trigger: WordTrigger = heard.trigger

    def fill(text: str) -> str:
        for name, value in heard.slots.items():
            text = text.replace("{" + name + "}", value)
        return text

    call = trigger.tool_call
    if call is not None:
        args = {k: fill(v) if isinstance(v, str) else v for k, v in call.args.items()}
        call = ScriptToolCall(name=call.name, args=args)
    return _Plan(
        fill(trigger.say) if trigger.say is not None else None,
        call,
        fill(trigger.after_tool) if trigger.after_tool is not None else None,
        round(speech_s * AUDIO_TOKENS_PER_S),
        think_first,
    )


def _after_tool_text(after_tool: str | None, response: FunctionResponse) -> str:
    if after_tool is None:
        return DEFAULT_AFTER_TOOL.replace("{summary}", spoken_result(response.response))
    payload = json.dumps(response.response, separators=(",", ":"), ensure_ascii=False)
    return after_tool.replace("{response}", payload)


def spoken_result(result: Any) -> str:
    """A tool's result as a few spoken words: `{"result": {"status": "shipped", "eta":
    "Friday"}}` → "status shipped, eta Friday" (at most `MAX_SUMMARY_CHARS`)."""
    while isinstance(result, dict) and len(result) == 1:
        ((key, value),) = result.items()
        if key not in ("result", "output", "response") or not isinstance(value, dict | list):
            break
        result = value
    if isinstance(result, dict):
        parts = [f"{str(k).replace('_', ' ')} {_spoken_value(v)}" for k, v in result.items()]
        text = ", ".join(parts) if parts else "nothing"
    else:
        text = _spoken_value(result)
    if len(text) > MAX_SUMMARY_CHARS:
        text = text[:MAX_SUMMARY_CHARS].rsplit(" ", 1)[0].rstrip(",")
    return text.rstrip(".") or "nothing"


def _spoken_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "none"
    if isinstance(value, dict):
        return f"{len(value)} details" if value else "nothing"
    if isinstance(value, list):
        return f"{len(value)} items" if len(value) != 1 else _spoken_value(value[0])
    return str(value)


def _transcript_pieces(text: str) -> list[tuple[str, float]]:
    """Words (with their trailing space) and the fraction of the text spoken at their end."""
    words = text.split(" ")
    pieces = [word + " " for word in words[:-1]] + [words[-1]]
    total = max(len(text), 1)
    out = []
    spoken = 0
    for piece in pieces:
        spoken += len(piece)
        if piece:
            out.append((piece, spoken / total))
    return out


def _close_reason(reason: str) -> str:
    encoded = reason.encode("utf-8")
    if len(encoded) <= MAX_CLOSE_REASON_BYTES:
        return reason
    return encoded[: MAX_CLOSE_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."


async def serve_emulator(
    host: str,
    port: int,
    script: EmulatorScript | None = None,
    *,
    speed: float = 4.0,
    chunk_ms: int = 40,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Run a standalone emulator until cancelled (the `gateway emulator` command)."""
    emulator = LiveEmulator(script, chunk_ms=chunk_ms, speed=speed)
    url = await emulator.start(host, port, ssl_context=ssl_context)
    log.info("emulator_listening", url=url, script_turns=len(emulator.script.turns))
    try:
        await asyncio.Future()
    finally:
        await emulator.stop()


def load_script(path: str | Path | None) -> EmulatorScript | None:
    """`EmulatorScript.from_yaml(path)`, or None when no path is given (CLI convenience)."""
    return None if path is None else EmulatorScript.from_yaml(path)
