"""The campaign engine on a virtual clock and an in-memory call API: pacing, concurrency,
calling windows, retries, do-not-call, refusals and the results file."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.outbound.campaign import (
    CampaignAborted,
    CampaignEngine,
    CampaignSettings,
    CampaignStatus,
    TerminalProgress,
)
from gateway.outbound.campaign_rules import CallingWindow, RetryPolicy, load_numbers
from gateway.outbound.campaign_store import CampaignStore
from gateway.outbound.client import ApiError, DeliveryUnknown
from tests.outbound.test_campaign_fakes import START, FakeApi, FakeClock

ALL_DAY = CallingWindow.parse("00:00-24:00")


def numbers_csv(tmp_path: Path, *rows: str, header: str = "to,first_name") -> Path:
    path = tmp_path / "numbers.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


class Notes:
    def __init__(self) -> None:
        self.notes: list[str] = []
        self.updates: list[CampaignStatus] = []

    def update(self, status: CampaignStatus) -> None:
        self.updates.append(status)

    def note(self, message: str) -> None:
        self.notes.append(message)


async def run(
    csv_path: Path,
    api: FakeApi,
    clock: FakeClock,
    settings: CampaignSettings,
    *,
    notes: Notes | None = None,
    state: str = "numbers.sqlite",
) -> tuple[CampaignStatus, CampaignStore]:
    numbers = load_numbers(csv_path, default_timezone=settings.default_timezone)
    store = CampaignStore.open(csv_path.with_name(state), numbers, now=clock.now())
    status = await CampaignEngine(store, settings, api, clock, notes).run()
    return status, store


def settings(**changes: object) -> CampaignSettings:
    base = CampaignSettings(
        agent="reminders", calls_per_minute=60, max_concurrent=10, window=ALL_DAY,
        default_timezone="Europe/London", poll_interval_s=2.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def results(store: CampaignStore, tmp_path: Path) -> list[dict[str, str]]:
    path = tmp_path / "results.csv"
    store.write_results(path)
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def numbers(n: int) -> list[str]:
    return [f"+1555010{i:04d}" for i in range(n)]


# ------------------------------------------------------------------------------ pacing


async def test_calls_per_minute_spaces_the_starts_evenly(tmp_path: Path) -> None:
    path = numbers_csv(tmp_path, *(f"{n},Ana" for n in numbers(7)))
    clock = FakeClock()
    api = FakeApi(clock, duration_s=5)
    status, _ = await run(path, api, clock, settings(calls_per_minute=3, max_concurrent=10))
    assert status.done == 7 and status.outcomes == {"answered": 7}
    assert api.start_times() == [0, 20, 40, 60, 80, 100, 120]
    starts = api.start_times()
    for first in starts:  # no rolling minute holds more than 3 starts
        assert sum(1 for s in starts if first <= s < first + 60) <= 3


async def test_max_concurrent_holds_new_calls_until_one_has_ended(tmp_path: Path) -> None:
    path = numbers_csv(tmp_path, *(f"{n},Ana" for n in numbers(5)))
    clock = FakeClock()
    api = FakeApi(clock, duration_s=100)
    await run(path, api, clock, settings(calls_per_minute=60, max_concurrent=2))
    assert max(api.in_flight_at_post) <= 1  # at each POST, at most one other still going
    # two at once (1 s apart: pacing), the next ones when a call is seen to end (polls: 2 s)
    assert api.start_times() == [0, 1, 100, 101, 200]


# ------------------------------------------------------------------------------ windows


async def test_a_row_where_it_is_22_00_waits_until_09_00_its_time(tmp_path: Path) -> None:
    # 03:00 UTC on 11 March: 22:00 on the 10th in Chicago (CDT, -5), 12:00 in Tokyo
    clock = FakeClock(datetime(2026, 3, 11, 3, 0, tzinfo=UTC))
    path = numbers_csv(
        tmp_path, "+13125550100,America/Chicago", "+81355550100,Asia/Tokyo",
        header="to,timezone",
    )
    api = FakeApi(clock, duration_s=60)
    notes = Notes()
    await run(path, api, clock, settings(window=CallingWindow.parse("09:00-21:00")),
              notes=notes)
    started = {r.to: t for t, r in api.posts}
    assert started["+81355550100"] == datetime(2026, 3, 11, 3, 0, tzinfo=UTC)
    assert started["+13125550100"] == datetime(2026, 3, 11, 14, 0, tzinfo=UTC)  # 09:00 CDT
    assert any("outside their calling window" in n and "14:00 UTC" in n for n in notes.notes)
    assert any(u.waiting_until is not None for u in notes.updates)


async def test_a_retry_that_falls_after_the_window_waits_for_the_next_morning(
    tmp_path: Path,
) -> None:
    clock = FakeClock(datetime(2026, 3, 10, 20, 50, tzinfo=UTC))  # 20:50 in London
    path = numbers_csv(tmp_path, "+447700900001,Ana")
    api = FakeApi(clock, script={"+447700900001": ["busy", "completed"]}, duration_s=20)
    status, _ = await run(
        path, api, clock,
        settings(window=CallingWindow.parse("09:00-21:00"),
                 retry=RetryPolicy(retries=1, backoff_s=900)),
    )
    assert [t for t, _ in api.posts] == [
        datetime(2026, 3, 10, 20, 50, tzinfo=UTC), datetime(2026, 3, 11, 9, 0, tzinfo=UTC),
    ]
    assert status.outcomes == {"answered": 1}


async def test_stop_outside_window_ends_the_run_and_reports_skipped_window(
    tmp_path: Path,
) -> None:
    clock = FakeClock(datetime(2026, 3, 11, 0, 30, tzinfo=UTC))  # London 00:30, Tokyo 09:30
    path = numbers_csv(tmp_path, "+447700900001,Europe/London", "+81355550100,Asia/Tokyo",
                       header="to,timezone")
    api = FakeApi(clock, duration_s=10)
    numbers_file = load_numbers(path, default_timezone=None)
    store = CampaignStore.open(tmp_path / "s.sqlite", numbers_file, now=clock.now())
    engine = CampaignEngine(
        store, settings(window=CallingWindow.parse("09:00-21:00"), stop_outside_window=True),
        api, clock,
    )
    status = await engine.run()
    assert engine.stopped_outside_window and status.done == 1
    assert api.posted() == {"+81355550100": 1}
    assert clock.now() == datetime(2026, 3, 11, 0, 30, 10, tzinfo=UTC)  # not 09:00 London
    out = tmp_path / "r.csv"
    store.write_results(out, pending_as="skipped-window")
    rows = {r["number"]: r["outcome"] for r in csv.DictReader(out.open())}
    assert rows == {"+447700900001": "skipped-window", "+81355550100": "answered"}


# ------------------------------------------------------------------------------ retries


async def test_busy_and_no_answer_are_retried_with_doubling_backoff(tmp_path: Path) -> None:
    path = numbers_csv(tmp_path, "+15550100001,Ana", "+15550100002,Bo", "+15550100003,Cy")
    clock = FakeClock()
    api = FakeApi(
        clock, duration_s=10,
        script={
            "+15550100001": ["busy", "no-answer", "completed"],
            "+15550100002": ["no-answer", "no-answer", "no-answer", "completed"],
        },
    )
    status, store = await run(
        path, api, clock, settings(retry=RetryPolicy(retries=2, backoff_s=60))
    )
    # ends seen at +10 (2 s polls); retry after 60 s, then after 120 s
    assert api.start_times("+15550100001") == [0, 70, 200]
    assert api.start_times("+15550100002") == [1, 71, 201]  # 3 attempts, then it gives up
    assert api.start_times("+15550100003") == [2]  # completed: never again
    got = {r["number"]: r for r in results(store, tmp_path)}
    assert got["+15550100001"]["outcome"] == "answered"
    assert got["+15550100001"]["attempts"] == "3"
    assert got["+15550100002"]["outcome"] == "no-answer"
    assert got["+15550100002"]["call_ids"].count(";") == 2
    assert status.outcomes == {"answered": 2, "no-answer": 1}


async def test_failed_and_voicemail_are_final_unless_failed_is_retried(tmp_path: Path) -> None:
    path = numbers_csv(tmp_path, "+15550100001,Ana", "+15550100002,Bo")
    clock = FakeClock()
    script = {"+15550100001": ["failed", "completed"], "+15550100002": ["voicemail"]}
    api = FakeApi(clock, duration_s=10, script=script)
    status, _ = await run(path, api, clock, settings(retry=RetryPolicy(retries=3)))
    assert api.posted() == {"+15550100001": 1, "+15550100002": 1}
    assert status.outcomes == {"failed": 1, "voicemail": 1}

    clock2 = FakeClock()
    api2 = FakeApi(clock2, duration_s=10, script=script)
    retry_failed = RetryPolicy(retries=3, backoff_s=5, retry_states=frozenset(
        {"busy", "no-answer", "failed"}))
    status, _ = await run(path, api2, clock2, settings(retry=retry_failed), state="2.sqlite")
    assert api2.posted() == {"+15550100001": 2, "+15550100002": 1}
    assert status.outcomes == {"answered": 1, "voicemail": 1}


# ------------------------------------------------------------------------------ do not call


async def test_do_not_call_numbers_are_never_dialled(tmp_path: Path) -> None:
    path = numbers_csv(tmp_path, "+15550100001,Ana", "+1 (555) 010-0002,Bo")
    clock = FakeClock()
    api = FakeApi(clock, duration_s=10)
    status, store = await run(
        path, api, clock, settings(do_not_call=frozenset({"+15550100002"}))
    )
    assert api.posted() == {"+15550100001": 1}
    got = {r["number"]: r for r in results(store, tmp_path)}
    assert got["+15550100002"]["outcome"] == "do-not-call"
    assert got["+15550100002"]["attempts"] == "0" and got["+15550100002"]["call_ids"] == ""
    assert status.outcomes == {"answered": 1, "do-not-call": 1}


# ------------------------------------------------------------------------------ refusals


async def test_a_refused_row_is_reported_and_the_campaign_goes_on(tmp_path: Path) -> None:
    path = numbers_csv(tmp_path, "+15550100001,Ana", "+15550100002,Bo", "+15550100003,Cy")
    clock = FakeClock()
    api = FakeApi(clock, duration_s=10, refuse={
        "+15550100001": ApiError(422, "missing variables: appointment", "variables"),
        "+15550100002": ApiError(502, "carrier said no", "carrier"),
    })
    notes = Notes()
    status, store = await run(path, api, clock, settings(), notes=notes)
    assert status.outcomes == {"rejected": 1, "failed": 1, "answered": 1}
    got = {r["number"]: r for r in results(store, tmp_path)}
    assert got["+15550100001"]["error"] == "HTTP 422: variables: missing variables: appointment"
    assert any("variables: missing variables" in n for n in notes.notes)


async def test_a_refused_token_aborts_and_leaves_the_row_to_resume(tmp_path: Path) -> None:
    path = numbers_csv(tmp_path, "+15550100001,Ana", "+15550100002,Bo")
    clock = FakeClock()
    api = FakeApi(clock, refuse={"+15550100001": ApiError(401, "bad token", "Authorization")})
    with pytest.raises(CampaignAborted, match="token"):
        await run(path, api, clock, settings())
    store = CampaignStore.open(
        tmp_path / "numbers.sqlite", load_numbers(path, default_timezone="UTC"), now=START
    )
    assert [r.status for r in store.rows()] == ["pending", "pending"]
    assert [r.attempts for r in store.rows()] == [0, 0]
    api.refuse.clear()
    status = await CampaignEngine(store, settings(), api, clock).run()
    assert status.outcomes == {"answered": 2}


# ------------------------------------------------------------------------------ results


async def test_the_results_file_has_outcome_duration_recording_ids_and_variables(
    tmp_path: Path,
) -> None:
    path = numbers_csv(
        tmp_path, "+15550100001,Ana,Fri 10:00", "+15550100002,,Mon 09:00", "+15550100003,Cy,x",
        header="phone,first_name,appointment",
    )
    clock = FakeClock()
    api = FakeApi(clock, duration_s=30, script={"+15550100002": ["voicemail"],
                                                 "+15550100003": ["busy"]})
    _, store = await run(path, api, clock, settings())
    rows = results(store, tmp_path)
    assert list(rows[0]) == [
        "line", "number", "outcome", "state", "duration_s", "recording", "attempts",
        "call_ids", "end_reason", "answered_by", "error", "last_attempt_at",
        "first_name", "appointment",
    ]
    assert rows[0] | {"last_attempt_at": ""} == {
        "line": "2", "number": "+15550100001", "outcome": "answered", "state": "completed",
        "duration_s": "30", "recording": "recordings/call-1.wav", "attempts": "1",
        "call_ids": "call-1", "end_reason": "hangup", "answered_by": "", "error": "",
        "last_attempt_at": "", "first_name": "Ana", "appointment": "Fri 10:00",
    }
    assert rows[0]["last_attempt_at"] == "2026-03-10T12:00:00+00:00"
    assert (rows[1]["outcome"], rows[1]["first_name"]) == ("voicemail", "")
    assert (rows[2]["outcome"], rows[2]["state"], rows[2]["duration_s"]) == ("busy", "busy", "0")
    # an empty cell sends no variable rather than an empty one
    assert [r.variables for _, r in api.posts][1] == {"appointment": "Mon 09:00"}


# ------------------------------------------------------------------------------ progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_rewrites_one_line_and_notes_go_above_it() -> None:
    terminal = _Terminal()
    progress = TerminalProgress(terminal)
    progress.update(CampaignStatus(total=4, done=1, in_flight=2, outcomes={"answered": 1}))
    progress.note("line 3: something")
    progress.update(CampaignStatus(total=4, done=4, in_flight=0, outcomes={"answered": 4}))
    progress.close()
    assert terminal.getvalue() == (
        "\r[#####...............] 1/4 done, 2 in flight | answered 1\x1b[K"
        "\r\x1b[Kline 3: something\n[#####...............] 1/4 done, 2 in flight | answered 1"
        "\r[####################] 4/4 done, 0 in flight | answered 4\x1b[K\n"
    )
    piped = io.StringIO()  # not a terminal: only the notes
    progress = TerminalProgress(piped)
    progress.update(CampaignStatus(total=4, done=1, in_flight=2, outcomes={}))
    progress.note("resuming")
    assert piped.getvalue() == "resuming\n"


async def test_a_poll_that_keeps_failing_is_noted_once(tmp_path: Path) -> None:
    path = numbers_csv(tmp_path, "+15550100001,Ana")
    clock = FakeClock()
    api = FakeApi(clock, duration_s=10)
    real_get = api.get
    failures = 0

    async def flaky_get(call_id: str):  # type: ignore[no-untyped-def]
        nonlocal failures
        if failures < 3:
            failures += 1
            raise DeliveryUnknown("timed out")
        return await real_get(call_id)

    api.get = flaky_get  # type: ignore[method-assign]
    notes = Notes()
    status, _ = await run(path, api, clock, settings(), notes=notes)
    assert status.outcomes == {"answered": 1}
    assert [n for n in notes.notes if "timed out" in n] == [
        "line 2: polling call-1: timed out; trying again"
    ]
