"""One phone call: a Twilio-style media stream bridged to one Gemini Live session.

The call is one object with two pumps and one writer:

* caller pump   — carrier frames → μ-law → PCM16 at the Live rate → `realtimeInput` (as they
                  arrive, one carrier frame per Live message, no batching);
* live pump     — Live messages → 24 kHz PCM16 → 8 kHz μ-law → 20 ms frames → outbound queue,
                  with a `mark` after each completed turn;
* writer        — the only task that writes to the carrier socket, draining the outbound queue.

Barge-in lives in `Call._barge_in`: on Live's `interrupted` it empties the outbound queue, queues
`clear` first, and forgets pending marks, all synchronously in the step that saw `interrupted`,
so no stale frame can be written after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import structlog

from gateway.agents import AgentConfig, AgentSet
from gateway.audio.codec import AgentAudioEncoder, CallerAudioDecoder, MulawFramer
from gateway.call_events import CallObserver, ObserverSet
from gateway.live.protocol import (
    FunctionResponse,
    ServerMessage,
    SessionConfig,
    build_client_content,
    build_text_input,
    build_tool_response,
)
from gateway.telephony.base import (
    Connected,
    Dtmf,
    MarkEcho,
    MediaFrame,
    MediaStreamCodec,
    StreamStart,
    StreamStop,
    TelephonyProtocolError,
    UnknownEvent,
)

log = structlog.get_logger("gateway.call")

START_TIMEOUT_S = 10.0
"""How long a fresh stream may take to send `start` before we give up on it."""
MAX_BUFFERED_CALLER_FRAMES = 500
"""Caller audio kept while Live is still connecting (500 × 20 ms = 10 s); oldest dropped first."""


class CallerTransport(Protocol):
    """The carrier side of a call: text frames in and out (an aiohttp WebSocket in production)."""

    async def receive(self) -> str | bytes | None:
        """The next frame, or None once the carrier has closed the stream."""
        ...

    async def send(self, frame: str) -> None: ...

    async def close(self) -> None: ...


class LiveSessionLike(Protocol):
    async def send(self, message: Mapping[str, Any]) -> None: ...

    async def send_audio(self, pcm16le: bytes, rate_hz: int) -> None: ...

    def __aiter__(self) -> AsyncIterator[ServerMessage]: ...

    async def close(self) -> None: ...


class LiveConnectorLike(Protocol):
    async def connect(self, config: SessionConfig) -> LiveSessionLike: ...


class EndReason(StrEnum):
    CALLER_HUNG_UP = "caller_hung_up"
    CALLER_DISCONNECTED = "caller_disconnected"
    NO_START = "no_start"
    LIVE_CONNECT_FAILED = "live_connect_failed"
    LIVE_CLOSED = "live_closed"
    LIVE_FAILED = "live_failed"
    GATEWAY_SHUTDOWN = "gateway_shutdown"
    INTERNAL_ERROR = "internal_error"


@dataclass
class CallStats:
    """What happened on the call, for the end-of-call summary line."""

    started_monotonic: float = field(default_factory=time.monotonic)
    caller_frames: int = 0
    malformed_frames: int = 0
    agent_frames: int = 0
    turns: int = 0
    barge_ins: int = 0
    stale_frames_dropped: int = 0
    tool_calls: int = 0
    dtmf_digits: int = 0
    caller_frames_dropped_while_connecting: int = 0


SessionConfigFactory = Callable[[AgentConfig, StreamStart], SessionConfig]


class Call:
    """One call from `start` to hang-up. `run()` returns why it ended; it never raises."""

    def __init__(
        self,
        transport: CallerTransport,
        codec: MediaStreamCodec,
        agents: AgentSet,
        connector: LiveConnectorLike,
        session_config: SessionConfigFactory,
        *,
        live_input_rate_hz: int = 24000,
        observers: Sequence[CallObserver] = (),
    ) -> None:
        self._transport = transport
        self._codec = codec
        self._agents = agents
        self._connector = connector
        self._session_config = session_config
        self._live_input_rate_hz = live_input_rate_hz
        self.events = ObserverSet(observers)

        self._decoder = CallerAudioDecoder(live_input_rate_hz)
        self._encoder = AgentAudioEncoder()
        self._framer = MulawFramer()

        self._outbound: deque[tuple[str, bool]] = deque()
        """Frames for the caller, oldest first, each with `True` if it is audio."""
        self._outbound_ready = asyncio.Event()
        self._pending_marks: set[str] = set()
        self._buffered_caller_audio: deque[bytes] = deque(maxlen=MAX_BUFFERED_CALLER_FRAMES)

        self._live: LiveSessionLike | None = None
        self._live_ready = False
        self._turn_has_audio = False
        self._ended = asyncio.Event()
        self.finished = asyncio.Event()
        """Set once `run()` has closed both sides (the server's drain waits on it)."""
        self._end_reason: EndReason | None = None

        self.start: StreamStart | None = None
        self.agent: AgentConfig | None = None
        self.stats = CallStats()
        self.transcript: list[tuple[str, str]] = []
        self.log = log

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> EndReason:
        """Serve the call to its end. Whatever happens, Live and the carrier are closed."""
        try:
            start = await self._await_start()
            if start is None:
                return self._finish(EndReason.NO_START)
            self._begin(start)
            await self._serve()
        except Exception:
            self.log.exception("call_failed")
            self._end(EndReason.INTERNAL_ERROR)
        finally:
            await self._close_everything()
            self.finished.set()
        return self._finish(self._end_reason or EndReason.INTERNAL_ERROR)

    def hang_up(self, reason: EndReason = EndReason.GATEWAY_SHUTDOWN) -> None:
        """Ask the call to end (e.g. drain timeout); `run()` then closes both sides."""
        self._end(reason)

    @property
    def end_reason(self) -> EndReason | None:
        return self._end_reason

    def _end(self, reason: EndReason) -> None:
        if self._end_reason is None:
            self._end_reason = reason
        self._ended.set()

    def _finish(self, reason: EndReason) -> EndReason:
        self._end_reason = self._end_reason or reason
        stats = self.stats
        self.log.info(
            "call_ended",
            reason=self._end_reason.value,
            duration_s=round(time.monotonic() - stats.started_monotonic, 3),
            turns=stats.turns,
            barge_ins=stats.barge_ins,
            caller_frames=stats.caller_frames,
            agent_frames=stats.agent_frames,
            malformed_frames=stats.malformed_frames,
            stale_frames_dropped=stats.stale_frames_dropped,
            tool_calls=stats.tool_calls,
        )
        self.events.call_ended(self._end_reason, stats)
        return self._end_reason

    async def _await_start(self) -> StreamStart | None:
        """Read frames until `start`; a stream that never starts is dropped after a timeout."""
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while True:
                    frame = await self._transport.receive()
                    if frame is None:
                        return None
                    self.events.carrier_in(frame)
                    event = self._parse(frame)
                    if isinstance(event, StreamStart):
                        return event
                    if isinstance(event, StreamStop):
                        return None
                    if event is not None and not isinstance(event, Connected):
                        self.log.warning("event_before_start", event=type(event).__name__)
        except TimeoutError:
            self.log.warning("no_start_event", timeout_s=START_TIMEOUT_S)
            return None

    def _begin(self, start: StreamStart) -> None:
        self.start = start
        params = start.custom_parameters
        self.agent = self._agents.for_call(params.get("agent"), params.get("to"))
        self.log = log.bind(
            call_sid=start.call_sid, stream_sid=start.stream_sid, agent=self.agent.name
        )
        self.log.info(
            "call_started",
            caller=params.get("from"),
            line=params.get("to"),
            encoding=start.encoding,
            sample_rate_hz=start.sample_rate_hz,
        )
        self.events.call_started(self)

    async def _serve(self) -> None:
        tasks = [
            asyncio.create_task(self._caller_pump(), name="caller_pump"),
            asyncio.create_task(self._live_pump(), name="live_pump"),
            asyncio.create_task(self._writer(), name="writer"),
        ]
        ended = asyncio.create_task(self._ended.wait(), name="ended")
        try:
            done, _ = await asyncio.wait([*tasks, ended], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not ended and not task.cancelled() and task.exception() is not None:
                    exc = task.exception()
                    self.log.error(
                        "call_task_failed", task=task.get_name(), error=repr(exc), exc_info=exc
                    )
                    self._end(EndReason.INTERNAL_ERROR)
        finally:
            for task in [*tasks, ended]:
                task.cancel()
            await asyncio.gather(*tasks, ended, return_exceptions=True)
        # Let the caller hear what was already queued when the call ends on the Live side.
        if self._end_reason is not EndReason.CALLER_HUNG_UP:
            await self._flush_outbound()

    async def _close_everything(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            try:
                await live.close()
            except Exception as exc:
                self.log.warning("live_close_failed", error=repr(exc))
        try:
            await self._transport.close()
        except Exception as exc:
            self.log.warning("caller_close_failed", error=repr(exc))

    # ------------------------------------------------------------------ caller → Live

    def _parse(self, frame: str | bytes) -> object | None:
        try:
            return self._codec.parse(frame)
        except TelephonyProtocolError as exc:
            self.stats.malformed_frames += 1
            self.log.warning("malformed_caller_frame", error=str(exc))
            self.events.error("malformed_caller_frame", str(exc))
            return None

    async def _caller_pump(self) -> None:
        while True:
            frame = await self._transport.receive()
            if frame is None:
                self._end(EndReason.CALLER_DISCONNECTED)
                return
            self.events.carrier_in(frame)
            event = self._parse(frame)
            if isinstance(event, MediaFrame):
                await self._on_caller_audio(event)
            elif isinstance(event, MarkEcho):
                self._on_mark_echo(event.name)
            elif isinstance(event, Dtmf):
                await self._on_dtmf(event.digit)
            elif isinstance(event, StreamStop):
                self.log.info("caller_hung_up")
                self._end(EndReason.CALLER_HUNG_UP)
                return
            elif isinstance(event, UnknownEvent):
                self.log.info("unknown_caller_event", kind=event.event)
            elif isinstance(event, StreamStart | Connected):
                self.log.warning("unexpected_caller_event", event=type(event).__name__)

    async def _on_caller_audio(self, frame: MediaFrame) -> None:
        if frame.track not in ("inbound", "inbound_track", ""):
            return
        self.stats.caller_frames += 1
        pcm16 = self._decoder.decode(frame.payload)
        live = self._live
        if live is not None and self._live_ready:
            self.events.live_audio_out(pcm16, self._live_input_rate_hz)
            await live.send_audio(pcm16, self._live_input_rate_hz)
            return
        if len(self._buffered_caller_audio) == self._buffered_caller_audio.maxlen:
            self.stats.caller_frames_dropped_while_connecting += 1
        self._buffered_caller_audio.append(pcm16)

    async def _on_dtmf(self, digit: str) -> None:
        """Keypresses reach the model as text, so menus ("press 1 for…") work."""
        self.stats.dtmf_digits += 1
        self.log.info("dtmf", digit=digit)
        if self._live is not None and self._live_ready:
            await self._send_live(build_text_input(f"The caller pressed {digit}."))

    def _on_mark_echo(self, name: str) -> None:
        if name in self._pending_marks:
            self._pending_marks.discard(name)
            self.log.debug("turn_played", mark=name)

    # ------------------------------------------------------------------ Live → caller

    async def _live_pump(self) -> None:
        assert self.agent is not None and self.start is not None
        config = self._session_config(self.agent, self.start)
        try:
            live = await self._connector.connect(config)
        except Exception as exc:
            self.log.error("live_connect_failed", error=str(exc) or repr(exc))
            self.events.error("live_connect_failed", str(exc) or repr(exc))
            self._end(EndReason.LIVE_CONNECT_FAILED)
            return
        self._live = live
        self.log.info("live_connected")
        await self._flush_buffered_caller_audio(live)
        if self.agent.greeting:
            await self._send_live(build_client_content(greeting_prompt(self.agent.greeting)))
        try:
            async for message in live:
                await self._on_live_message(message)
        except Exception as exc:
            code = getattr(exc, "code", None)
            self.log.error("live_failed", error=str(exc) or repr(exc), close_code=code)
            self.events.error("live_failed", str(exc) or repr(exc))
            self._end(EndReason.LIVE_FAILED)
            return
        self.log.info("live_closed")
        self._end(EndReason.LIVE_CLOSED)

    async def _send_live(self, message: Mapping[str, Any]) -> None:
        """Every non-audio message to Live goes through here (so observers see it)."""
        live = self._live
        if live is None:
            return
        self.events.live_out(message)
        await live.send(message)

    async def _flush_buffered_caller_audio(self, live: LiveSessionLike) -> None:
        """Send audio heard while connecting, in order, then switch to direct sending."""
        while self._buffered_caller_audio:
            pcm16 = self._buffered_caller_audio.popleft()
            self.events.live_audio_out(pcm16, self._live_input_rate_hz)
            await live.send_audio(pcm16, self._live_input_rate_hz)
        self._live_ready = True

    async def _on_live_message(self, message: ServerMessage) -> None:
        self.events.live_in(message)
        if message.interrupted:
            self._barge_in()
        for pcm16 in message.audio:
            self._queue_agent_audio(pcm16)
        if message.output_transcription:
            self.transcript.append(("agent", message.output_transcription))
        if message.input_transcription:
            self.transcript.append(("caller", message.input_transcription))
        if message.tool_calls:
            await self._on_tool_calls(message)
        if message.go_away_time_left_s is not None:
            self.log.warning("live_go_away", time_left_s=message.go_away_time_left_s)
        if message.turn_complete:
            self._complete_turn(interrupted=message.interrupted)

    def _queue_agent_audio(self, pcm16: bytes) -> None:
        mulaw = self._encoder.encode(pcm16)
        frames = self._framer.push(mulaw)
        if not frames:
            return
        assert self.start is not None
        stream_sid = self.start.stream_sid
        build_media = self._codec.build_media
        self._outbound.extend((build_media(stream_sid, frame), True) for frame in frames)
        self.stats.agent_frames += len(frames)
        self._turn_has_audio = True
        self._outbound_ready.set()

    def _complete_turn(self, *, interrupted: bool) -> None:
        """After a whole turn: pad out the last frame and ask Twilio to echo a mark when played."""
        self.stats.turns += 1
        if interrupted or not self._turn_has_audio:
            self._turn_has_audio = False
            return
        assert self.start is not None
        tail = self._framer.flush()
        if tail is not None:
            self._outbound.append((self._codec.build_media(self.start.stream_sid, tail), True))
            self.stats.agent_frames += 1
        mark = f"turn-{self.stats.turns}"
        self._pending_marks.add(mark)
        self._outbound.append((self._codec.build_mark(self.start.stream_sid, mark), False))
        self._turn_has_audio = False
        self._outbound_ready.set()

    def _barge_in(self) -> None:
        """The caller talked over the agent: drop everything not yet sent, then `clear`.

        Synchronous on purpose: nothing can be written between dropping the queue and queuing
        `clear`, and `clear` goes to the front so it is the very next frame on the wire.
        """
        assert self.start is not None
        dropped = sum(1 for _, is_audio in self._outbound if is_audio)
        self._outbound.clear()
        self._encoder.reset()
        self._framer.reset()
        self._pending_marks.clear()
        self._turn_has_audio = False
        self._outbound.append((self._codec.build_clear(self.start.stream_sid), False))
        self._outbound_ready.set()
        self.stats.barge_ins += 1
        self.stats.stale_frames_dropped += dropped
        self.log.info("barge_in", frames_dropped=dropped)
        self.events.barge_in(dropped)

    async def _on_tool_calls(self, message: ServerMessage) -> None:
        """No tools are configured yet: answer each call with an error so the model moves on."""
        assert self._live is not None
        self.stats.tool_calls += len(message.tool_calls)
        responses = [
            FunctionResponse(
                id=call.id, name=call.name, response={"error": f"unknown tool {call.name!r}"}
            )
            for call in message.tool_calls
        ]
        for call in message.tool_calls:
            self.events.tool_call(call)
            self.log.warning("tool_not_configured", tool=call.name, tool_call_id=call.id)
        await self._send_live(build_tool_response(responses))

    # ------------------------------------------------------------------ writer

    async def _writer(self) -> None:
        """The only writer to the carrier socket: frames leave in queue order."""
        outbound = self._outbound
        ready = self._outbound_ready
        send = self._transport.send
        events = self.events
        try:
            while True:
                await ready.wait()
                while outbound:
                    frame, _ = outbound.popleft()
                    await send(frame)
                    events.carrier_out(frame)
                ready.clear()
        except ConnectionError as exc:
            self.log.info("caller_stream_closed_while_sending", error=str(exc))
            self._end(EndReason.CALLER_DISCONNECTED)

    async def _flush_outbound(self) -> None:
        with contextlib.suppress(Exception):
            while self._outbound:
                frame = self._outbound.popleft()[0]
                await self._transport.send(frame)
                self.events.carrier_out(frame)


def greeting_prompt(greeting: str) -> str:
    """What we tell the model so that it opens the call with the agent's greeting."""
    return f'Greet the caller now by saying exactly: "{greeting}"'
