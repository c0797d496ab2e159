"""A campaign's state file (SQLite, WAL): one row per numbers-file row, one per call attempt.

It exists so that a stopped campaign resumes without calling anyone twice. Every write is its
own committed transaction with `synchronous=FULL`, and an attempt is written as `placing`
*before* its `POST /calls` and gets its call id right after: after any crash, an attempt either
has an id (the call is looked up, never placed again) or is `placing` without one (a call may
exist: reported `unknown`, never placed again automatically).
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from gateway.outbound.campaign_rules import NumbersFile
from gateway.outbound.client import CallRecord

__all__ = ["Attempt", "CampaignStore", "StateFileError", "StoredRow"]

SCHEMA_VERSION: Final = "1"
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    idx INTEGER PRIMARY KEY,
    line INTEGER NOT NULL,
    number TEXT NOT NULL,
    timezone TEXT,
    variables TEXT NOT NULL,
    status TEXT NOT NULL,          -- pending | active | done
    outcome TEXT,                  -- set when done (campaign_rules.OUTCOMES and friends)
    next_at REAL NOT NULL,         -- epoch seconds: not started before
    error TEXT
);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    row_idx INTEGER NOT NULL REFERENCES rows(idx),
    n INTEGER NOT NULL,            -- 1 for the first call of the row
    status TEXT NOT NULL,          -- placing | placed | ended | unknown | rejected | not-placed
    call_id TEXT,
    state TEXT,
    started_at REAL NOT NULL,
    ended_at REAL,
    duration_s REAL,
    recording TEXT,
    end_reason TEXT,
    answered_by TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS attempts_by_row ON attempts(row_idx);
"""

RESULT_COLUMNS: Final = (
    "line", "number", "outcome", "state", "duration_s", "recording", "attempts", "call_ids",
    "end_reason", "answered_by", "error",
)


class StateFileError(Exception):
    """The state file cannot be used for this campaign (another CSV, another version)."""


@dataclass
class StoredRow:
    """A numbers-file row as the state file has it; the engine updates it through the store."""

    idx: int
    line: int
    number: str
    timezone: str | None
    variables: dict[str, str]
    status: str
    outcome: str | None
    next_at: float
    error: str | None
    attempts: int
    """Attempts that may have reached a phone (all but `not-placed`)."""


@dataclass(frozen=True)
class Attempt:
    """One call attempt of a row."""

    id: int
    row_idx: int
    n: int
    status: str
    call_id: str | None
    state: str | None
    started_at: float
    ended_at: float | None
    duration_s: float | None
    recording: str | None
    end_reason: str | None
    answered_by: str | None
    error: str | None


class CampaignStore:
    """The state file of one campaign. `open` creates it, or checks it belongs to the CSV."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    @classmethod
    def open(cls, path: Path, numbers: NumbersFile, *, now: datetime) -> CampaignStore:
        """Create the state file for `numbers`, or reopen it (`StateFileError` if it was made
        for another CSV)."""
        db = sqlite3.connect(path, isolation_level=None, timeout=5.0)
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StateFileError(f"{path}: cannot use write-ahead logging (got {mode})")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            store = cls(db, path)
            store._init(numbers, now)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StateFileError(f"{path}: not a campaign state file ({exc})") from exc
        except BaseException:
            db.close()
            raise
        return store

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _init(self, numbers: NumbersFile, now: datetime) -> None:
        self._db.executescript(_SCHEMA)
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if meta:
            if meta.get("schema") != SCHEMA_VERSION:
                raise StateFileError(
                    f"{self.path}: state file version {meta.get('schema')!r}, this gateway "
                    f"writes {SCHEMA_VERSION!r}"
                )
            if meta.get("csv_sha256") != numbers.sha256:
                raise StateFileError(
                    f"{self.path} belongs to another numbers file ({meta.get('csv_name')}, "
                    f"sha256 {str(meta.get('csv_sha256'))[:12]}…) than {numbers.path.name} "
                    f"(sha256 {numbers.sha256[:12]}…): it was changed since the campaign "
                    "started. Resume with the original file, or start a new campaign with "
                    "another --state file"
                )
            return
        start = now.timestamp()
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [
                    ("schema", SCHEMA_VERSION),
                    ("csv_sha256", numbers.sha256),
                    ("csv_name", numbers.path.name),
                    ("variable_columns", json.dumps(list(numbers.variable_columns))),
                    ("created_at", now.isoformat()),
                ],
            )
            db.executemany(
                "INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        idx, row.line, row.to, row.timezone, json.dumps(row.variables),
                        "done" if row.problems else "pending",
                        "invalid" if row.problems else None,
                        start,
                        "; ".join(f"{p.column or 'row'}: {p.message}" for p in row.problems)
                        or None,
                    )
                    for idx, row in enumerate(numbers.rows)
                ],
            )

    # ----------------------------------------------------------------------- reading

    def rows(self) -> list[StoredRow]:
        counts = dict(
            self._db.execute(
                "SELECT row_idx, COUNT(*) FROM attempts WHERE status != 'not-placed' "
                "GROUP BY row_idx"
            ).fetchall()
        )
        return [
            StoredRow(
                idx, line, number, tz, json.loads(variables), status, outcome, next_at, error,
                counts.get(idx, 0),
            )
            for idx, line, number, tz, variables, status, outcome, next_at, error in
            self._db.execute("SELECT * FROM rows ORDER BY idx")
        ]

    def attempts(self, *, open_only: bool = False) -> list[Attempt]:
        where = " WHERE status IN ('placing', 'placed')" if open_only else ""
        return [
            Attempt(*found)
            for found in self._db.execute(f"SELECT * FROM attempts{where} ORDER BY id")
        ]

    def last_start(self) -> float | None:
        """When the last call was started (pacing carries over a restart)."""
        found = self._db.execute(
            "SELECT MAX(started_at) FROM attempts WHERE status != 'not-placed'"
        ).fetchone()[0]
        return float(found) if found is not None else None

    def variable_columns(self) -> list[str]:
        found = self._db.execute(
            "SELECT value FROM meta WHERE key = 'variable_columns'"
        ).fetchone()
        return list(json.loads(found[0])) if found else []

    # ----------------------------------------------------------------------- writing

    def begin_attempt(self, row: StoredRow, at: datetime) -> int:
        """Record `placing` for the next attempt of `row`, committed before the POST."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO attempts (row_idx, n, status, started_at) VALUES (?, ?, 'placing', ?)",
                (row.idx, row.attempts + 1, at.timestamp()),
            )
            db.execute("UPDATE rows SET status = 'active' WHERE idx = ?", (row.idx,))
        row.status = "active"
        row.attempts += 1
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def placed(self, attempt_id: int, call: CallRecord) -> None:
        """The API accepted the call: its id, right after the POST."""
        self._db.execute(
            "UPDATE attempts SET status = 'placed', call_id = ?, state = ? WHERE id = ?",
            (call.id, call.state, attempt_id),
        )

    def progressed(self, attempt_id: int, state: str) -> None:
        self._db.execute("UPDATE attempts SET state = ? WHERE id = ?", (state, attempt_id))

    def not_placed(self, attempt_id: int, row: StoredRow, error: str) -> None:
        """The request never made a call (not sent; or refused for the whole campaign): the
        row is as before, to be tried when the campaign resumes."""
        with self._transaction() as db:
            db.execute(
                "UPDATE attempts SET status = 'not-placed', error = ? WHERE id = ?",
                (error, attempt_id),
            )
            db.execute("UPDATE rows SET status = 'pending' WHERE idx = ?", (row.idx,))
        row.status = "pending"
        row.attempts -= 1

    def finish(
        self,
        attempt_id: int,
        row: StoredRow,
        *,
        status: str,
        at: datetime,
        call: CallRecord | None = None,
        error: str | None = None,
        retry_at: datetime | None = None,
        outcome: str | None = None,
    ) -> None:
        """End an attempt and, in the same transaction, either schedule the row's next one
        (`retry_at`) or close the row with `outcome`."""
        with self._transaction() as db:
            db.execute(
                "UPDATE attempts SET status = ?, state = COALESCE(?, state), ended_at = ?, "
                "duration_s = ?, recording = ?, end_reason = ?, answered_by = ?, error = ? "
                "WHERE id = ?",
                (
                    status,
                    call.state if call else None,
                    at.timestamp(),
                    call.duration_s if call else None,
                    call.recording if call else None,
                    call.end_reason if call else None,
                    call.answered_by if call else None,
                    error,
                    attempt_id,
                ),
            )
            self._settle(db, row, retry_at=retry_at, outcome=outcome, error=error)

    def close_row(self, row: StoredRow, outcome: str, error: str | None = None) -> None:
        """Close a row without a call (do-not-call)."""
        with self._transaction() as db:
            self._settle(db, row, retry_at=None, outcome=outcome, error=error)

    def _settle(
        self,
        db: sqlite3.Connection,
        row: StoredRow,
        *,
        retry_at: datetime | None,
        outcome: str | None,
        error: str | None,
    ) -> None:
        if retry_at is not None:
            row.status, row.next_at = "pending", retry_at.timestamp()
            db.execute(
                "UPDATE rows SET status = 'pending', next_at = ? WHERE idx = ?",
                (row.next_at, row.idx),
            )
        else:
            row.status, row.outcome, row.error = "done", outcome, error
            db.execute(
                "UPDATE rows SET status = 'done', outcome = ?, error = ? WHERE idx = ?",
                (outcome, error, row.idx),
            )

    # ----------------------------------------------------------------------- results

    def write_results(self, path: Path, *, pending_as: str = "pending") -> None:
        """The results CSV: one line per numbers-file row, its variables last (written to a
        temporary file and renamed, so a reader never sees half of it)."""
        by_row: dict[int, list[Attempt]] = {}
        for attempt in self.attempts():
            by_row.setdefault(attempt.row_idx, []).append(attempt)
        variables = self.variable_columns()
        named = [f"var_{v}" if v in RESULT_COLUMNS else v for v in variables]
        temporary = path.with_name(f".{path.name}.tmp")
        with temporary.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow([*RESULT_COLUMNS, "last_attempt_at", *named])
            for row in self.rows():
                tried = [a for a in by_row.get(row.idx, []) if a.status != "not-placed"]
                last = tried[-1] if tried else None
                outcome = row.outcome if row.status == "done" else pending_as
                writer.writerow([
                    row.line,
                    row.number,
                    outcome,
                    (last.state or "") if last else "",
                    _number(last.duration_s) if last else "",
                    (last.recording or "") if last else "",
                    row.attempts,
                    ";".join(a.call_id for a in tried if a.call_id),
                    (last.end_reason or "") if last else "",
                    (last.answered_by or "") if last else "",
                    row.error or (last.error if last and last.error else ""),
                    (
                        datetime.fromtimestamp(last.started_at, UTC).isoformat(timespec="seconds")
                        if last else ""
                    ),
                    *(row.variables.get(v, "") for v in variables),
                ])
        os.replace(temporary, path)


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
