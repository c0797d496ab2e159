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

Tool calls run as their own tasks in `gateway.tools.runner.ToolRunner` (`Call.tools`); the
agent's limits and goodbyes — `end_call`, end phrases, time limits, transfers — live in
`gateway.call.control.CallSupervisor` (`Call.control`), which this call feeds with turns,
marks and barge-ins.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from gateway.agents.config import AgentConfig, AgentSet
from gateway.audio.codec import (
    MULAW_ENCODING,
    MULAW_RATE_HZ,
    StreamAudio,
    UnsupportedStreamFormat,
)
from gateway.call.control import CallSupervisor
from gateway.call.hooks import CallObserver, ObserverSet
from gateway.call.outcome import CallStats, EndReason
from gateway.call.ports import CallerTransport, LiveConnectorLike, LiveSessionLike
from gateway.live.models import ModelProfile, profile_for
from gateway.live.protocol import (
    FunctionResponse,
    ServerMessage,
    SessionConfig,
    build_text_turn,
    build_tool_response,
)
from gateway.ops.logs import clip
from gateway.prompts import APOLOGY, load_prompt_mulaw, prompt_duration_s
from gateway.telephony.base import (
    CarrierNotice,
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
from gateway.telephony.carrier import CarrierRest
from gateway.telephony.transcript import TranscriptRole, build_transcript, wants_transcript
from gateway.tools import ToolContext, ToolRunner

if TYPE_CHECKING:
    from gateway.security.stream_guard import AudioBudget

log = structlog.get_logger("gateway.call")

START_TIMEOUT_S = 3.0
"""How long a fresh stream may take to send `start` before we give up on it (Twilio sends
`connected` and `start` at once; a stream that waits holds a call slot). START_TIMEOUT_S."""
CARRIER_IDLE_TIMEOUT_S = 10.0
"""A started stream without media for this long has lost its caller (Twilio sends a frame
every 20 ms, silence included). CARRIER_IDLE_TIMEOUT_S; 0 disables."""
PROMPT_MARK = "prompt-apology"
"""The mark sent after the apology prompt; its echo means the caller heard it."""
"""Prompt audio goes out in 20 ms μ-law frames, like agent audio."""
PROMPT_ECHO_MARGIN_S = 10.0
"""How long past the prompt's own length we wait for its mark echo before hanging up."""
MAX_BUFFERED_CALLER_AUDIO_S = 10.0
"""Caller audio kept while Live is still connecting, by duration whatever the framing; oldest
dropped first."""
MAX_BUFFERED_DTMF = 32
"""Keys kept while Live is still connecting; later ones are dropped."""
MAX_LOGGED_ERROR_CHARS = 300
"""A malformed frame's error (which quotes the frame, cut short) in logs and recordings."""
MALFORMED_LOG_FIRST = 10
"""Malformed frames logged one by one; after these, every MALFORMED_LOG_EVERY-th."""
MALFORMED_LOG_EVERY = 100


SessionConfigFactory = Callable[[AgentConfig, StreamStart], SessionConfig]


class OutboundAgents(Protocol):
    """The agent of a call the gateway placed (gateway.outbound.streams.OutboundStreams):
    `agent` itself unless `start` is verifiably that outbound call's stream."""

    def agent_for(self, start: StreamStart, agent: AgentConfig) -> AgentConfig: ...

    def leaves_voicemail(self, start: StreamStart) -> bool:
        """The call reached an answering machine and the agent leaves a message: the call
        ends once its first turn (the message) has played."""
        ...


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
        live_input_rate_hz: int = 16000,
        observers: Sequence[CallObserver] = (),
        carrier_rest: CarrierRest | None = None,
        data_dir: Path = Path("data"),
        audio_budget: AudioBudget | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
        carrier_idle_timeout_s: float = CARRIER_IDLE_TIMEOUT_S,
        outbound: OutboundAgents | None = None,
    ) -> None:
        self._outbound_agents = outbound
        """Outbound calls' agents (None: outbound calls are off, every call is inbound)."""
        self._voicemail_mark: str | None = None
        """A voicemail call's first turn's mark ("" until it is queued): heard, the call ends."""
        self._start_timeout_s = start_timeout_s
        self._carrier_idle_timeout_s = carrier_idle_timeout_s
        """0: no limit. Checked from one rescheduled timer, never per frame."""
        self._last_media_at = 0.0
        """Loop time of the last media frame (or of `start`)."""
        self._carrier_idle_handle: asyncio.TimerHandle | None = None
        self._carrier_rest = carrier_rest
        self._audio_budget = audio_budget
        """Caller audio beyond real time is dropped before Live (None: no limit)."""
        """Hangs up / transfers through the carrier's REST API (None: just close the stream)."""
        self._data_dir = data_dir
        """Agents' writable state lives in `data_dir/<agent name>/` (given to tools)."""
        self.tools: ToolRunner | None = None
        self.control: CallSupervisor | None = None
        self._buffered_dtmf: list[str] = []
        self._transport = transport
        self._codec = codec
        self._agents = agents
        self._connector = connector
        self._session_config = session_config
        self._live_input_rate_hz = live_input_rate_hz
        self.events = ObserverSet(observers)

        self._audio = StreamAudio(MULAW_ENCODING, MULAW_RATE_HZ, live_input_rate_hz)
        """Conversions for the stream's format (replaced at `start` when it says otherwise)."""

        self._outbound: deque[tuple[str | bytes, bytes | None]] = deque()
        """Frames for the caller, oldest first, each with its audio (in the stream's format) if
        it is a media frame (else None)."""
        self._outbound_ready = asyncio.Event()
        self._pending_marks: set[str] = set()
        self._buffered_caller_audio: deque[bytes] = deque()
        self._buffered_caller_bytes = 0
        self._max_buffered_caller_bytes = int(MAX_BUFFERED_CALLER_AUDIO_S * live_input_rate_hz) * 2

        self._live: LiveSessionLike | None = None
        self._live_ready = False
        self._turn_has_audio = False
        self._ended = asyncio.Event()
        self.finished = asyncio.Event()
        """Set once `run()` has closed both sides (the server's drain waits on it)."""
        self._end_reason: EndReason | None = None

        self.start: StreamStart | None = None
        self.agent: AgentConfig | None = None
        self.session: SessionConfig | None = None
        """The Live setup of this call (model, dialect), decided when the call starts."""
        self.profile: ModelProfile | None = None
        """The generation rules of `session.model` (gateway.live.models)."""
        self.stats = CallStats()
        self.transcript: list[tuple[str, str]] = []
        self._transcript_to_caller = False
        """The stream asked for transcript frames (`transcript=1`: softphones, never Twilio)."""
        self._log_tokens: Mapping[str, contextvars.Token[Any]] = {}
        self.log = log

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> EndReason:
        """Serve the call to its end. Whatever happens, Live and the carrier are closed."""
        try:
            start = await self._await_start()
            if start is None:
                self._end(EndReason.NO_START)
            elif self._audio_for(start):
                self._begin(start)
                await self._serve()
        except Exception:
            self.log.exception("call_failed")
            self._end(EndReason.INTERNAL_ERROR)
        except asyncio.CancelledError:
            # The server cancelled the handler (shutdown); the summary below still goes out.
            self._end(EndReason.GATEWAY_SHUTDOWN)
            raise
        finally:
            await self._close_everything()
            self.finished.set()
            reason = self._finish(self._end_reason or EndReason.INTERNAL_ERROR)
            structlog.contextvars.reset_contextvars(**self._log_tokens)
        return reason

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
            live_reconnects=stats.live_reconnects,
            dtmf_digits=stats.dtmf_digits,
            caller_frames_dropped_while_connecting=stats.caller_frames_dropped_while_connecting,
            caller_frames_dropped_over_real_time=stats.caller_frames_dropped_over_real_time,
        )
        self.events.call_ended(self._end_reason, stats)
        return self._end_reason

    async def _await_start(self) -> StreamStart | None:
        """Read frames until `start`; a stream that never starts is dropped after a timeout."""
        try:
            async with asyncio.timeout(self._start_timeout_s):
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
                        self.log.warning("event_before_start", kind=type(event).__name__)
        except TimeoutError:
            self.log.warning("no_start_event", timeout_s=self._start_timeout_s)
            return None

    def _audio_for(self, start: StreamStart) -> bool:
        """Pick the conversions for the stream's format; False (and the call ends) if none."""
        if (start.encoding, start.sample_rate_hz) == (self._audio.encoding, self._audio.rate_hz):
            return True
        try:
            self._audio = StreamAudio(
                start.encoding, start.sample_rate_hz, self._live_input_rate_hz
            )
        except UnsupportedStreamFormat as exc:
            self.log.error("unsupported_stream_format", call_sid=start.call_sid, error=str(exc))
            self._end(EndReason.UNSUPPORTED_AUDIO)
            return False
        return True

    def _begin(self, start: StreamStart) -> None:
        self.start = start
        params = start.custom_parameters
        self.agent = self._agents.for_call(params.get("agent"), params.get("to"))
        if self._outbound_agents is not None and params.get("outbound"):
            self.agent = self._outbound_agents.agent_for(start, self.agent)
            if self._outbound_agents.leaves_voicemail(start):
                self._voicemail_mark = ""
        self.session = self._session_config(self.agent, start)
        self.profile = profile_for(self.session.model)
        self.log = log.bind(**self._log_context())
        # Lines other modules log for this call (Live client, observers) carry its ids too;
        # tasks started from here on inherit them, `run()` unbinds them at the very end.
        self._log_tokens = structlog.contextvars.bind_contextvars(**self._log_context())
        self._transcript_to_caller = wants_transcript(params)
        self.log.info(
            "call_started",
            caller=clip(params.get("from")),
            line=clip(params.get("to")),
            encoding=start.encoding,
            sample_rate_hz=start.sample_rate_hz,
            model=self.session.model,
        )
        self._begin_tools_and_control(start, self.agent)
        self.events.call_started(self)

    def _log_context(self) -> dict[str, str]:
        """The ids every log line of this call carries."""
        assert self.start is not None and self.agent is not None
        return {
            "call_sid": self.start.call_sid,
            "stream_sid": self.start.stream_sid,
            "agent": self.agent.name,
        }

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
        await self._end_tools_and_control()
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
        """The frame's event, or None for a malformed one: it broke the protocol, or is of a
        kind Twilio never sends (it sends six)."""
        try:
            event = self._codec.parse(frame)
        except TelephonyProtocolError as exc:
            self._malformed(str(exc))
            return None
        if isinstance(event, UnknownEvent):
            self._malformed(f"event {clip(event.event, 60)!r} is not a media-stream event")
            return None
        return event

    def _malformed(self, error: str) -> None:
        """Count a malformed frame; logged clipped, the first few and then now and then."""
        error = clip(error, MAX_LOGGED_ERROR_CHARS)
        stats = self.stats
        stats.malformed_frames += 1
        count = stats.malformed_frames
        if count <= MALFORMED_LOG_FIRST or count % MALFORMED_LOG_EVERY == 0:
            self.log.warning("malformed_caller_frame", error=error, malformed_frames=count)
        self.events.error("malformed_caller_frame", error)

    async def _caller_pump(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_media_at = loop.time()
        if self._carrier_idle_timeout_s > 0:
            self._carrier_idle_handle = loop.call_later(
                self._carrier_idle_timeout_s, self._check_carrier_idle
            )
        try:
            await self._pump_caller_frames(loop)
        finally:
            if self._carrier_idle_handle is not None:
                self._carrier_idle_handle.cancel()
                self._carrier_idle_handle = None

    def _check_carrier_idle(self) -> None:
        """The carrier-idle timer: end the call if no media came for the timeout, else look
        again when it would expire (one handle per call, not one per frame)."""
        loop = asyncio.get_running_loop()
        quiet_s = loop.time() - self._last_media_at
        timeout_s = self._carrier_idle_timeout_s
        if quiet_s < timeout_s:
            handle = loop.call_later(timeout_s - quiet_s, self._check_carrier_idle)
            self._carrier_idle_handle = handle
            return
        self._carrier_idle_handle = None
        self.log.warning("caller_disconnected", reason="carrier_idle", quiet_s=round(quiet_s, 1))
        self._end(EndReason.CALLER_DISCONNECTED)

    async def _pump_caller_frames(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            frame = await self._transport.receive()
            if frame is None:
                self._end(EndReason.CALLER_DISCONNECTED)
                return
            self.events.carrier_in(frame)
            event = self._parse(frame)
            if isinstance(event, MediaFrame):
                self.events.caller_media(event)
                self._last_media_at = loop.time()
                await self._on_caller_audio(event)
                if self._ended.is_set():  # a flood ends the call now, unread frames and all
                    return
            elif isinstance(event, MarkEcho):
                self._on_mark_echo(event.name)
            elif isinstance(event, Dtmf):
                await self._on_dtmf(event.digit)
            elif isinstance(event, StreamStop):
                self.log.info("caller_hung_up")
                self._end(EndReason.CALLER_HUNG_UP)
                return
            elif isinstance(event, StreamStart | Connected):
                self.log.warning("unexpected_caller_event", kind=type(event).__name__)
            elif isinstance(event, CarrierNotice):
                if event.detail:  # the carrier refused something we sent
                    self.log.warning("carrier_reported_error", event=event.event,
                                     detail=clip(event.detail, MAX_LOGGED_ERROR_CHARS))  # fmt: skip
                else:
                    self.log.debug("carrier_notice", event=event.event)

    async def _on_caller_audio(self, frame: MediaFrame) -> None:
        if frame.track not in ("inbound", "inbound_track", ""):
            return
        self.stats.caller_frames += 1
        budget = self._audio_budget
        samples = len(frame.payload) // self._audio.bytes_per_8k_sample  # the budget's clock
        if budget is not None and not budget.take(samples):
            self._over_real_time(budget)
            return
        pcm16 = self._audio.decode(frame.payload)
        live = self._live
        if live is not None and self._live_ready:
            self.events.live_audio_out(pcm16, self._live_input_rate_hz)
            await live.send_audio(pcm16, self._live_input_rate_hz)
            return
        buffered = self._buffered_caller_audio
        buffered.append(pcm16)
        self._buffered_caller_bytes += len(pcm16)
        while self._buffered_caller_bytes > self._max_buffered_caller_bytes:
            self._buffered_caller_bytes -= len(buffered.popleft())
            self.stats.caller_frames_dropped_while_connecting += 1

    def _over_real_time(self, budget: AudioBudget) -> None:
        """A frame of audio ahead of real time was dropped; a sustained excess ends the call."""
        self.stats.caller_frames_dropped_over_real_time += 1
        if budget.flooding:
            if not self._ended.is_set():
                self.log.warning(
                    "caller_audio_flood_ended_call", dropped_s=round(budget.dropped_s, 3)
                )
            self._end(EndReason.CALLER_AUDIO_FLOOD)
        elif budget.log_due:
            self.log.warning(
                "caller_audio_dropped",
                frames_dropped=budget.chunks_dropped,
                dropped_s=round(budget.dropped_s, 3),
            )

    async def _on_dtmf(self, digit: str) -> None:
        """Keypresses reach the model as text, so menus ("press 1 for…") work.

        Keys pressed while Live is still connecting are kept and sent once it is ready.
        """
        self.stats.dtmf_digits += 1
        self.log.info("dtmf", digit=digit)
        if self.control is not None:
            self.control.caller_active()
        if self._live is not None and self._live_ready:
            await self._send_text(dtmf_text(digit))
        elif len(self._buffered_dtmf) < MAX_BUFFERED_DTMF:
            self._buffered_dtmf.append(digit)

    def _on_mark_echo(self, name: str) -> None:
        if name in self._pending_marks:
            self._pending_marks.discard(name)
            self.log.debug("turn_played", mark=name)
            if self.control is not None:
                self.control.mark_played(name)
        if name == PROMPT_MARK and self._prompt_played is not None:
            self._prompt_played.set()
        if self._voicemail_mark and name == self._voicemail_mark:
            self.log.info("voicemail_left")
            self._end(EndReason.AGENT_ENDED)

    # ------------------------------------------------------------------ Live → caller

    async def _live_pump(self) -> None:
        assert self.agent is not None and self.session is not None
        config = self.session
        try:
            live = await self._connector.connect(config)
        except Exception as exc:
            code = _close_code(exc)
            self.log.error("live_connect_failed", error=str(exc) or repr(exc), close_code=code)
            self.events.error("live_connect_failed", str(exc) or repr(exc))
            self.events.live_closed(code)
            await self._play_prompt_and_end(EndReason.LIVE_CONNECT_FAILED)
            return
        self._live = live
        add_resume_listener = getattr(live, "add_resume_listener", None)
        if add_resume_listener is not None:  # a resuming session (gateway.live.resilient)
            add_resume_listener(lambda resumed: self.note_live_reconnect(resumed.close_code))
        self.log.info("live_connected", session_id=getattr(live, "session_id", None))
        await self._flush_buffered_caller_audio(live)
        if self.agent.greeting:
            await self._send_text(greeting_prompt(self.agent.greeting))
        try:
            async for message in live:
                await self._on_live_message(message)
        except Exception as exc:
            code = _close_code(exc)
            self.log.error("live_failed", error=str(exc) or repr(exc), close_code=code)
            self.events.error("live_failed", str(exc) or repr(exc))
            self.events.live_closed(code)
            await self._play_prompt_and_end(EndReason.LIVE_FAILED)
            return
        code = getattr(live, "close_code", None)
        self.log.info("live_closed", close_code=code)
        self.events.live_closed(code)
        self._end(EndReason.LIVE_CLOSED)

    _prompt_played: asyncio.Event | None = None
    """Set when the carrier echoes the prompt's mark: the caller has heard it."""

    async def _play_prompt_and_end(self, reason: EndReason) -> None:
        """Live is gone for good: play the bundled apology, wait until it is heard, hang up.

        Never a silent hang-up: what the model already said plays first, then the apology.
        Caller audio is no longer sent to Live. The wait ends at the prompt's mark echo, or
        after the prompt's length plus PROMPT_ECHO_MARGIN_S if the carrier never echoes it.
        """
        assert self.start is not None
        if self._end_reason is None:
            self._end_reason = reason  # a hang-up during the apology does not change why
        self._live_ready = False
        try:
            mulaw = load_prompt_mulaw(APOLOGY)
        except OSError as exc:
            self.log.error("prompt_missing", prompt=APOLOGY, error=str(exc))
            self._end(reason)
            return
        stream_sid = self.start.stream_sid
        build_media = self._codec.build_media
        tail = self._audio.framer.flush()
        if tail is not None:
            self._outbound.append((build_media(stream_sid, tail), tail))
        for frame in self._audio.frames(self._audio.from_mulaw(mulaw)):
            self._outbound.append((build_media(stream_sid, frame), frame))
        self._pending_marks.add(PROMPT_MARK)
        self._outbound.append((self._codec.build_mark(stream_sid, PROMPT_MARK), None))
        self._prompt_played = asyncio.Event()
        self._outbound_ready.set()
        duration_s = prompt_duration_s(mulaw)
        self.log.info("apology_prompt_playing", prompt=APOLOGY, duration_s=round(duration_s, 2))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration_s + PROMPT_ECHO_MARGIN_S):
                await self._prompt_played.wait()
        self._end(reason)

    def note_live_reconnect(self, close_code: int | None) -> None:
        """The Live connection dropped (`close_code`) and a new session took over the call.

        For a reconnecting connector to call: it counts in the summary line and in metrics.
        """
        self.stats.live_reconnects += 1
        self.log.warning(
            "live_reconnected", close_code=close_code, live_reconnects=self.stats.live_reconnects
        )
        self.events.live_reconnected(close_code)

    async def _send_text(self, text: str) -> None:
        """Text the model answers mid-call (greeting, DTMF, prompts), sent the way this
        model and backend take it: `realtimeInput.text` or a `clientContent` turn."""
        assert self.session is not None
        await self._send_live(build_text_turn(text, self.session.text_channel))

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
            self._buffered_caller_bytes -= len(pcm16)
            self.events.live_audio_out(pcm16, self._live_input_rate_hz)
            await live.send_audio(pcm16, self._live_input_rate_hz)
        while self._buffered_dtmf:
            await self._send_text(dtmf_text(self._buffered_dtmf.pop(0)))
        self._live_ready = True

    async def _on_live_message(self, message: ServerMessage) -> None:
        self.events.live_in(message)
        if message.interrupted:
            dropped = self._barge_in()
            await asyncio.sleep(0)  # the writer puts `clear` on the wire before we go on
            self.log.info("barge_in", frames_dropped=dropped)
        for pcm16 in message.audio:
            self._queue_agent_audio(pcm16)
        if message.output_transcription:
            self.transcript.append(("agent", message.output_transcription))
            self._relay_transcript("agent", message.output_transcription)
        if message.input_transcription:
            self.transcript.append(("caller", message.input_transcription))
            self._relay_transcript("caller", message.input_transcription)
        if message.tool_calls:
            self._on_tool_calls(message)
        if message.tool_call_cancellation_ids and self.tools is not None:
            self.tools.cancel(message.tool_call_cancellation_ids)
        if message.go_away_time_left_s is not None:
            self.log.warning("live_go_away", time_left_s=message.go_away_time_left_s)
        if self.control is not None:
            self.control.live_message(message)
        if message.turn_complete:
            mark = self._complete_turn(interrupted=message.interrupted)
            if self._voicemail_mark == "" and mark is not None:
                self._voicemail_mark = mark
            if self.control is not None:
                self.control.turn_completed(mark, interrupted=message.interrupted)

    def _relay_transcript(self, role: TranscriptRole, text: str) -> None:
        """Queued with the audio, so text not yet sent is dropped with its audio on barge-in."""
        if self._transcript_to_caller and self.start is not None:
            self._outbound.append((build_transcript(self.start.stream_sid, role, text), None))
            self._outbound_ready.set()

    def _queue_agent_audio(self, pcm16: bytes) -> None:
        frames = self._audio.framer.push(self._audio.encode(pcm16))
        if not frames:
            return
        assert self.start is not None
        stream_sid = self.start.stream_sid
        build_media = self._codec.build_media
        self._outbound.extend((build_media(stream_sid, frame), frame) for frame in frames)
        self.stats.agent_frames += len(frames)
        self._turn_has_audio = True
        self._outbound_ready.set()

    def _complete_turn(self, *, interrupted: bool) -> str | None:
        """After a whole turn: pad out the last frame and ask Twilio to echo a mark when played.

        Returns the mark's name (None when the turn had no audio to play).
        """
        self.stats.turns += 1
        if interrupted or not self._turn_has_audio:
            self._turn_has_audio = False
            return None
        assert self.start is not None
        tail = self._audio.framer.flush()
        if tail is not None:
            self._outbound.append((self._codec.build_media(self.start.stream_sid, tail), tail))
            self.stats.agent_frames += 1
        mark = f"turn-{self.stats.turns}"
        self._pending_marks.add(mark)
        self._outbound.append((self._codec.build_mark(self.start.stream_sid, mark), None))
        self._turn_has_audio = False
        self._outbound_ready.set()
        return mark

    def _barge_in(self) -> int:
        """The caller talked over the agent: drop everything not yet sent, then `clear`.

        Synchronous on purpose: nothing can be written between dropping the queue and queuing
        `clear`, and `clear` goes to the front so it is the very next frame on the wire.
        Returns the frames dropped; the caller logs them once `clear` is out (a log line
        costs more than the rest of the barge-in: bench/RESULTS.md, Latency).
        """
        assert self.start is not None
        dropped = sum(1 for _, audio in self._outbound if audio is not None)
        self._outbound.clear()
        self._audio.reset_encoder()
        self._pending_marks.clear()
        self._turn_has_audio = False
        self._outbound.append((self._codec.build_clear(self.start.stream_sid), None))
        self._outbound_ready.set()
        self.stats.barge_ins += 1
        self.stats.stale_frames_dropped += dropped
        self.events.barge_in(dropped)
        if self.control is not None:
            self.control.barged_in()
        return dropped

    # ------------------------------------------------------------------ tools and endings

    def _on_tool_calls(self, message: ServerMessage) -> None:
        """Each tool call runs as its own task (gateway.tools.runner); the pump goes on."""
        assert self.tools is not None
        self.stats.tool_calls += len(message.tool_calls)
        for call in message.tool_calls:
            self.tools.start(call)

    async def _send_tool_response(self, response: FunctionResponse) -> None:
        await self._send_live(build_tool_response([response]))
        if self.control is not None:
            self.control.tool_response_sent(response.scheduling)

    def _begin_tools_and_control(self, start: StreamStart, agent: AgentConfig) -> None:
        """The agent's tool runner and limits (gateway.call.control) for this call."""
        assert self.profile is not None
        params = start.custom_parameters
        self.control = CallSupervisor(agent, start, self, carrier=self._carrier_rest, log=self.log)
        context = ToolContext(
            call_sid=start.call_sid,
            agent=agent.name,
            from_number=params.get("from", ""),
            to_number=params.get("to", ""),
            stream_sid=start.stream_sid,
            agent_dir=agent.agent_dir,
            data_dir=self._data_dir / agent.name,
            transfer_targets=dict(agent.transfer),
            control=self.control,
            log=self.log,
        )
        self.tools = ToolRunner(
            agent.toolset,
            context,
            self._send_tool_response,
            profile=self.profile,
            events=self.events,
            log=self.log,
        )
        self.control.start()

    async def _end_tools_and_control(self) -> None:
        """The call is over: cancel running tool calls and timers."""
        if self.tools is not None:
            await self.tools.close()
        if self.control is not None:
            await self.control.close()

    async def send_prompt(self, text: str) -> None:
        """`CallHooks`: text the model answers out loud (reminders, wrap-up, notices)."""
        await self._send_text(text)

    def claim_end(self, reason: str | None) -> None:
        """`CallHooks`: reserve why the call is about to end (None: give it back)."""
        if reason is None:
            if not self._ended.is_set():
                self._end_reason = None
        elif self._end_reason is None:
            self._end_reason = EndReason(reason)

    def end(self, reason: str) -> None:
        """`CallHooks`: end the call now for `reason` (an `EndReason` value)."""
        self._end(EndReason(reason))

    def play_mulaw(self, mulaw: bytes) -> None:
        """`CallHooks`: queue 8 kHz μ-law (e.g. DTMF tones) for the caller as 20 ms frames."""
        assert self.start is not None
        stream_sid = self.start.stream_sid
        for frame in self._audio.frames(self._audio.from_mulaw(mulaw)):
            self._outbound.append((self._codec.build_media(stream_sid, frame), frame))
        self._outbound_ready.set()

    # ------------------------------------------------------------------ writer

    async def _writer(self) -> None:
        """The only writer to the carrier socket: frames leave in queue order."""
        outbound = self._outbound
        ready = self._outbound_ready
        send = self._transport.send
        send_now = self._transport.send_now
        events = self.events
        try:
            while True:
                await ready.wait()
                while outbound:
                    if len(outbound) > 1:  # a burst (e.g. 200 ms of a reply): one socket write
                        queued = list(outbound)
                        if send_now([frame for frame, _ in queued]):
                            outbound.clear()
                            for frame, audio in queued:
                                events.carrier_out(frame)
                                if audio is not None:
                                    events.agent_media(audio)
                            continue
                    frame, audio = outbound.popleft()
                    await send(frame)
                    events.carrier_out(frame)
                    if audio is not None:
                        events.agent_media(audio)
                ready.clear()
        except ConnectionError as exc:
            self.log.info("caller_stream_closed_while_sending", error=str(exc))
            self._end(EndReason.CALLER_DISCONNECTED)

    async def _flush_outbound(self) -> None:
        with contextlib.suppress(Exception):
            while self._outbound:
                frame, audio = self._outbound.popleft()
                await self._transport.send(frame)
                self.events.carrier_out(frame)
                if audio is not None:
                    self.events.agent_media(audio)


def _close_code(exc: BaseException) -> int | None:
    """The WebSocket close code a Live failure carries (`LiveConnectionClosed.code`), if any."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


def greeting_prompt(greeting: str) -> str:
    """What we tell the model so that it opens the call with the agent's greeting."""
    return f'Greet the caller now by saying exactly: "{greeting}"'


def dtmf_text(digit: str) -> str:
    """What the model reads when the caller presses a key."""
    return f"The caller pressed {digit}."
