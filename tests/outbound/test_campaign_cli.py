"""`gateway campaign` as a user runs it — a real process against a fake call API on loopback:
a whole run and its results file, input errors before any call, argument errors, another CSV
refused, and a `kill -9` mid-run resumed without calling anyone twice."""

from __future__ import annotations

import asyncio
import csv
import signal
import sys
from pathlib import Path

import pytest

from gateway import cli
from tests.outbound.test_campaign_fakes import TOKEN, HttpApi
from tests.outbound.test_dial_cli import _env, gateway

FAST = ("--window", "00:00-24:00", "--default-timezone", "UTC", "--calls-per-minute", "6000",
        "--poll-s", "0.01")


def results(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


async def test_a_campaign_calls_every_row_and_writes_the_results(tmp_path: Path) -> None:
    (tmp_path / "numbers.csv").write_text(
        "to,first_name,timezone\n"
        "+15550100001,Ana,America/New_York\n"
        "+15550100002,Bo,\n"
        "+15550100003,Cy,Europe/London\n"
        "+15550100004,Dee,\n"
    )
    (tmp_path / "dnc.txt").write_text("# opted out\n+1 555 010 0003\n")
    async with HttpApi() as api:
        api.steps["+15550100002"] = ["ringing", "busy"]
        api.steps["+15550100004"] = ["voicemail"]
        code, out, err = await gateway(
            "campaign", "numbers.csv", "--agent", "reminders", "--retries", "0",
            "--do-not-call", "dnc.txt", *FAST, cwd=tmp_path, GATEWAY_URL=api.url,
            API_TOKEN=TOKEN,
        )
    assert code == 0, err
    assert "4/4 done: answered 1, busy 1, do-not-call 1, voicemail 1; results in " \
           "numbers.results.csv" in out
    assert api.posts_to() == {"+15550100001": 1, "+15550100002": 1, "+15550100004": 1}
    rows = {r["number"]: r for r in results(tmp_path / "numbers.results.csv")}
    assert {n: r["outcome"] for n, r in rows.items()} == {
        "+15550100001": "answered", "+15550100002": "busy", "+15550100003": "do-not-call",
        "+15550100004": "voicemail",
    }
    assert rows["+15550100001"]["recording"].endswith(".wav")
    assert rows["+15550100001"]["duration_s"] == "42.5"
    assert rows["+15550100001"]["first_name"] == "Ana"
    assert (tmp_path / "numbers.sqlite").exists()

    async with HttpApi() as api:  # run again: everything is done, no one is called
        code, out, _ = await gateway(
            "campaign", "numbers.csv", "--agent", "reminders", "--do-not-call", "dnc.txt",
            *FAST, cwd=tmp_path, GATEWAY_URL=api.url, API_TOKEN=TOKEN,
        )
    assert code == 0 and api.requests == []


async def test_invalid_rows_stop_the_campaign_before_any_call(tmp_path: Path) -> None:
    (tmp_path / "numbers.csv").write_text(
        "number,timezone\n+15550100001,UTC\n(555) 0100,UTC\n+15550100003,Nowhere/City\n"
        "+15550100001,UTC\n"
    )
    async with HttpApi() as api:
        code, _, err = await gateway(
            "campaign", "numbers.csv", "--agent", "a", *FAST, cwd=tmp_path,
            GATEWAY_URL=api.url, API_TOKEN=TOKEN,
        )
        assert code == 2
        assert "3 invalid row(s), nothing was called" in err
        assert "numbers.csv: line 3, column 'number': '(555) 0100' is not an E.164" in err
        assert "line 4, column 'timezone': 'Nowhere/City' is not an IANA time zone" in err
        assert "line 5, column 'number': +15550100001 is already on line 2" in err
        assert api.requests == [] and not (tmp_path / "numbers.sqlite").exists()

        code, _, err = await gateway(
            "campaign", "numbers.csv", "--agent", "a", "--skip-invalid", *FAST, cwd=tmp_path,
            GATEWAY_URL=api.url, API_TOKEN=TOKEN,
        )
    assert code == 0, err
    assert "skipping 3 invalid row(s)" in err
    assert api.posts_to() == {"+15550100001": 1}
    outcomes = [(r["line"], r["outcome"]) for r in results(tmp_path / "numbers.results.csv")]
    assert outcomes == [("2", "answered"), ("3", "invalid"), ("4", "invalid"), ("5", "invalid")]


async def test_check_says_what_would_be_called_and_calls_no_one(tmp_path: Path) -> None:
    (tmp_path / "numbers.csv").write_text("to\n+15550100001\n+15550100002\n")
    (tmp_path / "dnc.txt").write_text("+15550100002\n")
    code, out, _ = await gateway(
        "campaign", "numbers.csv", "--agent", "a", "--default-timezone", "UTC",
        "--do-not-call", "dnc.txt", "--check", cwd=tmp_path, GATEWAY_URL="http://127.0.0.1:1",
    )
    assert code == 0
    assert out == "1 row(s) to call, 1 on the do-not-call list, 0 invalid\n"
    assert not (tmp_path / "numbers.sqlite").exists()


def test_campaign_argument_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.csv").write_text("to\n+15550100001\n")
    cases = [
        (("--window", "9-21"), "argument --window: '9-21': a window is HH:MM-HH:MM"),
        (("--default-timezone", "Europe/Londn"),
         "argument --default-timezone: 'Europe/Londn' is not an IANA time zone"),
        (("--calls-per-minute", "0"), "argument --calls-per-minute: '0': must be more than 0"),
        (("--max-concurrent", "1.5"), "argument --max-concurrent: '1.5' is not a number"),
        (("--retries", "-1"), "argument --retries: '-1': must be 0 or more"),
    ]
    for extra, message in cases:
        with pytest.raises(SystemExit) as exited:
            cli.main(["campaign", "n.csv", "--agent", "a", *extra])
        assert exited.value.code == 2 and message in capsys.readouterr().err, extra
    with pytest.raises(SystemExit):
        cli.main(["campaign", "n.csv"])
    assert "required: --agent" in capsys.readouterr().err
    assert cli.main(["campaign", "missing.csv", "--agent", "a"]) == 2
    assert "missing.csv: no such file" in capsys.readouterr().err
    (tmp_path / "dnc.txt").write_text("+15550100001\nnot a number\n")
    code = cli.main(["campaign", "n.csv", "--agent", "a", "--default-timezone", "UTC",
                     "--do-not-call", "dnc.txt"])
    assert code == 2
    assert "dnc.txt: line 2: 'not a number' is not an E.164 number" in capsys.readouterr().err
    assert not (tmp_path / "n.sqlite").exists()


async def test_a_changed_csv_is_refused_with_the_state_file_it_belongs_to(tmp_path: Path) -> None:
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("to\n+15550100001\n")
    async with HttpApi() as api:
        run = ("campaign", "numbers.csv", "--agent", "a", "--state", "c.sqlite", *FAST)
        code, _, _ = await gateway(*run, cwd=tmp_path, GATEWAY_URL=api.url, API_TOKEN=TOKEN)
        assert code == 0
        numbers.write_text("to\n+15550100001\n+15550100002\n")
        code, _, err = await gateway(*run, cwd=tmp_path, GATEWAY_URL=api.url, API_TOKEN=TOKEN)
    assert code == 2
    assert "c.sqlite belongs to another numbers file (numbers.csv" in err
    assert api.posts_to() == {"+15550100001": 1}


async def test_killed_mid_run_it_resumes_without_calling_anyone_twice(tmp_path: Path) -> None:
    (tmp_path / "numbers.csv").write_text(
        "to\n+15550100001\n+15550100002\n+15550100003\n+15550100004\n"
    )
    async with HttpApi() as api:
        api.held = True  # every call stays queued: two in flight, two waiting
        args = ("-m", "gateway", "campaign", "numbers.csv", "--agent", "a",
                "--max-concurrent", "2", *FAST)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, cwd=tmp_path,
            env=_env(GATEWAY_URL=api.url, API_TOKEN=TOKEN),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        polled = {"/calls/CA0001", "/calls/CA0002"}  # polled: their ids are in the state file
        await asyncio.wait_for(
            api.wait_until(lambda: polled <= {r[1] for r in api.requests if r[0] == "GET"}),
            timeout=30,
        )
        proc.kill()
        await proc.wait()
        assert api.posts_to() == {"+15550100001": 1, "+15550100002": 1}

        api.held = False
        code, _, err = await gateway(
            "campaign", "numbers.csv", "--agent", "a", "--max-concurrent", "2", *FAST,
            cwd=tmp_path, GATEWAY_URL=api.url, API_TOKEN=TOKEN,
        )
    assert code == 0, err
    assert "resuming numbers.sqlite" in err
    assert api.posts_to() == {f"+1555010000{i}": 1 for i in (1, 2, 3, 4)}
    rows = results(tmp_path / "numbers.results.csv")
    assert [(r["outcome"], r["call_ids"]) for r in rows] == [
        ("answered", "CA0001"), ("answered", "CA0002"), ("answered", "CA0003"),
        ("answered", "CA0004"),
    ]


async def test_ctrl_c_or_sigterm_stops_writes_the_results_and_resumes(tmp_path: Path) -> None:
    (tmp_path / "numbers.csv").write_text("to\n+15550100001\n+15550100002\n")
    args = ("campaign", "numbers.csv", "--agent", "a", "--max-concurrent", "1", *FAST)

    async def start() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", *args, cwd=tmp_path,
            env=_env(GATEWAY_URL=api.url, API_TOKEN=TOKEN),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )

    async with HttpApi() as api:
        api.held = True  # the first call stays queued; the second waits for it
        proc = await start()
        await asyncio.wait_for(
            api.wait_until(lambda: any(r[1] == "/calls/CA0001" for r in api.requests)), 30
        )
        proc.send_signal(signal.SIGINT)
        out, err = await proc.communicate()
        assert proc.returncode == 130
        assert "stopped; calls in progress go on" in err.decode()
        assert "0/2 done; results in numbers.results.csv" in out.decode()
        rows = results(tmp_path / "numbers.results.csv")
        assert [(r["outcome"], r["call_ids"]) for r in rows] == [
            ("pending", "CA0001"), ("pending", ""),
        ]

        proc = await start()  # SIGTERM stops it the same way
        seen = len(api.requests)
        await asyncio.wait_for(api.wait_until(lambda: len(api.requests) > seen + 2), 30)
        proc.terminate()
        _, err = await proc.communicate()
        assert proc.returncode == 130 and "resuming numbers.sqlite" in err.decode()

        api.held = False
        code, out_text, _ = await gateway(*args, cwd=tmp_path, GATEWAY_URL=api.url,
                                          API_TOKEN=TOKEN)
    assert code == 0 and "2/2 done: answered 2" in out_text
    assert api.posts_to() == {"+15550100001": 1, "+15550100002": 1}
