"""What a campaign may call and when: every row checked before a call, with line and column;
numbers in E.164; the do-not-call file; calling windows across midnight and DST; back-off."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.outbound.campaign_rules import (
    CallingWindow,
    InputError,
    RetryPolicy,
    load_do_not_call,
    load_numbers,
    normalise_number,
)


def write(tmp_path: Path, text: str, name: str = "numbers.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+15550100100", "+15550100100"),
        (" +1 (555) 010-0100 ", "+15550100100"),
        ("0044 7700 900123", "+447700900123"),
        ("+44.7700.900123", "+447700900123"),
        ("5550100100", None),  # no country code: refused, not guessed
        ("+0123456789", None),
        ("+1555", None),
        ("+1234567890123456", None),  # 16 digits
        ("call me", None),
    ],
)
def test_numbers_are_normalised_to_e164_or_refused(text: str, expected: str | None) -> None:
    assert normalise_number(text) == expected


def test_every_bad_row_is_reported_with_its_line_and_column(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "to,timezone,first_name\n"
        "+15550100001,America/New_York,Ana\n"
        "555-0100,America/New_York,Bo\n"
        "+15550100003,Mars/Olympus,Cy\n"
        '+15550100004,,"Dee"\n'
        "+1 555 010 0001,Europe/London,Ed\n"
        '+15550100006,UTC,"two\nlines"\n'
        "+15550100007,UTC,Flo,extra\n"
        "\n"
        "+15550100008,UTC,Gus\n",
    )
    numbers = load_numbers(path, default_timezone=None)
    assert [str(p) for p in numbers.problems] == [
        "numbers.csv: line 3, column 'to': '555-0100' is not an E.164 number "
        "(+ country code and number)",
        "numbers.csv: line 4, column 'timezone': 'Mars/Olympus' is not an IANA time zone",
        "numbers.csv: line 5, column 'timezone': no time zone for the calling window: fill it "
        "in or give --default-timezone",
        "numbers.csv: line 6, column 'to': +15550100001 is already on line 2",
        "numbers.csv: line 7, column 'first_name': variable 'first_name': must be one line of "
        "text (no line breaks or control characters)",
        "numbers.csv: line 9: 4 fields, the header has 3",
    ]
    valid = [(r.line, r.to, r.timezone, r.variables) for r in numbers.rows if not r.problems]
    assert valid == [
        (2, "+15550100001", "America/New_York", {"first_name": "Ana"}),
        (11, "+15550100008", "UTC", {"first_name": "Gus"}),
    ]
    with_default = load_numbers(path, default_timezone="Europe/London")
    assert not any("no time zone" in str(p) for p in with_default.problems)


def test_header_problems_stop_everything(tmp_path: Path) -> None:
    with pytest.raises(InputError) as missing:
        load_numbers(write(tmp_path, "name,city\nAna,Leeds\n"), default_timezone="UTC")
    assert "line 1: need exactly one number column (to/number/phone); found none" in str(
        missing.value
    )
    with pytest.raises(InputError) as bad:
        load_numbers(
            write(tmp_path, "Phone,to,first name,x,X\n+15550100001,,Ana,1,2\n"),
            default_timezone="UTC",
        )
    text = str(bad.value)
    assert "found Phone, to" in text
    assert "line 1, column 'first name': a column is a call variable" in text
    assert "line 1, column 'X': the column appears twice" in text
    with pytest.raises(InputError, match="empty"):
        load_numbers(write(tmp_path, ""), default_timezone="UTC")


def test_the_hash_ties_a_state_file_to_the_exact_bytes(tmp_path: Path) -> None:
    a = load_numbers(write(tmp_path, "to\n+15550100001\n"), default_timezone="UTC")
    b = load_numbers(write(tmp_path, "to\n+15550100001\n", "b.csv"), default_timezone="UTC")
    c = load_numbers(write(tmp_path, "to\n+15550100002\n", "c.csv"), default_timezone="UTC")
    assert a.sha256 == b.sha256 != c.sha256


def test_do_not_call_entries_are_normalised_and_bad_lines_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path, "# opted out\n+1 (555) 010-0001\n\n0044 7700 900123  # by phone\n", "dnc.txt"
    )
    assert load_do_not_call(path) == {"+15550100001", "+447700900123"}
    bad = write(tmp_path, "+15550100001\n555-0100\n", "bad.txt")
    with pytest.raises(InputError, match=r"bad.txt: line 2: '555-0100' is not an E.164"):
        load_do_not_call(bad)


LONDON, CHICAGO = ZoneInfo("Europe/London"), ZoneInfo("America/Chicago")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_a_window_is_local_time_start_included_end_excluded() -> None:
    window = CallingWindow.parse("09:00-21:00")
    assert window.is_open(utc(2026, 1, 15, 9, 0), LONDON)
    assert not window.is_open(utc(2026, 1, 15, 21, 0), LONDON)
    assert not window.is_open(utc(2026, 1, 15, 14, 59), CHICAGO)  # 08:59 CST
    assert window.next_opening(utc(2026, 1, 15, 22, 0), LONDON) == utc(2026, 1, 16, 9, 0)
    assert window.next_opening(utc(2026, 1, 15, 3, 0), CHICAGO) == utc(2026, 1, 15, 15, 0)
    assert window.next_opening(utc(2026, 1, 15, 12, 0), LONDON) == utc(2026, 1, 15, 12, 0)


def test_windows_follow_daylight_saving_and_wrap_past_midnight() -> None:
    window = CallingWindow.parse("09:00-21:00")
    # London goes to BST on 29 March 2026: 09:00 local is 09:00 UTC before, 08:00 UTC after
    assert window.next_opening(utc(2026, 3, 28, 22, 0), LONDON) == utc(2026, 3, 29, 8, 0)
    night = CallingWindow.parse("22:00-02:00")
    assert night.is_open(utc(2026, 1, 15, 1, 30), LONDON)
    assert not night.is_open(utc(2026, 1, 15, 2, 0), LONDON)
    assert night.next_opening(utc(2026, 1, 15, 12, 0), LONDON) == utc(2026, 1, 15, 22, 0)
    assert CallingWindow.parse("00:00-24:00").is_open(utc(2026, 1, 15, 23, 59), LONDON)
    assert str(CallingWindow.parse("9:00-21:30")) == "09:00-21:30"


@pytest.mark.parametrize("text", ["9-21", "09:00-09:00", "25:00-26:00", "09:60-10:00"])
def test_bad_windows_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=repr(text)):
        CallingWindow.parse(text)


def test_back_off_doubles_and_only_retryable_states_retry() -> None:
    policy = RetryPolicy(retries=3, backoff_s=60)
    assert [policy.delay_after(n, "busy") for n in (1, 2, 3, 4)] == [60, 120, 240, None]
    assert policy.delay_after(1, "no-answer") == 60
    assert policy.delay_after(1, "completed") is None
    assert policy.delay_after(1, "voicemail") is None
    assert policy.delay_after(1, "failed") is None
