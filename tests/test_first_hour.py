"""First-hour surprises, fixed: `/twiml?agent=NAME` naming no agent is never silent (a warning,
and UNKNOWN_AGENT=default|reject decides); start-up lines say things once."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer

from gateway import cli
from gateway.recording.replay.player import replay_agents_dir
from gateway.server import create_app
from gateway.settings import load_settings
from tests.gateway_harness import loopback_gateway, sample_agents
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


async def test_the_embedded_emulator_is_announced_once(tmp_path: Path) -> None:
    settings = load_settings(env_file=None, record_calls="off")  # emulator backend, no LIVE_URL
    app = create_app(settings, sample_agents())
    with structlog.testing.capture_logs() as logs:
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        await client.close()
    assert [line["event"] for line in logs].count("emulator_started") == 1


REPO = Path(__file__).resolve().parent.parent


def test_the_readme_replay_example_works_as_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (REPO / "README.md").read_text()
    example = "gateway replay tests/recordings/barge_in.jsonl.gz --against emulator"
    assert example in readme
    monkeypatch.chdir(REPO)  # AGENTS_DIR is ./agents, which lacks the fixture's agent `plain`
    monkeypatch.delenv("AGENTS_DIR", raising=False)
    assert cli.main(example.split()[1:]) == 0
    captured = capsys.readouterr()
    assert "against emulator: OK" in captured.out
    assert "agents from tests/recordings/agents" in captured.err


def test_replay_agents_come_from_the_flag_then_beside_the_recording_then_agents_dir(
    tmp_path: Path,
) -> None:
    recording = tmp_path / "calls" / "call.jsonl"
    recording.parent.mkdir()
    configured = tmp_path / "configured"
    assert replay_agents_dir(recording, None, configured) == configured
    (recording.parent / "agents").mkdir()
    assert replay_agents_dir(recording, None, configured) == recording.parent / "agents"
    assert replay_agents_dir(recording, tmp_path / "mine", configured) == tmp_path / "mine"
