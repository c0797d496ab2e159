"""Hot reload of the agent set: new calls get the new set, live calls keep theirs, a broken
reload keeps the previous good set (in-process, and via SIGHUP to a real `gateway serve`), and
the event loop keeps running while a reload imports tool modules."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from xml.etree import ElementTree

import aiohttp
import pytest
from structlog.testing import capture_logs

from gateway.agents.config import load_agents
from gateway.agents.store import AgentStore, agents_dir_snapshot
from tests.tools.harness import ToolGateway, script, tool_gateway, write_agent
from tests.twilio_frames import CALL_SID

REPO = Path(__file__).parent.parent


def agents_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "agents"
    directory.mkdir()
    (directory / "default.yaml").write_text("name: default\n")
    (directory / "sales.yaml").write_text("name: sales\nlines: ['+15550001111']\n")
    return directory


def test_a_good_reload_swaps_and_a_broken_one_keeps_the_previous_set(tmp_path: Path) -> None:
    directory = agents_dir(tmp_path)
    store = AgentStore(load_agents(directory), directory)
    first = store.current
    (directory / "support.yaml").write_text("name: support\nlines: ['+15550002222']\n")
    assert store.reload() is True
    assert store.current.for_call(None, "+15550002222").name == "support"
    good = store.current
    (directory / "broken.yaml").write_text("name: broken\nvoise: Puck\n")
    with capture_logs() as logs:
        assert store.reload(trigger="sighup") is False
    assert store.current is good and store.current is not first
    [failure] = [entry for entry in logs if entry["event"] == "agents_reload_failed"]
    assert failure["log_level"] == "error" and failure["trigger"] == "sighup"
    assert "broken.yaml:2: voise: unknown field" in failure["error"]
    assert failure["kept"] == ["default", "sales", "support"]
    assert (store.reloads, store.failed_reloads) == (1, 1)


def test_file_changes_are_noticed_but_caches_and_data_are_not(tmp_path: Path) -> None:
    directory = agents_dir(tmp_path)
    data_dir = directory / "data"  # a data dir inside AGENTS_DIR is ignored
    store = AgentStore(load_agents(directory), directory, ignore=data_dir)
    assert store.changed() is False and store.reload_if_changed() is None
    (directory / "__pycache__").mkdir()
    (directory / "__pycache__" / "tools.cpython-311.pyc").write_bytes(b"x")
    data_dir.mkdir()
    (data_dir / "acme.db").write_bytes(b"sqlite")
    (directory / "shop").mkdir()
    (directory / "shop" / "acme.db-journal").write_bytes(b"j")
    assert store.changed() is False
    (directory / "sales.yaml").write_text("name: sales\nlines: ['+15550001111', '+15550001112']\n")
    assert store.changed() is True
    assert store.reload_if_changed() is True
    assert store.current.for_call(None, "+15550001112").name == "sales"
    assert store.changed() is False


def test_snapshot_lists_the_agent_files(tmp_path: Path) -> None:
    directory = agents_dir(tmp_path)
    write_agent(directory, "shop", "name: shop\n", tools_py="def f():\n    return 1\n")
    snapshot = agents_dir_snapshot(directory)
    names = sorted(Path(p).relative_to(directory).as_posix() for p in snapshot)
    assert names == ["default.yaml", "sales.yaml", "shop/agent.yaml", "shop/tools.py"]


VERSIONED_TOOL = "def version():\n    return '{v}'\n"
VERSIONED_AGENT = """
    name: default
    tools:
      - {name: version, description: The tool's version., python: 'tools:version'}
"""


async def test_new_calls_use_the_new_set_and_live_calls_keep_theirs(tmp_path: Path) -> None:
    directory = tmp_path / "agents"
    write_agent(directory, "default", VERSIONED_AGENT, tools_py=VERSIONED_TOOL.format(v="v1"))
    store = AgentStore(load_agents(directory), directory)
    turns = script(("version", {}))
    async with tool_gateway(store, turns, data_dir=tmp_path / "data") as gw:
        async with gw.call() as old_call:
            await gw.emulator.wait_opened_sessions(1)
            v2 = VERSIONED_TOOL.format(v="v2")
            write_agent(directory, "default", VERSIONED_AGENT, tools_py=v2)
            assert store.reload() is True
            await old_call.send(old_call.twilio.dtmf("1"))
            await gw.emulator.wait_tool_responses(1)
            async with gw.call() as new_call:
                await new_call.send(new_call.twilio.dtmf("1"))
                await gw.emulator.wait_tool_responses(2)
                await new_call.send(new_call.twilio.stop())
                await new_call.rest()
            await old_call.send(old_call.twilio.stop())
            await old_call.rest()
    assert [r.response["result"] for r in gw.emulator.tool_responses] == [
        "v1",  # the call that started before the reload
        "v2",
    ]
    assert {r.response["status"] for r in gw.emulator.tool_responses} == {"ok"}


async def test_twiml_routes_with_the_current_set(tmp_path: Path) -> None:
    directory = agents_dir(tmp_path)
    store = AgentStore(load_agents(directory), directory)

    async def agent_for(gw: ToolGateway, to: str) -> str | None:
        response = await gw.client.post("/twiml", data={"To": to, "CallSid": CALL_SID})
        root = ElementTree.fromstring(await response.text())
        params = {p.get("name"): p.get("value") for p in root.iter("Parameter")}
        return params["agent"]

    async with tool_gateway(store, data_dir=tmp_path / "data") as gw:
        assert await agent_for(gw, "+15550003333") == "default"
        (directory / "support.yaml").write_text("name: support\nlines: ['+15550003333']\n")
        store.reload()
        assert await agent_for(gw, "+15550003333") == "support"
        (directory / "support.yaml").write_text("name: support\nlines: [oops]\n")
        store.reload()
        assert await agent_for(gw, "+15550003333") == "support"  # the last good set


# --------------------------------------------------------------------------- off the loop

GATED_TOOL = """
import reload_gate  # the test's gate (put in sys.modules): this import waits until released

reload_gate.imports += 1
reload_gate.overlaps += reload_gate.importing  # another import of this module still running?
reload_gate.importing += 1
reload_gate.entered.set()
reload_gate.release.wait(timeout=10)  # only a guard against a hung test run, never reached
reload_gate.importing -= 1
reload_gate.finished.set()


def ping():
    return "pong"
"""
GATED_AGENT = """
    name: slow
    tools:
      - {name: ping, description: Answers pong., python: 'tools:ping'}
"""


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """What the gated tool module waits on; released at the end whatever happened."""
    gate = SimpleNamespace(
        entered=threading.Event(), release=threading.Event(), finished=threading.Event(),
        imports=0, importing=0, overlaps=0,
    )  # fmt: skip
    monkeypatch.setitem(sys.modules, "reload_gate", gate)
    yield gate
    gate.release.set()


async def test_the_loop_keeps_running_while_a_reload_imports_a_slow_tool_module(
    tmp_path: Path, gate: SimpleNamespace
) -> None:
    directory = agents_dir(tmp_path)
    store = AgentStore(load_agents(directory), directory)
    before = store.current
    write_agent(directory, "slow", GATED_AGENT, tools_py=GATED_TOOL)
    watcher = asyncio.create_task(store.watch(interval_s=0.01))  # notices the new agent
    try:
        assert await asyncio.to_thread(gate.entered.wait, 30)
        ran = asyncio.Event()
        asyncio.get_running_loop().call_soon(ran.set)  # as every call's audio pump would
        await ran.wait()
        assert not gate.finished.is_set(), "the loop was blocked until the import finished"
        assert store.current is before  # a call starting now gets the previous set, whole
        gate.release.set()
        await store.wait_reloads(1)
    finally:
        watcher.cancel()
    assert store.current.for_call("slow", None).toolset.get("ping") is not None
    assert store.current.agents.keys() == {"default", "sales", "slow"}


async def test_reloads_run_one_at_a_time_requests_merge_and_a_broken_set_is_refused(
    tmp_path: Path, gate: SimpleNamespace
) -> None:
    directory = agents_dir(tmp_path)
    store = AgentStore(load_agents(directory), directory)
    write_agent(directory, "slow", GATED_AGENT, tools_py=GATED_TOOL)
    watcher = asyncio.create_task(store.watch(interval_s=3600))  # only requests reload
    try:
        with capture_logs() as logs:
            store.request_reload("sighup")
            assert await asyncio.to_thread(gate.entered.wait, 30)
            (directory / "support.yaml").write_text("name: support\n")
            for _ in range(3):  # SIGHUPs while the first reload imports: one more reload
                store.request_reload("sighup")
            gate.release.set()
            await store.wait_reloads(2)
            assert store.current.agents.keys() == {"default", "sales", "slow", "support"}
            good = store.current
            (directory / "support.yaml").write_text("name: support\nlines: 12\n")
            store.request_reload("sighup")
            await store.wait_reloads(3)
    finally:
        watcher.cancel()
    assert (gate.imports, gate.overlaps) == (3, 0)  # the broken set was loaded too, alone
    assert store.current is good and (store.reloads, store.failed_reloads) == (2, 1)
    events = [(e["event"], e["trigger"]) for e in logs if e["event"].startswith("agents_")]
    assert events == [
        ("agents_reloaded", "sighup"), ("agents_reloaded", "sighup"),
        ("agents_reload_failed", "sighup"),
    ]  # fmt: skip
    [failed] = [e for e in logs if e["event"] == "agents_reload_failed"]
    assert "support.yaml:2: lines" in failed["error"]


def test_prompt_files_are_read_when_the_set_loads_never_when_a_call_starts(
    tmp_path: Path,
) -> None:
    directory = agents_dir(tmp_path)
    shop = write_agent(directory, "shop", "system_instruction_file: prompt.md\n")
    (shop / "prompt.md").write_text("Sell things.")
    store = AgentStore(load_agents(directory), directory)
    (shop / "prompt.md").unlink()  # a call starting now reads nothing from disk
    assert store.current.for_call("shop", None).instructions == "Sell things."
    (shop / "prompt.md").write_bytes(b"\xff\xfe not utf-8")
    with capture_logs() as logs:
        assert store.reload() is False  # refused at load, not a failure in every call
    [failed] = [entry for entry in logs if entry["event"] == "agents_reload_failed"]
    assert "system_instruction_file: cannot read" in failed["error"]


# --------------------------------------------------------------------------- SIGHUP, for real


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LIVE_", "GEMINI_", "GOOGLE_", "TWILIO_", "AGENTS_", "DATA_"))
    }
    env.update(extra)
    return env


class Server:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, object]] = []

    async def wait_for(self, event: str, **fields: object) -> dict[str, object]:
        """Read the JSON log until a line with `event` (and these field values) appears."""
        assert self.proc.stderr is not None
        while True:
            raw = await self.proc.stderr.readline()
            assert raw, f"gateway exited while waiting for {event}: {self.lines[-5:]}"
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            self.lines.append(line)
            if line.get("event") == event and all(line.get(k) == v for k, v in fields.items()):
                return line


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Server, Path]]:
    directory = agents_dir(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve",
        cwd=REPO,
        env=_env(PORT="0", HOST="127.0.0.1", AGENTS_DIR=str(directory),
                 DATA_DIR=str(tmp_path / "data"), RECORD_CALLS="off"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    server = Server(proc)
    try:
        yield server, directory
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()


async def test_sighup_reloads_and_a_broken_set_is_refused(served: tuple[Server, Path]) -> None:
    server, directory = served
    listening = await server.wait_for("gateway_listening")
    url = f"http://127.0.0.1:{listening['port']}/twiml"
    (directory / "support.yaml").write_text("name: support\nlines: ['+15550002222']\n")
    server.proc.send_signal(signal.SIGHUP)
    reloaded = await server.wait_for("agents_reloaded", trigger="sighup")
    assert reloaded["agents"] == ["default", "sales", "support"]
    (directory / "support.yaml").write_text("name: support\nlines: 12\n")
    server.proc.send_signal(signal.SIGHUP)
    failed = await server.wait_for("agents_reload_failed", trigger="sighup")
    assert "support.yaml:2: lines" in str(failed["error"])
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data={"To": "+15550002222", "CallSid": CALL_SID}) as response:
            assert response.status == 200
            assert 'name="agent" value="support"' in await response.text()
    server.proc.send_signal(signal.SIGTERM)
    assert await server.proc.wait() == 0
