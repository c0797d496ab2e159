"""How a call ends from the gateway's side: goodbyes, hang-ups, transfers and time limits.

`CallSupervisor` is the call's `CallControl` (what built-in tools may do) plus the agent's
limits (`max_call_duration_s`, `idle_timeout_s`, `end_call_phrases`). Everything that ends a
call on purpose goes through `_request_end`:

1. optionally prompt the model (a wrap-up or idle goodbye);
2. *arm* once the model can answer: at once for an end phrase (the goodbye is the current
   turn), after the tool response for `end_call` / transfers, after the prompt otherwise —
   so a `turnComplete` that Live sends right after a `toolCall` is not taken for the goodbye;
3. the first armed turn that completes un-interrupted is the goodbye: hang up when Twilio
   echoes its `mark` (the caller has *heard* it). A turn without audio means the goodbye was
   said earlier: wait for what is still playing, or — if nothing is — `END_QUIET_S` for the
   model to start speaking;
4. hang up through the carrier's REST API when credentials are set (or `<Dial>` a transfer
   target), then close the stream — which by itself ends a `<Connect><Stream>` call.

`END_GRACE_S` bounds steps 2–3, so a model that never finishes cannot keep a call open.
Timers use the event loop's clock (`call_later`), never sleeps.

Extended-thinking models report `interactionStatus`: while it is IN_PROGRESS the model is
still working in the background (and may have spoken only a filler), so no idle reminder or
idle hang-up fires, a completed turn is not taken for the goodbye, and the end grace waits
(bounded by `BACKGROUND_GRACE_S`) — the end-of-call wait holds until it says IDLE.

A silent caller is always ended by `idle_timeout_s`: idle time counts from the last Live
message or mark echo, or from when the agent's audio has played (its length, counted as it
arrives) if later — never from marks the carrier does not echo. Only the caller's own doing
resets the reminders: a key press, or speech Live transcribed. A bare `interrupted` is not
proof (our own reminder can interrupt the model), except on sessions without input
transcription, where it counts unless one of our prompts may have caused it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from gateway.agents.config import AgentConfig
from gateway.live.models import ToolScheduling
from gateway.live.protocol import ServerMessage
from gateway.telephony.base import StreamStart
from gateway.telephony.carrier import CarrierRest, CarrierRestError
from gateway.tools.dtmf import dtmf_mulaw
from gateway.tools.spec import TransferTarget

__all__ = [
    "END_GRACE_S",
    "END_QUIET_S",
    "MAX_DURATION_PROMPT",
    "TRANSFER_FAILED_PROMPT",
    "CallHooks",
    "CallSupervisor",
    "EndCause",
    "normalise_speech",
]

END_GRACE_S = 15.0
"""After an end is requested, the longest we wait for the goodbye to play before hanging up."""
END_QUIET_S = 1.5
"""A goodbye turn without audio: how long the model may take to start speaking after all."""
BACKGROUND_GRACE_S = 60.0
"""How much longer than `END_GRACE_S` an end may wait for a model still working in the
background (interactionStatus IN_PROGRESS) before the call is hung up anyway."""
IN_PROGRESS = "IN_PROGRESS"
MAX_DURATION_PROMPT = (
    "The call has reached its time limit. Politely tell the caller that you have to end the "
    "call now, and say goodbye in one or two short sentences."
)
TRANSFER_FAILED_PROMPT = (
    "The transfer did not go through. Apologise briefly and offer to help another way or to "
    "take a message."
)

_NOT_WORD = re.compile(r"[^\w']+")


class EndCause:
    """Why the gateway ended a call: the `EndReason` values the supervisor asks for."""

    AGENT_ENDED = "agent_ended"
    END_PHRASE = "end_phrase"
    TRANSFERRED = "transferred"
    MAX_DURATION = "max_duration"
    IDLE_TIMEOUT = "idle_timeout"


class CallHooks(Protocol):
    """What the supervisor needs from the call (implemented by `gateway.call.bridge.Call`)."""

    async def send_prompt(self, text: str) -> None:
        """Tell the model something as a user turn; it answers out loud."""
        ...

    def claim_end(self, reason: str | None) -> None:
        """Reserve `reason` as the end reason (the carrier may hang up before `end` runs);
        None gives an unused reservation back."""
        ...

    def end(self, reason: str) -> None:
        """End the call now: stop the pumps, close Live and the stream."""
        ...

    def play_mulaw(self, mulaw: bytes) -> None:
        """Queue 8 kHz μ-law audio for the caller after what is already queued."""
        ...


def normalise_speech(text: str) -> str:
    """Lower-case words separated by single spaces, punctuation gone, padded with spaces."""
    return " " + " ".join(_NOT_WORD.sub(" ", text.lower()).split()) + " "


@dataclass
class _PendingEnd:
    reason: str
    transfer: tuple[str, TransferTarget] | None = None
    armed: bool = False
    """The model can answer the request: the next completed turn is the goodbye."""
    mark: str | None = None
    """The mark whose echo means the goodbye was heard."""
    arm_after_turn: bool = False
    """Arm once the model turn in progress completes (a WHEN_IDLE answer comes after it)."""


class CallSupervisor:
    """The agent's limits and the built-ins' power over one call."""

    def __init__(
        self,
        agent: AgentConfig,
        start: StreamStart,
        hooks: CallHooks,
        *,
        carrier: CarrierRest | None = None,
        log: Any = None,
    ) -> None:
        self._agent = agent
        self._start = start
        self._hooks = hooks
        self._carrier = carrier
        self._log = log or structlog.get_logger("gateway.call_control")
        self._phrases = tuple(normalise_speech(p) for p in agent.end_call_phrases)
        self._turn_text = ""
        self._turn_audio = False
        self._turn_barged_in = False
        self._last_activity = time.monotonic()
        self._played_until = 0.0
        """When the agent audio queued so far has played (monotonic s), if it plays at once."""
        self._prompted = False
        """One of our prompts went to Live since the last completed turn: an `interrupted`
        now may be its doing, not the caller's."""
        self._reminders_sent = 0
        self._unplayed_marks: dict[str, None] = {}
        """Marks of turns queued for the caller and not yet echoed, oldest first."""
        self._pending: _PendingEnd | None = None
        self._background_work = False
        """The model said interactionStatus IN_PROGRESS and not yet IDLE."""
        self._model_in_turn = False
        """The model has said or called something since its last completed turn."""
        self._grace_extended_s = 0.0
        self._finishing = False
        self._closed = False
        self._handles: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Arm the agent's timers (call once, when the call begins)."""
        self._last_activity = time.monotonic()
        if self._agent.max_call_duration_s is not None:
            self._arm("max_duration", self._agent.max_call_duration_s, self._on_max_duration)
        if self._agent.idle_timeout_s is not None:
            self._arm("idle", self._agent.idle_timeout_s, self._on_idle_timer)

    async def close(self) -> None:
        """Disarm every timer and cancel what is still running (the call is over)."""
        self._closed = True
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def ending(self) -> bool:
        """An end (hang-up or transfer) has been requested."""
        return self._pending is not None

    @property
    def waiting_for(self) -> str | None:
        """What a requested end waits for: `answer` (the model cannot answer yet), `turn`,
        `mark <name>`, `quiet`, `hang_up`; None when no end is requested."""
        pending = self._pending
        if pending is None:
            return None
        if self._finishing:
            return "hang_up"
        if pending.mark is not None:
            return f"mark {pending.mark}"
        if "quiet" in self._handles:
            return "quiet"
        return "turn" if pending.armed else "answer"

    # ------------------------------------------------------------------ CallControl

    def end_after_turn(self, reason: str) -> None:
        self._log.info("end_call_requested", reason=reason)
        self._request_end(EndCause.AGENT_ENDED)

    def can_transfer(self) -> bool:
        return self._carrier is not None and self._pending is None

    def transfer_after_turn(self, target_name: str, target: TransferTarget) -> None:
        self._log.info("transfer_requested", target=target_name)
        self._request_end(EndCause.TRANSFERRED, transfer=(target_name, target))

    def play_dtmf(self, digits: str) -> None:
        self._log.info("dtmf_sent", digits=digits)
        self._hooks.play_mulaw(dtmf_mulaw(digits))

    # ------------------------------------------------------------------ what the call reports

    def caller_active(self) -> None:
        """The caller spoke or pressed a key: not idle, and reminders start over."""
        self._last_activity = time.monotonic()
        self._reminders_sent = 0

    def live_message(self, message: ServerMessage) -> None:
        """Every Live message (before its `turnComplete` is handled): activity, end phrases."""
        now = self._last_activity = time.monotonic()
        if message.audio:
            audio_s = sum(len(chunk) for chunk in message.audio) / 2 / message.audio_rate_hz
            self._played_until = max(self._played_until, now) + audio_s
        if message.interaction_status is not None:
            self._background_work = message.interaction_status == IN_PROGRESS
        if message.audio or message.output_transcription or message.tool_calls:
            self._model_in_turn = True
        if message.input_transcription:
            self.caller_active()
        if message.audio and not self._turn_audio:
            self._turn_audio = True
            quiet = self._handles.pop("quiet", None)
            if quiet is not None:  # the goodbye comes after all
                quiet.cancel()
        if message.output_transcription:
            self._agent_said(message.output_transcription)

    def tool_response_sent(self, scheduling: ToolScheduling | None = None) -> None:
        """A tool response went to Live: the model can now answer an `end_call` or transfer.

        A blocking call's answer is the model's next turn, and so is an INTERRUPT one (the
        turn in progress is interrupted) or a SILENT one. A WHEN_IDLE answer comes after the
        model has finished the turn in progress (the turn that made the call, or a filler
        meanwhile): that turn is not the goodbye, the one after it is.
        """
        pending = self._pending
        if pending is None or pending.armed:
            return
        if scheduling is ToolScheduling.WHEN_IDLE and self._model_in_turn:
            pending.arm_after_turn = True
        else:
            pending.armed = True

    def turn_completed(self, mark: str | None, *, interrupted: bool) -> None:
        """A model turn ended; `mark` is the mark queued after its audio (None: no audio)."""
        interrupted = interrupted or self._turn_barged_in
        self._turn_text = ""
        self._turn_audio = False
        self._turn_barged_in = False
        self._last_activity = time.monotonic()
        self._model_in_turn = False
        self._prompted = False
        if mark is not None:
            self._unplayed_marks[mark] = None
        pending = self._pending
        if pending is not None and pending.arm_after_turn:
            pending.armed, pending.arm_after_turn = True, False  # the goodbye comes next
            return
        if pending is None or not pending.armed or interrupted or self._background_work:
            return  # (a turn ending IN_PROGRESS is a filler: the answer is still to come)
        if pending.mark is not None or self._finishing:
            return
        if mark is None and self._unplayed_marks:
            mark = next(reversed(self._unplayed_marks))  # the goodbye was said before
        if mark is not None:
            pending.mark = mark
        else:
            self._arm("quiet", END_QUIET_S, self._on_quiet)

    def mark_played(self, name: str) -> None:
        """Twilio echoed `name`: the caller has heard that turn to its end."""
        self._unplayed_marks.pop(name, None)
        self._last_activity = time.monotonic()
        if not self._unplayed_marks and not self._turn_audio:  # all queued audio was heard
            self._played_until = min(self._played_until, self._last_activity)
        pending = self._pending
        if pending is not None and pending.mark == name:
            self._finish()

    def barged_in(self) -> None:
        """Live interrupted the agent (`interrupted`): queued audio and its marks are gone.

        Caller activity only without input transcription and none of our prompts in flight;
        with transcription, the caller's speech shows as such (`live_message`).
        """
        self._unplayed_marks.clear()
        self._turn_barged_in = True
        self._turn_audio = False
        self._played_until = time.monotonic()
        if not self._agent.transcription.input and not self._prompted:
            self.caller_active()
        if self._pending is not None and not self._finishing:
            self._pending.mark = None  # wait for the next completed turn

    def _agent_said(self, text: str) -> None:
        if not self._phrases or self._pending is not None:
            return
        self._turn_text += text
        spoken = normalise_speech(self._turn_text)
        for phrase in self._phrases:
            if phrase in spoken:
                self._log.info("end_phrase_heard", phrase=phrase.strip())
                self._request_end(EndCause.END_PHRASE, armed=True)
                return

    # ------------------------------------------------------------------ timers

    def _arm(self, name: str, delay_s: float, callback: Callable[[], None]) -> None:
        if self._closed:
            return
        old = self._handles.pop(name, None)
        if old is not None:
            old.cancel()
        self._handles[name] = asyncio.get_running_loop().call_later(delay_s, callback)

    def _on_max_duration(self) -> None:
        self._handles.pop("max_duration", None)
        self._log.info("max_call_duration_reached", limit_s=self._agent.max_call_duration_s)
        self._request_end(EndCause.MAX_DURATION, prompt=MAX_DURATION_PROMPT)

    def _on_idle_timer(self) -> None:
        self._handles.pop("idle", None)
        timeout_s = self._agent.idle_timeout_s
        if timeout_s is None or self._pending is not None:
            return
        # Idle since the last thing that happened, or since the agent's audio has played:
        # unechoed marks delay the timer by no more than the audio they stand for.
        idle_s = time.monotonic() - max(self._last_activity, self._played_until)
        if self._background_work and idle_s < timeout_s + BACKGROUND_GRACE_S:
            self._arm("idle", timeout_s, self._on_idle_timer)  # working on the caller's request
            return
        if idle_s < timeout_s:  # something happened since: look again when it would expire
            self._arm("idle", timeout_s - idle_s, self._on_idle_timer)
            return
        if self._unplayed_marks:
            self._log.info("idle_despite_unechoed_marks", marks=len(self._unplayed_marks))
        if self._reminders_sent == 0:
            self._reminders_sent += 1
            self._last_activity = time.monotonic()
            self._log.info("idle_reminder", idle_s=round(idle_s, 1))
            self._prompted = True
            self._spawn(self._hooks.send_prompt(self._agent.idle_reminder))
            self._arm("idle", timeout_s, self._on_idle_timer)
            return
        self._log.info("idle_timeout", idle_s=round(idle_s, 1))
        self._request_end(EndCause.IDLE_TIMEOUT, prompt=self._agent.idle_goodbye)

    def _on_quiet(self) -> None:
        self._handles.pop("quiet", None)
        pending = self._pending
        if self._background_work:
            return  # the goodbye is still to come; the next IDLE turn brings it
        if pending is not None and pending.mark is None and not self._turn_audio:
            self._finish()

    def _on_grace_expired(self) -> None:
        self._handles.pop("grace", None)
        if self._background_work and self._grace_extended_s < BACKGROUND_GRACE_S:
            self._grace_extended_s += END_GRACE_S
            self._log.info("end_waits_for_background_work", waited_s=self._grace_extended_s)
            self._arm("grace", END_GRACE_S, self._on_grace_expired)
            return
        self._log.warning("end_grace_expired", grace_s=END_GRACE_S + self._grace_extended_s)
        self._finish()

    # ------------------------------------------------------------------ ending

    def _request_end(
        self,
        reason: str,
        *,
        prompt: str | None = None,
        transfer: tuple[str, TransferTarget] | None = None,
        armed: bool = False,
    ) -> None:
        if self._pending is not None or self._closed:
            return  # the first request wins
        pending = _PendingEnd(reason, transfer, armed=armed)
        self._pending = pending
        self._arm("grace", END_GRACE_S, self._on_grace_expired)
        if prompt is not None:
            self._prompted = True
            self._spawn(self._prompt_then_arm(prompt, pending))

    async def _prompt_then_arm(self, prompt: str, pending: _PendingEnd) -> None:
        await self._hooks.send_prompt(prompt)
        pending.armed = True  # the answer to the prompt comes after it was sent

    def _finish(self) -> None:
        pending = self._pending
        if pending is None or self._finishing:
            return
        self._finishing = True
        for name in ("grace", "quiet"):
            handle = self._handles.pop(name, None)
            if handle is not None:
                handle.cancel()
        self._spawn(self._hang_up(pending))

    async def _hang_up(self, pending: _PendingEnd) -> None:
        start = self._start
        account = start.account_sid or None
        carrier = self._carrier
        self._hooks.claim_end(pending.reason)
        if pending.transfer is not None:
            name, target = pending.transfer
            try:
                if carrier is None:
                    raise CarrierRestError("no carrier REST credentials")
                await carrier.transfer(account, start.call_sid, target)
            except CarrierRestError as exc:
                await self._transfer_failed(str(exc))
                return
            self._log.info("call_transferred", target=name)
        elif carrier is not None:
            try:
                await carrier.hang_up(account, start.call_sid)
                self._log.info("carrier_hung_up")
            except CarrierRestError as exc:
                self._log.error("carrier_hang_up_failed", error=str(exc))
        self._hooks.end(pending.reason)

    async def _transfer_failed(self, error: str) -> None:
        """The call goes on: the model hears that the transfer failed and says so."""
        self._log.error("transfer_failed", error=error)
        self._hooks.claim_end(None)
        self._pending = None
        self._finishing = False
        self._prompted = True
        await self._hooks.send_prompt(TRANSFER_FAILED_PROMPT)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        if self._closed:
            coroutine.close()
            return
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self._log.error("call_control_failed", error=repr(exc), exc_info=exc)
