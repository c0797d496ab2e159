"""Live sessions that outlive their connection: session resumption, done transparently.

A phone call lasts longer than one Live connection (~10 min, with `goAway` ~60 s before the
cut), and connections end without warning: a 1011 mid-call is common, 1000 ("The operation was
cancelled.") comes at the connection limit with no `goAway` first, 1008 just after a `goAway`
ran out. `ResilientLiveConnector` wraps a `LiveConnector`; the session it returns looks like
one `LiveSession` to the call (send, send_audio, async iteration of `ServerMessage`, close) but:

* keeps the latest *resumable* handle (`sessionResumptionUpdate` with `resumable: true`);
* on `goAway` waits for the model to be idle (a fresh resumable handle, no turn or tool call in
  flight) — at most until shortly before the server's deadline — then opens a new connection
  with the handle and swaps it in;
* once a connection is set up (after `setupComplete`), takes every close it did not ask for as
  a lost connection, whatever its code (1000, 1007, 1008, 1011, a dropped socket, …) or a
  connection that just ends, and resumes at once with the latest handle. Only a connect —
  before `setupComplete` — can be refused for good: there just the retryable codes
  (`RESUMABLE_CLOSE_CODES`, or no WebSocket at all) are retried, and a handle the service
  refuses is dropped once. Our own `close()` is never resumed;
* when it resumes without a handle (none received yet, or the handle was refused), gives the
  new session the conversation so far as its initial history — a bounded transcript of the
  transcriptions it relayed, sent as `clientContent` before anything else — where the model
  takes history (`ModelProfile.initial_history_config` / `.mid_session_client_content`);
  with a handle no history is sent (the handle carries the context);
* buffers what the call sends while it reconnects (bounded: oldest audio dropped first) and
  flushes it in order after the new `setupComplete`, so caller audio is not lost;
* measures the gap: from losing the old connection to the buffer flushed into the new one
  (`ResumeRecord.gap_ms`, logged as `resume_gap_ms`);
* gives up after `attempts` failed connects with exponential backoff, or `attempts`
  connections in a row that die within `STABLE_SESSION_S` of opening, and raises
  `LiveResumeFailed`, which the call turns into a spoken apology and a hang-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import structlog

from gateway.live.client import LiveConnectionClosed
from gateway.live.models import profile_for
from gateway.live.protocol import LiveProtocolError, ServerMessage, SessionConfig, build_history
from gateway.settings import Settings

__all__ = [
    "DEFAULT_BUFFER_MS",
    "MAX_HISTORY_CHARS",
    "MAX_HISTORY_TURNS",
    "RESUMABLE_CLOSE_CODES",
    "LiveResumeFailed",
    "ResilientLiveConnector",
    "ResilientLiveSession",
    "ResumeRecord",
]

log = structlog.get_logger(__name__)

RESUMABLE_CLOSE_CODES = frozenset({1001, 1006, 1011, 1012, 1013, 1014})
"""Refused *connects* (closed before `setupComplete`) worth retrying: going away, dropped (no
close frame), internal error or deadline, service restart, try again later, bad gateway; and
`None` (no WebSocket: refused, timed out, network down). A connect refused otherwise — 1007
bad request, 1008 policy or unknown model — would be refused again: it is final (except that a
refused resumption handle is dropped and the connect retried once without it). After
`setupComplete` the code does not matter: every close the gateway did not ask for is a lost
connection and is resumed."""
DEFAULT_ATTEMPTS = 5
DEFAULT_BACKOFF_MS = 200
MAX_BACKOFF_MS = 5_000
DEFAULT_BUFFER_MS = 10_000
"""Caller audio held while reconnecting (10 s); beyond it the oldest audio is dropped."""
MAX_BUFFERED_MESSAGES = 100
"""Non-audio messages (tool responses, text) held while reconnecting; they are rare."""
GO_AWAY_MARGIN_S = 5.0
"""After `goAway`, switch connections at the latest this long before the server's cut."""
STABLE_SESSION_S = 5.0
"""A connection that drops sooner than this after opening counts as a flap; `attempts`
consecutive flaps end the call instead of reconnecting forever to a failing service."""
RECENT_RESUMES = 1000
MAX_HISTORY_CHARS = 8_000
"""The transcript given back to a session resumed without a handle: its latest ~8000
characters …"""
MAX_HISTORY_TURNS = 50
"""… and at most its latest 50 turns."""


class LiveResumeFailed(LiveConnectionClosed):
    """Live could not be (re)connected after `attempts` tries; the call cannot go on.

    `code` is the last close code seen (None when no WebSocket was established).
    """

    def __init__(self, attempts: int, last_error: BaseException | None) -> None:
        code = last_error.code if isinstance(last_error, LiveConnectionClosed) else None
        detail = str(last_error) if last_error is not None else "no error recorded"
        super().__init__(code, f"gave up on Live after {attempts} failed attempt(s): {detail}")
        self.attempts = attempts
        self.last_error = last_error


@dataclass(frozen=True, slots=True)
class ResumeRecord:
    """One transparent reconnection of a call's Live session."""

    reason: str
    """`go_away`, `go_away_deadline`, `closed_after_go_away`, `closed_<code>` (any code) or
    `ended` (the connection ended with no error and no code, not by our close())."""
    close_code: int | None
    """The close code that lost the old connection (None: a planned switch after goAway)."""
    gap_ms: float
    """From losing the old connection to the buffered caller audio flushed into the new one."""
    attempts: int
    with_handle: bool
    buffered_audio_ms: float
    dropped_audio_ms: float
    history_turns: int = 0
    """Turns of the conversation given to the new session as initial history (no handle)."""
    session_id: str | None = None
    """`setupComplete.sessionId` of the new connection (when the service names sessions)."""


class _Session(Protocol):
    async def send(self, message: Mapping[str, Any]) -> None: ...

    async def send_audio(self, pcm16le: bytes, rate_hz: int) -> None: ...

    def __aiter__(self) -> AsyncIterator[ServerMessage]: ...

    async def close(self) -> None: ...


class _Connector(Protocol):
    async def connect(self, config: SessionConfig) -> _Session: ...


@dataclass(frozen=True, slots=True)
class _Policy:
    attempts: int
    backoff_ms: int
    buffer_ms: int
    stable_session_s: float

    def backoff_s(self, failures: int) -> float:
        """Exponential backoff with jitter before retry number `failures` (>= 1)."""
        base_ms = float(min(self.backoff_ms * 2 ** (failures - 1), MAX_BACKOFF_MS))
        return base_ms * (0.5 + random.random() / 2) / 1000.0


@dataclass(frozen=True, slots=True)
class _Audio:
    pcm16le: bytes
    rate_hz: int

    @property
    def duration_ms(self) -> float:
        return len(self.pcm16le) / 2 / self.rate_hz * 1000.0


_Outgoing = _Audio | Mapping[str, Any]


def _retryable(exc: BaseException) -> bool:
    """A refused connect worth trying again (see `RESUMABLE_CLOSE_CODES`)."""
    return isinstance(exc, LiveConnectionClosed) and (
        exc.code is None or exc.code in RESUMABLE_CLOSE_CODES
    )


def _session_id(session: object) -> str | None:
    session_id = getattr(session, "session_id", None)
    return session_id if isinstance(session_id, str) else None


def _close_code(session: object) -> int | None:
    code = getattr(session, "close_code", None)
    return code if isinstance(code, int) else None


class _Transcript:
    """The conversation so far as (role, text) turns, from the transcriptions relayed.

    Consecutive pieces of one role make one turn; only the latest turns are kept, at most
    `max_turns` of them and `max_chars` characters (a longer turn keeps its end).
    """

    def __init__(
        self, max_chars: int = MAX_HISTORY_CHARS, max_turns: int = MAX_HISTORY_TURNS
    ) -> None:
        self._max_chars = max_chars
        self._max_turns = max_turns
        self._turns: deque[list[str]] = deque()  # [role, text]
        self._chars = 0

    def add(self, role: str, piece: str | None) -> None:
        if not piece:
            return
        turns = self._turns
        if turns and turns[-1][0] == role:
            turns[-1][1] += piece
        else:
            turns.append([role, piece])
        self._chars += len(piece)
        while len(turns) > self._max_turns or (self._chars > self._max_chars and len(turns) > 1):
            self._chars -= len(turns.popleft()[1])
        if self._chars > self._max_chars:
            turns[0][1] = turns[0][1][-self._max_chars :]
            self._chars = len(turns[0][1])

    def turns(self) -> tuple[tuple[str, str], ...]:
        kept = ((role, text.strip()) for role, text in self._turns)
        return tuple((role, text) for role, text in kept if text)


async def _connect_with_retries(
    connector: _Connector,
    config: SessionConfig,
    policy: _Policy,
    *,
    failures: int = 0,
    first_delay_s: float = 0.0,
    on_failure: Callable[[BaseException], SessionConfig | None] | None = None,
) -> tuple[_Session, int, SessionConfig]:
    """Connect, retrying retryable failures with backoff; returns (session, attempts made,
    the config that connected).

    `failures` already spent count against `policy.attempts`. `on_failure` may return a new
    config to retry a non-retryable failure with (e.g. without a rejected handle).
    """
    attempts = 0
    last_error: BaseException | None = None
    while failures < policy.attempts:
        delay_s = policy.backoff_s(failures) if failures else first_delay_s
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        attempts += 1
        try:
            return await connector.connect(config), attempts, config
        except (LiveConnectionClosed, LiveProtocolError) as exc:
            last_error = exc
            failures += 1
            retry_config = on_failure(exc) if on_failure is not None else None
            log.warning(
                "live_connect_attempt_failed",
                attempt=attempts,
                error=str(exc),
                close_code=getattr(exc, "code", None),
                retrying=failures < policy.attempts
                and (_retryable(exc) or retry_config is not None),
            )
            if retry_config is not None:
                config = retry_config
            elif not _retryable(exc):
                break
    raise LiveResumeFailed(attempts, last_error)


class ResilientLiveSession:
    """One call's Live conversation across as many connections as it takes.

    Same interface as `LiveSession`: send from any task, iterate from one. Messages are passed
    through unchanged; after an unplanned reconnection one synthetic message may follow:
    `toolCallCancellation` for tool calls the resumed session never made, and `turnComplete`
    if the model was cut off mid-turn. `resumes` lists every reconnection of this session;
    `session_id` is the service's id of the current connection.
    """

    def __init__(
        self,
        connector: _Connector,
        config: SessionConfig,
        session: _Session,
        policy: _Policy,
        on_resume: Callable[[ResumeRecord], None],
    ) -> None:
        self._connector = connector
        self._config = config
        self._profile = profile_for(config.model)
        self._policy = policy
        self._on_resume = on_resume
        self._current = session
        self._opened_at = time.monotonic()
        self._handle: str | None = None
        self._pending: deque[_Outgoing] = deque()
        self._pending_audio_ms = 0.0
        self._buffered_audio_ms_last = 0.0
        self._dropped_audio_ms = 0.0
        self._switching = False
        self._lost_at: float | None = None
        self._closed = False
        self._failed: LiveResumeFailed | None = None
        self._flaps = 0
        # What the current connection is doing, to pick a safe moment to switch.
        self._model_busy = False
        self._handle_fresh = False
        self._go_away_deadline: float | None = None
        self._tool_call_ids: set[str] = set()
        self._stale_tool_call_ids: set[str] = set()
        self._iterators: list[AsyncIterator[ServerMessage]] = []
        self._listeners: list[Callable[[ResumeRecord], None]] = []
        self._transcript = _Transcript()
        self.resumes: list[ResumeRecord] = []

    # ------------------------------------------------------------------ public

    @property
    def resumption_handle(self) -> str | None:
        """The latest resumable handle (None until the service sent one)."""
        return self._handle

    @property
    def session_id(self) -> str | None:
        """`setupComplete.sessionId` of the current connection (None when not given)."""
        return _session_id(self._current)

    @property
    def history(self) -> tuple[tuple[str, str], ...]:
        """The (bounded) transcript a resumption without a handle starts the new session from."""
        return self._transcript.turns()

    @property
    def last_resume_gap_ms(self) -> float | None:
        return self.resumes[-1].gap_ms if self.resumes else None

    def add_resume_listener(self, listener: Callable[[ResumeRecord], None]) -> None:
        """Call `listener` after every reconnection of this session (the call counts them)."""
        self._listeners.append(listener)

    async def send(self, message: Mapping[str, Any]) -> None:
        """Send a client message; held (in order) while reconnecting."""
        kept = self._drop_stale_tool_responses(message)
        if kept is not None:
            await self._deliver(kept)

    async def send_audio(self, pcm16le: bytes, rate_hz: int) -> None:
        """Send caller audio; held (bounded, in order) while reconnecting."""
        if not (self._switching or self._closed or self._failed):
            # Every 20 ms of every call: `_deliver`'s first round, without building an _Audio.
            session = self._current
            try:
                await session.send_audio(pcm16le, rate_hz)
                return
            except LiveConnectionClosed:
                if self._current is session:
                    self._lose_connection()
                    self._hold(_Audio(pcm16le, rate_hz))
                    return
        await self._deliver(_Audio(pcm16le, rate_hz))

    def __aiter__(self) -> AsyncIterator[ServerMessage]:
        iterator = self._messages()
        self._iterators.append(iterator)
        return iterator

    async def close(self) -> None:
        """End the conversation (idempotent); nothing is resumed after this."""
        if self._closed:
            return
        self._closed = True
        self._pending.clear()
        for iterator in list(self._iterators):
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(RuntimeError):  # still running in another task
                    await aclose()
        await self._current.close()

    # ------------------------------------------------------------------ sending

    async def _deliver(self, item: _Outgoing) -> None:
        while not (self._closed or self._failed):
            if self._switching:
                self._hold(item)
                return
            session = self._current
            try:
                if isinstance(item, _Audio):
                    await session.send_audio(item.pcm16le, item.rate_hz)
                else:
                    await session.send(item)
                    self._note_sent(item)
                return
            except LiveConnectionClosed:
                if self._current is not session:
                    continue  # swapped while we were sending: send it on the new connection
                self._lose_connection()
                self._hold(item)
                return

    def _hold(self, item: _Outgoing) -> None:
        if not isinstance(item, _Audio):
            if sum(1 for held in self._pending if not isinstance(held, _Audio)) >= (
                MAX_BUFFERED_MESSAGES
            ):
                log.warning("live_resume_buffer_full", kind="message")
                return
            self._pending.append(item)
            return
        self._pending.append(item)
        self._pending_audio_ms += item.duration_ms
        while self._pending_audio_ms > self._policy.buffer_ms:
            oldest = next(i for i, held in enumerate(self._pending) if isinstance(held, _Audio))
            dropped = self._pending[oldest]
            assert isinstance(dropped, _Audio)
            del self._pending[oldest]
            self._pending_audio_ms -= dropped.duration_ms
            if self._dropped_audio_ms == 0.0:
                log.warning(
                    "live_resume_buffer_full", kind="audio", buffer_ms=self._policy.buffer_ms
                )
            self._dropped_audio_ms += dropped.duration_ms

    def _lose_connection(self) -> None:
        """Stop sending on the current connection; the reader reconnects."""
        self._switching = True
        if self._lost_at is None:
            self._lost_at = time.monotonic()

    def _note_sent(self, message: Mapping[str, Any]) -> None:
        response = message.get("toolResponse")
        if isinstance(response, Mapping):
            for answer in response.get("functionResponses") or ():
                if isinstance(answer, Mapping):
                    self._tool_call_ids.discard(str(answer.get("id")))

    def _drop_stale_tool_responses(self, message: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Answers to tool calls of a connection we resumed past would confuse the new one."""
        response = message.get("toolResponse")
        if not self._stale_tool_call_ids or not isinstance(response, Mapping):
            return message
        answers = response.get("functionResponses") or []
        fresh = [
            a
            for a in answers
            if not (isinstance(a, Mapping) and a.get("id") in self._stale_tool_call_ids)
        ]
        if len(fresh) == len(answers):
            return message
        log.info("live_stale_tool_response_dropped", dropped=len(answers) - len(fresh))
        if not fresh:
            return None
        return {**message, "toolResponse": {**response, "functionResponses": fresh}}

    # ------------------------------------------------------------------ receiving

    async def _messages(self) -> AsyncIterator[ServerMessage]:
        loop = asyncio.get_running_loop()
        while not self._closed:
            session = self._current
            reader = aiter(session)
            self._iterators.append(reader)
            reason: str | None = None
            close_code: int | None = None
            try:
                while True:
                    deadline = self._go_away_deadline
                    try:
                        if deadline is None:
                            message = await anext(reader)
                        else:
                            async with asyncio.timeout(max(0.0, deadline - loop.time())):
                                message = await anext(reader)
                    except StopAsyncIteration:
                        break
                    self._observe(message, loop)
                    yield message
                    if self._ready_to_switch():
                        reason = "go_away"
                        break
            except TimeoutError:
                reason = "go_away_deadline"
            except LiveConnectionClosed as exc:
                if self._closed:
                    return
                # After setupComplete any close we did not ask for is a lost connection, a
                # 1000 or a 1007/1008 (seen right after a goAway ran out) too: resume.
                reason = f"closed_{exc.code}"
                close_code = exc.code
            finally:
                self._iterators.remove(reader)
            if reason is None:  # the connection ended without an error, and not by close()
                if self._closed:
                    return
                close_code = _close_code(session)
                if self._go_away_deadline is not None:
                    reason = "closed_after_go_away"
                else:
                    reason = "ended" if close_code is None else f"closed_{close_code}"
            synthetic = await self._resume(reason, close_code)
            if synthetic is not None:
                yield synthetic

    def _observe(self, message: ServerMessage, loop: asyncio.AbstractEventLoop) -> None:
        self._transcript.add("user", message.input_transcription)
        self._transcript.add("model", message.output_transcription)
        if message.audio or message.text or message.output_transcription or message.tool_calls:
            self._model_busy = True
            self._handle_fresh = False
        for call in message.tool_calls:
            self._tool_call_ids.add(call.id)
        self._tool_call_ids.difference_update(message.tool_call_cancellation_ids)
        if message.turn_complete:
            self._model_busy = False
            self._handle_fresh = False  # the finished turn is not in any handle yet
        if message.resumable is True and message.resumption_handle:
            self._handle = message.resumption_handle
            # A handle saved mid-turn is kept (better than none) but is no moment to switch.
            self._handle_fresh = not self._model_busy and not self._tool_call_ids
        elif message.resumable is False:
            self._handle_fresh = False
        if message.go_away_time_left_s is not None and self._go_away_deadline is None:
            time_left_s = message.go_away_time_left_s
            self._go_away_deadline = loop.time() + max(0.0, time_left_s - GO_AWAY_MARGIN_S)
            log.info(
                "live_go_away_received",
                time_left_s=time_left_s,
                switch_now=self._ready_to_switch(),
            )

    def _ready_to_switch(self) -> bool:
        return (
            self._go_away_deadline is not None
            and self._handle_fresh
            and not self._model_busy
            and not self._tool_call_ids
        )

    # ------------------------------------------------------------------ reconnecting

    async def _resume(self, reason: str, close_code: int | None) -> ServerMessage | None:
        """Swap in a new connection that resumes the conversation; raise if that fails."""
        planned = reason.startswith("go_away")
        now = time.monotonic()
        self._lose_connection()
        lost_at = self._lost_at if self._lost_at is not None else now
        old = self._current
        if planned or now - self._opened_at >= self._policy.stable_session_s:
            self._flaps = 0
        else:
            self._flaps += 1
        if not planned:
            with contextlib.suppress(Exception):
                await old.close()
        cut_short = not planned and self._model_busy
        stale = set(self._tool_call_ids)
        if self._handle is None:
            log.warning("live_resume_without_handle", reason=reason)
        try:
            if self._flaps >= self._policy.attempts:
                raise LiveResumeFailed(
                    self._flaps,
                    LiveConnectionClosed(
                        close_code,
                        f"{self._flaps} connections dropped right away (last: {reason})",
                    ),
                )
            # The new session is current once this returns.
            _, attempts, config = await self._reconnect()
        except LiveResumeFailed as exc:
            self._failed = exc
            self._pending.clear()
            with contextlib.suppress(Exception):
                await old.close()
            log.error("live_resume_failed", reason=reason, error=str(exc), attempts=exc.attempts)
            raise
        flushed_at = time.monotonic()
        with_handle = config.resumption_handle is not None
        record = ResumeRecord(
            reason=reason,
            close_code=close_code,
            gap_ms=round((flushed_at - lost_at) * 1000.0, 3),
            attempts=attempts,
            with_handle=with_handle,
            buffered_audio_ms=round(self._buffered_audio_ms_last, 1),
            dropped_audio_ms=round(self._dropped_audio_ms, 1),
            history_turns=len(config.initial_history),
            session_id=self.session_id,
        )
        self._opened_at = flushed_at
        self._lost_at = None
        self._dropped_audio_ms = 0.0
        self._model_busy = False
        self._handle_fresh = False
        self._go_away_deadline = None
        self._tool_call_ids.clear()
        self._stale_tool_call_ids |= stale
        self.resumes.append(record)
        log.info(
            "live_resumed",
            reason=reason,
            close_code=close_code,
            resume_gap_ms=record.gap_ms,
            attempts=attempts,
            with_handle=with_handle,
            history_turns=record.history_turns,
            buffered_audio_ms=record.buffered_audio_ms,
            dropped_audio_ms=record.dropped_audio_ms,
            session_id=record.session_id,
            previous_session_id=_session_id(old),
        )
        self._on_resume(record)
        for listener in self._listeners:
            try:
                listener(record)
            except Exception:
                log.exception("resume_listener_failed")
        if planned:
            with contextlib.suppress(Exception):
                await old.close()
        if stale or cut_short:
            cancelled = tuple(sorted(stale))
            return ServerMessage(tool_call_cancellation_ids=cancelled, turn_complete=True)
        return None

    async def _reconnect(self) -> tuple[_Session, int, SessionConfig]:
        """Connect with the latest handle (or else with the conversation so far as history) and
        flush the held messages into the new session; returns it, the attempts, its config."""
        total_attempts = 0
        failures = 0
        first_delay_s = self._policy.backoff_s(self._flaps) if self._flaps else 0.0
        while True:
            config = self._resume_config(self._handle)
            session, attempts, config = await _connect_with_retries(
                self._connector,
                config,
                self._policy,
                failures=failures,
                first_delay_s=first_delay_s,
                on_failure=self._without_rejected_handle,
            )
            total_attempts += attempts
            try:
                if config.initial_history:  # the first message, before the held ones
                    await session.send(
                        build_history(
                            config.initial_history, initial=self._profile.initial_history_config
                        )
                    )
                await self._flush(session)
            except LiveConnectionClosed as exc:
                log.warning("live_resume_flush_failed", error=str(exc))
                with contextlib.suppress(Exception):
                    await session.close()
                failures += attempts
                if failures >= self._policy.attempts:
                    raise LiveResumeFailed(total_attempts, exc) from None
                continue
            except BaseException:
                with contextlib.suppress(Exception):
                    await session.close()
                raise
            return session, total_attempts, config

    def _resume_config(self, handle: str | None) -> SessionConfig:
        """The next connection's setup: with `handle`, which carries the conversation; without
        one, the transcript so far as initial history, where the model takes history."""
        history: tuple[tuple[str, str], ...] = ()
        profile = self._profile
        takes_history = profile.initial_history_config or profile.mid_session_client_content
        if handle is None and takes_history:
            history = self._transcript.turns()
        return replace(self._config, resumption_handle=handle, initial_history=history)

    def _without_rejected_handle(self, exc: BaseException) -> SessionConfig | None:
        """A handle the service refuses (expired, unknown): go on without it, once."""
        if _retryable(exc) or self._handle is None:
            return None
        log.warning("live_resume_handle_rejected", error=str(exc))
        self._handle = None
        return self._resume_config(None)

    async def _flush(self, session: _Session) -> None:
        """Send what was held, in order, then make `session` current — in one step at the end,
        so a message the call sends meanwhile is appended to the queue and flushed too."""
        self._buffered_audio_ms_last = self._pending_audio_ms
        while self._pending:
            item = self._pending[0]
            if isinstance(item, _Audio):
                await session.send_audio(item.pcm16le, item.rate_hz)
                self._pending_audio_ms -= item.duration_ms
            else:
                kept = self._drop_stale_tool_responses(item)
                if kept is not None:
                    await session.send(kept)
            self._pending.popleft()
        self._pending_audio_ms = 0.0
        self._current = session
        self._switching = False


class ResilientLiveConnector:
    """Opens `ResilientLiveSession`s through `connector` (one per process is fine).

    Every setup asks for session resumption and context-window compression (without them a
    call could not outlive a connection, and audio sessions end at 15 minutes). The first
    connection is retried like a reconnection. `resumes` keeps the latest reconnections of all
    sessions (for benchmarks and metrics); `on_resume` is called for each one.
    """

    def __init__(
        self,
        connector: _Connector,
        *,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff_ms: int = DEFAULT_BACKOFF_MS,
        buffer_ms: int = DEFAULT_BUFFER_MS,
        stable_session_s: float = STABLE_SESSION_S,
        on_resume: Callable[[ResumeRecord], None] | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, not {attempts}")
        self._connector = connector
        self._policy = _Policy(attempts, backoff_ms, buffer_ms, stable_session_s)
        self._on_resume_hook = on_resume
        self.resumes: deque[ResumeRecord] = deque(maxlen=RECENT_RESUMES)

    @classmethod
    def from_settings(cls, connector: _Connector, settings: Settings) -> ResilientLiveConnector:
        """LIVE_RESUME_ATTEMPTS and LIVE_RESUME_BACKOFF_MS from the settings."""
        return cls(
            connector,
            attempts=settings.live_resume_attempts,
            backoff_ms=settings.live_resume_backoff_ms,
        )

    async def connect(self, config: SessionConfig) -> ResilientLiveSession:
        """Open the first connection (retried with backoff); raises `LiveResumeFailed`."""
        config = replace(config, session_resumption=True, context_window_compression=True)
        session, _, config = await _connect_with_retries(self._connector, config, self._policy)
        return ResilientLiveSession(self._connector, config, session, self._policy, self._record)

    def _record(self, record: ResumeRecord) -> None:
        self.resumes.append(record)
        if self._on_resume_hook is not None:
            try:
                self._on_resume_hook(record)
            except Exception:
                log.exception("on_resume_hook_failed")
