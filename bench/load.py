"""Load and soak: N simulated Twilio callers against the gateway and the Live emulator, on loopback.

    .venv/bin/python bench/load.py --calls 20 --duration-s 30
    .venv/bin/python bench/load.py --calls 100 --duration-s 20
    .venv/bin/python bench/load.py --calls 1 --duration-s 60 --fault drop --fault-every-s 8

Three processes, so each side's cost is its own: the gateway (this process, built exactly as
`gateway serve` builds it, resuming connector included), the emulator, and the callers. Each
caller paces 20 ms μ-law frames in real time (1 s of speech, then 4 s of silence, over and
over), echoes marks like Twilio, and hangs up at the end. `--fault` makes the emulator send
goAway / drop / close with 1011 to every session every `--fault-every-s` seconds, to measure
resumption under load.

Reported: frames lost (sent by callers − received by the gateway − received by Live), errors
(caller side, and gateway log lines at warning/error), call end reasons, resumption gaps,
gateway CPU and memory (RSS before, peak, after, and per call: (peak − before) / calls), and
tasks left in the gateway after every call has ended (must be 0). Not a test: nothing here is
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import logging
import multiprocessing
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from harness import remove_recordings, twilio_media, twilio_start

FRAME_MS = 20
FRAME_BYTES = 160
SPEECH_S = 1.0
SILENCE_S = 4.0
FAULTS = ("go_away", "drop", "close_1011")
LEFT_WAIT_S = 10.0


# ---------------------------------------------------------------------------- the emulator


def run_emulator(conn: Connection, speed: float) -> None:
    """Child process: the Live emulator, steered by commands on `conn`."""
    asyncio.run(_emulator(conn, speed))


async def _emulator(conn: Connection, speed: float) -> None:
    _quiet_logs()
    from gateway.live.emulator.server import LiveEmulator

    emulator = LiveEmulator(speed=speed)
    conn.send(await emulator.start("127.0.0.1", 0))
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "go_away":
            await emulator.go_away(30.0)
        elif command == "drop":
            await emulator.drop_sessions()
        elif command == "close_1011":
            await emulator.close_sessions(1011, "bench fault")
        elif command == "stats":
            conn.send(
                {
                    "audio_chunks_received": emulator.audio_chunks_received,
                    "sessions_opened": emulator.sessions_opened,
                    "sessions_closed": emulator.sessions_closed,
                    "resumed": len(emulator.resumed_handles),
                }
            )
        elif command == "stop":
            await emulator.stop()
            conn.send("stopped")
            return


# ---------------------------------------------------------------------------- the callers


@dataclass
class CallerResult:
    frames_sent: int = 0
    media_received: int = 0
    marks_echoed: int = 0
    clears: int = 0
    error: str | None = None
    closed_early: bool = False
    max_lag_ms: float = 0.0
    late_frames: int = 0
    """Frames sent more than one frame period after their due time (caller-side overload)."""


def run_callers(conn: Connection, url: str, calls: int, duration_s: float) -> None:
    """Child process: `calls` callers for `duration_s`, results sent back on `conn`."""
    results = asyncio.run(_callers(url, calls, duration_s))
    conn.send([asdict(r) for r in results])


def _caller_audio() -> tuple[list[bytes], list[bytes]]:
    """20 ms μ-law frames: a voiced, speech-like tone (~-12 dBFS) and silence."""
    from gateway.audio.mulaw import MULAW_SILENCE, encode_mulaw

    n = int(8000 * SPEECH_S)
    t = np.arange(n) / 8000
    signal = sum(np.sin(2 * np.pi * 180 * k * t) / k for k in range(1, 8))
    mulaw = encode_mulaw((signal / np.max(np.abs(signal)) * 8000).astype(np.int16))
    speech = [mulaw[i : i + FRAME_BYTES] for i in range(0, len(mulaw), FRAME_BYTES)]
    silence = [bytes([MULAW_SILENCE]) * FRAME_BYTES] * int(SILENCE_S * 1000 / FRAME_MS)
    return speech, silence


async def _callers(url: str, calls: int, duration_s: float) -> list[CallerResult]:
    import aiohttp

    speech, silence = _caller_audio()
    cycle = [base64.b64encode(f).decode() for f in speech + silence]
    start_at = asyncio.get_running_loop().time() + 0.5
    async with aiohttp.ClientSession() as session:
        return await asyncio.gather(
            *(
                _one_caller(session, url, n, cycle, start_at + n * 1.0 / max(calls, 1), duration_s)
                for n in range(calls)
            )
        )


async def _one_caller(
    session: Any, url: str, n: int, cycle: list[str], start_at: float, duration_s: float
) -> CallerResult:
    import aiohttp

    result = CallerResult()
    loop = asyncio.get_running_loop()
    stream_sid = f"MZ{n:032d}"
    call_sid = f"CA{n:032d}"
    await asyncio.sleep(max(0.0, start_at - loop.time()))
    try:
        async with session.ws_connect(url, max_msg_size=0) as ws:
            reader = asyncio.create_task(_read(ws, stream_sid, result))
            connected = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
            await ws.send_str(json.dumps(connected))
            await ws.send_str(twilio_start(stream_sid, call_sid))
            frames = int(duration_s * 1000 / FRAME_MS)
            t0 = loop.time()
            for k in range(frames):
                due = t0 + k * FRAME_MS / 1000
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                lag_ms = (loop.time() - due) * 1000
                result.max_lag_ms = max(result.max_lag_ms, lag_ms)
                result.late_frames += lag_ms > FRAME_MS
                if ws.closed:
                    result.closed_early = True
                    break
                await ws.send_str(twilio_media(stream_sid, k, cycle[k % len(cycle)]))
                result.frames_sent += 1
            await ws.send_str(json.dumps({"event": "stop", "streamSid": stream_sid,
                                          "stop": {"accountSid": "AC" + "0" * 32,
                                                   "callSid": call_sid}}))  # fmt: skip
            await reader
    except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
        result.error = repr(exc)
    return result


async def _read(ws: Any, stream_sid: str, result: CallerResult) -> None:
    import aiohttp

    async for message in ws:
        if message.type is not aiohttp.WSMsgType.TEXT:
            continue
        data = json.loads(message.data)
        event = data.get("event")
        if event == "media":
            result.media_received += 1
        elif event == "clear":
            result.clears += 1
        elif event == "mark":  # echo at once (Twilio would wait until it has played)
            result.marks_echoed += 1
            name = data["mark"]["name"]
            await ws.send_str(
                json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})
            )


# ---------------------------------------------------------------------------- the gateway


@dataclass
class GatewayLog:
    """What the gateway logged, counted instead of printed."""

    levels: Counter[str] = field(default_factory=Counter)
    problems: Counter[str] = field(default_factory=Counter)
    end_reasons: Counter[str] = field(default_factory=Counter)
    caller_frames: int = 0

    def processor(self, _: Any, level: str, event: dict[str, Any]) -> Any:
        import structlog

        self.levels[level] += 1
        name = str(event.get("event"))
        if level in ("warning", "error", "critical", "exception"):
            self.problems[f"{level}:{name}"] += 1
        if name == "call_ended":
            self.end_reasons[str(event.get("reason"))] += 1
            self.caller_frames += int(event.get("caller_frames", 0))
        raise structlog.DropEvent


def _quiet_logs(sink: GatewayLog | None = None) -> None:
    import structlog

    processors: list[Any] = [sink.processor] if sink else []
    if not sink:
        processors.append(lambda *_: (_ for _ in ()).throw(structlog.DropEvent))
    structlog.configure(processors=processors, cache_logger_on_first_use=False)
    logging.basicConfig(level=logging.ERROR)


def _rss_kib() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB."""
    values = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                values[key] = int(value.split()[0])
    return values["VmRSS"], values["VmHWM"]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from aiohttp import web

    from gateway.agents.config import AgentConfig, AgentSet
    from gateway.live.resilient import ResilientLiveConnector
    from gateway.server import CALLS, CONNECTOR, create_app
    from gateway.settings import load_settings

    sink = GatewayLog()
    _quiet_logs(sink)
    ctx = multiprocessing.get_context("spawn")
    emulator_conn, child_conn = ctx.Pipe()
    emulator = ctx.Process(target=run_emulator, args=(child_conn, args.speed), daemon=True)
    emulator.start()
    loop = asyncio.get_running_loop()
    live_url = await loop.run_in_executor(None, emulator_conn.recv)

    # Shipped defaults (recording as `gateway serve` ships it: RECORD_CALLS=agent and the
    # agent's `recording` on; LIVE_MODEL and LIVE_INPUT_RATE_HZ unset), recordings to a
    # temporary folder, removed at the end.
    recordings_dir = Path(tempfile.mkdtemp(prefix="bench-load-recordings-"))
    settings = load_settings(
        None,
        live_backend="emulator",
        live_url=live_url,
        recordings_dir=recordings_dir,
        max_concurrent_calls=max(200, args.calls),
    )
    app = create_app(settings, AgentSet.from_agents([AgentConfig(name="default")]))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = next(a[1] for a in runner.addresses if isinstance(a, tuple))

    gc.collect()
    rss_before, _ = _rss_kib()
    tasks_before = asyncio.all_tasks()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    wall_before = time.monotonic()

    results: list[CallerResult] = []
    faults = 0
    rss_after_rounds: list[float] = []
    for _ in range(args.rounds):
        callers_conn, callers_child = ctx.Pipe()
        callers = ctx.Process(
            target=run_callers,
            args=(callers_child, f"ws://127.0.0.1:{port}/media", args.calls, args.duration_s),
            daemon=True,
        )
        callers.start()
        results_future = loop.run_in_executor(None, callers_conn.recv)
        next_fault = time.monotonic() + args.fault_every_s
        while args.fault and not results_future.done():
            await asyncio.wait([results_future], timeout=max(0.0, next_fault - time.monotonic()))
            if not results_future.done() and time.monotonic() >= next_fault:
                emulator_conn.send(args.fault)
                faults += 1
                next_fault += args.fault_every_s
        results += [CallerResult(**r) for r in await results_future]
        callers.join()
        gc.collect()
        rss_after_rounds.append(round(_rss_kib()[0] / 1024, 1))

    # Every call's own tasks must finish by themselves once the callers hung up; whatever is
    # still running LEFT_WAIT_S later is counted as left behind.
    left = asyncio.all_tasks() - tasks_before - {asyncio.current_task()}
    if left:
        _, still_running = await asyncio.wait(left, timeout=LEFT_WAIT_S)
        left = set(still_running)
    calls_open = len(app[CALLS])
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic() - wall_before
    gc.collect()
    rss_after, rss_peak = _rss_kib()

    emulator_conn.send("stats")
    live_stats = await loop.run_in_executor(None, emulator_conn.recv)
    emulator_conn.send("stop")
    await loop.run_in_executor(None, emulator_conn.recv)
    emulator.join()
    connector = app[CONNECTOR]
    resumes = list(connector.resumes) if isinstance(connector, ResilientLiveConnector) else []
    await runner.cleanup()
    recorded = remove_recordings(recordings_dir)

    sent = sum(r.frames_sent for r in results)
    cpu_s = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    gaps = sorted(r.gap_ms for r in resumes)
    return {
        "calls": args.calls,
        "duration_s": args.duration_s,
        "live_model": settings.model,
        "live_input_rate_hz": settings.live_input_rate_hz,
        "record_calls": settings.record_calls,
        "calls_recorded": recorded,
        "rounds": args.rounds,
        "fault": args.fault or "none",
        "faults_injected": faults,
        "frames_sent": sent,
        "frames_at_gateway": sink.caller_frames,
        "frames_at_live": live_stats["audio_chunks_received"],
        "lost_caller_to_gateway": sent - sink.caller_frames,
        "lost_gateway_to_live": sink.caller_frames - live_stats["audio_chunks_received"],
        "agent_frames_heard": sum(r.media_received for r in results),
        "marks": sum(r.marks_echoed for r in results),
        "clears": sum(r.clears for r in results),
        "caller_errors": [r.error for r in results if r.error],
        "calls_cut_short": sum(r.closed_early for r in results),
        "caller_late_frames": sum(r.late_frames for r in results),
        "caller_max_lag_ms": round(max((r.max_lag_ms for r in results), default=0.0), 1),
        "end_reasons": dict(sink.end_reasons),
        "gateway_problems": dict(sink.problems),
        "live_sessions": live_stats["sessions_opened"],
        "resumes": len(resumes),
        "resume_gap_ms": _summary(gaps),
        "resumes_with_handle": sum(r.with_handle for r in resumes),
        "gateway_cpu_pct_of_one_core": round(100 * cpu_s / wall, 1),
        "rss_before_mib": round(rss_before / 1024, 1),
        "rss_peak_mib": round(rss_peak / 1024, 1),
        "rss_after_mib": round(rss_after / 1024, 1),
        "rss_growth_mib": round((rss_after - rss_before) / 1024, 1),
        # Memory a call holds while it runs: what the peak added over idle, per call up at once.
        "rss_per_call_mib": round((rss_peak - rss_before) / 1024 / max(args.calls, 1), 2),
        "rss_after_each_round_mib": rss_after_rounds,
        "calls_still_open": calls_open,
        "tasks_left": len(left),
        "tasks_left_names": sorted(t.get_name() for t in left),
    }


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "min": round(values[0], 1),
        "median": round(statistics.median(values), 1),
        "p95": round(values[min(len(values) - 1, int(0.95 * len(values)))], 1),
        "max": round(values[-1], 1),
    }


def _print(report: dict[str, Any]) -> None:
    width = max(len(k) for k in report)
    for key, value in report.items():
        print(f"{key:<{width}}  {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--duration-s", type=float, default=30.0)
    parser.add_argument("--speed", type=float, default=4.0, help="emulator reply speed")
    parser.add_argument("--fault", choices=FAULTS, help="inject this fault periodically")
    parser.add_argument("--fault-every-s", type=float, default=8.0)
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat the calls (soak: RSS after each round)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    header = (
        f"# bench/load.py on {platform.node() or 'host'}: nproc {multiprocessing.cpu_count()}, "
        f"Python {platform.python_version()}"
    )
    if args.json:
        print(json.dumps(report))
    else:
        print(header)
        _print(report)
    sys.exit(0)


if __name__ == "__main__":
    main()
