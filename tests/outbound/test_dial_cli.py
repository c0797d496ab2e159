"""`gateway dial` as a user runs it — a real process against a fake call API on loopback:
what it prints, its exit codes, and its argument errors."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from gateway import cli
from tests.outbound.test_campaign_fakes import TOKEN, HttpApi


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("LIVE_", "GEMINI_", "GOOGLE_")) and k not in ("API_TOKEN",
                                                                          "GATEWAY_URL")
    }
    env.update(extra)
    return env


async def gateway(*args: str, cwd: Path, **env: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, cwd=cwd, env=_env(**env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_dial_wait_follows_the_call_to_its_end(tmp_path: Path) -> None:
    async with HttpApi(token="tok-0123456789abcdef") as api:
        code, out, err = await gateway(
            "dial", "--agent", "reminders", "--to", "+15550100001", "--var", "first_name=Ana",
            "--var", "note=a=b", "--wait", "--poll-s", "0.01", cwd=tmp_path,
            GATEWAY_URL=api.url, API_TOKEN="tok-0123456789abcdef",
        )
    assert code == 0, err
    assert out == "CA0001 completed duration=42.5s end_reason=hangup " \
                  "recording=/recordings/CA0001.wav\n"
    assert err.splitlines() == ["CA0001 queued", "CA0001 ringing", "CA0001 in-progress"]
    post = api.requests[0]
    assert post[2]["Authorization"] == "Bearer tok-0123456789abcdef"
    assert post[3] == {"agent": "reminders", "to": "+15550100001",
                       "variables": {"first_name": "Ana", "note": "a=b"}}


async def test_dial_without_wait_prints_the_id_and_state_and_flags_win(tmp_path: Path) -> None:
    async with HttpApi(token="flag-0123456789abcdef") as api:
        code, out, _ = await gateway(
            "dial", "--agent", "a", "--to", "+15550100001", "--from", "+15550109999",
            "--carrier", "twilio", "--gateway", api.url, "--token", "flag-0123456789abcdef",
            "--json",
            cwd=tmp_path, GATEWAY_URL="http://127.0.0.1:1", API_TOKEN="env-0123456789abcdef",
        )
    assert code == 0
    call = json.loads(out)
    assert (call["id"], call["state"], call["from"]) == ("CA0001", "queued", "+15550109999")
    assert [r[0] for r in api.requests] == ["POST"]


async def test_dial_wait_exits_1_when_the_call_is_not_answered(tmp_path: Path) -> None:
    async with HttpApi() as api:
        api.steps["+15550100001"] = ["ringing", "busy"]
        code, out, _ = await gateway(
            "dial", "--agent", "a", "--to", "+15550100001", "--wait", "--poll-s", "0.01",
            cwd=tmp_path, GATEWAY_URL=api.url, API_TOKEN=TOKEN,
        )
    assert code == 1
    assert out.startswith("CA0001 busy duration=0s end_reason=busy")


async def test_dial_refused_prints_the_field_and_exits_2(tmp_path: Path) -> None:
    async with HttpApi() as api:
        api.refuse["+15550100001"] = (422, {"field": "to", "message": "not a mobile number"})
        code, _, err = await gateway(
            "dial", "--agent", "a", "--to", "+15550100001", cwd=tmp_path,
            GATEWAY_URL=api.url, API_TOKEN=TOKEN,
        )
        assert code == 2 and "refused: HTTP 422: to: not a mobile number" in err
        code, _, err = await gateway(
            "dial", "--agent", "a", "--to", "+15550100001", cwd=tmp_path, GATEWAY_URL=api.url,
        )
        assert code == 2
        assert "HTTP 401: Authorization: bad or missing token (give --token or set API_TOKEN)" \
            in err


def test_dial_argument_errors(capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        ((), "the following arguments are required: --to"),
        (("--to", "+1555", "--var", "x"), "argument --var: 'x': expected NAME=VALUE"),
        (("--to", "+1555", "--var", "=x"), "argument --var: '=x': expected NAME=VALUE"),
        (("--to", "+1555", "--wait", "--poll-s", "0"),
         "argument --poll-s: '0': must be more than 0"),
    ]
    for extra, message in cases:
        with pytest.raises(SystemExit) as exited:
            cli.main(["dial", "--agent", "a", *extra])
        assert exited.value.code == 2 and message in capsys.readouterr().err, extra


def test_dial_to_a_gateway_that_is_not_there_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monkeypatch.setenv("GATEWAY_URL", f"http://127.0.0.1:{port}")
    assert cli.main(["dial", "--agent", "a", "--to", "+15550100001"]) == 2
    assert f"cannot reach the gateway at http://127.0.0.1:{port}" in capsys.readouterr().err


async def test_ctrl_c_during_dial_wait_hangs_the_call_up(tmp_path: Path) -> None:
    async with HttpApi() as api:
        api.held = True  # the call stays queued until the user gives up
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "dial", "--agent", "a", "--to", "+15550100001",
            "--wait", "--poll-s", "0.01", cwd=tmp_path,
            env=_env(GATEWAY_URL=api.url, API_TOKEN=TOKEN),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        await asyncio.wait_for(
            api.wait_until(lambda: any(r[0] == "GET" for r in api.requests)), timeout=30
        )
        proc.send_signal(signal.SIGINT)
        _, err = await proc.communicate()
    assert proc.returncode == 130
    assert api.deleted == ["CA0001"]
    assert "interrupted; hung up CA0001" in err.decode()
