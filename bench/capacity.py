"""Concurrent calls on one core: CPU per call-minute, p99 added latency and lost frames as the
number of calls grows, ours vs the baseline bridge (and peers: Pipecat).

    .venv/bin/python bench/capacity.py                         # 10, 50, 100, 200, 300, … calls
    .venv/bin/python bench/capacity.py --steps 10,50 --window-s 5 --impls ours --no-write
    .venv/bin/python bench/capacity.py --impls ours,baseline,pipecat --steps 10,20 --window-s 5

`pipecat` is a peer (bench/peers/): its first run makes its venv from PyPI.

The bridge under test runs alone on core 0 (bench/harness.py); this process, on core 1, plays
every caller and the Live service for every call. Each step opens N calls one after another,
then measures a window of `--window-s` seconds with all N up:

* each caller sends a 20 ms μ-law frame every 20 ms (one shared ticker, calls spread over the
  20 ms so they do not all fire at once), like Twilio;
* each Live session answers every 200 ms of caller audio with 200 ms of agent audio (a
  `turnComplete` every 2 s, whose mark the caller echoes), so the agent talks all the time:
  twice the audio of a real conversation, where one side mostly listens;
* in: caller frame → the Live message it became; out: Live chunk → first byte of it on the
  Twilio socket; both wire to wire, p99 over every sample in the window;
* lost: caller frames that never reached Live, plus agent frames that never reached the caller
  (counted after the replies stop and the sockets drain);
* CPU: the bridge process's user + system time over the window (all its threads), per
  call-minute and per call (% of a core);
* RSS: the bridge process's resident memory before the step's calls open, its peak while they
  run, and 1 s after they have all hung up (what the step left behind).

The sweep stops at the first step where a p99 exceeds `--max-p99-ms` (20) or a frame is lost,
or where this process itself falls behind (its frames leave > 5 ms late at p99: the numbers
would measure the load generator, not the bridge); a step that fails on latency is measured
once more first (a single stall elsewhere on a shared machine can spoil one window), and
both measurements are shown. Prints a table and replaces the
"## Capacity (bench/capacity.py)" section of bench/RESULTS.md (unless `--no-write`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
from harness import (
    CHUNK_MULAW_BYTES,
    DEFAULT_IMPLS,
    DRIVER_CORE,
    ENDS_CALL_ON_STOP,
    IMPL_LABELS,
    IMPLS,
    LIVE_TURN_COMPLETE,
    PEER_IMPLS,
    START_MESSAGES,
    Caller,
    FakeLive,
    GatewayProcess,
    KeepAwake,
    caller_frames,
    collector_paused,
    gateway_defaults,
    machine_line,
    open_call,
    peers_line,
    percentile_ms,
    pin_self,
    raise_priority,
    self_cpu_s,
    use_uvloop,
    wait_until,
    write_section,
)

SECTION_HEADING = "## Capacity (bench/capacity.py)"
DEFAULT_STEPS = (10, 50, 100, 200, 300, 400, 500, 600, 800, 1000)
TICK_MS = 1
SLOTS = 20
SETTLE_S = 1.0
DRAIN_S = 5.0
MAX_DRIVER_LAG_MS = 5.0
TARGET_CALLS = 200
HEADER_PREFIX = "# header: "
SWEEP_PREFIX = "# sweep: "
REPLYING = True


NOTES = """
How to read it. One core (core 0) runs nothing but the bridge; core 1 runs every caller and
the Live side (`load generator` column: if it falls behind, the step says so). Every call is
full duplex all the time: 50 caller frames/s in, 50 agent frames/s out (as 5 chunks of 200 ms),
about twice a real conversation's audio, so a real call costs less than shown. Bench processes
run at SCHED_FIFO on a shared 2-vCPU VM; CPU is the bridge process's own user + system time.
On this VM the same step varies by up to ±15 % in CPU and by several ms in p99 from one run to
the next (other tenants and test suites share the caches and the memory bus even when they
cannot take the core): compare rows of one run, and treat CPU differences under ~10 % as ties.

What profiling showed and what was done (py-spy: `py-spy record -p <bridge pid> -r 200 -f raw`
during a 150–200-call step; `ours-before` is the gateway with the CPU changes patched back out,
harness._undo_optimizations, measured in the same run):

1. **One socket write per 20 ms outbound frame** was the largest cost of the outbound path: a
   200 ms Live chunk became 10 `send()` syscalls, and on loopback each also pays the
   receiver's TCP work (kernel time per chunk ≈ 130 µs, against ≈ 12 µs for one write).
   `gateway/frame_batcher.py` frames the server's text frames itself and writes the frames
   queued in one event-loop step in two `transport.write`s: the first frame at once (so a lone
   `clear` is not held back), the rest together at the end of the step; same bytes on the
   wire. Loopback micro-benchmark: 4.9 µs of server CPU per frame sent one by one through
   aiohttp, 0.17 µs per frame joined.
2. **Full garbage collections**: the gateway holds ~10⁵–10⁶ long-lived objects (modules,
   pydantic, twilio, scipy …) and every gen-2 collection walked them all: 2 pauses of ~100 ms
   in a 200-call, 10 s step, each a p99 spike for every call in flight (p99 in / out 28 / 38
   ms). `gateway/event_loop.py` (`gateway serve`) now `gc.freeze()`s the start-up heap: none
   in the same step, p99 5.6 / 12 ms. Full collections still come (the calls' own objects),
   shorter: the longest over a whole sweep 48–62 ms against 132 ms before (lines below).
3. **Caller audio to Live**: `LiveSession.send_audio` builds and masks the client frame itself
   and writes it in one call when the connection is plainly open (no compression, no
   fragmented message, socket not backed up), else falls back to `ws.send`: websockets'
   per-message machinery (async context manager, frame objects, drain) cost ≈ 2.8 µs a
   frame. Masking keys come 1024 per `os.urandom` call instead of one system call per frame.
4. **Observer fan-out** (`ObserverSet`, four hooks per frame pair): each hook visits only the
   observers that implement it, the per-frame hooks without the generic `_each` dispatch
   (carrier_out 0.39 → 0.15 µs, carrier_in 0.63 → 0.44 µs with the production observers).
5. **Resuming Live session**: `send_audio` no longer allocates a held-audio record per frame
   while the connection is up.
6. **Outbound media frames**: `build_media` keeps each stream's JSON head (0.51 → 0.33 µs a
   frame); `FrameBatcher` checks the socket once per step, not once per frame.

Measured and not adopted: **orjson** parses a Twilio media frame in 0.42 µs against json's
1.68 µs and a 200 ms Live chunk in 2.5 µs against 6.2 µs — about 1 % of a call's CPU — and
it disagrees with json on malformed input (integers beyond 64 bits become floats; NaN,
Infinity and lone surrogates are rejected), which would change what the gateway accepts.
Left as it is: about a quarter of the CPU is the event loop itself and another quarter the
socket system calls (one read and one write per caller frame, unavoidable without batching
caller audio, which would add latency), ~13 % the resampler (numpy; see the Codec section).
Against the baseline the remaining Python per caller frame is validation (parse_event),
metrics (`is_speech`), the rate limiter and the observers: what the sample apps do without.
**uvloop** is a dependency (not on Windows) that `gateway serve` runs on: compare the `ours`
and `ours-asyncio` rows — in our runs it held as many calls and cost 5–15 % less CPU per
call-minute.
"""


@dataclass
class Step:
    impl: str
    calls: int
    window_s: float = 0.0
    gateway_cpu_s: float = 0.0
    driver_cpu_s: float = 0.0
    in_p50_ms: float = 0.0
    in_p99_ms: float = 0.0
    out_p50_ms: float = 0.0
    out_p99_ms: float = 0.0
    in_samples: int = 0
    out_samples: int = 0
    lost_in: int = 0
    lost_out: int = 0
    driver_lag_p99_ms: float = 0.0
    calls_failed: int = 0
    problems: dict[str, int] = field(default_factory=dict)
    gc: dict[str, Any] = field(default_factory=dict)
    """The bridge's collector pauses over the whole sweep (on the sweep's last step)."""
    again: bool = False
    """A second measurement of a step whose first one failed on latency."""
    recordings: int | None = None
    """Calls the bridge recorded over the whole sweep (on the sweep's last step)."""
    seen: str = ""
    """What the Live side saw the bridge send over the sweep (on the sweep's last step)."""
    rss_before_mib: float = float("nan")
    rss_peak_mib: float = float("nan")
    rss_after_mib: float = float("nan")
    """The bridge's RSS before the step's calls, its peak during them, 1 s after them."""
    listening_after_ms: float = 0.0
    """Median, over the step's calls, from Twilio's `start` to the bridge taking caller audio
    (bridges in harness.START_MESSAGES; 0 for the others, which take it at once)."""

    @property
    def cpu_s_per_call_minute(self) -> float:
        return self.gateway_cpu_s / self.window_s * 60.0 / self.calls

    @property
    def cpu_pct_per_call(self) -> float:
        return self.gateway_cpu_pct / self.calls

    @property
    def rss(self) -> str:
        values = (self.rss_before_mib, self.rss_peak_mib, self.rss_after_mib)
        return " → ".join("—" if v != v else f"{v:.1f}" for v in values)  # NaN: not measured

    @property
    def gateway_cpu_pct(self) -> float:
        return 100.0 * self.gateway_cpu_s / self.window_s

    @property
    def driver_cpu_pct(self) -> float:
        return 100.0 * self.driver_cpu_s / self.window_s

    @property
    def lost(self) -> int:
        return self.lost_in + self.lost_out

    def verdict(self, max_p99_ms: float) -> str:
        if self.calls_failed:
            return "calls failed"
        if self.lost:
            return "frames lost"
        if self.driver_lag_p99_ms > MAX_DRIVER_LAG_MS:
            return "load generator fell behind"
        if max(self.in_p99_ms, self.out_p99_ms) > max_p99_ms:
            return f"p99 > {max_p99_ms:g} ms"
        return "ok"


class Ticker:
    """Sends every call's next frame on its 20 ms schedule; calls are spread over SLOTS phases."""

    def __init__(self, payloads: list[str]) -> None:
        self.payloads = payloads
        self.slots: list[list[Caller]] = [[] for _ in range(SLOTS)]
        self.lags_ns: list[int] = []
        self.recording = False
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._count = 0

    def add(self, caller: Caller) -> None:
        self.slots[self._count % SLOTS].append(caller)
        self._count += 1

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ticker")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        t0_ns = time.perf_counter_ns()
        tick = 0
        payloads = self.payloads
        while not self._stop.is_set():
            due_ns = t0_ns + tick * TICK_MS * 1_000_000
            wait_s = (due_ns - time.perf_counter_ns()) / 1e9
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            callers = self.slots[tick % SLOTS]
            if callers and self.recording:
                self.lags_ns.append(time.perf_counter_ns() - due_ns)
            for caller in callers:
                if not caller.ws.closed:
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await caller.send_frame(payloads[caller.frames_sent % len(payloads)])
            tick += 1
        del loop


async def run_step(
    impl: str,
    calls: int,
    window_s: float,
    live: FakeLive,
    gateway: GatewayProcess,
    settle_s: float = SETTLE_S,
) -> Step:
    step = Step(impl, calls)
    step.rss_before_mib = gateway.rss_mib()[0]
    gateway.reset_peak_rss()
    ticker = Ticker(caller_frames())
    callers: list[Caller] = []
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, force_close=True)
    ) as session:
        ticker.start()
        for n in range(calls):
            try:
                caller = await open_call(session, gateway.url, live, n, impl)
            except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
                print(f"  call {n} failed to start: {exc!r}", file=sys.stderr)
                step.calls_failed += 1
                continue
            assert caller.live is not None
            caller.live.replying = REPLYING
            callers.append(caller)
            ticker.add(caller)
        await asyncio.sleep(settle_s)
        w0 = time.perf_counter_ns()
        cpu0, dcpu0 = gateway.cpu_s(), self_cpu_s()
        ticker.recording = True
        await asyncio.sleep(window_s)
        ticker.recording = False
        w1 = time.perf_counter_ns()
        step.gateway_cpu_s = gateway.cpu_s() - cpu0
        step.driver_cpu_s = self_cpu_s() - dcpu0
        step.window_s = (w1 - w0) / 1e9
        # Stop the replies, let what is in flight arrive, then hang up.
        for caller in callers:
            assert caller.live is not None
            caller.live.replying = False
        await asyncio.sleep(0.1)
        for caller in callers:  # the agent's last turn ends (a bridge may hold its tail till then)
            assert caller.live is not None
            if caller.live.chunks_sent % caller.live.turn_chunks:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await caller.live.send(LIVE_TURN_COMPLETE)
        for caller in callers:
            assert caller.live is not None
            target = caller.live.chunks_sent * CHUNK_MULAW_BYTES
            await wait_until(lambda c=caller, t=target: c.rx_bytes >= t, caller.progress, DRAIN_S)
        await ticker.stop()
        step.rss_peak_mib = gateway.rss_mib()[1]
        for caller in callers:
            await caller.hang_up(close=impl not in ENDS_CALL_ON_STOP)
        for caller in callers:
            assert caller.live is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(caller.live.closed.wait(), DRAIN_S)
        ins = [lat for c in callers for sent, lat in c.in_latencies if w0 <= sent < w1]
        outs = [lat for c in callers for sent, lat in c.out_latencies if w0 <= sent < w1]
        step.in_samples, step.out_samples = len(ins), len(outs)
        step.in_p50_ms, step.in_p99_ms = percentile_ms(ins, 50), percentile_ms(ins, 99)
        step.out_p50_ms, step.out_p99_ms = percentile_ms(outs, 50), percentile_ms(outs, 99)
        step.driver_lag_p99_ms = percentile_ms(ticker.lags_ns, 99)
        if impl in START_MESSAGES and callers:
            step.listening_after_ms = percentile_ms([c.listening_after_ns for c in callers], 50)
        for caller in callers:
            assert caller.live is not None
            step.lost_in += caller.frames_sent - caller.live.audio_in
            step.lost_out += (
                max(0, caller.live.chunks_sent * CHUNK_MULAW_BYTES - caller.rx_bytes) // 160
            )
        for caller in callers:
            await caller.ws.close()
            if caller.reader is not None:
                with contextlib.suppress(Exception):
                    await caller.reader
    return step


async def sweep(impl: str, args: argparse.Namespace, live: FakeLive, pinned: bool) -> list[Step]:
    live.models.clear()
    live.input_mime.clear()
    gateway = await asyncio.to_thread(GatewayProcess, impl, live.url, pin=pinned)
    steps: list[Step] = []
    try:
        for calls in args.steps:
            for again in (False, True):
                print(f"{impl}: {calls} calls …", file=sys.stderr, flush=True)
                with collector_paused():
                    step = await run_step(impl, calls, args.window_s, live, gateway, args.settle_s)
                step.again = again
                steps.append(step)
                await asyncio.sleep(1.0)  # let the bridge finish the calls that just ended
                step.rss_after_mib = gateway.rss_mib()[0]
                print(f"  {json.dumps(asdict(step))}", file=sys.stderr, flush=True)
                # A latency failure is measured once more before it counts: on this shared
                # machine a single stall elsewhere can spoil one window.
                if again or step.verdict(args.max_p99_ms) == "ok" or step.lost:
                    break
                if step.calls_failed:
                    break
            if step.verdict(args.max_p99_ms) != "ok" and not args.all_steps:
                break
    finally:
        await asyncio.to_thread(gateway.stop)
    if steps:
        steps[-1].problems = gateway.problems()
        steps[-1].gc = gateway.gc_pauses()
        steps[-1].recordings = gateway.recordings()
        steps[-1].seen = live.seen()
        sweep_end = {"impl": impl, "gc": steps[-1].gc, "problems": steps[-1].problems,
                     "recordings": steps[-1].recordings, "seen": steps[-1].seen}  # fmt: skip
        print(SWEEP_PREFIX + json.dumps(sweep_end), file=sys.stderr, flush=True)
    return steps


def final(steps: list[Step]) -> list[Step]:
    """Each step's deciding measurement (the second one where a step was measured again)."""
    return [s for i, s in enumerate(steps) if i + 1 == len(steps) or not steps[i + 1].again]


def capacity(steps: list[Step], max_p99_ms: float) -> int:
    """The most calls of a step that passed (and every step before it passed)."""
    best = 0
    for step in final(steps):
        if step.verdict(max_p99_ms) != "ok":
            break
        best = step.calls
    return best


def render(results: dict[str, list[Step]], args: argparse.Namespace, header: list[str]) -> str:
    lines = [
        *header,
        "",
        "| bridge | calls | CPU s per call-minute | bridge CPU % of its core | CPU % per call | "
        "in p50 / p99 ms | out p50 / p99 ms | frames lost | RSS before → peak → after MiB | "
        "load generator CPU %, lag p99 ms | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for impl, steps in results.items():
        for step in steps:
            lines.append(
                f"| {label(impl)} | {step.calls}{' (again)' if step.again else ''} | "
                f"{step.cpu_s_per_call_minute:.3f} | "
                f"{step.gateway_cpu_pct:.0f} | {step.cpu_pct_per_call:.2f} | "
                f"{step.in_p50_ms:.2f} / {step.in_p99_ms:.2f} | "
                f"{step.out_p50_ms:.2f} / {step.out_p99_ms:.2f}{' †' if step.lost_out else ''} | "
                f"{step.lost} | {step.rss} | "
                f"{step.driver_cpu_pct:.0f}, {step.driver_lag_p99_ms:.2f} | "
                f"{step.verdict(args.max_p99_ms)} |"
            )
    lines.append("")
    if any(s.lost_out for steps in results.values() for s in steps):
        lines += [
            "† Agent audio was lost on the way to the caller: chunks are paired with the bytes "
            "the caller gets by position in the stream, so every chunk after a loss is matched "
            "with later bytes and its out latency is an upper bound.",
            "",
        ]
    summary = []
    for impl, steps in results.items():
        stop = next((x for x in final(steps) if x.verdict(args.max_p99_ms) != "ok"), None)
        why = (
            f" (stopped at {stop.calls}: {stop.verdict(args.max_p99_ms)})"
            if stop is not None
            else " (every step passed)"
        )
        summary.append(f"{label(impl)} **{capacity(steps, args.max_p99_ms)}**{why}")
    lines.append(
        f"Calls per core within p99 ≤ {args.max_p99_ms:g} ms and no lost frame (largest step "
        "passed): " + ", ".join(summary) + "."
    )
    ours = results.get("ours")
    if ours:
        held = capacity(ours, args.max_p99_ms)
        verdict = "met" if held >= TARGET_CALLS else "MISSED"
        lines.append(f"Target (ours): ≥ {TARGET_CALLS} calls per core: {held}, {verdict}.")
    others = [("baseline", "the baseline"), *((peer, IMPL_LABELS[peer]) for peer in PEER_IMPLS)]
    for other, other_name in others:
        bases = [key for key in results if key.partition("@")[0] == other]
        if not (ours and bases):
            continue
        against = []
        for key in bases:  # against ours of the same run
            same_run = results.get("ours" + key[len(other) :])
            if not same_run:
                continue
            ours_calls = capacity(same_run, args.max_p99_ms)
            base_calls = capacity(results[key], args.max_p99_ms)
            stops = [x.verdict(args.max_p99_ms) for x in final(results[key]) + final(same_run)]
            if "load generator fell behind" in stops:
                against.append(
                    f"not comparable in {label(key)}'s run: the load generator fell behind"
                )
                continue
            how = (
                "ahead"
                if ours_calls > base_calls
                else "level"
                if ours_calls == base_calls
                else ("behind")
            )
            against.append(f"ours {ours_calls} vs {base_calls} calls: ours {how}")
        lines.append(f"Against {other_name}: " + "; ".join(against) + ".")
    before = results.get("ours-before")
    if ours and before:
        was = {s.calls: s.cpu_s_per_call_minute for s in final(before)}
        ratio = ", ".join(
            f"{o.calls} calls {was[o.calls] / o.cpu_s_per_call_minute:.2f}×"
            for o in final(ours)
            if o.calls in was
        )
        lines.append(f"Optimizations, CPU per call-minute before ÷ after: {ratio}.")
    compared = [k for k in results if k.partition("@")[0] in {"baseline", *PEER_IMPLS}]
    for key in compared:
        same_run = results.get("ours" + key[len(key.partition("@")[0]) :])
        if not same_run:
            continue
        common = {s.calls: s for s in final(results[key])}
        pairs = [(s, common[s.calls]) for s in final(same_run) if s.calls in common]
        if pairs:
            ratio = ", ".join(
                f"{o.calls} calls {b.cpu_s_per_call_minute / o.cpu_s_per_call_minute:.2f}×"
                for o, b in pairs
            )
            lines.append(f"CPU per call-minute, {label(key)} ÷ ours: {ratio}.")
    for impl, steps in results.items():
        if steps and steps[-1].gc:
            gc = steps[-1].gc
            lines.append(
                f"- {label(impl)}: full (gen2) collections {gc['collections'].get('2', 0)}, "
                f"longest {gc['gen2_max_ms']} ms, over the sweep"
            )
        if steps and steps[-1].problems:
            lines.append(f"- {label(impl)} logged: {steps[-1].problems}")
        if steps and (steps[-1].seen or steps[-1].recordings is not None):
            recorded = (
                f"calls recorded {steps[-1].recordings}"
                if steps[-1].recordings is not None
                else "no recording"
            )
            lines.append(f"- {label(impl)}: {recorded}; {steps[-1].seen}")
        if impl.partition("@")[0] in START_MESSAGES and steps:
            waits = ", ".join(f"{s.listening_after_ms:.0f}" for s in final(steps))
            lines.append(
                f"- {label(impl)}: took caller audio only once its Live session was set up and "
                f"its context sent, median ms after Twilio's `start` per step: {waits} (audio "
                "before that it drops; the callers started talking then)"
            )
    lines += [f"\nNote: {note}" for note in args.note or ()]
    lines += ["", NOTES.strip()]
    return "\n".join(lines)


def label(key: str) -> str:
    """Table label of a bridge; "impl@run 2" keys are bridges of a second logged run."""
    impl, _, run = key.partition("@")
    return IMPL_LABELS[impl] + (f", {run}" if run else "")


def load_steps(paths: list[str]) -> tuple[dict[str, list[Step]], list[str]]:
    """Steps and header lines runs printed on stderr (`--from-log`: re-render, no run); the
    bridges of the second and later logs are labelled with their run's number."""
    results: dict[str, list[Step]] = {}
    header: list[str] = []
    for number, path in enumerate(paths, start=1):
        suffix = f"@run {number}" if number > 1 else ""
        if number > 1:
            header += ["", f"Run {number}:"]
        with open(path, encoding="utf-8") as log:
            for line in log:
                if line.startswith("  {"):
                    step = Step(**json.loads(line))
                    results.setdefault(step.impl + suffix, []).append(step)
                elif line.startswith(HEADER_PREFIX):
                    header.append(line[len(HEADER_PREFIX) :].rstrip("\n"))
                elif line.startswith(SWEEP_PREFIX):
                    end = json.loads(line[len(SWEEP_PREFIX) :])
                    last = results[end["impl"] + suffix][-1]
                    last.gc, last.problems = end["gc"], end["problems"]
                    last.recordings, last.seen = end.get("recordings"), end.get("seen", "")
    return results, header


async def run(args: argparse.Namespace) -> dict[str, list[Step]]:
    pinned = pin_self(DRIVER_CORE)
    live = FakeLive()
    await live.start()
    results: dict[str, list[Step]] = {}
    try:
        for impl in args.impls:
            results[impl] = await sweep(impl, args, live, pinned)
    finally:
        await live.stop()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--steps",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=list(DEFAULT_STEPS),
        help="comma-separated call counts",
    )
    parser.add_argument("--window-s", type=float, default=20.0, help="measured seconds per step")
    parser.add_argument(
        "--settle-s", type=float, default=SETTLE_S, help="wait after the ramp, before measuring"
    )
    parser.add_argument("--max-p99-ms", type=float, default=20.0)
    parser.add_argument(
        "--all-steps",
        action="store_true",
        help="measure every step, also after one failed (capacity still counts only up to the "
        "first failure)",
    )
    parser.add_argument(
        "--impls",
        type=lambda s: [x for x in s.split(",") if x],
        default=list(DEFAULT_IMPLS),
        help=f"comma-separated, from {', '.join(IMPLS)} (default: all but the peers)",
    )
    parser.add_argument(
        "--keep-awake",
        action="store_true",
        help="idle-priority spinners on both cores (harness.KeepAwake); they cost the bridge "
        "~10 %% more CPU per call (a context switch to and from them on every wake-up)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not touch bench/RESULTS.md")
    parser.add_argument("--json", action="store_true", help="print the steps as JSON")
    parser.add_argument("--note", action="append", help="a line of context under the table")
    parser.add_argument(
        "--from-log",
        action="append",
        help="re-render the steps a run logged on stderr (repeat to show several runs)",
    )
    args = parser.parse_args(argv)
    for impl in args.impls:
        if impl not in IMPLS:
            parser.error(f"unknown impl {impl!r}")
    command = "bench/capacity.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if not args.from_log:
        raise_priority()  # before machine_line(), which reports it
    header = [
        machine_line(),
        gateway_defaults(),
        *peers_line(args.impls, set_up=not args.from_log),
        "",
        f"Command: `{command.strip()}`"
        + (" (both cores kept awake: harness.KeepAwake)" if args.keep_awake else ""),
    ]
    if args.from_log:
        results, logged = load_steps(args.from_log)
        header = logged or header
    else:
        for line in header:  # so that --from-log can render this run as it was
            print(HEADER_PREFIX + line, file=sys.stderr, flush=True)
        with KeepAwake(args.keep_awake):
            results = use_uvloop()(run(args))
    body = render(results, args, header)
    if args.json:
        print(json.dumps({impl: [asdict(s) for s in steps] for impl, steps in results.items()}))
    else:
        print(body)
    if not args.no_write:
        write_section(SECTION_HEADING, body)


if __name__ == "__main__":
    main()
