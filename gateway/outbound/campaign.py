"""The campaign engine: calls every row of a numbers file through the call API, paced, inside
each row's local calling window, with retries, never calling anyone twice across restarts.

One task, one loop: poll the calls in flight, start what may start, sleep until something can
change. Time and the API come in as `Clock` and `Placer`, so tests drive hours of a campaign
with a fake clock and an in-memory API, and never sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, TextIO
from zoneinfo import ZoneInfo

from gateway.outbound.campaign_rules import OUTCOMES, CallingWindow, RetryPolicy, zone
from gateway.outbound.campaign_store import CampaignStore, StoredRow
from gateway.outbound.client import (
    ApiError,
    CallRecord,
    DeliveryUnknown,
    NotSent,
    Placer,
    PlaceRequest,
)

__all__ = [
    "CampaignAborted",
    "CampaignEngine",
    "CampaignSettings",
    "CampaignStatus",
    "Clock",
    "Progress",
    "SystemClock",
    "TerminalProgress",
    "summary_line",
]

MAX_SLEEP_S = 300.0
"""The longest single sleep: a real clock that jumps (suspend, NTP) is looked at again soon."""


class Clock(Protocol):
    """Where the engine's time comes from: `now()` is timezone-aware UTC."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class CampaignStatus:
    """A snapshot for progress displays."""

    total: int
    done: int
    in_flight: int
    outcomes: dict[str, int]
    waiting_until: datetime | None = None


class Progress(Protocol):
    def update(self, status: CampaignStatus) -> None: ...

    def note(self, message: str) -> None: ...


class _Silent:
    def update(self, status: CampaignStatus) -> None:
        pass

    def note(self, message: str) -> None:
        pass


class CampaignAborted(Exception):
    """The campaign cannot go on (the gateway refuses the token or the agent, or cannot be
    reached); the state file is consistent and the same command resumes it."""


@dataclass(frozen=True)
class CampaignSettings:
    """How calls are placed; may change between runs of one campaign (unlike its numbers)."""

    agent: str
    from_: str | None = None
    carrier: str | None = None
    calls_per_minute: float = 10.0
    max_concurrent: int = 1
    window: CallingWindow = field(default_factory=lambda: CallingWindow.parse("09:00-21:00"))
    default_timezone: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    do_not_call: frozenset[str] = frozenset()
    poll_interval_s: float = 2.0
    stop_outside_window: bool = False
    """End the run (rows left `pending`, reported `skipped-window`) instead of sleeping until
    a window opens."""

    def __post_init__(self) -> None:
        if self.calls_per_minute <= 0 or self.max_concurrent < 1 or self.poll_interval_s <= 0:
            raise ValueError("calls_per_minute, max_concurrent and poll_interval_s must be > 0")


@dataclass
class _InFlight:
    attempt_id: int
    row: StoredRow
    call_id: str
    state: str
    next_poll: datetime
    failing: bool = False
    """The last look at it failed (noted once, not at every poll)."""


class CampaignEngine:
    """Runs one campaign over its state file until every row is done (or it is stopped)."""

    def __init__(
        self,
        store: CampaignStore,
        settings: CampaignSettings,
        placer: Placer,
        clock: Clock,
        progress: Progress | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.placer = placer
        self.clock = clock
        self.progress: Progress = progress or _Silent()
        self._rows = store.rows()
        self._pending: list[StoredRow] = []
        self._in_flight: dict[int, _InFlight] = {}
        last = store.last_start()
        self._last_start = datetime.fromtimestamp(last, UTC) if last is not None else None
        self._spacing = timedelta(seconds=60.0 / settings.calls_per_minute)
        self._zones: dict[str, ZoneInfo] = {}
        self._noted_wait: datetime | None = None
        self.stopped_outside_window = False

    # ------------------------------------------------------------------------ running

    async def run(self) -> CampaignStatus:
        """Call until every row is done; returns the final status. Raises `CampaignAborted`
        when the gateway refuses the campaign; cancelling it leaves a resumable state file."""
        self._resume()
        while True:
            now = self.clock.now()
            await self._poll(now)
            await self._start_calls()
            if not self._in_flight and not self._pending:
                break
            now = self.clock.now()
            wake, window_wait = self._next_wake(now)
            if window_wait and not self._in_flight and self.settings.stop_outside_window:
                self.stopped_outside_window = True
                self.progress.note(
                    f"{len(self._pending)} row(s) outside their calling window "
                    f"{self.settings.window}: stopping (run again to call them)"
                )
                break
            if window_wait and not self._in_flight and wake != self._noted_wait:
                self._noted_wait = wake
                self.progress.note(
                    f"nothing to call until {wake:%Y-%m-%d %H:%M} UTC: the remaining "
                    f"{len(self._pending)} row(s) are outside their calling window "
                    f"{self.settings.window} (local time); sleeping"
                )
            self.progress.update(self.status(waiting_until=wake if window_wait else None))
            await self.clock.sleep(min(max((wake - now).total_seconds(), 0.0), MAX_SLEEP_S))
        status = self.status()
        self.progress.update(status)
        return status

    def status(self, waiting_until: datetime | None = None) -> CampaignStatus:
        outcomes = Counter(r.outcome for r in self._rows if r.status == "done" and r.outcome)
        return CampaignStatus(
            total=len(self._rows),
            done=sum(1 for r in self._rows if r.status == "done"),
            in_flight=len(self._in_flight),
            outcomes=dict(outcomes),
            waiting_until=waiting_until,
        )

    def _resume(self) -> None:
        """Pick up where a previous run stopped: calls with an id are polled, attempts without
        one are `unknown` (never placed again), do-not-call numbers are closed."""
        by_idx = {row.idx: row for row in self._rows}
        now = self.clock.now()
        for attempt in self.store.attempts(open_only=True):
            row = by_idx[attempt.row_idx]
            if attempt.call_id is None:
                self.store.finish(
                    attempt.id, row, status="unknown", at=now, outcome="unknown",
                    error="stopped while placing the call: it may or may not have been "
                    "placed, so it is not placed again",
                )
                self.progress.note(
                    f"line {row.line} ({row.number}): a call may have been placed before the "
                    "campaign stopped, with no id recorded; not calling again (outcome unknown)"
                )
            else:
                self._in_flight[attempt.id] = _InFlight(
                    attempt.id, row, attempt.call_id, attempt.state or "queued", now
                )
        for row in self._rows:
            if row.status == "active" and not any(
                f.row is row for f in self._in_flight.values()
            ):
                row.status = "pending"  # its attempt ended; the row's update was not reached
            if row.status == "pending" and row.number in self.settings.do_not_call:
                self.store.close_row(row, "do-not-call")
        self._pending = [row for row in self._rows if row.status == "pending"]

    # ------------------------------------------------------------------------ polling

    async def _poll(self, now: datetime) -> None:
        due = [f for f in self._in_flight.values() if f.next_poll <= now]
        if due:  # every poll finishes before any failure is raised: nothing runs on after it
            results = await asyncio.gather(*(self._poll_one(f) for f in due),
                                           return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result

    async def _poll_one(self, flight: _InFlight) -> None:
        try:
            call = await self.placer.get(flight.call_id)
        except ApiError as exc:
            if exc.status in (401, 403):
                raise CampaignAborted(f"the gateway refused the token: {exc}") from exc
            if exc.status == 404:
                self._end(flight, None, status="unknown", outcome="unknown",
                          error=f"the gateway no longer knows call {flight.call_id}")
                return
            self._poll_later(flight, f"polling {flight.call_id}: {exc}")
            return
        except (NotSent, DeliveryUnknown, ValueError) as exc:
            self._poll_later(flight, f"polling {flight.call_id}: {exc}")
            return
        if call.terminal:
            self._end(flight, call)
            return
        if call.state != flight.state:
            flight.state = call.state
            self.store.progressed(flight.attempt_id, call.state)
        self._poll_later(flight)

    def _poll_later(self, flight: _InFlight, problem: str | None = None) -> None:
        if problem and not flight.failing:
            self.progress.note(f"line {flight.row.line}: {problem}; trying again")
        flight.failing = problem is not None
        flight.next_poll = self.clock.now() + timedelta(seconds=self.settings.poll_interval_s)

    def _end(
        self,
        flight: _InFlight,
        call: CallRecord | None,
        *,
        status: str = "ended",
        outcome: str | None = None,
        error: str | None = None,
    ) -> None:
        del self._in_flight[flight.attempt_id]
        self._settle(flight.attempt_id, flight.row, call, status=status, outcome=outcome,
                     error=error)

    def _settle(
        self,
        attempt_id: int,
        row: StoredRow,
        call: CallRecord | None,
        *,
        status: str,
        outcome: str | None = None,
        error: str | None = None,
        state: str | None = None,
    ) -> None:
        """Close an attempt: the row is tried again later (retry policy) or done."""
        now = self.clock.now()
        final_state = call.state if call else state
        delay = (
            self.settings.retry.delay_after(row.attempts, final_state)
            if final_state and outcome is None else None
        )
        if delay is not None:
            self.store.finish(attempt_id, row, status=status, at=now, call=call, error=error,
                              retry_at=now + timedelta(seconds=delay))
            self._pending.append(row)
            return
        if outcome is None:
            outcome = OUTCOMES.get(final_state or "", final_state or "unknown")
        self.store.finish(attempt_id, row, status=status, at=now, call=call, error=error,
                          outcome=outcome)

    # ------------------------------------------------------------------------ starting

    def _zone(self, row: StoredRow) -> ZoneInfo:
        name = row.timezone or self.settings.default_timezone or "UTC"
        if name not in self._zones:
            found = zone(name)
            if found is None:
                raise CampaignAborted(f"line {row.line}: unknown time zone {name!r}")
            self._zones[name] = found
        return self._zones[name]

    def _next_slot(self) -> datetime | None:
        return self._last_start + self._spacing if self._last_start is not None else None

    async def _start_calls(self) -> None:
        self._pending.sort(key=lambda r: (r.next_at, r.idx))
        for row in list(self._pending):
            now = self.clock.now()
            if len(self._in_flight) >= self.settings.max_concurrent:
                return
            if row.next_at > now.timestamp():
                return  # sorted: nothing after it is due either
            slot = self._next_slot()
            if slot is not None and slot > now:
                return
            if not self.settings.window.is_open(now, self._zone(row)):
                continue
            await self._start(row, now)

    async def _start(self, row: StoredRow, now: datetime) -> None:
        self._pending.remove(row)
        attempt_id = self.store.begin_attempt(row, now)  # committed before the POST
        self._last_start = now
        request = PlaceRequest(
            agent=self.settings.agent, to=row.number, from_=self.settings.from_,
            carrier=self.settings.carrier, variables=row.variables,
        )
        placing = asyncio.ensure_future(self.placer.place(request))
        try:  # a Ctrl-C during the POST waits for its answer, so the call id is recorded
            call = await asyncio.shield(placing)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                self._placed(attempt_id, row, await placing)
            raise
        except ApiError as exc:
            self._refused(attempt_id, row, exc)
            return
        except NotSent as exc:
            self.store.not_placed(attempt_id, row, str(exc))
            self._pending.append(row)
            raise CampaignAborted(str(exc)) from exc
        except (DeliveryUnknown, ValueError) as exc:
            self._settle(attempt_id, row, None, status="unknown", outcome="unknown",
                         error=f"no usable answer to the call request, it may exist: {exc}")
            self.progress.note(f"line {row.line} ({row.number}): {exc}; not calling again "
                               "(outcome unknown)")
            return
        self._placed(attempt_id, row, call)

    def _placed(self, attempt_id: int, row: StoredRow, call: CallRecord) -> None:
        self.store.placed(attempt_id, call)
        flight = _InFlight(attempt_id, row, call.id, call.state,
                           self.clock.now() + timedelta(seconds=self.settings.poll_interval_s))
        self._in_flight[attempt_id] = flight
        if call.terminal:
            self._end(flight, call)

    def _refused(self, attempt_id: int, row: StoredRow, exc: ApiError) -> None:
        """The API said no: for the campaign (token, agent, …: `_refuses_the_campaign`), for
        this row, or the carrier could not place it (502: a `failed` call, retried only if
        failed calls are)."""
        if _refuses_the_campaign(exc):
            self.store.not_placed(attempt_id, row, str(exc))
            self._pending.append(row)
            what = "token" if exc.status in (401, 403) else "campaign"
            raise CampaignAborted(f"the gateway refused the {what}: {exc}") from exc
        if exc.status >= 500:
            self._settle(attempt_id, row, None, status="rejected", state="failed",
                         error=str(exc))
        else:
            self._settle(attempt_id, row, None, status="rejected", outcome="rejected",
                         error=str(exc))
        self.progress.note(f"line {row.line} ({row.number}): {exc}")

    # ------------------------------------------------------------------------ sleeping

    def _next_wake(self, now: datetime) -> tuple[datetime, bool]:
        """When something may change, and whether that is a calling window opening."""
        wakes: list[tuple[datetime, bool]] = [
            (f.next_poll, False) for f in self._in_flight.values()
        ]
        if len(self._in_flight) < self.settings.max_concurrent and self._pending:
            slot = self._next_slot()
            openings: dict[tuple[str, float], datetime] = {}
            for row in self._pending:
                due = max(datetime.fromtimestamp(row.next_at, UTC), now)
                key = (row.timezone or self.settings.default_timezone or "UTC", due.timestamp())
                if key not in openings:
                    openings[key] = self.settings.window.next_opening(due, self._zone(row))
                opening = openings[key]
                at = max(opening, slot) if slot is not None else opening
                wakes.append((at, opening > due))
        if not wakes:
            return now, False
        at = min(w for w, _ in wakes)
        return at, all(window for w, window in wakes if w == at)


CAMPAIGN_FIELDS = frozenset({"agent", "from", "carrier"})
"""Fields of `POST /calls` that are the same for every row: a 400 on one stops the campaign."""


def _refuses_the_campaign(exc: ApiError) -> bool:
    """A refusal no other row would escape: the token (401/403), no call API there (404), the
    gateway cannot place calls at all (503: PUBLIC_URL or the carrier's credentials unset, or
    too many calls under way), or a setting shared by every row (400 on agent, from, carrier).
    A 502 (the carrier would not place this call) and a 400/422 on the row's own number or
    variables are the row's."""
    if exc.status in (401, 403, 404, 503):
        return True
    return exc.status == 400 and exc.field in CAMPAIGN_FIELDS


def summary_line(status: CampaignStatus) -> str:
    """`12/40 done: answered 8, busy 2 …`, for the end of a run."""
    parts = ", ".join(f"{name} {count}" for name, count in sorted(status.outcomes.items()))
    return f"{status.done}/{status.total} done" + (f": {parts}" if parts else "")


class TerminalProgress:
    """A one-line progress bar rewritten in place on a terminal; elsewhere (a log file, a
    pipe) only the notes, one line each. No dependency: one line needs none."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._line = ""

    def update(self, status: CampaignStatus) -> None:
        if not self._tty:
            return
        width = 20
        filled = width * status.done // max(status.total, 1)
        outcomes = " ".join(f"{k} {v}" for k, v in sorted(status.outcomes.items()))
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {status.done}/{status.total} done, "
            f"{status.in_flight} in flight" + (f" | {outcomes}" if outcomes else "")
        )
        if status.waiting_until is not None:
            line += f" | window opens {status.waiting_until:%H:%M} UTC"
        line = line[: max(shutil.get_terminal_size().columns - 1, 20)]
        if line != self._line:
            self._line = line
            self._stream.write(f"\r{line}\x1b[K")
            self._stream.flush()

    def note(self, message: str) -> None:
        if self._tty and self._line:
            self._stream.write("\r\x1b[K")
        self._stream.write(message + "\n")
        if self._tty and self._line:
            self._stream.write(self._line)
        self._stream.flush()

    def close(self) -> None:
        if self._tty and self._line:
            self._stream.write("\n")
            self._stream.flush()
            self._line = ""
