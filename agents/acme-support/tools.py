"""Acme support's tools: orders and tickets in a SQLite database, seeded on first use.

The database lives in the agent's data folder (`DATA_DIR/acme-support/acme.db`, writable,
never committed) and is created from `seed.sql` the first time a tool needs it. Functions are
plain sync Python: the gateway runs them in a worker thread, so SQLite never blocks a call.

Every answer is explicit, so the model neither invents nor re-asks: results come with a
plain-language `message` the model can relay (`ToolResult`), and "no such order" is a
`ToolError` with status `not_found` saying what to do next (agents/README.md, Tools).

A caller hears only about their own orders. Who is calling is the call's `from_number`, which
the gateway sets from the carrier; the model only chooses the order number, so a caller who
reads out someone else's order number (or talks the model into trying many) learns nothing:
another customer's order is "not found", word for word like one that does not exist.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.tools import ToolContext, ToolError, ToolResult, ToolStatus

SEED_SQL = Path(__file__).with_name("seed.sql")
DB_NAME = "acme.db"
SCHEMA_VERSION = 2
"""Bump to re-run the (idempotent) seed on existing databases."""
UPGRADES = {2: "ALTER TABLE orders ADD COLUMN phone TEXT"}
"""What a database of the version before needs before the seed runs again (a new one: none)."""

TIMEZONE = "America/New_York"
OPENING_HOURS: dict[str, tuple[str, str] | None] = {
    "monday": ("09:00", "18:00"),
    "tuesday": ("09:00", "18:00"),
    "wednesday": ("09:00", "18:00"),
    "thursday": ("09:00", "18:00"),
    "friday": ("09:00", "18:00"),
    "saturday": ("10:00", "14:00"),
    "sunday": None,
}
_ORDER_ID = re.compile(r"[^A-Z0-9]")
_STATUS_WORDS = {
    "processing": "is being prepared and has not shipped yet",
    "shipped": "has shipped",
    "delivered": "was delivered",
    "cancelled": "was cancelled",
}


def connect(data_dir: Path) -> sqlite3.Connection:
    """The store's database, created and seeded from seed.sql on first use."""
    data_dir.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(data_dir / DB_NAME, timeout=10.0, isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA foreign_keys = ON")
    if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
        _seed(db)
    return db


def _seed(db: sqlite3.Connection) -> None:
    """Upgrade and seed in one write transaction: of concurrent first calls one does it, the
    others wait for it and then find the database current."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            upgrades = []  # a new database: the seed creates it as it is now
            if version:
                upgrades = [UPGRADES[v] for v in range(version + 1, SCHEMA_VERSION + 1)]
            for statement in [*upgrades, *_statements(SEED_SQL.read_text(encoding="utf-8"))]:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _statements(sql: str) -> Iterator[str]:
    """The statements of a script, one at a time (`executescript` would commit our transaction)."""
    statement = ""
    for line in sql.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""


def normalise_order_id(order_id: str) -> str:
    """'a-1001', 'A 1001' and 'A1001' are the same order."""
    return _ORDER_ID.sub("", order_id.upper())


def _order_key(order_id: str | None) -> str:
    key = normalise_order_id(order_id or "")
    if not key:
        raise ToolError(
            f"{order_id!r} is not an order number. Ask the caller for it: it looks like A1001.",
            status=ToolStatus.INVALID_ARGUMENT,
        )
    return key


def _no_such_order(key: str, then: str) -> ToolError:
    return ToolError(
        f"There is no order {key} for the phone number this call comes from. {then} Order "
        "numbers look like A1001.",
        status=ToolStatus.NOT_FOUND,
    )


def _callers_order(db: sqlite3.Connection, key: str, context: ToolContext) -> sqlite3.Row | None:
    """Order `key` if it belongs to the calling number; None when it does not exist *or* is
    someone else's (one query, one answer: no way to tell the two apart)."""
    if not context.from_number:
        return None  # a withheld number owns no orders
    return db.execute(
        "SELECT id, status, placed_on, eta, carrier, tracking_number FROM orders "
        "WHERE id = ? AND phone = ?",
        (key, context.from_number),
    ).fetchone()


def lookup_order(order_id: str, context: ToolContext) -> ToolResult:
    """Status, items and delivery estimate of one of the caller's orders."""
    key = _order_key(order_id)
    with closing(connect(context.data_dir)) as db:
        order = _callers_order(db, key, context)
        if order is None:
            raise _no_such_order(
                key,
                "Do not guess its details: ask the caller to check the number, or offer a "
                "ticket.",
            )
        items = db.execute(
            "SELECT name, quantity FROM order_items WHERE order_id = ? ORDER BY line", (key,)
        ).fetchall()
    details = {
        "found": True,
        "order_id": order["id"],
        "status": order["status"],
        "placed_on": order["placed_on"],
        "eta": order["eta"],
        "carrier": order["carrier"],
        "tracking_number": order["tracking_number"],
        "items": [{"name": item["name"], "quantity": item["quantity"]} for item in items],
    }
    return ToolResult(details, message=_order_summary(details))


def _order_summary(order: dict[str, Any]) -> str:
    status = order["status"]
    said = f"Order {order['order_id']} {_STATUS_WORDS.get(status, f'is {status}')}"
    if order["carrier"] and status in ("shipped", "delivered"):
        said += f" with {order['carrier']}"
    said += "."
    if order["eta"]:
        said += f" Expected delivery: {order['eta']}."
    items = ", ".join(f"{item['quantity']} × {item['name']}" for item in order["items"])
    if items:
        said += f" It contains {items}."
    return said


def create_ticket(
    summary: str, context: ToolContext, order_id: str | None = None
) -> ToolResult:
    """Open a support ticket for a person to follow up; returns its number."""
    text = " ".join(summary.split())
    if len(text) < 5:
        raise ToolError(
            "The summary is too short: describe the caller's problem in one sentence.",
            status=ToolStatus.INVALID_ARGUMENT,
        )
    key = _order_key(order_id) if order_id and order_id.strip() else None
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    with closing(connect(context.data_dir)) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            if key is not None and _callers_order(db, key, context) is None:
                raise _no_such_order(
                    key,
                    "No ticket was opened: check the number with the caller, or open the "
                    "ticket without an order number.",
                )
            cursor = db.execute(
                "INSERT INTO tickets (summary, order_id, call_sid, caller, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (text, key, context.call_sid, context.from_number, created_at),
            )
            ticket_id = cursor.lastrowid
            assert ticket_id is not None
            number = f"T-{1000 + ticket_id}"
            db.execute("UPDATE tickets SET number = ? WHERE id = ?", (number, ticket_id))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    ticket = {"ticket_number": number, "status": "open", "order_id": key, "summary": text}
    return ToolResult(
        ticket,
        message=f"Ticket {number} is open; read the number to the caller. A person from the "
        "support team will follow up.",
    )


def _store_timezone() -> tzinfo:
    try:
        return ZoneInfo(TIMEZONE)
    except ZoneInfoNotFoundError:  # a system without tz data: Eastern Standard Time
        return timezone(timedelta(hours=-5), "EST")


def business_hours(now: datetime | None = None) -> ToolResult:
    """When the human support team works, and whether it is open right now."""
    local = (now or datetime.now(UTC)).astimezone(_store_timezone())
    today = local.strftime("%A").lower()
    clock = local.strftime("%H:%M")
    hours = OPENING_HOURS[today]
    open_now = hours is not None and hours[0] <= clock < hours[1]
    week = {
        day: f"{span[0]}-{span[1]}" if span else "closed" for day, span in OPENING_HOURS.items()
    }
    if hours is not None and open_now:
        message = f"The support team is open now, until {hours[1]} New York time."
    else:
        message = f"The support team is closed now; it opens {_next_opening(today, clock)}."
    return ToolResult(
        {"timezone": TIMEZONE, "hours": week, "local_time": local.strftime("%A %H:%M"),
         "open_now": open_now},
        message=message,
    )  # fmt: skip


def _next_opening(today: str, clock: str) -> str:
    days = list(OPENING_HOURS)
    start = days.index(today)
    for ahead in range(8):
        day = days[(start + ahead) % len(days)]
        span = OPENING_HOURS[day]
        if span is None or (ahead == 0 and clock >= span[0]):
            continue
        when = "today" if ahead == 0 else "tomorrow" if ahead == 1 else f"on {day.title()}"
        return f"{when} at {span[0]} New York time"
    return "again soon"
