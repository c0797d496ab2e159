"""Twilio's status callbacks of outbound calls: signed ones move the call's state (never
backwards, counted once when it ends, with callback_url and the post-call webhook told);
unsigned, forged, unknown or mismatched ones are refused and change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from gateway.ops.post_call import wait_for_deliveries
from gateway.server import OUTBOUND
from tests.outbound.test_outbound_calls_harness import (
    PUBLIC_URL,
    SALES_YAML,
    OutboundGateway,
    outbound_gateway,
    sign,
)

VARIABLES = {"first_name": "Ana", "topic": "your order"}
WITH_WEBHOOK = SALES_YAML + '    post_call_webhook: "{receiver}/post-call"\n'


async def metric(gw: OutboundGateway, state: str) -> float:
    text = await (await gw.client.get("/metrics")).text()
    prefix = f'gateway_outbound_calls_total{{state="{state}"}} '
    [line] = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(line.removeprefix(prefix))


async def test_ringing_in_progress_completed_and_the_end_is_told_once(tmp_path: Path) -> None:
    async with outbound_gateway(tmp_path) as gw:
        callback = f"{gw.receiver.url}/done"
        _, call = await gw.place(variables=VARIABLES, callback_url=callback)
        seen = []
        for status in ("initiated", "ringing", "in-progress"):
            assert await gw.status(call["id"], status) == 204
            seen.append((await gw.get(call["id"]))["state"])
        assert seen == ["queued", "ringing", "in-progress"]
        assert await gw.status(call["id"], "ringing") == 204  # late: never backwards
        assert (await gw.get(call["id"]))["state"] == "in-progress"
        assert await metric(gw, "completed") == 0
        assert await gw.status(call["id"], "completed", CallDuration="61") == 204
        assert await gw.status(call["id"], "completed", CallDuration="61") == 204  # a retry
        [told] = await gw.receiver.wait("/done")
        ended = await gw.get(call["id"])
        assert await metric(gw, "completed") == 1
        placed = await (await gw.client.get("/metrics")).text()
    assert ended["state"] == "completed" and ended["duration_s"] == 61
    assert ended["end_reason"] == "completed"  # no stream ran: the carrier's status
    assert told == ended
    assert 'gateway_outbound_calls_placed_total{carrier="twilio"} 1.0' in placed


@pytest.mark.parametrize("final", ["busy", "no-answer", "failed", "canceled"])
async def test_a_call_nobody_answered_ends_in_that_state_with_the_post_call_webhook(
    tmp_path: Path, final: str
) -> None:
    async with outbound_gateway(tmp_path, agents={"sales": WITH_WEBHOOK}) as gw:
        _, call = await gw.place(variables=VARIABLES, callback_url=f"{gw.receiver.url}/done")
        assert await gw.status(call["id"], "ringing") == 204
        assert await gw.status(call["id"], final) == 204
        [summary] = await gw.receiver.wait("/post-call")
        [told] = await gw.receiver.wait("/done")
        ended = await gw.get(call["id"])
        assert await metric(gw, final) == 1
        assert await metric(gw, "completed") == 0
    assert (ended["state"], ended["end_reason"]) == (final, final)
    assert told["state"] == final
    assert summary["call_sid"] == call["carrier_call_id"]
    assert summary["end_reason"] == final
    assert summary["transcript"] == []
    assert summary["outbound"]["state"] == final
    assert summary["outbound"]["id"] == call["id"]


async def test_a_failing_callback_url_is_logged_and_changes_nothing(tmp_path: Path) -> None:
    async with outbound_gateway(tmp_path) as gw:
        await gw.receiver.stop()  # nothing listens there any more
        _, call = await gw.place(variables=VARIABLES, callback_url=gw.receiver.url + "/done")
        with structlog.testing.capture_logs() as logs:
            assert await gw.status(call["id"], "busy") == 204
            await wait_for_deliveries(timeout_s=10.0)
        assert (await gw.get(call["id"]))["state"] == "busy"
    assert [line["outbound"] for line in logs if line["event"] == "outbound_callback_failed"] == [
        call["id"]
    ]


async def test_unsigned_and_forged_callbacks_are_refused(tmp_path: Path) -> None:
    async with outbound_gateway(tmp_path) as gw:
        _, call = await gw.place(variables=VARIABLES)
        path = f"/twilio/status?outbound={call['id']}"
        form = gw.form(call["id"], CallStatus="completed")
        unsigned = await gw.client.post(path, data=form)
        assert unsigned.status == 403
        assert await gw.status(call["id"], "completed", token="not-our-token") == 403
        other_url = sign(f"{PUBLIC_URL}/twilio/status?outbound=oc_{'1' * 24}", form)
        assert (await gw.client.post(path, data=form, headers=other_url)).status == 403
        assert (await gw.get(call["id"]))["state"] == "queued"
        assert await metric(gw, "completed") == 0


async def test_callbacks_naming_an_unknown_call_or_another_calls_sid_are_refused(
    tmp_path: Path,
) -> None:
    async with outbound_gateway(tmp_path) as gw:
        _, call = await gw.place(variables=VARIABLES)
        _, other = await gw.place(variables=VARIABLES)
        with structlog.testing.capture_logs() as logs:
            gw.calls[f"oc_{'2' * 24}"] = call["carrier_call_id"]
            assert await gw.status(f"oc_{'2' * 24}", "completed") == 404
            gw.calls["not-an-id"] = call["carrier_call_id"]
            assert await gw.status("not-an-id", "completed") == 404
            gw.calls[other["id"]] = call["carrier_call_id"]  # our id, another call's SID
            assert await gw.status(other["id"], "completed") == 400
            gw.calls[other["id"]] = other["carrier_call_id"]
            assert await gw.status(other["id"], "no-such-status") == 400
        assert (await gw.get(call["id"]))["state"] == "queued"
        assert (await gw.get(other["id"]))["state"] == "queued"
        assert await metric(gw, "completed") == 0
    reasons = [line["reason"] for line in logs if line["event"] == "outbound_status_refused"]
    assert reasons == ["unknown", "unknown", "mismatch", "call_status"]


async def test_a_callback_before_the_rest_answer_adopts_the_sid_it_names(tmp_path: Path) -> None:
    """Twilio may call back before its Calls create answer arrives: a signed callback names
    the call's SID first, and then no other SID is accepted for that call."""
    async with outbound_gateway(tmp_path) as gw:
        _, call = await gw.place(variables=VARIABLES)
        record = gw.client.app[OUTBOUND].registry.get(call["id"])
        assert record is not None
        record.carrier_call_id = None
        assert await gw.status(call["id"], "ringing") == 204
        assert record.carrier_call_id == call["carrier_call_id"]
        gw.calls[call["id"]] = "CA" + "3" * 32
        assert await gw.status(call["id"], "completed") == 400
        assert (await gw.get(call["id"]))["state"] == "ringing"
