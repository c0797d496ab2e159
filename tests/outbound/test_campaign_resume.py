"""A campaign killed and started again with the same state file calls no one twice: calls
with an id are looked up, a call whose id was never written is `unknown`, and a state file
refuses another numbers file."""

from __future__ import annotations

import asyncio
import csv
import sqlite3
from pathlib import Path

import pytest

from gateway.outbound.campaign import CampaignEngine, CampaignSettings
from gateway.outbound.campaign_rules import CallingWindow, RetryPolicy, load_numbers
from gateway.outbound.campaign_store import CampaignStore, StateFileError
from tests.outbound.test_campaign_fakes import Crash, FakeApi, FakeClock

SETTINGS = CampaignSettings(
    agent="reminders", calls_per_minute=60, max_concurrent=3,
    window=CallingWindow.parse("00:00-24:00"), default_timezone="UTC", poll_interval_s=2.0,
    retry=RetryPolicy(retries=1, backoff_s=30),
)
NUMBERS = [f"+1555010{i:04d}" for i in range(8)]


def write_numbers(tmp_path: Path, numbers: list[str] = NUMBERS) -> Path:
    path = tmp_path / "numbers.csv"
    path.write_text("to,first_name\n" + "".join(f"{n},N{i}\n" for i, n in enumerate(numbers)))
    return path


def engine(path: Path, api: FakeApi, clock: FakeClock) -> CampaignEngine:
    numbers = load_numbers(path, default_timezone="UTC")
    store = CampaignStore.open(path.with_suffix(".sqlite"), numbers, now=clock.now())
    return CampaignEngine(store, SETTINGS, api, clock)


async def test_killed_with_calls_in_flight_it_resumes_by_polling_them(tmp_path: Path) -> None:
    path = write_numbers(tmp_path)
    clock = FakeClock()
    api = FakeApi(clock, duration_s=20, script={NUMBERS[1]: ["busy", "completed"]})
    clock.crash_at = clock.at(25)  # 3 calls going, 1 ended, its busy retry not yet due
    first = engine(path, api, clock)
    with pytest.raises(Crash):
        await first.run()
    before = dict(api.posted())
    in_flight = [c for c, call in api.calls.items() if not call.seen_terminal]
    assert in_flight and len(before) < len(NUMBERS)
    gets_before = dict(api.gets)

    clock.crash_at = None  # the same API goes on: its calls are still out there
    status = await engine(path, api, clock).run()
    assert status.done == len(NUMBERS) and status.outcomes == {"answered": len(NUMBERS)}
    posted = api.posted()
    assert posted == {n: (2 if n == NUMBERS[1] else 1) for n in NUMBERS}  # only its retry
    for call_id in in_flight:  # the restarted run looked the old calls up
        assert api.gets[call_id] > gets_before.get(call_id, 0)
        assert api.calls[call_id].seen_terminal


async def test_killed_between_the_post_and_its_id_the_number_is_not_called_again(
    tmp_path: Path,
) -> None:
    path = write_numbers(tmp_path, NUMBERS[:3])
    clock = FakeClock()
    api = FakeApi(clock, duration_s=10, crash_after_post={NUMBERS[1]})
    with pytest.raises(Crash):
        await engine(path, api, clock).run()
    assert api.posted() == {NUMBERS[0]: 1, NUMBERS[1]: 1}

    api.crash_after_post.clear()
    restarted = engine(path, api, clock)
    status = await restarted.run()
    assert api.posted() == {NUMBERS[0]: 1, NUMBERS[1]: 1, NUMBERS[2]: 1}
    assert status.outcomes == {"answered": 2, "unknown": 1}
    out = tmp_path / "results.csv"
    restarted.store.write_results(out)
    row = {r["number"]: r for r in csv.DictReader(out.open())}[NUMBERS[1]]
    assert row["outcome"] == "unknown" and row["call_ids"] == ""
    assert "may or may not have been placed" in row["error"]


async def test_cancelled_during_the_post_it_still_records_the_call_id(tmp_path: Path) -> None:
    """Ctrl-C cancels the run; the POST under way is allowed to finish and its id written."""
    path = write_numbers(tmp_path, NUMBERS[:1])
    clock = FakeClock()
    api = FakeApi(clock, duration_s=10)
    entered, release = asyncio.Event(), asyncio.Event()
    place = api.place

    async def slow_place(request):  # type: ignore[no-untyped-def]
        entered.set()
        await release.wait()
        return await place(request)

    api.place = slow_place  # type: ignore[method-assign]
    task = asyncio.create_task(engine(path, api, clock).run())
    await entered.wait()
    task.cancel()
    await asyncio.sleep(0)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    db = sqlite3.connect(path.with_suffix(".sqlite"))
    assert db.execute("SELECT status, call_id FROM attempts").fetchall() == [("placed", "call-1")]
    api.place = place  # type: ignore[method-assign]
    status = await engine(path, api, clock).run()
    assert api.posted() == {NUMBERS[0]: 1} and status.outcomes == {"answered": 1}


async def test_a_state_file_refuses_another_numbers_file(tmp_path: Path) -> None:
    path = write_numbers(tmp_path, NUMBERS[:2])
    clock = FakeClock()
    await engine(path, FakeApi(clock, duration_s=1), clock).run()
    path.write_text(path.read_text() + f"{NUMBERS[5]},Late\n")
    with pytest.raises(StateFileError) as refused:
        engine(path, FakeApi(clock), clock)
    message = str(refused.value)
    assert "numbers.sqlite belongs to another numbers file" in message
    assert "--state" in message


async def test_a_file_that_is_not_a_state_file_is_refused(tmp_path: Path) -> None:
    path = write_numbers(tmp_path, NUMBERS[:1])
    path.with_suffix(".sqlite").write_text("not sqlite at all, just text " * 100)
    with pytest.raises(StateFileError, match="not a campaign state file"):
        engine(path, FakeApi(FakeClock()), FakeClock())


async def test_the_state_file_uses_write_ahead_logging(tmp_path: Path) -> None:
    path = write_numbers(tmp_path, NUMBERS[:1])
    clock = FakeClock()
    await engine(path, FakeApi(clock, duration_s=1), clock).run()
    db = sqlite3.connect(path.with_suffix(".sqlite"))
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("SELECT COUNT(*) FROM rows").fetchone() == (1,)
