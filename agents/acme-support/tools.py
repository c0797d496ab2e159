"""Acme support's tools: orders and tickets in a SQLite database, seeded on first use.

The database lives in the agent's data folder (`DATA_DIR/acme-support/acme.db`, writable,
never committed) and is created from `seed.sql` the first time a tool needs it. Functions are
plain sync Python: the gateway runs them in a worker thread, so SQLite never blocks a call.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.tools import ToolContext, ToolError

SEED_SQL = Path(__file__).with_name("seed.sql")
DB_NAME = "acme.db"
SCHEMA_VERSION = 1
"""Bump to re-run the (idempotent) seed on existing databases."""

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


def connect(data_dir: Path) -> sqlite3.Connection:
    """The store's database, created and seeded from seed.sql on first use."""
    data_dir.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(data_dir / DB_NAME, timeout=10.0, isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA foreign_keys = ON")
    if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
        seed = SEED_SQL.read_text(encoding="utf-8")
        # One write transaction: concurrent first calls seed once, the others wait.
        db.executescript(
            f"BEGIN IMMEDIATE;\n{seed}\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;"
        )
    return db


def normalise_order_id(order_id: str) -> str:
    """'a-1001', 'A 1001' and 'A1001' are the same order."""
    return _ORDER_ID.sub("", order_id.upper())


def lookup_order(order_id: str, context: ToolContext) -> dict[str, Any]:
    """Status, items and delivery estimate of one order."""
    key = normalise_order_id(order_id)
    with closing(connect(context.data_dir)) as db:
        order = db.execute(
            "SELECT id, status, placed_on, eta, carrier, tracking_number FROM orders WHERE id = ?",
            (key,),
        ).fetchone()
        if order is None:
            return {"found": False, "order_id": key, "message": "There is no order with this id."}
        items = db.execute(
            "SELECT name, quantity FROM order_items WHERE order_id = ? ORDER BY line", (key,)
        ).fetchall()
    return {
        "found": True,
        "order_id": order["id"],
        "status": order["status"],
        "placed_on": order["placed_on"],
        "eta": order["eta"],
        "carrier": order["carrier"],
        "tracking_number": order["tracking_number"],
        "items": [{"name": item["name"], "quantity": item["quantity"]} for item in items],
    }


def create_ticket(
    summary: str, context: ToolContext, order_id: str | None = None
) -> dict[str, Any]:
    """Open a support ticket for a person to follow up; returns its number."""
    text = " ".join(summary.split())
    if len(text) < 5:
        raise ToolError("the summary is too short; describe the problem in a sentence")
    key = normalise_order_id(order_id) if order_id else None
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    with closing(connect(context.data_dir)) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            if key is not None:
                found = db.execute("SELECT 1 FROM orders WHERE id = ?", (key,)).fetchone()
                if found is None:
                    raise ToolError(f"there is no order {key}; check the order number")
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
    return {"ticket_number": number, "status": "open", "order_id": key, "summary": text}


def _store_timezone() -> tzinfo:
    try:
        return ZoneInfo(TIMEZONE)
    except ZoneInfoNotFoundError:  # a system without tz data: Eastern Standard Time
        return timezone(timedelta(hours=-5), "EST")


def business_hours(now: datetime | None = None) -> dict[str, Any]:
    """When the human support team works, and whether it is open right now."""
    local = (now or datetime.now(UTC)).astimezone(_store_timezone())
    today = local.strftime("%A").lower()
    hours = OPENING_HOURS[today]
    open_now = hours is not None and hours[0] <= local.strftime("%H:%M") < hours[1]
    return {
        "timezone": TIMEZONE,
        "hours": {
            day: f"{span[0]}-{span[1]}" if span else "closed" for day, span in OPENING_HOURS.items()
        },
        "local_time": local.strftime("%A %H:%M"),
        "open_now": open_now,
    }
