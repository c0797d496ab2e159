"""Logs as production writes them: JSON lines, every line of a call bound to the call."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from gateway.ops.logs import configure_logging
from tests.caller_audio import silence_frames, speech_frames
from tests.gateway_harness import loopback_gateway
from tests.test_integration import PhoneCall
from tests.twilio_frames import TwilioCaller

CALL_IDS = ("call_sid", "stream_sid", "agent")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo `configure_logging` after the test (structlog defaults, our stdlib handler)."""
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_gateway_log_handler", False)]:
        root.removeHandler(handler)


@pytest.fixture
def json_logs(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> pytest.CaptureFixture[str]:
    """Production logging (JSON) for one test; stderr is captured by capsys."""
    configure_logging("info", json=True)
    capsys.readouterr()
    return capsys


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"a log line is not JSON: {line!r}")
    return parsed


async def test_every_line_of_a_call_carries_its_ids_and_the_summary_is_complete(
    json_logs: pytest.CaptureFixture[str],
) -> None:
    caller = TwilioCaller(stream_sid="MZ" + "5" * 32, call_sid="CA" + "7" * 32)
    async with loopback_gateway() as gateway:
        async with gateway.client.ws_connect("/media") as ws:
            phone = PhoneCall(ws)
            phone.twilio = caller
            await phone.start(agent="default")
            await phone.say(speech_frames(600) + silence_frames(800))
            await phone.until("media")
            await phone.say(speech_frames(400, fundamental_hz=140))  # talk over the answer
            await phone.until("clear")
            await phone.send(caller.stop())
            await phone.rest()
        await gateway.emulator.wait_closed_sessions(1)

    lines = json_lines(json_logs.readouterr().err)
    expected = {"call_sid": caller.call_sid, "stream_sid": caller.stream_sid, "agent": "default"}
    call_lines = [line for line in lines if line.get("logger") == "gateway.call"]
    assert [line["event"] for line in call_lines][:1] == ["call_started"]
    for line in call_lines:
        assert {key: line.get(key) for key in CALL_IDS} == expected, line
        assert line["level"] and line["timestamp"]
    # Lines other modules log on behalf of the call carry the ids too (context variables).
    opened = [line for line in lines if line["event"] == "live_session_opened"]
    assert opened and {key: opened[0].get(key) for key in CALL_IDS} == expected

    (summary,) = [line for line in call_lines if line["event"] == "call_ended"]
    assert summary["reason"] == "caller_hung_up"
    assert summary["duration_s"] > 0
    assert summary["turns"] >= 1
    assert summary["barge_ins"] == 1
    assert summary["tool_calls"] == 0
    assert summary["live_reconnects"] == 0
    assert summary["caller_frames"] == 70 + 20
    assert summary["agent_frames"] > 0


async def test_stdlib_records_are_json_and_carry_the_bound_ids(
    json_logs: pytest.CaptureFixture[str],
) -> None:
    with structlog.contextvars.bound_contextvars(call_sid="CA1", stream_sid="MZ1", agent="a"):
        logging.getLogger("aiohttp.server").error("handler failed: %s", "boom")
    (line,) = json_lines(json_logs.readouterr().err)
    assert line["event"] == "handler failed: boom"
    assert line["logger"] == "aiohttp.server" and line["level"] == "error"
    assert (line["call_sid"], line["stream_sid"], line["agent"]) == ("CA1", "MZ1", "a")


async def test_exceptions_are_one_json_line_with_the_traceback(
    json_logs: pytest.CaptureFixture[str],
) -> None:
    try:
        raise ValueError("bad thing")
    except ValueError:
        structlog.get_logger("gateway.test").exception("it_failed", detail=1)
    (line,) = json_lines(json_logs.readouterr().err)
    assert line["event"] == "it_failed" and line["detail"] == 1
    assert "ValueError: bad thing" in line["exception"]


def test_a_terminal_gets_pretty_lines(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    configure_logging("info", json=False)
    structlog.get_logger("gateway.test").info("pretty_line", answer=42)
    err = capsys.readouterr().err
    assert "pretty_line" in err and "answer" in err
    with pytest.raises(json.JSONDecodeError):
        json.loads(err.strip().splitlines()[-1])
