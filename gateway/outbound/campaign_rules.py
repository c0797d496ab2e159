"""What a campaign may call, and when: the numbers file, the do-not-call list, calling windows
and retries.

Everything here is checked before the first call is placed, so a typo in row 4,000 stops the
campaign before anyone is dialled, with the line and column that are wrong. Sans-IO apart from
reading the two input files; no clock of its own (times come in as arguments).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Final, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.telephony.numbers import E164

__all__ = [
    "NUMBER_COLUMNS",
    "OUTCOMES",
    "TIMEZONE_COLUMN",
    "CallingWindow",
    "CampaignRow",
    "InputError",
    "NumbersFile",
    "Problem",
    "RetryPolicy",
    "load_do_not_call",
    "load_numbers",
    "normalise_number",
    "zone",
]

NUMBER_COLUMNS: Final = ("to", "number", "phone")
"""Header names (any case) of the column of numbers to call; exactly one must be present."""
TIMEZONE_COLUMN: Final = "timezone"
_FORMATTING: Final = re.compile(r"[\s\u00a0().\-/]")

OUTCOMES: Final = {
    "completed": "answered",
    "voicemail": "voicemail",
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
    "canceled": "canceled",
}
"""A call's final API state → the outcome a campaign reports. Outcomes not from a call:
`do-not-call`, `invalid`, `rejected` (the API refused the request), `unknown` (a call may have
been placed but its id was never recorded, or the gateway no longer knows it),
`skipped-window`, `pending`."""


def normalise_number(text: str) -> str | None:
    """`text` in E.164 (`+1 (555) 010-0100` → `+15550100100`, `0044…` → `+44…`), or None.

    Numbers without `+` or `00` are refused rather than guessed: `5550100100` could be a US
    number or a Brazilian one, and a guess would make a do-not-call entry miss.
    """
    compact = _FORMATTING.sub("", text.strip())
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return compact if E164.fullmatch(compact) else None


def zone(name: str) -> ZoneInfo | None:
    """The IANA time zone `name`, or None when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file, where it is."""

    file: str
    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f", column {self.column!r}" if self.column else ""
        return f"{self.file}: line {self.line}{where}: {self.message}"


class InputError(ValueError):
    """An input file cannot be used; `problems` lists every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class CampaignRow:
    """One data row of the numbers file; `problems` is empty when it may be called."""

    line: int
    to: str
    timezone: str | None
    variables: dict[str, str]
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class NumbersFile:
    """The parsed numbers file, with the hash a state file is tied to."""

    path: Path
    sha256: str
    variable_columns: tuple[str, ...]
    rows: tuple[CampaignRow, ...]

    @property
    def problems(self) -> list[Problem]:
        return [p for row in self.rows for p in row.problems]


def load_numbers(path: Path, *, default_timezone: str | None) -> NumbersFile:
    """Parse and check every row of the numbers CSV.

    Header problems (no number column, a column that cannot be a variable name) raise
    `InputError`; row problems are attached to their rows, for the caller to abort on or skip.
    """
    from gateway.outbound.variables import (
        MAX_VARIABLES,
        VARIABLE_NAME,
        InvalidVariables,
        check_variables,
    )

    name = path.name
    data = path.read_bytes()
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    header = next(reader, None)
    if header is None:
        raise InputError([Problem(name, 1, None, "the file is empty (a header row is needed)")])
    header = [h.strip() for h in header]
    problems: list[Problem] = []
    numbers = [h for h in header if h.lower() in NUMBER_COLUMNS]
    if len(numbers) != 1:
        found = f"found {', '.join(numbers)}" if numbers else "found none"
        problems.append(
            Problem(name, 1, None, f"need exactly one number column ({'/'.join(NUMBER_COLUMNS)}); "
                    f"{found}")
        )
    variable_columns = [
        h for h in header if h.lower() not in NUMBER_COLUMNS and h.lower() != TIMEZONE_COLUMN
    ]
    seen: set[str] = set()
    for column in header:
        if column.lower() in seen:
            problems.append(Problem(name, 1, column, "the column appears twice"))
        seen.add(column.lower())
    for column in variable_columns:
        if not VARIABLE_NAME.fullmatch(column):
            problems.append(
                Problem(name, 1, column, "a column is a call variable: letters, digits and '_', "
                        "not starting with a digit (or name it to/number/phone/timezone)")
            )
    if len(variable_columns) > MAX_VARIABLES:
        problems.append(Problem(name, 1, None, f"at most {MAX_VARIABLES} variable columns"))
    if problems:
        raise InputError(problems)

    number_column = numbers[0]
    default_ok = default_timezone is not None and zone(default_timezone) is not None
    rows: list[CampaignRow] = []
    first_line: dict[str, int] = {}
    for line, cells in _records(reader):
        if not any(cell.strip() for cell in cells):
            continue  # blank lines (spreadsheets leave them at the end)
        row_problems: list[Problem] = []
        if len(cells) > len(header):
            row_problems.append(
                Problem(name, line, None, f"{len(cells)} fields, the header has {len(header)}")
            )
        values = dict(zip(header, [c.strip() for c in cells], strict=False))
        raw = values.get(number_column, "")
        to = normalise_number(raw)
        if to is None:
            row_problems.append(
                Problem(name, line, number_column,
                        f"{raw!r} is not an E.164 number (+ country code and number)")
            )
        elif to in first_line:
            row_problems.append(
                Problem(name, line, number_column, f"{to} is already on line {first_line[to]}")
            )
        else:
            first_line[to] = line
        tz = (
            next((v for k, v in values.items() if k.lower() == TIMEZONE_COLUMN), "") or None
        )
        if tz is not None and zone(tz) is None:
            row_problems.append(
                Problem(name, line, TIMEZONE_COLUMN, f"{tz!r} is not an IANA time zone")
            )
        if tz is None and not default_ok:
            row_problems.append(
                Problem(name, line, TIMEZONE_COLUMN,
                        "no time zone for the calling window: fill it in or give "
                        "--default-timezone")
            )
        variables: dict[str, str] = {}
        for column in variable_columns:
            value = values.get(column, "")
            if not value:
                continue  # an empty cell sends no variable
            try:
                variables.update(check_variables({column: value}))
            except InvalidVariables as exc:
                row_problems.append(Problem(name, line, column, str(exc)))
        rows.append(CampaignRow(line, to or raw, tz, variables, tuple(row_problems)))
    return NumbersFile(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        variable_columns=tuple(variable_columns),
        rows=tuple(rows),
    )


class _CsvReader(Protocol):
    line_num: int

    def __next__(self) -> list[str]: ...


def _records(reader: _CsvReader) -> Iterator[tuple[int, list[str]]]:
    """Each record with the line it starts on (a quoted cell may span lines)."""
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        yield start, cells


def load_do_not_call(path: Path) -> frozenset[str]:
    """The numbers of a do-not-call file (one a line, `#` starts a comment), in E.164.

    A line that is not a number is an error, never skipped: a do-not-call entry that silently
    matches nothing would get that person called.
    """
    numbers: set[str] = set()
    problems: list[Problem] = []
    for line, text in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        entry = text.split("#", 1)[0].strip()
        if not entry:
            continue
        number = normalise_number(entry)
        if number is None:
            problems.append(
                Problem(path.name, line, None,
                        f"{entry!r} is not an E.164 number (+ country code and number)")
            )
        else:
            numbers.add(number)
    if problems:
        raise InputError(problems)
    return frozenset(numbers)


@dataclass(frozen=True)
class CallingWindow:
    """Local hours a call may start in: `[start, end)`, e.g. 09:00–21:00; `end` before `start`
    wraps past midnight, `00:00-24:00` is all day. Calls already going may run past `end`."""

    start_s: int
    end_s: int

    @classmethod
    def parse(cls, text: str) -> CallingWindow:
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
        if not match:
            raise ValueError(f"{text!r}: a window is HH:MM-HH:MM, e.g. 09:00-21:00")
        sh, sm, eh, em = (int(g) for g in match.groups())
        if sh > 23 or sm > 59 or em > 59 or eh > 24 or (eh == 24 and em):
            raise ValueError(f"{text!r}: not a time of day")
        start, end = sh * 3600 + sm * 60, eh * 3600 + em * 60
        if start == end:
            raise ValueError(f"{text!r}: an empty window (all day is 00:00-24:00)")
        return cls(start, end)

    def __str__(self) -> str:
        def hhmm(s: int) -> str:
            return f"{s // 3600:02d}:{s % 3600 // 60:02d}"

        return f"{hhmm(self.start_s)}-{hhmm(self.end_s)}"

    def is_open(self, moment: datetime, tz: ZoneInfo) -> bool:
        local = moment.astimezone(tz)
        s = local.hour * 3600 + local.minute * 60 + local.second
        if self.start_s < self.end_s:
            return self.start_s <= s < self.end_s
        return s >= self.start_s or s < self.end_s

    def next_opening(self, moment: datetime, tz: ZoneInfo) -> datetime:
        """The first instant at or after `moment` (UTC) when the window is open in `tz`."""
        if self.is_open(moment, tz):
            return moment
        day = moment.astimezone(tz).date()
        start = time(self.start_s // 3600, self.start_s % 3600 // 60)
        for offset in range(3):
            candidate = datetime.combine(day + timedelta(days=offset), start, tzinfo=tz)
            at = candidate.astimezone(UTC)
            if at > moment and self.is_open(at, tz):
                return at
        return moment + timedelta(hours=1)  # unreachable but for odd zones: look again later


@dataclass(frozen=True)
class RetryPolicy:
    """Which final states are tried again, how often, and after how long (doubling)."""

    retries: int = 0
    backoff_s: float = 600.0
    retry_states: frozenset[str] = field(default=frozenset({"busy", "no-answer"}))

    def delay_after(self, attempt: int, state: str) -> float | None:
        """Seconds until the next attempt after attempt number `attempt` (1-based) ended in
        `state`, or None when the row is done."""
        if state not in self.retry_states or attempt > self.retries:
            return None
        return self.backoff_s * (1 << max(attempt - 1, 0))
