"""`/twiml?agent=NAME` naming no agent: never silent — a warning, and the operator's choice
(UNKNOWN_AGENT=default|reject)."""

from __future__ import annotations

from xml.etree import ElementTree

import structlog

from tests.gateway_harness import loopback_gateway
from tests.twilio_frames import parameters_of, twiml_form


async def test_an_unknown_agent_is_warned_about_and_the_line_answers_by_default() -> None:
    async with loopback_gateway() as gw:
        form = twiml_form(To="+15550002222")
        with structlog.testing.capture_logs() as logs:
            response = await gw.client.post("/twiml?agent=gretter", data=form)
        assert response.status == 200
        assert parameters_of(await response.text())["agent"] == "greeter"  # the line's agent
        [warning] = [line for line in logs if line["event"] == "agent_unknown"]
        assert warning["agent"] == "gretter" and warning["log_level"] == "warning"
        with structlog.testing.capture_logs() as logs:
            response = await gw.client.post("/twiml?agent=greeter", data=twiml_form())
        assert parameters_of(await response.text())["agent"] == "greeter"
        assert not [line for line in logs if line["event"] == "agent_unknown"]


async def test_with_unknown_agent_reject_the_caller_hears_the_line_is_unavailable() -> None:
    async with loopback_gateway(unknown_agent="reject") as gw:
        with structlog.testing.capture_logs() as logs:
            response = await gw.client.post("/twiml?agent=nobody", data=twiml_form())
        assert response.status == 200
        root = ElementTree.fromstring(await response.text())
        assert root.find("./Connect") is None and root.find("./Hangup") is not None
        assert "not available" in (root.findtext("./Say") or "")
        assert [line["agent"] for line in logs if line["event"] == "agent_unknown"] == ["nobody"]
