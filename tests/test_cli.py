"""The `gateway` command as an operator runs it: a real process, real signals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

REPO = Path(__file__).parent.parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVE_", "GEMINI_", "GOOGLE_"))}
    env.update(extra)
    return env


async def _run(*args: str, **env: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args,
        cwd=REPO, env=_env(**env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_agents_check_passes_on_the_examples() -> None:
    code, out, _ = await _run("agents", "check", "agents")
    assert code == 0
    assert "ok  default" in out


async def test_agents_check_fails_on_a_broken_agent(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\nvoise: Puck\n")
    code, _, err = await _run("agents", "check", str(tmp_path))
    assert code == 1
    assert "bad.yaml:2: voise: unknown field" in err


async def test_agents_check_lists_the_examples_and_fails_on_a_missing_tool(
    tmp_path: Path,
) -> None:
    code, out, _ = await _run("agents", "check", "agents")
    assert code == 0 and "ok  acme-support: +15550100100" in out
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "agent.yaml").write_text(
        "tools:\n  - name: refund\n    description: Refund.\n    python: tools:refund\n"
    )
    code, _, err = await _run("agents", "check", str(tmp_path))
    assert code == 1
    assert "shop/agent.yaml:4: tools.0.python: module 'tools' not found" in err


async def test_a_wrong_setting_stops_start_up_naming_it() -> None:
    code, _, err = await _run("serve", PORT="http")
    assert code == 2
    assert "PORT" in err


async def test_serve_refuses_a_broken_agent_set(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\nlines: nope\n")
    code, _, err = await _run("serve", AGENTS_DIR=str(tmp_path), PORT="0")
    assert code == 2
    assert "refusing to start" in err and "bad.yaml" in err


async def test_a_port_in_use_is_one_line_naming_port_and_exit_2() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        code, _, err = await _run("serve", HOST="127.0.0.1", PORT=str(port))
    finally:
        taken.close()
    assert code == 2
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("gateway:")]
    assert f"cannot listen on 127.0.0.1:{port}" in line and "PORT" in line


async def test_serve_flags_win_over_host_and_port_and_version_prints() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:  # PORT says 1, the flag says the taken port: the flag is what serve tried
        code, _, err = await _run("serve", "--host", "127.0.0.1", "--port", str(port), PORT="1")
    finally:
        taken.close()
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err
    code, out, _ = await _run("--version")
    assert code == 0 and out.startswith("gateway ")
    code, out, _ = await _run("serve", "--help")
    assert code == 0 and "--host" in out and "--port" in out


async def test_serve_answers_health_and_stops_cleanly_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve",
        cwd=REPO, env=_env(PORT="0", HOST="127.0.0.1", LOG_LEVEL="info"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    port = None
    lines = []
    while port is None:
        line = await proc.stderr.readline()
        assert line, "gateway exited before listening: " + "".join(lines)
        lines.append(line.decode())
        if b"gateway_listening" in line:
            port = json.loads(line)["port"]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 200
            assert (await response.json())["live_backend"] == "emulator"
    proc.send_signal(signal.SIGTERM)
    rest = (await proc.stderr.read()).decode()
    assert await proc.wait() == 0
    assert "drain_finished" in rest and "gateway_stopped" in rest
