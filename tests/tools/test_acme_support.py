"""The `acme-support` example agent: its tools on a real SQLite database, and whole calls."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.agents.config import load_agents
from gateway.tools import ToolContext, ToolError, ToolResult
from gateway.tools.python_tool import load_python_function
from tests.tools.fake_twilio import FakeTwilioApi
from tests.tools.harness import CALL_SID, CALLER, script, tool_gateway

REPO = Path(__file__).parent.parent.parent
AGENTS = REPO / "agents"
ACME = AGENTS / "acme-support"
OWNERS = {
    "A1001": CALLER, "A1002": "+15551230001", "A1003": "+15551230002", "A1004": "+15551230003",
}  # fmt: skip
"""Who placed each seeded order (seed.sql): only a call from that number hears about it."""


def acme_tool(name: str) -> Any:
    return load_agents(AGENTS).agents["acme-support"].toolset.get(name)


def context(data_dir: Path, caller: str = CALLER) -> ToolContext:
    return ToolContext(
        call_sid=CALL_SID, agent="acme-support", from_number=caller, data_dir=data_dir
    )


async def answer(name: str, data_dir: Path, caller: str = CALLER, **args: Any) -> ToolResult:
    tool = acme_tool(name)
    assert tool is not None
    result = await tool.invoke(args, context(data_dir, caller))
    assert isinstance(result, ToolResult) and result.message  # every answer explains itself
    return result


async def invoke(name: str, data_dir: Path, caller: str = CALLER, **args: Any) -> Any:
    return (await answer(name, data_dir, caller, **args)).result


def not_found(order_id: str) -> str:
    return (
        f"There is no order {order_id} for the phone number this call comes from. Do not guess "
        "its details: ask the caller to check the number, or offer a ticket. Order numbers "
        "look like A1001."
    )


def test_the_agent_declares_its_tools_and_routes_by_its_line() -> None:
    agents = load_agents(AGENTS)
    acme = agents.for_call(None, "+15550100100")
    assert acme.name == "acme-support"
    assert [d["name"] for d in acme.toolset.declarations] == [
        "lookup_order", "create_ticket", "business_hours", "transfer_to_human", "end_call",
    ]  # fmt: skip
    assert acme.instructions is not None and "lookup_order" in acme.instructions
    assert agents.for_call(None, "+15559999999").name == "default"


async def test_lookup_order_a1001_is_shipped_with_items_and_eta(tmp_path: Path) -> None:
    data_dir = tmp_path / "acme-support"
    assert not data_dir.exists()
    found = await answer("lookup_order", data_dir, order_id="a-1001")
    assert (data_dir / "acme.db").is_file()  # created from seed.sql on first use
    assert found.message == (
        "Order A1001 has shipped with UPS. Expected delivery: 2026-11-28. It contains "
        "1 × Wireless keyboard, 1 × Ergonomic mouse."
    )
    assert found.result == {
        "found": True,
        "order_id": "A1001",
        "status": "shipped",
        "placed_on": "2026-11-20",
        "eta": "2026-11-28",
        "carrier": "UPS",
        "tracking_number": "1Z999AA10123456784",
        "items": [
            {"name": "Wireless keyboard", "quantity": 1},
            {"name": "Ergonomic mouse", "quantity": 1},
        ],
    }


async def test_an_unknown_order_is_reported_not_invented(tmp_path: Path) -> None:
    with pytest.raises(ToolError) as caught:
        await invoke("lookup_order", tmp_path, order_id="z-9999")
    assert (caught.value.status, caught.value.retryable) == ("not_found", False)
    assert str(caught.value) == not_found("Z9999")
    with pytest.raises(ToolError, match="is not an order number") as nonsense:
        await invoke("lookup_order", tmp_path, order_id="--")
    assert nonsense.value.status == "invalid_argument"


async def test_other_orders_say_what_the_caller_should_hear(tmp_path: Path) -> None:
    said = {
        order_id: (await answer("lookup_order", tmp_path, owner, order_id=order_id)).message
        for order_id, owner in OWNERS.items()
    }
    assert said["A1002"] is not None and "is being prepared" in said["A1002"]
    assert all(message and message.startswith("Order A100") for message in said.values())


async def test_an_order_is_revealed_only_to_the_number_it_belongs_to(tmp_path: Path) -> None:
    """Someone else's order answers exactly like an order that does not exist (no oracle)."""
    for order_id, owner in OWNERS.items():
        for caller in {*OWNERS.values(), "", "anonymous"} - {owner}:
            with pytest.raises(ToolError) as caught:
                await invoke("lookup_order", tmp_path, caller, order_id=order_id.lower())
            assert (caught.value.status, str(caught.value)) == ("not_found", not_found(order_id))
        with pytest.raises(ToolError) as ticket:
            await invoke("create_ticket", tmp_path, "+15559990000", summary="Where is it?",
                         order_id=order_id)  # fmt: skip
        assert ticket.value.status == "not_found"
        assert str(ticket.value).startswith(f"There is no order {order_id} for the phone number")
    with sqlite3.connect(tmp_path / "acme.db") as db:
        assert db.execute("SELECT count(*) FROM tickets").fetchone() == (0,)


async def test_a_database_from_before_phone_numbers_is_upgraded(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "acme.db") as db:  # schema 1: orders had no phone
        db.executescript(
            "CREATE TABLE orders (id TEXT PRIMARY KEY, customer TEXT NOT NULL, status TEXT NOT "
            "NULL, placed_on TEXT NOT NULL, eta TEXT, carrier TEXT, tracking_number TEXT);"
            "INSERT INTO orders VALUES ('A1001', 'Jordan Lee', 'shipped', '2026-11-20', "
            "'2026-11-28', 'UPS', '1Z999AA10123456784');"
            "INSERT INTO orders VALUES ('B7', 'Someone', 'shipped', '2026-11-01', NULL, NULL, "
            "NULL);"
            "PRAGMA user_version = 1;"
        )
    db.close()
    found = await invoke("lookup_order", tmp_path, order_id="A1001")
    assert found["status"] == "shipped"
    with pytest.raises(ToolError, match="There is no order B7 for the phone number"):
        await invoke("lookup_order", tmp_path, order_id="B7")  # kept, but nobody's
    with sqlite3.connect(tmp_path / "acme.db") as db:
        assert db.execute("SELECT phone FROM orders WHERE id = 'B7'").fetchone() == (None,)
        assert db.execute("PRAGMA user_version").fetchone() == (2,)
    db.close()


async def test_create_ticket_persists_and_returns_a_number(tmp_path: Path) -> None:
    opened = await answer(
        "create_ticket", tmp_path, summary="The  mouse arrived broken.", order_id="A1001"
    )
    assert opened.message == (
        "Ticket T-1001 is open; read the number to the caller. A person from the support team "
        "will follow up."
    )
    first = opened.result
    second = await invoke("create_ticket", tmp_path, summary="Please call me back about a refund")
    assert first == {
        "ticket_number": "T-1001",
        "status": "open",
        "order_id": "A1001",
        "summary": "The mouse arrived broken.",
    }
    assert second["ticket_number"] == "T-1002" and second["order_id"] is None
    with sqlite3.connect(tmp_path / "acme.db") as db:  # a fresh connection: it is on disk
        rows = db.execute(
            "SELECT number, summary, order_id, call_sid, caller, status FROM tickets ORDER BY id"
        ).fetchall()
    assert rows == [
        ("T-1001", "The mouse arrived broken.", "A1001", CALL_SID, CALLER, "open"),
        ("T-1002", "Please call me back about a refund", None, CALL_SID, CALLER, "open"),
    ]


async def test_create_ticket_refuses_an_unknown_order_and_writes_nothing(tmp_path: Path) -> None:
    refused = r"There is no order Q1 for the phone number this call comes from\. No ticket was"
    with pytest.raises(ToolError, match=refused) as caught:
        await invoke("create_ticket", tmp_path, summary="Where is my parcel?", order_id="Q1")
    assert caught.value.status == "not_found"
    with pytest.raises(ToolError, match="The summary is too short") as short:
        await invoke("create_ticket", tmp_path, summary="bad")
    assert short.value.status == "invalid_argument"
    with sqlite3.connect(tmp_path / "acme.db") as db:
        assert db.execute("SELECT count(*) FROM tickets").fetchone() == (0,)


async def test_first_use_by_concurrent_calls_seeds_the_database_once(tmp_path: Path) -> None:
    orders = await asyncio.gather(
        *(invoke("lookup_order", tmp_path, OWNERS["A1002"], order_id="A1002") for _ in range(8))
    )
    assert {o["status"] for o in orders} == {"processing"}
    with sqlite3.connect(tmp_path / "acme.db") as db:
        assert db.execute("SELECT count(*) FROM orders").fetchone() == (4,)
        assert db.execute("SELECT count(*) FROM order_items").fetchone() == (5,)


def test_business_hours() -> None:
    hours = load_python_function(ACME, "tools:business_hours")
    tuesday = hours(now=datetime(2026, 11, 24, 15, 30, tzinfo=UTC))
    tuesday_morning_ny = tuesday.result
    assert tuesday_morning_ny["open_now"] is True
    assert tuesday_morning_ny["local_time"] == "Tuesday 10:30"
    assert tuesday_morning_ny["hours"]["monday"] == "09:00-18:00"
    assert tuesday_morning_ny["hours"]["sunday"] == "closed"
    assert tuesday.message == "The support team is open now, until 18:00 New York time."
    sunday = hours(now=datetime(2026, 11, 29, 17, 0, tzinfo=UTC))
    assert sunday.result["open_now"] is False
    assert sunday.message == (
        "The support team is closed now; it opens tomorrow at 09:00 New York time."
    )
    early_monday = hours(now=datetime(2026, 11, 30, 12, 0, tzinfo=UTC))  # 07:00 in New York
    assert early_monday.message.endswith("it opens today at 09:00 New York time.")
    saturday_evening = hours(now=datetime(2026, 11, 28, 22, 0, tzinfo=UTC))
    assert saturday_evening.message.endswith("it opens on Monday at 09:00 New York time.")


async def test_business_hours_as_the_model_calls_it(tmp_path: Path) -> None:
    result = await invoke("business_hours", tmp_path)
    assert result["timezone"] == "America/New_York" and isinstance(result["open_now"], bool)


# --------------------------------------------------------------------------- whole calls


async def test_a_support_call_looks_up_files_a_ticket_and_hangs_up(tmp_path: Path) -> None:
    twilio = FakeTwilioApi()
    turns = script(
        ("lookup_order", {"order_id": "A1001"}),
        ("create_ticket", {"summary": "The keyboard is missing a key.", "order_id": "A1001"}),
        ("business_hours", {}),
        ("end_call", {"reason": "resolved"}),
        after_tool="Here you are.",
    )
    data_dir = tmp_path / "data"
    async with tool_gateway(AGENTS, turns, data_dir=data_dir, twilio=twilio) as gw:
        async with gw.call(to="+15550100100") as phone:
            await phone.until("mark")  # the greeting
            for n, digit in enumerate("123", start=1):
                await phone.send(phone.twilio.dtmf(digit))
                await gw.emulator.wait_tool_responses(n)
                await phone.until("mark")
            assert twilio.requests == []
            await phone.send(phone.twilio.dtmf("4"))
            goodbye = await phone.until("mark")
            await phone.send(phone.twilio.mark(goodbye[-1]["mark"]["name"]))
            [hang_up] = await twilio.wait_requests(1)
            await phone.rest()
    lookup, ticket, hours, end = [r.response for r in gw.emulator.tool_responses]
    assert lookup["result"]["status"] == "shipped" and lookup["result"]["eta"] == "2026-11-28"
    assert lookup["status"] == "ok" and lookup["message"].startswith("Order A1001 has shipped")
    assert ticket["result"]["ticket_number"] == "T-1001"
    assert ticket["message"].startswith("Ticket T-1001 is open")
    assert set(hours["result"]) == {"timezone", "hours", "local_time", "open_now"}
    assert end["result"]["status"] == "ending"
    assert end["message"] == "Say a brief goodbye now; the call ends when you finish speaking."
    assert all(r["retryable"] is False for r in (lookup, ticket, hours, end))
    assert hang_up.form == {"Status": "completed"}
    with sqlite3.connect(data_dir / "acme-support" / "acme.db") as db:
        assert db.execute("SELECT number, summary, call_sid FROM tickets").fetchall() == [
            ("T-1001", "The keyboard is missing a key.", CALL_SID)
        ]
    setup = gw.emulator.setups[-1]
    assert setup["generationConfig"]["speechConfig"]["languageCode"] == "en-US"
    assert setup["realtimeInputConfig"]["automaticActivityDetection"]["silenceDurationMs"] == 600


async def test_transfer_to_human_dials_the_support_team(tmp_path: Path) -> None:
    twilio = FakeTwilioApi()
    turns = script(("transfer_to_human", {"reason": "wants a person"}), after_tool="Connecting.")
    async with tool_gateway(AGENTS, turns, data_dir=tmp_path / "data", twilio=twilio) as gw:
        async with gw.call(to="+15550100100") as phone:
            await phone.until("mark")  # the greeting
            await phone.send(phone.twilio.dtmf("0"))
            said = await phone.until("mark")
            await phone.send(phone.twilio.mark(said[-1]["mark"]["name"]))
            [transfer] = await twilio.wait_requests(1)
            await phone.rest()
    assert gw.emulator.tool_responses[0].response["result"]["target"] == "human"
    assert transfer.form == {"Twiml": "<Response><Dial>+15550100199</Dial></Response>"}


@pytest.mark.parametrize("order_id", ["A9999", "A1002"])  # none, and another customer's
async def test_an_order_not_of_this_caller_reaches_the_model_as_not_found(
    tmp_path: Path, order_id: str
) -> None:
    turns = script(("lookup_order", {"order_id": order_id}), after_tool="Let me check that.")
    async with tool_gateway(AGENTS, turns, data_dir=tmp_path / "data") as gw:
        async with gw.call(to="+15550100100") as phone:  # from CALLER, who owns A1001 only
            await phone.until("mark")  # the greeting
            await phone.send(phone.twilio.dtmf("1"))
            await gw.emulator.wait_tool_responses(1)
            await phone.send(phone.twilio.stop())
            await phone.rest()
    [answer] = [r.response for r in gw.emulator.tool_responses]
    message = not_found(order_id)
    assert answer == {
        "status": "not_found",
        "retryable": False,
        "message": message,
        "error": message,
    }
