"""The `acme-support` example agent: its tools on a real SQLite database, and whole calls."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.agents import load_agents
from gateway.tools import ToolContext, ToolError, ToolResult
from gateway.tools.python_tool import load_python_function
from tests.tools.fake_twilio import FakeTwilioApi
from tests.tools.harness import CALL_SID, CALLER, script, tool_gateway

REPO = Path(__file__).parent.parent.parent
AGENTS = REPO / "agents"
ACME = AGENTS / "acme-support"


def acme_tool(name: str) -> Any:
    return load_agents(AGENTS).agents["acme-support"].toolset.get(name)


def context(data_dir: Path) -> ToolContext:
    return ToolContext(
        call_sid=CALL_SID, agent="acme-support", from_number=CALLER, data_dir=data_dir
    )


async def answer(name: str, data_dir: Path, **args: Any) -> ToolResult:
    tool = acme_tool(name)
    assert tool is not None
    result = await tool.invoke(args, context(data_dir))
    assert isinstance(result, ToolResult) and result.message  # every answer explains itself
    return result


async def invoke(name: str, data_dir: Path, **args: Any) -> Any:
    return (await answer(name, data_dir, **args)).result


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
    assert str(caught.value) == (
        "There is no order Z9999. Do not guess its details: ask the caller to check the "
        "number, or offer a ticket. Order numbers look like A1001."
    )
    with pytest.raises(ToolError, match="is not an order number") as nonsense:
        await invoke("lookup_order", tmp_path, order_id="--")
    assert nonsense.value.status == "invalid_argument"


async def test_other_orders_say_what_the_caller_should_hear(tmp_path: Path) -> None:
    said = {
        order_id: (await answer("lookup_order", tmp_path, order_id=order_id)).message
        for order_id in ("A1002", "A1003", "A1004")
    }
    assert said["A1002"] is not None and "is being prepared" in said["A1002"]
    assert all(message and message.startswith("Order A100") for message in said.values())


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
    with pytest.raises(ToolError, match=r"There is no order Q1\. No ticket was opened") as caught:
        await invoke("create_ticket", tmp_path, summary="Where is my parcel?", order_id="Q1")
    assert caught.value.status == "not_found"
    with pytest.raises(ToolError, match="The summary is too short") as short:
        await invoke("create_ticket", tmp_path, summary="bad")
    assert short.value.status == "invalid_argument"
    with sqlite3.connect(tmp_path / "acme.db") as db:
        assert db.execute("SELECT count(*) FROM tickets").fetchone() == (0,)


async def test_first_use_by_concurrent_calls_seeds_the_database_once(tmp_path: Path) -> None:
    orders = await asyncio.gather(
        *(invoke("lookup_order", tmp_path, order_id="A1002") for _ in range(8))
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


async def test_an_unknown_order_reaches_the_model_as_not_found(tmp_path: Path) -> None:
    turns = script(("lookup_order", {"order_id": "A9999"}), after_tool="Let me check that.")
    async with tool_gateway(AGENTS, turns, data_dir=tmp_path / "data") as gw:
        async with gw.call(to="+15550100100") as phone:
            await phone.until("mark")  # the greeting
            await phone.send(phone.twilio.dtmf("1"))
            await gw.emulator.wait_tool_responses(1)
            await phone.send(phone.twilio.stop())
            await phone.rest()
    [answer] = [r.response for r in gw.emulator.tool_responses]
    message = (
        "There is no order A9999. Do not guess its details: ask the caller to check the "
        "number, or offer a ticket. Order numbers look like A1001."
    )
    assert answer == {
        "status": "not_found",
        "retryable": False,
        "message": message,
        "error": message,
    }
