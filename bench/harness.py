"""What bench/latency.py and bench/capacity.py share: the bridge under test in its own pinned
process, an instrumented Live server and simulated Twilio callers in the measuring process.

    .venv/bin/python bench/harness.py serve --impl ours --live-url ws://127.0.0.1:P/live

Layout (two cores): the bridge under test runs alone on core 0 (`GatewayProcess`, pinned
before exec so every thread it starts stays there); the measuring process pins itself to
core 1 and runs both ends of every call on loopback: `FakeLive` (speaks the Live wire
protocol, timestamps each `realtimeInput` the moment it is read, sends audio / `interrupted`
on command) and `Caller`s (Twilio media streams: 20 ms μ-law frames, timestamped as they are
written; every frame the bridge sends back is timestamped as it is read). All timestamps are
`time.perf_counter_ns()` in the measuring process, so a latency is what the bridge adds
between two real sockets, plus two loopback hops and this process's own WebSocket framing
(an upper bound on the bridge's share). Bridges (`--impl`):

* `ours`          — the gateway as `gateway serve` builds and runs it, on its shipped
                    defaults (create_app, resuming Live connector, metrics observer, rate
                    limits, call recording as shipped: RECORD_CALLS=agent and the agent's
                    `recording` on, into a temporary RECORDINGS_DIR; the default LIVE_MODEL and
                    LIVE_INPUT_RATE_HZ), through `gateway.event_loop.run`: start-up heap
                    frozen, on uvloop (a dependency: what `gateway serve` runs on);
* `ours-asyncio`  — the same on asyncio's own event loop;
* `ours-before`   — the gateway as it was before this bench's optimizations: asyncio.run,
                    no freeze, the hot-path changes patched back out (`_undo_optimizations`);
* `baseline`      — bench/baseline_bridge.py, written like the public sample apps;
* `pipecat`       — a peer: Pipecat's Twilio bot on its Gemini Live service
                    (bench/peers/pipecat_bridge.py), in its own venv, made on first use
                    (bench/peers/peer_env.py; see bench/peers/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from aiohttp import WSMsgType, web
from gc_pauses import GcPauses
from peers import peer_env

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

try:  # the measuring process only: parsing what the bridge sends back should cost it little
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover
    _fast_loads = json.loads

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_PATH = BENCH_DIR / "RESULTS.md"

GATEWAY_CORE = 0
DRIVER_CORE = 1
FRAME_MS = 20
FRAME_BYTES = 160
LIVE_RATE_HZ = 24000
"""Rate of the agent audio Live sends (always 24 kHz). Caller audio to Live is the gateway's
own LIVE_INPUT_RATE_HZ (default 16 kHz): the bench leaves it as shipped and reports what it saw."""
CHUNK_MS = 200
"""Live sends agent audio in bursts of ~200–240 ms; each of our chunks is 200 ms."""
CHUNK_PCM_BYTES = LIVE_RATE_HZ * CHUNK_MS // 1000 * 2
CHUNK_MULAW_BYTES = 8000 * CHUNK_MS // 1000
"""What one chunk becomes on the Twilio side: 1600 bytes = 10 frames of 20 ms."""
SILENCE_RMS = 100
"""A 20 ms frame above this RMS (≈ -50 dBFS) is sound: agent audio, not the silence marker."""

BEFORE_REV = os.environ.get("BENCH_BEFORE_REV", "fdfe90c")
"""`ours-at-rev`: the gateway as it was at this commit (fdfe90c: before the recording format 2,
its batched writer, the media-frame fast path and the lighter process), run from a git
worktree made for the run — the before of "before ÷ after, same run"."""
IMPLS = ("ours", "ours-asyncio", "ours-before", "ours-at-rev", "baseline", "pipecat")
IMPL_LABELS = {
    "ours": "ours (uvloop)",
    "ours-asyncio": "ours (asyncio loop)",
    "ours-before": "ours before optimizing (asyncio loop)",
    "ours-at-rev": f"ours at {BEFORE_REV} (asyncio loop)",
    "baseline": "baseline bridge (asyncio loop)",
    "pipecat": "Pipecat 1.14 Twilio bot (asyncio loop)",
}
DEFAULT_IMPLS = ("ours", "ours-asyncio", "ours-before", "baseline")
"""What the benches run without `--impls`: the peers are asked for by name (the first run of
one installs it from PyPI)."""
PEER_IMPLS = frozenset({"pipecat"})
"""Bridges of another project, each run from its own venv (bench/peers/peer_env.py)."""
START_MESSAGES = {"pipecat": 2}
"""Client messages a bridge sends Live after `setup` before it takes caller audio: Pipecat's
Gemini Live service drops caller audio until it has sent its context (`client_content`, then
a `realtime_input` text for Gemini 3). A real caller's first moments are lost to it; the
bench's callers start talking once it listens (`open_call`), so that every frame they send is
one the bridge means to deliver, and report how long after Twilio's `start` that was."""
HOLDS_TAIL = frozenset({"pipecat"})
"""Bridges that hold back the end of the agent audio of a turn still being spoken until more
audio or the turn's end comes (then they send it). Pipecat: its output transport's soxr
(VHQ) stream resampler gives out audio in blocks of ~1100 samples and keeps up to ~160 ms
(seen: 960 of a lone 200 ms chunk's 1600 μ-law bytes sent, the rest with the next chunk). A
lone chunk never fully arrives: for these bridges the latency bench takes a chunk as
delivered once its first byte has arrived and the bridge then sent nothing for QUIET_S."""
QUIET_S = 0.1
ENDS_CALL_ON_STOP = frozenset({"ours", "ours-asyncio", "ours-before", "baseline"})
"""Bridges that end the call on Twilio's `stop` message. Twilio closes the socket right after
`stop`; a bridge that waits for that close (Pipecat's transport) gets it from the caller too
(`Caller.hang_up(close=True)`)."""

# ---------------------------------------------------------------------------- machine


BENCH_RT_PRIORITY = 10
BENCH_NICE = -15
"""The machine is shared (other test suites, other benches): the bench processes ask to be
scheduled first (SCHED_FIFO, else a high nice weight) so that a core given to the bridge is
really the bridge's and a latency is not someone else's time slice. The kernel keeps 5 % of
every core for everyone else (sched_rt_runtime_us)."""


def raise_priority() -> str:
    """Schedule this thread (and threads it starts) ahead of ordinary processes; says how."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(BENCH_RT_PRIORITY))
        return f"SCHED_FIFO {BENCH_RT_PRIORITY}"
    except (AttributeError, OSError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, 0, BENCH_NICE)
        return f"nice {BENCH_NICE}"
    except (AttributeError, OSError):
        return "default priority"


def scheduling() -> str:
    try:
        if os.sched_getscheduler(0) == os.SCHED_FIFO:
            return f"SCHED_FIFO {os.sched_getparam(0).sched_priority}"
    except (AttributeError, OSError):
        pass
    return f"nice {os.getpriority(os.PRIO_PROCESS, 0)}"


def pin_self(core: int) -> bool:
    """Run this process (its threads started from now on) on `core`, at raised priority;
    False if it cannot be pinned."""
    raise_priority()
    try:
        if len(os.sched_getaffinity(0)) < 2:
            return False
        os.sched_setaffinity(0, {core})
    except (AttributeError, OSError):
        return False
    return True


_SPINNER = """
import os, sys
parent = os.getppid()
os.sched_setaffinity(0, {int(sys.argv[1])})
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
while os.getppid() == parent:  # ends with the bench, even if the bench is killed
    for _ in range(1_000_000):
        pass
"""


class KeepAwake:
    """One idle-priority busy loop per core while measuring (a context manager).

    This machine is a KVM guest: a vCPU with nothing to run halts, and waking it for the next
    packet takes 0.1–0.3 ms, more than the whole path being measured, at random. A busy
    gateway never halts; an idle one does. The spinners (SCHED_IDLE: they get a core only when
    nothing else wants it, and are preempted at once) keep the vCPUs awake, so an idle-call
    latency measures the bridge, not the hypervisor.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and hasattr(os, "SCHED_IDLE")
        self._procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> KeepAwake:
        if self.enabled:
            for core in sorted(os.sched_getaffinity(0) | {GATEWAY_CORE, DRIVER_CORE}):
                self._procs.append(subprocess.Popen([sys.executable, "-c", _SPINNER, str(core)]))
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self._procs:
            proc.kill()
            proc.wait()
        self._procs.clear()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection in the measuring process while measuring: a full collection of
    its growing sample lists would stall every caller at once, and the stall would show up
    as the bridge's latency. Reference counting still frees almost everything."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()
        gc.collect()


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far, all threads (from /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mib(pid: int) -> tuple[float, float]:
    """(resident set now, its peak since start or since `reset_peak_rss`) of process `pid`,
    MiB, from /proc; NaN where it cannot be read."""
    now = peak = float("nan")
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                now = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return now, peak


def reset_peak_rss(pid: int) -> None:
    """Start a new peak (VmHWM) for process `pid` (Linux: `5` into clear_refs; best effort)."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as f:
        f.write("5")


def self_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def machine_line() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    extras = []
    for name in ("uvloop", "orjson", "aiohttp", "websockets"):
        with contextlib.suppress(ImportError):
            module = __import__(name)
            extras.append(f"{name} {getattr(module, '__version__', '?')}")
    blas = os.environ.get("OPENBLAS_CORETYPE")
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Machine: nproc {os.cpu_count()} ({cpu}); Python {platform.python_version()}; "
        f"numpy {np.__version__}; {'; '.join(extras)}"
        + (f"; OPENBLAS_CORETYPE={blas}" if blas else "")
        + f"; bench processes at {scheduling()}; load average at start {load}; {now}"
    )


def percentile_ms(values_ns: list[int], q: float) -> float:
    if not values_ns:
        return float("nan")
    return float(np.percentile(np.asarray(values_ns, dtype=np.float64), q)) / 1e6


def write_section(heading: str, body: str) -> None:
    """Replace (or append) the `heading` section of bench/RESULTS.md, leaving the rest alone."""
    section = f"{heading}\n\n{body.rstrip()}\n"
    text = RESULTS_PATH.read_text() if RESULTS_PATH.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    RESULTS_PATH.write_text(text)


# ---------------------------------------------------------------------------- the bridge process


_WORKTREES: dict[str, Path] = {}


def worktree_at(rev: str) -> Path:
    """A git worktree of `rev` for this run (removed when the bench exits)."""
    if rev not in _WORKTREES:
        tree = Path(tempfile.mkdtemp(prefix="bench-worktree-")) / rev
        subprocess.run(["git", "-C", str(REPO_DIR), "worktree", "add", "--detach", str(tree), rev],
                       check=True, capture_output=True)  # fmt: skip
        _WORKTREES[rev] = tree
        atexit.register(
            subprocess.run,
            ["git", "-C", str(REPO_DIR), "worktree", "remove", "--force", str(tree)],
            check=False, capture_output=True,
        )  # fmt: skip
    return _WORKTREES[rev]


class GatewayProcess:
    """The bridge under test in its own process, pinned to GATEWAY_CORE before exec."""

    def __init__(self, impl: str, live_url: str, *, pin: bool = True) -> None:
        self.impl = impl
        if impl in PEER_IMPLS:  # its own venv (made now if missing) and its own script
            peer = peer_env.PEERS[impl]
            command = [str(peer_env.ensure(peer)), str(peer.script), "--port", "0",
                       "--live-url", live_url, "--until-stdin-closes"]  # fmt: skip
        elif impl == "ours-at-rev":  # the old tree's own harness serves its own gateway
            tree = worktree_at(BEFORE_REV)
            command = [sys.executable, str(tree / "bench" / "harness.py"), "serve",
                       "--impl", "ours-asyncio", "--live-url", live_url]  # fmt: skip
        else:
            command = [sys.executable, str(BENCH_DIR / "harness.py"), "serve", "--impl", impl,
                       "--live-url", live_url]  # fmt: skip
        cwd = worktree_at(BEFORE_REV) if impl == "ours-at-rev" else REPO_DIR
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(cwd), *filter(None, [os.environ.get("PYTHONPATH")])]
        )}  # fmt: skip
        self.log_path = Path(tempfile.mkstemp(prefix=f"bench-{impl}-", suffix=".log")[1])
        self._log = self.log_path.open("wb")

        def pin_child() -> None:
            raise_priority()
            if pin:
                os.sched_setaffinity(0, {GATEWAY_CORE})

        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            preexec_fn=pin_child,
            cwd=cwd,
            env=env,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"{impl} did not start: {line!r}; see {self.log_path}")
        self.url = f"ws://127.0.0.1:{int(line.split()[1])}/media"

    def cpu_s(self) -> float:
        return proc_cpu_s(self.proc.pid)

    def rss_mib(self) -> tuple[float, float]:
        """(RSS now, peak RSS since start or the last `reset_peak_rss`), MiB."""
        return proc_rss_mib(self.proc.pid)

    def reset_peak_rss(self) -> None:
        reset_peak_rss(self.proc.pid)

    def gc_pauses(self) -> dict[str, Any]:
        """The bridge's collector pauses (after `stop`): counts per generation, gen2 max/total."""
        with contextlib.suppress(OSError):
            for line in reversed(self.log_path.read_text(errors="replace").splitlines()):
                if '"bench_gc"' in line:
                    return dict(json.loads(line))
        return {}

    def recordings(self) -> int | None:
        """Calls the bridge recorded (after `stop`; None for a bridge that does not record)."""
        with contextlib.suppress(OSError):
            for line in reversed(self.log_path.read_text(errors="replace").splitlines()):
                if '"bench_recordings"' in line:
                    return int(json.loads(line)["bench_recordings"])
        return None

    def problems(self) -> dict[str, int]:
        """Warning/error log lines of the bridge by event name (the gateway logs JSON lines)."""
        counts: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for line in self.log_path.read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    if "Traceback" in line or "Error" in line:
                        counts["stderr"] = counts.get("stderr", 0) + 1
                    continue
                if not isinstance(record, dict) or {"bench_gc", "bench_recordings"} & set(record):
                    continue
                if record.get("level") in ("warning", "error"):
                    key = f"{record['level']}:{record.get('event')}"
                    counts[key] = counts.get(key, 0) + 1
        return counts

    def stop(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def _serve_main(args: argparse.Namespace) -> None:
    """Child process: run one bridge on 127.0.0.1, print its port, stop when stdin closes."""
    impl = args.impl
    sys.path.insert(0, str(REPO_DIR))
    if impl == "ours-before":
        _undo_optimizations()
    if impl in ("ours", "ours-asyncio"):
        from gateway import event_loop, server  # noqa: F401  # imported before the freeze

        event_loop.run(_serve(impl, args.live_url), prefer_uvloop=impl == "ours")
    else:
        asyncio.run(_serve(impl, args.live_url))


def _undo_optimizations() -> None:
    """Put back the hot-path code as it was before bench/RESULTS.md's optimizations, so one
    run can measure before and after side by side. The call's own barge-in changes (yield to
    the writer, log after `clear`) are not undone: they change latency, not CPU."""
    from gateway import frame_batcher
    from gateway.call import hooks as call_events
    from gateway.live import client, protocol, resilient

    async def send_each(self: Any, frame: str) -> None:  # one socket write per frame
        await self._ws.send_str(frame)

    def each_observer(self: Any, hook: str, *args: Any) -> None:  # every observer, every hook
        for observer in list(self._observers):
            try:
                getattr(observer, hook)(*args)
            except Exception:
                self._observers.remove(observer)

    async def send_audio(self: Any, pcm16le: bytes, rate_hz: int) -> None:
        await self._deliver(resilient._Audio(pcm16le, rate_hz))

    async def send_audio_via_ws(self: Any, pcm16le: bytes, rate_hz: int) -> None:
        await self._send_text(protocol.encode_audio_input(pcm16le, rate_hz))

    def send_now_never(self: Any, frames: Any) -> bool:  # the writer then sends each frame
        return False

    frame_batcher.FrameBatcher.send = send_each  # type: ignore[method-assign]
    frame_batcher.FrameBatcher.send_now = send_now_never  # type: ignore[method-assign]
    call_events.ObserverSet._each = each_observer  # type: ignore[method-assign]
    resilient.ResilientLiveSession.send_audio = send_audio  # type: ignore[method-assign]
    client.LiveSession.send_audio = send_audio_via_ws  # type: ignore[method-assign]


async def _serve(impl: str, live_url: str) -> None:
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    try:
        await _serve_bridge(impl, live_url)
    finally:
        pauses.report()


async def _serve_bridge(impl: str, live_url: str) -> None:
    loop = asyncio.get_running_loop()
    if impl == "baseline":
        from baseline_bridge import serve_baseline

        server = await serve_baseline("127.0.0.1", 0, live_url)
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
        server.close()
        await server.wait_closed()
        return

    from gateway.agents.config import AgentConfig, AgentSet
    from gateway.ops.logs import configure_logging
    from gateway.server import create_app
    from gateway.settings import load_settings

    # Shipped defaults: recording as `gateway serve` ships it (RECORD_CALLS=agent, the agent's
    # `recording` on), LIVE_MODEL and LIVE_INPUT_RATE_HZ unset; only the recordings go to a
    # temporary folder, removed afterwards.
    recordings_dir = Path(tempfile.mkdtemp(prefix="bench-recordings-"))
    settings = load_settings(
        None,
        live_backend="emulator",
        live_url=live_url,
        recordings_dir=recordings_dir,
        max_concurrent_calls=0,
        log_level=os.environ.get("BENCH_LOG_LEVEL", "info"),
    )
    configure_logging(settings.log_level, json=True)
    app = create_app(settings, AgentSet.from_agents([AgentConfig(name="default")]))
    app_runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await app_runner.setup()
    site = web.TCPSite(app_runner, "127.0.0.1", 0)
    await site.start()
    port = next(a[1] for a in app_runner.addresses if isinstance(a, tuple))
    print(f"PORT {port}", flush=True)
    try:
        await loop.run_in_executor(None, sys.stdin.read)
        await app_runner.cleanup()
    finally:
        recorded = remove_recordings(recordings_dir)
        print(json.dumps({"bench_recordings": recorded}), file=sys.stderr, flush=True)


def remove_recordings(recordings_dir: Path) -> int:
    """Delete a run's temporary RECORDINGS_DIR; returns how many calls it held."""
    recorded = len(list(recordings_dir.glob("*.jsonl")))
    shutil.rmtree(recordings_dir, ignore_errors=True)
    return recorded


def gateway_defaults() -> str:
    """What `ours` runs on (the shipped defaults the bench does not override), for headers."""
    sys.path.insert(0, str(REPO_DIR))
    from gateway.settings import load_settings

    settings = load_settings(None, live_backend="emulator")
    shipped = load_settings(None, live_backend="emulator", _env_prefix="BENCH_UNSET_")
    changed = [
        name
        for name in ("live_model", "live_input_rate_hz", "record_calls")
        if getattr(settings, name) != getattr(shipped, name)
    ]
    recording = (
        "the agent's `recording` on: every call recorded, to a temporary folder"
        if settings.record_calls != "off"
        else "no call recorded"
    )
    return (
        "Gateway (ours) on "
        + (f"shipped defaults except {', '.join(n.upper() for n in changed)} from the environment"
           if changed else "shipped defaults")
        + f": LIVE_MODEL {settings.model}, LIVE_INPUT_RATE_HZ {settings.live_input_rate_hz}, "
        f"RECORD_CALLS {settings.record_calls} ({recording})"
    )  # fmt: skip


def peers_line(impls: list[str], *, set_up: bool = True) -> list[str]:
    """Header lines naming the peers among `impls` and what their venvs hold (none if none);
    `set_up`: make a missing venv first (from PyPI), as the run would."""
    lines = []
    for impl in impls:
        if impl not in PEER_IMPLS:
            continue
        peer = peer_env.PEERS[impl]
        if set_up:
            peer_env.ensure(peer)
        where = peer.venv.relative_to(REPO_DIR) if peer.venv.is_relative_to(REPO_DIR) else peer.venv
        held = peer_env.versions(peer) if peer_env.is_ready(peer) else "not set up"
        lines.append(f"Peer {impl}: {peer.script.relative_to(REPO_DIR)} in venv {where}: {held}")
    return lines


# ---------------------------------------------------------------------------- wire messages


def _tone_pcm16(rate_hz: int, samples: int, hz: float = 440.0, level: float = 8000.0) -> bytes:
    t = np.arange(samples) / rate_hz
    return (np.sin(2 * np.pi * hz * t) * level).astype("<i2").tobytes()


def _live_audio_message(pcm16: bytes) -> str:
    data = base64.b64encode(pcm16).decode("ascii")
    return json.dumps(
        {"serverContent": {"modelTurn": {"parts": [
            {"inlineData": {"mimeType": f"audio/pcm;rate={LIVE_RATE_HZ}", "data": data}}
        ]}}},
        separators=(",", ":"),
    )  # fmt: skip


LIVE_TONE = _live_audio_message(_tone_pcm16(LIVE_RATE_HZ, CHUNK_PCM_BYTES // 2))
"""200 ms of agent speech (a 440 Hz tone at about -12 dBFS); 5 periods fit it exactly."""
LIVE_SILENCE = _live_audio_message(bytes(CHUNK_PCM_BYTES))
"""200 ms of agent silence: the marker turn after a barge-in (any sound after `clear` is stale)."""
LIVE_INTERRUPTED = '{"serverContent":{"interrupted":true}}'
LIVE_TURN_COMPLETE = '{"serverContent":{"turnComplete":true}}'
LIVE_SETUP_COMPLETE = '{"setupComplete":{}}'
GEMINI_API_METHOD = "google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent"
"""The Gemini Developer API's Live path after /ws/ (what google-genai dials)."""

ACCOUNT_SID = "AC" + "0" * 32


def caller_frames() -> list[str]:
    """Base64 payloads of 20 ms caller frames: 1 s of a voiced, speech-like tone, 1 s quiet."""
    n = 8000
    t = np.arange(n) / 8000
    voiced = sum(np.sin(2 * np.pi * 180 * k * t) / k for k in range(1, 8))
    pcm = (voiced / np.max(np.abs(voiced)) * 8000).astype("<i2").tobytes()
    mulaw = audioop.lin2ulaw(pcm, 2) + bytes([0xFF]) * n
    return [
        base64.b64encode(mulaw[i : i + FRAME_BYTES]).decode("ascii")
        for i in range(0, len(mulaw), FRAME_BYTES)
    ]


def twilio_start(stream_sid: str, call_sid: str) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": stream_sid,
            "start": {
                "accountSid": ACCOUNT_SID,
                "streamSid": stream_sid,
                "callSid": call_sid,
                "tracks": ["inbound"],
                "customParameters": {"agent": "default"},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }
    )


def twilio_media(stream_sid: str, k: int, payload: str) -> str:
    return (
        f'{{"event":"media","sequenceNumber":"{k + 2}","streamSid":"{stream_sid}",'
        f'"media":{{"track":"inbound","chunk":"{k + 1}","timestamp":"{k * FRAME_MS}",'
        f'"payload":"{payload}"}}}}'
    )


# ---------------------------------------------------------------------------- the Live side


class LiveSide:
    """The Live end of one call: counts and timestamps what the bridge sends, speaks on command.

    `sent_chunks` holds (first μ-law byte index on the Twilio side, send time) per audio chunk,
    for the caller to turn into Live → Twilio latencies.
    """

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.audio_in = 0
        self.other_in = 0
        self.on_audio: Callable[[int], None] | None = None
        self.closed = asyncio.Event()
        self.chunks_sent = 0
        self.sent_chunks: deque[tuple[int, int]] = deque()
        self.replying = False
        """Capacity: answer every 10 caller frames (200 ms) with a 200 ms chunk."""
        self.turn_chunks = 10
        self.progress = asyncio.Event()
        """Set on every client message that is not caller audio."""

    async def send_chunk(self, message: str = LIVE_TONE) -> int:
        """Send one 200 ms audio chunk; returns its send time (ns)."""
        index = self.chunks_sent * CHUNK_MULAW_BYTES
        self.chunks_sent += 1
        t = time.perf_counter_ns()
        self.sent_chunks.append((index, t))
        await self.ws.send_str(message)
        return t

    async def send(self, message: str) -> int:
        t = time.perf_counter_ns()
        await self.ws.send_str(message)
        return t

    async def _reply(self) -> None:
        await self.send_chunk()
        if self.chunks_sent % self.turn_chunks == 0:
            await self.ws.send_str(LIVE_TURN_COMPLETE)


class FakeLive:
    """A Live (BidiGenerateContent) server on loopback: setup → setupComplete, then whatever
    the bench says. New sessions are handed out in connection order (`next_session`)."""

    def __init__(self) -> None:
        self._sessions: asyncio.Queue[LiveSide] = asyncio.Queue()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.handlers: set[asyncio.Task[Any]] = set()
        self.models: dict[str, int] = {}
        """`setup.model` of every session, counted: what the bridge asked for."""
        self.input_mime: dict[str, int] = {}
        """mimeType of each session's first caller audio message, counted."""

    def seen(self) -> str:
        """What the bridges under test sent: setup models and caller-audio formats."""
        models = ", ".join(f"{m} ×{n}" for m, n in self.models.items()) or "none"
        mimes = ", ".join(f"{m} ×{n}" for m, n in self.input_mime.items()) or "none"
        return f"Live sessions seen: setup.model {models}; caller audio {mimes}"

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/live", self._handle)
        # Where google-genai's client (Pipecat's Gemini Live service) dials, as on the real
        # service: /ws/google.ai.generativelanguage.{version}.GenerativeService.…
        app.router.add_get(f"/ws/{GEMINI_API_METHOD.format(version='{version}')}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = next(a[1] for a in self._runner.addresses if isinstance(a, tuple))
        self.url = f"ws://127.0.0.1:{port}/live"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def next_session(self, timeout_s: float = 10.0) -> LiveSide:
        async with asyncio.timeout(timeout_s):
            return await self._sessions.get()

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, compress=False, autoping=True)
        await ws.prepare(request)
        first = await ws.receive()
        if (
            first.type not in (WSMsgType.TEXT, WSMsgType.BINARY)
            or "setup" not in str(first.data)[:20]
        ):
            await ws.close()
            return ws
        with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError):
            model = str(json.loads(first.data)["setup"].get("model"))
            self.models[model] = self.models.get(model, 0) + 1
        await ws.send_str(LIVE_SETUP_COMPLETE)
        side = LiveSide(ws)
        self._sessions.put_nowait(side)
        try:
            async for message in ws:
                now = time.perf_counter_ns()
                if message.type is not WSMsgType.TEXT and message.type is not WSMsgType.BINARY:
                    continue
                head = message.data[:64]
                if isinstance(head, bytes):
                    head = head.decode("utf-8", "replace")
                # Proto JSON: the service takes lowerCamel or snake_case names (google-genai
                # sends `realtime_input`), and so does this.
                if ("realtimeInput" in head or "realtime_input" in head) and "audio" in head:
                    if not side.audio_in:  # once per session: the format the bridge sends
                        mime = _mime_of(message.data)
                        self.input_mime[mime] = self.input_mime.get(mime, 0) + 1
                    side.audio_in += 1
                    if side.on_audio is not None:
                        side.on_audio(now)
                    if side.replying and side.audio_in % side.turn_chunks == 0:
                        await side._reply()
                else:
                    side.other_in += 1
                    side.progress.set()
        finally:
            side.closed.set()
        return ws


def _mime_of(data: str | bytes) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    match = re.search(r'"mime_?[tT]ype"\s*:\s*"([^"]*)"', text)
    return match.group(1) if match else "?"


# ---------------------------------------------------------------------------- the Twilio side


@dataclass
class Caller:
    """One simulated Twilio media stream. Frames out are timestamped; frames in are counted
    per 200 ms chunk (bytes, so a bridge that sends one big media message per chunk counts
    the same as one that sends 20 ms frames)."""

    ws: aiohttp.ClientWebSocketResponse
    stream_sid: str
    call_sid: str
    live: LiveSide | None = None
    frames_sent: int = 0
    send_times: deque[int] = field(default_factory=deque)
    in_latencies: list[tuple[int, int]] = field(default_factory=list)
    """(send time, latency) per caller frame, both ns."""
    out_latencies: list[tuple[int, int]] = field(default_factory=list)
    """(chunk send time, latency to the first of its bytes) per Live chunk."""
    rx_bytes: int = 0
    rx_messages: int = 0
    marks: int = 0
    clears: int = 0
    last_clear_ns: int = 0
    classify: bool = False
    """Decode every frame in and tell sound from silence (latency bench only)."""
    echo_marks: bool = True
    """Echo marks like Twilio. The latency bench's barge-in cycles end a turn every ~40 ms,
    far more often than a real call: echoing them all would push the caller past the gateway's
    frame rate limit (MAX_CARRIER_FRAMES_PER_S) and get frames dropped."""
    sound_frames_after_clear: int = 0
    silent_bytes_after_clear: int = 0
    sound_frames_before_clear: int = 0
    listening_after_ns: int = 0
    """From Twilio's `start` to the bridge taking caller audio (bridges in START_MESSAGES)."""
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None

    def attach(self, live: LiveSide) -> None:
        self.live = live
        live.on_audio = self._live_got_audio

    def _live_got_audio(self, now: int) -> None:
        if self.send_times:
            sent = self.send_times.popleft()
            self.in_latencies.append((sent, now - sent))

    async def send_frame(self, payload: str) -> None:
        k = self.frames_sent
        self.frames_sent += 1
        self.send_times.append(time.perf_counter_ns())
        await self.ws.send_str(twilio_media(self.stream_sid, k, payload))

    async def hang_up(self, *, close: bool = False) -> None:
        """Twilio's `stop`; with `close`, then the socket's close, as Twilio does (for a bridge
        not in ENDS_CALL_ON_STOP, which waits for the close to end the call)."""
        stop = json.dumps(
            {"event": "stop", "sequenceNumber": str(self.frames_sent + 2),
             "streamSid": self.stream_sid,
             "stop": {"accountSid": ACCOUNT_SID, "callSid": self.call_sid}}
        )  # fmt: skip
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_str(stop)
            if close:
                await self.ws.close()

    async def read(self) -> None:
        ws = self.ws
        async for message in ws:
            now = time.perf_counter_ns()
            if message.type is not WSMsgType.TEXT:
                continue
            data = _fast_loads(message.data)
            event = data.get("event")
            if event == "media":
                self._on_media(now, data["media"]["payload"])
            elif event == "clear":
                self.clears += 1
                self.last_clear_ns = now
            elif event == "mark":
                self.marks += 1
                if self.echo_marks:
                    await ws.send_str(
                        json.dumps({"event": "mark", "sequenceNumber": "0",
                                    "streamSid": self.stream_sid, "mark": data["mark"]})
                    )  # fmt: skip
            self.progress.set()

    def _on_media(self, now: int, payload_b64: str) -> None:
        start = self.rx_bytes
        size = len(payload_b64) * 3 // 4 - payload_b64.count("=", -2)
        self.rx_bytes = start + size
        self.rx_messages += 1
        live = self.live
        if live is not None:
            pending = live.sent_chunks
            while pending and pending[0][0] < self.rx_bytes:
                _, sent = pending.popleft()
                self.out_latencies.append((sent, now - sent))
        if self.classify:
            mulaw = base64.b64decode(payload_b64)
            for i in range(0, len(mulaw), FRAME_BYTES):
                frame = mulaw[i : i + FRAME_BYTES]
                sound = audioop.rms(audioop.ulaw2lin(frame, 2), 2) > SILENCE_RMS
                if self.last_clear_ns:
                    if sound:
                        self.sound_frames_after_clear += 1
                    else:
                        self.silent_bytes_after_clear += len(frame)
                elif sound:
                    self.sound_frames_before_clear += 1


async def open_call(
    session: aiohttp.ClientSession, url: str, live: FakeLive, n: int, impl: str = ""
) -> Caller:
    """Dial in like Twilio (connected, start) and wait for the bridge's Live session (and for
    a bridge in START_MESSAGES, until it takes caller audio).

    Calls must be opened one at a time: the next Live session to arrive is this call's.
    """
    ws = await session.ws_connect(url, max_msg_size=0, autoping=True)
    caller = Caller(ws, f"MZ{n:032d}", f"CA{n:032d}")
    await ws.send_str('{"event":"connected","protocol":"Call","version":"1.0.0"}')
    started = time.perf_counter_ns()
    await ws.send_str(twilio_start(caller.stream_sid, caller.call_sid))
    side = await live.next_session()
    caller.attach(side)
    wanted = START_MESSAGES.get(impl, 0)
    if wanted:
        if not await wait_until(lambda: side.other_in >= wanted, side.progress, 10.0):
            raise TimeoutError(f"{impl} sent Live {side.other_in} of {wanted} start messages")
        caller.listening_after_ns = time.perf_counter_ns() - started
    caller.reader = asyncio.create_task(caller.read(), name=f"caller-{n}")
    return caller


async def wait_until(predicate: Callable[[], bool], event: asyncio.Event, timeout_s: float) -> bool:
    """Wait for `predicate` to hold, re-checking whenever `event` fires; False on timeout."""
    try:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                event.clear()
                await event.wait()
    except TimeoutError:
        return predicate()
    return True


def use_uvloop() -> Callable[[Awaitable[Any]], Any]:
    """The measuring process runs on uvloop when it can (its own overhead lands in every
    latency); the bridge's loop is chosen by `--impl`, not here."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run
    return uvloop.run  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description="run one bridge for the benchmarks")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve")
    serve.add_argument("--impl", choices=[i for i in IMPLS if i not in PEER_IMPLS], required=True)
    serve.add_argument("--live-url", required=True)
    args = parser.parse_args()
    _serve_main(args)


if __name__ == "__main__":
    main()
