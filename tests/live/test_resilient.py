"""Session resumption: handles, reconnects, buffering, history, giving up.

Mostly with in-memory Live sessions; the last tests run against the emulator on loopback.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway.live.client import LiveConnectionClosed, LiveConnector
from gateway.live.emulator.server import LiveEmulator
from gateway.live.protocol import (
    FunctionCall,
    FunctionResponse,
    ServerMessage,
    SessionConfig,
    build_history,
    build_tool_response,
)
from gateway.live.resilient import (
    MAX_HISTORY_CHARS,
    MAX_HISTORY_TURNS,
    LiveResumeFailed,
    ResilientLiveConnector,
    ResilientLiveSession,
    ResumeRecord,
)
from tests.fakes import FakeLiveSession
from tests.live.conftest import send_chunks, turn_complete
from tests.live.signals import RATE_HZ, utterance

CHUNK = b"\x01\x00" * 480  # 20 ms at RATE_HZ (24 kHz)


def chunk(n: int) -> bytes:
    """A distinct 20 ms chunk, so order can be checked."""
    return n.to_bytes(2, "little") * 480


class RecordingLiveSession(FakeLiveSession):
    """A FakeLiveSession that names itself like Vertex (`session_id`) and records what it was
    sent, messages and audio, in one list (`events`) so their order can be checked."""

    def __init__(self, config: SessionConfig, session_id: str) -> None:
        super().__init__(config)
        self.session_id = session_id
        self.events: list[Mapping[str, Any] | bytes] = []

    async def send(self, message: Mapping[str, Any]) -> None:
        self.events.append(message)
        await super().send(message)

    async def send_audio(self, pcm16le: bytes, rate_hz: int) -> None:
        self.events.append(pcm16le)
        await super().send_audio(pcm16le, rate_hz)


class ScriptedConnector:
    """Each connect() takes the next outcome: None opens a RecordingLiveSession (ids s-1, s-2,
    …), an exception fails.

    `gate` holds connects (but not the first) open so a test can act while reconnecting.
    """

    def __init__(self, *outcomes: BaseException | None) -> None:
        self.outcomes: deque[BaseException | None] = deque(outcomes)
        self.configs: list[SessionConfig] = []
        self.sessions: list[RecordingLiveSession] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.connecting = asyncio.Event()
        self.opened = asyncio.Condition()

    async def connect(self, config: SessionConfig) -> RecordingLiveSession:
        self.configs.append(config)
        if len(self.configs) > 1:
            self.connecting.set()
            await self.gate.wait()
        outcome = self.outcomes.popleft() if self.outcomes else None
        if outcome is not None:
            raise outcome
        session = RecordingLiveSession(config, f"s-{len(self.sessions) + 1}")
        async with self.opened:
            self.sessions.append(session)
            self.opened.notify_all()
        return session

    async def wait_sessions(self, n: int) -> RecordingLiveSession:
        async with self.opened:
            await self.opened.wait_for(lambda: len(self.sessions) >= n)
        return self.sessions[n - 1]


class Consumer:
    """Iterates the session in a task, like the call's live pump."""

    def __init__(self, session: ResilientLiveSession) -> None:
        self.messages: list[ServerMessage] = []
        self.arrived = asyncio.Condition()
        self.ended = False
        self.task = asyncio.create_task(self._run(session))

    async def _run(self, session: ResilientLiveSession) -> None:
        try:
            async for message in session:
                async with self.arrived:
                    self.messages.append(message)
                    self.arrived.notify_all()
        finally:
            self.ended = True
            async with self.arrived:
                self.arrived.notify_all()

    async def wait_for(self, count: int) -> list[ServerMessage]:
        async with self.arrived:
            await self.arrived.wait_for(lambda: len(self.messages) >= count)
        return self.messages

    async def until(self, done: Callable[[ServerMessage], bool], *, after: int = 0) -> int:
        """Until a message past the first `after` that `done` accepts; returns its index + 1."""

        def found() -> bool:
            return any(done(m) for m in self.messages[after:])

        async with self.arrived:
            await self.arrived.wait_for(lambda: found() or self.ended)
        if not found():
            raise AssertionError(f"the session ended first; got {self.messages[-3:]}")
        return after + next(i for i, m in enumerate(self.messages[after:]) if done(m)) + 1


def handle(name: str, resumable: bool = True) -> ServerMessage:
    return ServerMessage(resumption_handle=name if resumable else None, resumable=resumable)


async def open_session(
    connector: ScriptedConnector, *, model: str = "m", **options: Any
) -> tuple[ResilientLiveSession, ResilientLiveConnector]:
    options.setdefault("backoff_ms", 0)
    resilient = ResilientLiveConnector(connector, **options)
    session = await resilient.connect(SessionConfig(model=model))
    return session, resilient


async def settle(live: FakeLiveSession) -> None:
    """Until the resilient session has consumed everything queued on `live` so far."""
    await live.barrier().wait()


async def test_every_setup_asks_for_resumption_and_compression_and_first_connect_retries() -> None:
    connector = ScriptedConnector(LiveConnectionClosed(None, "refused"), None)
    resilient = ResilientLiveConnector(connector, backoff_ms=0)
    config = SessionConfig(model="m", session_resumption=False, context_window_compression=False)
    await resilient.connect(config)
    assert len(connector.configs) == 2
    assert all(c.session_resumption and c.context_window_compression for c in connector.configs)


async def test_keeps_the_latest_resumable_handle_and_ignores_unresumable_updates() -> None:
    connector = ScriptedConnector()
    session, _ = await open_session(connector)
    consumer = Consumer(session)
    live = connector.sessions[0]
    for message in (handle("h-1"), handle("h-2"), handle("", resumable=False)):
        live.server.put_nowait(message)
    await settle(live)
    assert session.resumption_handle == "h-2"
    assert len(await consumer.wait_for(3)) == 3  # every message still reaches the call
    await session.close()


async def test_a_1011_reconnects_with_the_handle_and_flushes_held_audio_in_order() -> None:
    connector = ScriptedConnector()
    session, resilient = await open_session(connector)
    resumed: list[ResumeRecord] = []
    session.add_resume_listener(resumed.append)
    consumer = Consumer(session)
    first = connector.sessions[0]
    first.server.put_nowait(handle("h-1"))
    await session.send_audio(chunk(0), RATE_HZ)
    connector.gate.clear()
    first.server.put_nowait(LiveConnectionClosed(1011, "internal error"))
    await connector.connecting.wait()
    for n in range(1, 6):  # the caller goes on talking while Live reconnects
        await session.send_audio(chunk(n), RATE_HZ)
    connector.gate.set()
    second = await connector.wait_sessions(2)
    await second.wait_audio(5)
    assert [pcm for pcm, _ in second.audio] == [chunk(n) for n in range(1, 6)]
    assert [pcm for pcm, _ in first.audio] == [chunk(0)]
    assert connector.configs[1].resumption_handle == "h-1"
    assert connector.configs[1].initial_history == () and second.sent == []  # the handle has it
    await session.send_audio(chunk(6), RATE_HZ)  # afterwards audio goes straight to the new one
    await second.wait_audio(6)
    second.server.put_nowait(ServerMessage(turn_complete=True))
    messages = await consumer.wait_for(2)
    assert messages[-1].turn_complete
    (record,) = session.resumes
    assert record.reason == "closed_1011" and record.close_code == 1011
    assert record.with_handle and record.attempts == 1 and record.buffered_audio_ms == 100.0
    assert record.gap_ms >= 0 and session.last_resume_gap_ms == record.gap_ms
    assert resumed == [record] and list(resilient.resumes) == [record]
    await session.close()
    assert second.closed.is_set()


async def test_a_failing_send_is_held_and_delivered_after_the_resume() -> None:
    connector = ScriptedConnector()
    session, _ = await open_session(connector)
    Consumer(session)
    first = connector.sessions[0]

    async def dead(pcm16le: bytes, rate_hz: int) -> None:
        raise LiveConnectionClosed(1006, "connection lost without a close frame")

    first.send_audio = dead  # type: ignore[method-assign]
    await session.send_audio(chunk(1), RATE_HZ)  # does not raise: held
    first.server.put_nowait(LiveConnectionClosed(1006, "connection lost without a close frame"))
    second = await connector.wait_sessions(2)
    await second.wait_audio(1)
    assert second.audio == [(chunk(1), RATE_HZ)]
    assert session.resumes[0].reason == "closed_1006"
    assert not session.resumes[0].with_handle  # the service never sent one
    await session.close()


async def test_held_audio_is_bounded_and_the_oldest_is_dropped() -> None:
    connector = ScriptedConnector()
    session, _ = await open_session(connector, buffer_ms=100)
    Consumer(session)
    connector.gate.clear()
    connector.sessions[0].server.put_nowait(LiveConnectionClosed(1011, "x"))
    await connector.connecting.wait()
    for n in range(10):
        await session.send_audio(chunk(n), RATE_HZ)
    connector.gate.set()
    second = await connector.wait_sessions(2)
    await second.wait_audio(5)
    assert [pcm for pcm, _ in second.audio] == [chunk(n) for n in range(5, 10)]
    assert session.resumes[0].dropped_audio_ms == 100.0
    await session.close()


async def test_gives_up_after_the_attempts_with_a_clear_error_and_sends_go_nowhere() -> None:
    refused = LiveConnectionClosed(None, "cannot connect to ws://live: refused")
    connector = ScriptedConnector(None, refused, refused, refused)
    session, _ = await open_session(connector, attempts=3)
    first = connector.sessions[0]
    first.server.put_nowait(LiveConnectionClosed(1011, "deadline exceeded"))
    with pytest.raises(LiveResumeFailed) as failed:
        async for _ in session:
            pass
    assert failed.value.attempts == 3
    assert "gave up on Live after 3 failed attempt(s)" in str(failed.value)
    assert "refused" in str(failed.value)
    assert len(connector.configs) == 4
    await session.send_audio(CHUNK, RATE_HZ)  # the call may still be sending: no error
    await session.send(build_tool_response([FunctionResponse("x", "t", {})]))
    await session.close()


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (1000, "The operation was cancelled."),  # seen at the connection limit, no goAway
        (1007, "Request contains an invalid argument."),
        (1008, "Requested entity was not found."),
        (1002, "protocol error"),
        (4003, "an application code"),
        (None, "no WebSocket"),
    ],
)
async def test_mid_call_any_close_not_asked_for_is_resumed_with_the_latest_handle(
    code: int | None, reason: str
) -> None:
    connector = ScriptedConnector()
    session, _ = await open_session(connector)
    consumer = Consumer(session)
    first = connector.sessions[0]
    first.server.put_nowait(handle("h-1"))
    first.server.put_nowait(LiveConnectionClosed(code, reason))
    second = await connector.wait_sessions(2)
    assert connector.configs[1].resumption_handle == "h-1"
    second.server.put_nowait(ServerMessage(turn_complete=True))
    assert (await consumer.wait_for(2))[-1].turn_complete  # the conversation goes on
    (record,) = session.resumes
    assert (record.reason, record.close_code, record.with_handle) == (f"closed_{code}", code, True)
    await session.close()


async def test_a_connection_that_just_ends_without_go_away_is_resumed_too() -> None:
    connector = ScriptedConnector()
    session, _ = await open_session(connector)
    consumer = Consumer(session)
    first = connector.sessions[0]
    first.server.put_nowait(handle("h-1"))
    first.server.put_nowait(None)  # the iteration ends, but we never asked for a close
    second = await connector.wait_sessions(2)
    assert connector.configs[1].resumption_handle == "h-1"
    second.server.put_nowait(ServerMessage(turn_complete=True))
    assert (await consumer.wait_for(2))[-1].turn_complete
    assert session.resumes[0].reason == "ended"
    await session.close()


async def test_a_1008_right_after_a_go_away_ran_out_is_resumed() -> None:
    connector = ScriptedConnector()
    session, _ = await open_session(connector)
    consumer = Consumer(session)
    first = connector.sessions[0]
    for message in (
        handle("h-1"),
        ServerMessage(audio=(CHUNK,)),  # mid-answer: no moment to switch yet
        ServerMessage(go_away_time_left_s=50.0),
    ):
        first.server.put_nowait(message)
    await settle(first)
    first.server.put_nowait(LiveConnectionClosed(1008, "session expired"))  # the cut, early
    second = await connector.wait_sessions(2)
    assert connector.configs[1].resumption_handle == "h-1"
    messages = await consumer.wait_for(4)
    assert messages[-1].turn_complete  # the answer that was cut off is closed
    assert (session.resumes[0].reason, session.resumes[0].close_code) == ("closed_1008", 1008)
    second.server.put_nowait(ServerMessage(turn_complete=True))
    await consumer.wait_for(5)
    await session.close()


@pytest.mark.parametrize("code", [1007, 1008])
async def test_a_connect_refused_before_setup_complete_with_1007_or_1008_is_final(
    code: int,
) -> None:
    refused = LiveConnectionClosed(code, "unknown model")
    with pytest.raises(LiveResumeFailed) as failed:
        await open_session(ScriptedConnector(refused))
    assert failed.value.attempts == 1 and failed.value.code == code
    # A reconnect refused so, without a handle to blame, is final too.
    connector = ScriptedConnector(None, refused)
    session, _ = await open_session(connector)
    connector.sessions[0].server.put_nowait(LiveConnectionClosed(1011, "internal error"))
    with pytest.raises(LiveResumeFailed):
        async for _ in session:
            pass
    assert len(connector.configs) == 2


async def test_our_own_close_is_never_resumed() -> None:
    connector = ScriptedConnector()
    session, _ = await open_session(connector)
    consumer = Consumer(session)
    connector.sessions[0].server.put_nowait(handle("h-1"))
    await consumer.wait_for(1)
    await session.close()
    await consumer.task
    assert connector.sessions[0].closed.is_set()
    assert len(connector.configs) == 1 and session.resumes == []


async def test_the_session_id_is_the_current_connections_and_logged_on_resume() -> None:
    connector = ScriptedConnector()
    session, _ = await open_session(connector)
    assert session.session_id == "s-1"
    Consumer(session)
    with capture_logs() as logs:
        connector.sessions[0].server.put_nowait(LiveConnectionClosed(1011, "internal error"))
        await connector.wait_sessions(2)
        await session.send({"realtimeInput": {"text": "sync"}})  # delivered once swapped in
        await connector.sessions[1].wait_sent(lambda m: "realtimeInput" in m)
    assert session.session_id == "s-2" and session.resumes[0].session_id == "s-2"
    (resumed,) = [entry for entry in logs if entry["event"] == "live_resumed"]
    assert (resumed["session_id"], resumed["previous_session_id"]) == ("s-2", "s-1")
    await session.close()


def transcript(role: str, text: str) -> ServerMessage:
    if role == "user":
        return ServerMessage(input_transcription=text)
    return ServerMessage(output_transcription=text)


CONVERSATION = [
    ("user", "I'd like to "),
    ("user", "book a table."),
    ("model", "For how "),
    ("model", "many people?"),
    ("user", "Four."),
]
TURNS = (
    ("user", "I'd like to book a table."),
    ("model", "For how many people?"),
    ("user", "Four."),
)


@pytest.mark.parametrize(
    ("model", "initial"),
    [
        ("gemini-3.8-live", True),  # historyConfig.initialHistoryInClientContent
        ("gemini-2.5-flash-native-audio-preview-12-2025", False),  # context, no turnComplete
    ],
)
async def test_resuming_without_a_handle_gives_the_conversation_back_first(
    model: str, initial: bool
) -> None:
    connector = ScriptedConnector()
    session, _ = await open_session(connector, model=model)
    Consumer(session)
    first = connector.sessions[0]
    for role, text in CONVERSATION:  # no handle ever came
        first.server.put_nowait(transcript(role, text))
    await settle(first)
    assert session.history == TURNS
    connector.gate.clear()
    first.server.put_nowait(LiveConnectionClosed(1011, "internal error"))
    await connector.connecting.wait()
    await session.send_audio(chunk(1), RATE_HZ)  # held while reconnecting
    connector.gate.set()
    second = await connector.wait_sessions(2)
    await second.wait_audio(1)
    config = connector.configs[1]
    assert config.resumption_handle is None and config.initial_history == TURNS
    assert second.events == [build_history(TURNS, initial=initial), chunk(1)]  # history first
    (record,) = session.resumes
    assert not record.with_handle and record.history_turns == 3
    await session.close()


async def test_a_rejected_handle_is_replaced_by_the_conversation_so_far() -> None:
    connector = ScriptedConnector(None, LiveConnectionClosed(1008, "invalid handle"))
    session, _ = await open_session(connector)
    Consumer(session)
    first = connector.sessions[0]
    first.server.put_nowait(handle("h-1"))
    for role, text in CONVERSATION:
        first.server.put_nowait(transcript(role, text))
    first.server.put_nowait(LiveConnectionClosed(1011, "internal error"))
    second = await connector.wait_sessions(2)
    await second.wait_sent(lambda m: "clientContent" in m)
    assert [(c.resumption_handle, c.initial_history) for c in connector.configs[1:]] == [
        ("h-1", ()),
        (None, TURNS),
    ]
    assert second.events[0] == build_history(TURNS, initial=True)
    (record,) = session.resumes
    assert not record.with_handle and record.history_turns == 3
    await session.close()


async def test_the_history_kept_is_bounded_to_the_latest_turns_and_characters() -> None:
    connector = ScriptedConnector()
    session, _ = await open_session(connector)
    Consumer(session)
    first = connector.sessions[0]
    for n in range(MAX_HISTORY_TURNS + 20):
        first.server.put_nowait(transcript("user" if n % 2 == 0 else "model", f"turn {n}"))
    await settle(first)
    history = session.history
    assert len(history) == MAX_HISTORY_TURNS and history[-1] == ("model", "turn 69")
    first.server.put_nowait(transcript("user", "x" * (MAX_HISTORY_CHARS + 10) + " end"))
    await settle(first)
    assert session.history == (("user", "x" * (MAX_HISTORY_CHARS - 4) + " end"),)
    await session.close()


async def test_go_away_waits_for_the_turn_to_end_and_a_fresh_handle() -> None:
    connector = ScriptedConnector()
    session, _ = await open_session(connector)
    consumer = Consumer(session)
    first = connector.sessions[0]
    for message in (
        handle("h-1"),
        ServerMessage(audio=(CHUNK,)),  # the model is mid-answer
        ServerMessage(go_away_time_left_s=50.0),
        ServerMessage(audio=(CHUNK,)),
        handle("h-mid"),  # saved mid-turn: resuming from it would repeat the answer's start
        ServerMessage(turn_complete=True),
    ):
        first.server.put_nowait(message)
    await settle(first)
    assert len(connector.configs) == 1  # the answer is not cut off
    await session.send_audio(chunk(1), RATE_HZ)
    first.server.put_nowait(handle("h-2"))  # the turn is saved: now is a safe moment
    second = await connector.wait_sessions(2)
    assert connector.configs[1].resumption_handle == "h-2"
    await session.send_audio(chunk(2), RATE_HZ)
    await second.wait_audio(1)
    assert [pcm for pcm, _ in first.audio] == [chunk(1)]
    assert [pcm for pcm, _ in second.audio] == [chunk(2)]
    second.server.put_nowait(ServerMessage(turn_complete=True))
    messages = await consumer.wait_for(8)
    assert messages[-1].turn_complete and not messages[-1].tool_call_cancellation_ids
    assert first.closed.is_set()
    assert session.resumes[0].reason == "go_away" and session.resumes[0].close_code is None
    await session.close()


async def test_go_away_deadline_switches_anyway_and_cancels_the_forgotten_tool_call() -> None:
    connector = ScriptedConnector()
    session, _ = await open_session(connector)
    consumer = Consumer(session)
    first = connector.sessions[0]
    first.server.put_nowait(handle("h-1"))
    first.server.put_nowait(ServerMessage(tool_calls=(FunctionCall("fc-1", "lookup", {}),)))
    first.server.put_nowait(ServerMessage(go_away_time_left_s=0.0))  # no time to wait
    second = await connector.wait_sessions(2)
    messages = await consumer.wait_for(4)
    assert messages[-1].tool_call_cancellation_ids == ("fc-1",)
    assert session.resumes[0].reason == "go_away_deadline"
    # The call's late answer to the forgotten call is not sent to the new session.
    await session.send(build_tool_response([FunctionResponse("fc-1", "lookup", {"ok": 1})]))
    await session.send({"realtimeInput": {"text": "hi"}})
    assert second.sent == [{"realtimeInput": {"text": "hi"}}]
    await session.close()


@pytest.mark.parametrize("code", [1011, 1008, 1000])
async def test_connections_that_keep_dropping_at_once_end_the_call(code: int) -> None:
    connector = ScriptedConnector()
    session, _ = await open_session(connector, attempts=3)

    async def drop_each_new_session() -> None:
        for n in range(1, 10):
            live = await connector.wait_sessions(n)
            live.server.put_nowait(LiveConnectionClosed(code, "closed"))

    dropper = asyncio.create_task(drop_each_new_session())
    with pytest.raises(LiveResumeFailed, match="dropped right away") as failed:
        async for _ in session:
            pass
    dropper.cancel()
    assert len(connector.sessions) == 3
    assert failed.value.code == code


async def test_close_while_reconnecting_closes_everything() -> None:
    connector = ScriptedConnector()
    session, _ = await open_session(connector)
    consumer = Consumer(session)
    connector.gate.clear()
    connector.sessions[0].server.put_nowait(LiveConnectionClosed(1011, "x"))
    await connector.connecting.wait()
    consumer.task.cancel()  # the call ends (its live pump is cancelled), then closes Live
    await asyncio.gather(consumer.task, return_exceptions=True)
    await session.close()
    assert connector.sessions[0].closed.is_set()
    connector.gate.set()
    assert len(connector.sessions) == 1


# --------------------------------------------------------------------------- on loopback


async def resilient_on(connector: LiveConnector) -> ResilientLiveSession:
    """A resuming session on the emulator; every connection counts as stable (no flaps)."""
    resilient = ResilientLiveConnector(connector, backoff_ms=0, stable_session_s=0.0)
    return await resilient.connect(SessionConfig(model="gemini-3.8-live"))


def has_handle(message: ServerMessage) -> bool:
    return message.resumption_handle is not None


@pytest.mark.parametrize("code", [1000, 1007, 1008, 1011, 1006])
async def test_on_loopback_every_close_not_asked_for_is_resumed_with_the_latest_handle(
    emulator: LiveEmulator, connector: LiveConnector, code: int
) -> None:
    session = await resilient_on(connector)
    consumer = Consumer(session)
    seen = await consumer.until(has_handle)  # the emulator saves one right after setup
    saved = session.resumption_handle
    if code == 1006:
        await emulator.drop_sessions()
    else:
        await emulator.close_sessions(code, "The operation was cancelled.")
    await emulator.wait_opened_sessions(2)
    await send_chunks(session, utterance(), RATE_HZ)
    await consumer.until(turn_complete, after=seen)  # the new connection answers the caller
    assert emulator.client_setups[1].resumption_handle == saved
    assert emulator.resumed_handles == [saved]
    (record,) = session.resumes
    assert record.close_code == code and record.with_handle and record.history_turns == 0
    await session.close()
    assert session.resumes == [record]


async def test_on_loopback_a_refused_handle_is_replaced_by_the_conversation_so_far(
    emulator: LiveEmulator, connector: LiveConnector
) -> None:
    session = await resilient_on(connector)
    consumer = Consumer(session)
    await send_chunks(session, utterance(), RATE_HZ)
    seen = await consumer.until(turn_complete)
    history = session.history
    assert [role for role, _ in history] == ["user", "model"]
    emulator.refuse_next(1, close_code=1008)  # the reconnect with the handle is refused
    await emulator.close_sessions(1011, "internal error")
    await emulator.wait_opened_sessions(3)
    await session.send({"realtimeInput": {"text": "Are you still there?"}})
    await consumer.until(turn_complete, after=seen)  # so the history frame has been read
    assert emulator.client_setups[-1].resumption_handle is None
    assert emulator.setups[-1]["historyConfig"] == {"initialHistoryInClientContent": True}
    assert "\n".join(text for _, text in history) in emulator.client_texts
    assert emulator.client_texts.index("Are you still there?") > emulator.client_texts.index(
        "\n".join(text for _, text in history)
    )
    (record,) = session.resumes
    assert not record.with_handle and record.history_turns == 2
    await session.close()
