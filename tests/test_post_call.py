"""The post-call webhook: the call's summary is POSTed after it ends, never holding it up."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from gateway.ops.post_call import merge_transcript, pending_deliveries, wait_for_deliveries
from tests.tools.harness import CALL_SID, CALLER, script, tool_gateway, write_agent
from tests.twilio_frames import STREAM_SID

SECRET = "webhook-secret"
TOOLS = "def lookup_order(order_id):\n    return {'status': 'shipped'}\n"


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[tuple[dict[str, Any], bool]] = []
        self.received = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()
        self.status = 200
        self.redirect_to: str | None = None
        self.runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/calls", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}/calls"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers.get("X-Gateway-Timestamp", "")
        digest = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        signed = request.headers.get("X-Gateway-Signature") == "sha256=" + digest.hexdigest()
        self.bodies.append((json.loads(body), signed))
        self.received.set()
        await self.release.wait()
        if self.redirect_to is not None:
            return web.Response(status=self.status, headers={"Location": self.redirect_to})
        return web.Response(status=self.status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    yield server
    server.release.set()
    if server.runner is not None:
        await server.runner.cleanup()


def agent_with_webhook(tmp_path: Path, url: str, extra: str = "") -> Path:
    directory = tmp_path / "agents"
    write_agent(
        directory,
        "default",
        f"""
        name: default
        post_call_webhook: {{url: "{url}", hmac_secret_env: HOOK_SECRET{extra}}}
        tools:
          - name: lookup_order
            description: Look up an order.
            parameters: {{type: object, properties: {{order_id: {{type: string}}}}}}
            python: tools:lookup_order
        """,
        tools_py=TOOLS,
    )
    return directory


async def test_the_summary_is_posted_after_the_call(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    agents = agent_with_webhook(tmp_path, await receiver.start())
    turns = script(("lookup_order", {"order_id": "A1001"}), after_tool="It has shipped.")
    async with tool_gateway(agents, turns, data_dir=tmp_path / "data") as gw:
        async with gw.call(to="+15550100100") as phone:
            await phone.send(phone.twilio.dtmf("1"))
            await gw.emulator.wait_tool_responses(1)
            await phone.until("mark")  # the filler said while the NON_BLOCKING call ran
            await phone.until("mark")  # the answer, spoken once the model was idle
            await phone.send(phone.twilio.stop())
            await phone.rest()
        await receiver.received.wait()
    [(summary, signed)] = receiver.bodies
    assert signed
    iso_utc = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
    assert iso_utc.match(summary["started_at"]) and iso_utc.match(summary["ended_at"])
    assert summary["started_at"] <= summary["ended_at"]
    assert isinstance(summary["duration_s"], float) and summary["duration_s"] >= 0
    [tool_call] = summary["tool_calls"]
    assert isinstance(tool_call.pop("duration_s"), float)
    assert tool_call == {
        "id": "fc-1",
        "name": "lookup_order",
        "args": {"order_id": "A1001"},
        "result": {
            "status": "ok",
            "retryable": False,
            "message": "The tool lookup_order succeeded; its answer is in result.",
            "result": {"status": "shipped"},
        },
        "outcome": "ok",
    }
    transcript = summary.pop("transcript")
    # (the filler and the answer are two model turns; the transcript may join them)
    assert any(e["role"] == "agent" and "It has shipped." in e["text"] for e in transcript)
    for key in ("started_at", "ended_at", "duration_s", "tool_calls", "turns"):
        summary.pop(key)
    assert summary == {
        "call_sid": CALL_SID,
        "stream_sid": STREAM_SID,
        "agent": "default",
        "from": CALLER,
        "to": "+15550100100",
        "end_reason": "caller_hung_up",
        "barge_ins": 0,
    }


async def test_a_slow_or_failing_receiver_never_holds_up_the_call(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    receiver.release.clear()  # the receiver hangs
    receiver.status = 500
    agents = agent_with_webhook(tmp_path, await receiver.start(), ", timeout_s: 30")
    with capture_logs() as logs:
        async with tool_gateway(agents, data_dir=tmp_path / "data") as gw:
            async with gw.call() as phone:
                await phone.send(phone.twilio.stop())
                assert await phone.rest() == []  # the call is over and closed…
            await receiver.received.wait()
            assert pending_deliveries() == 1  # …while the webhook is still in flight
            receiver.release.set()
            assert await wait_for_deliveries(timeout_s=30) == 0
    [failure] = [e for e in logs if e["event"] == "post_call_webhook_failed"]
    assert failure["status"] == 500 and failure["call_sid"] == CALL_SID


async def test_an_unreachable_receiver_is_logged(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    url = await receiver.start()
    assert receiver.runner is not None
    await receiver.runner.cleanup()  # nobody listens there any more
    receiver.runner = None
    agents = agent_with_webhook(tmp_path, url)
    with capture_logs() as logs:
        async with tool_gateway(agents, data_dir=tmp_path / "data") as gw:
            async with gw.call() as phone:
                await phone.send(phone.twilio.stop())
                await phone.rest()
            await wait_for_deliveries(timeout_s=30)
    [failure] = [e for e in logs if e["event"] == "post_call_webhook_failed"]
    assert "error" in failure


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_is_not_followed_so_the_summary_goes_nowhere_else(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    """The transcript and its signature once followed a redirect to any host."""
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    elsewhere = Receiver()  # another origin (its own port)
    try:
        receiver.status = status
        target = f"{await elsewhere.start()}?token=sekrit"
        receiver.redirect_to = target
        agents = agent_with_webhook(tmp_path, f"{await receiver.start()}?key=sekrit")
        with capture_logs() as logs:
            async with tool_gateway(agents, data_dir=tmp_path / "data") as gw:
                async with gw.call() as phone:
                    await phone.send(phone.twilio.stop())
                    await phone.rest()
                await receiver.received.wait()
                assert await wait_for_deliveries(timeout_s=30) == 0
    finally:
        if elsewhere.runner is not None:
            await elsewhere.runner.cleanup()
    assert len(receiver.bodies) == 1 and elsewhere.bodies == []
    [failure] = [e for e in logs if e["event"] == "post_call_webhook_failed"]
    assert failure["status"] == status and failure["call_sid"] == CALL_SID
    assert failure["detail"] == "redirects are not followed"
    assert failure["location"] == target.removesuffix("?token=sekrit")
    assert "sekrit" not in json.dumps(logs, default=str)


def test_transcript_fragments_become_turns() -> None:
    pieces = [
        ("agent", "Hello, "), ("agent", "how can I "), ("agent", "help?"),
        ("caller", " where is"), ("caller", " my order"),
        ("agent", "  "), ("agent", "Let me check."),
    ]  # fmt: skip
    assert merge_transcript(pieces) == [
        {"role": "agent", "text": "Hello, how can I help?"},
        {"role": "caller", "text": "where is my order"},
        {"role": "agent", "text": "Let me check."},
    ]
