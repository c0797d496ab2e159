"""Latency the bridge adds, one call, each direction and barge-in: ours vs the baseline bridge
(and peers: Pipecat).

    .venv/bin/python bench/latency.py                      # 1000 samples of each, all bridges
    .venv/bin/python bench/latency.py --samples 200 --impls ours,baseline --no-write
    .venv/bin/python bench/latency.py --impls ours,baseline,pipecat --samples 50 --no-write

`pipecat` is a peer (bench/peers/): its first run makes its venv from PyPI.

One call through the bridge under test (own process, pinned to core 0; see bench/harness.py),
the caller and the instrumented Live server in this process (core 1), all on loopback. The
caller streams 20 ms μ-law frames in real time for the whole run, like Twilio; meanwhile the
Live side runs three scripts, one after the other:

* **out**: a 200 ms agent-audio chunk at a random moment (10–60 ms after the previous one has
  fully arrived) → latency to the first byte of it on the Twilio socket;
* **barge-in**: a 200 ms chunk, and once the caller has it all, a random 0–20 ms later
  `interrupted` (+ `turnComplete`) → latency to `clear`; then a silent marker turn, and every
  frame with sound between `clear` and the marker is a **stale** frame;
* **barge-in behind a backlog**: five 200 ms chunks then `interrupted` at once (the bridge still
  has a second of audio to deal with) → latency to `clear`, and stale frames the same way.

**in** is every caller frame → the Live message it became. Percentiles are over the samples
after a warm-up. Per bridge, a second table: the bridge's CPU for the whole call (% of a core
and CPU s per call-minute), reply latency (**out**), barge-in latency, and its RSS before the
call, at its peak during it and 1 s after the caller hung up. A latency is wire to wire: what
the bridge adds, plus two loopback hops and the measuring process's own WebSocket framing.
Prints the tables and replaces the
"## Latency (bench/latency.py)" section of bench/RESULTS.md (unless `--no-write`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from harness import (
    CHUNK_MULAW_BYTES,
    DEFAULT_IMPLS,
    DRIVER_CORE,
    ENDS_CALL_ON_STOP,
    HOLDS_TAIL,
    IMPL_LABELS,
    IMPLS,
    LIVE_INTERRUPTED,
    LIVE_SILENCE,
    LIVE_TURN_COMPLETE,
    PEER_IMPLS,
    QUIET_S,
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
    use_uvloop,
    wait_until,
    write_section,
)

SECTION_HEADING = "## Latency (bench/latency.py)"
WARMUP_IN_FRAMES = 50
WARMUP_OUT_CHUNKS = 5
"""Samples dropped at the start (at most; tiny runs drop a tenth of their samples)."""
BACKLOG_CHUNKS = 5
WAIT_S = 5.0
AFTER_S = 1.0
"""How long after the call the bridge's RSS is read (its clean-up done)."""
TARGET_DIRECTION_P99_MS = 3.0
TARGET_BARGE_IN_P99_MS = 1.0


NOTES = """
How to read it. Wire to wire, both ends timestamped with `perf_counter_ns` in the measuring
process (core 1), the bridge alone on core 0, both at SCHED_FIFO: each figure is what the
bridge adds plus two loopback hops and the measuring process's own WebSocket framing (about
0.05–0.1 ms), so an upper bound. The vCPUs are kept from halting (harness.KeepAwake): on this
KVM guest an idle vCPU takes 0.1–0.3 ms to wake for a packet, more than the bridge itself, and
at random; with `--let-cores-sleep` every bridge's p50 rises by about that much. Sub-0.1 ms
differences between rows are within run-to-run noise on this shared machine.
Stale frames: frames with sound (RMS > -50 dBFS) that reach the caller after `clear` and
before the silent marker turn that follows every barge-in. "Behind a backlog": Live sends 1 s
of audio and `interrupted` back to back; ours drops what it has not yet written (its queue is
emptied and the encoder reset in the same step), the baseline converts and sends all of it
before its `clear`, for Twilio to throw away.

Barge-in, what was changed: at one call every event runs on cold caches, so each line of code
between `interrupted` and `clear` counts. Traced inside the gateway (perf_counter_ns at
`Call._barge_in` and at the `clear` handed to the socket, 150 barge-ins, asyncio loop): the
info log line `barge_in` alone cost ~90 µs there (structlog → JSON → stderr), and `clear` then
waited for the writer task behind the rest of Live's message. Now the call drops its queue,
queues `clear`, yields once so the writer sends it at once (gateway.frame_batcher writes a
step's first frame immediately), and logs afterwards: `_barge_in` → `clear` on the socket
140 → 35 µs p50, wire to wire 0.32 → 0.16 ms p50 in the same setup. The `ours before
optimizing` row keeps these barge-in changes (they are in `Call`, not patched out); it undoes
only the CPU work of the Capacity section.

Against the baseline: every target is met with a wide margin, but at one idle call the
baseline is not beaten: in our runs it was level with ours to ~0.1 ms faster at p50 and p99.
It does less per message: no frame validation, no observers (metrics, recording), no
rate limiter, no resumption layer, one `media` message per Live chunk instead of 20 ms frames,
and no anti-alias filter. On cold caches that shorter path is worth about 0.1 ms. What ours
buys with it is in the other columns and sections: 20 ms frames and an outbound queue that a
barge-in empties (behind a backlog the baseline still converts and sends the whole second of
interrupted audio before its `clear`), band-limited resampling (Codec), and flat tails under
load (Capacity).
"""


@dataclass
class LatencyResult:
    impl: str
    in_ns: list[int] = field(default_factory=list)
    out_ns: list[int] = field(default_factory=list)
    barge_ns: list[int] = field(default_factory=list)
    backlog_ns: list[int] = field(default_factory=list)
    stale_frames: int = 0
    backlog_frames_before_clear: int = 0
    backlog_frames_expected: int = 0
    frames_lost_in: int = 0
    timeouts: int = 0
    problems: dict[str, int] = field(default_factory=dict)
    gateway_cpu_s: float = 0.0
    wall_s: float = 0.0
    seen: str = ""
    """What the Live side saw the bridge send: setup model, caller-audio format."""
    recordings: int | None = None
    rss_before_mib: float = float("nan")
    rss_peak_mib: float = float("nan")
    rss_after_mib: float = float("nan")
    """The bridge's RSS before the call, its peak during it, AFTER_S after it."""
    listening_after_ms: float = 0.0
    """From Twilio's `start` to the bridge taking caller audio (harness.START_MESSAGES)."""

    @property
    def cpu_pct(self) -> float:
        return 100 * self.gateway_cpu_s / max(self.wall_s, 1e-9)

    @property
    def cpu_s_per_call_minute(self) -> float:
        return 60 * self.gateway_cpu_s / max(self.wall_s, 1e-9)

    @property
    def rss(self) -> str:
        values = (self.rss_before_mib, self.rss_peak_mib, self.rss_after_mib)
        return " → ".join("—" if v != v else f"{v:.1f}" for v in values)  # NaN: not measured

    def row(self) -> dict[str, Any]:
        def pair(values: list[int]) -> str:
            return f"{percentile_ms(values, 50):.3f} / {percentile_ms(values, 99):.3f}"

        return {
            "impl": self.impl,
            "in": pair(self.in_ns),
            "out": pair(self.out_ns),
            "barge": pair(self.barge_ns),
            "backlog": pair(self.backlog_ns),
            "samples": f"{len(self.in_ns)} / {len(self.out_ns)} / {len(self.barge_ns)} / "
            f"{len(self.backlog_ns)}",
            "stale": self.stale_frames,
            "lost": self.frames_lost_in,
            "cpu_pct": round(self.cpu_pct, 2),
            "cpu_s_per_call_minute": round(self.cpu_s_per_call_minute, 3),
            "rss_mib": [self.rss_before_mib, self.rss_peak_mib, self.rss_after_mib],
        }


async def _stream(caller: Caller, payloads: list[str], stop: asyncio.Event) -> None:
    """The caller's side of the call: one frame every 20 ms, on a fixed schedule."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    k = 0
    while not stop.is_set():
        await asyncio.sleep(max(0.0, t0 + k * 0.020 - loop.time()))
        await caller.send_frame(payloads[k % len(payloads)])
        k += 1


async def _drain_after_clear(caller: Caller, result: LatencyResult) -> bool:
    """Send the silent marker turn; count frames with sound that arrive after `clear`."""
    assert caller.live is not None
    await caller.live.send(LIVE_SILENCE)
    await caller.live.send(LIVE_TURN_COMPLETE)
    ok = await wait_until(
        lambda: caller.silent_bytes_after_clear >= CHUNK_MULAW_BYTES, caller.progress, WAIT_S
    )
    result.stale_frames += caller.sound_frames_after_clear
    return ok


async def _delivered(caller: Caller, target: int, holds_tail: bool) -> bool:
    """Wait for the agent audio up to μ-law byte `target` to reach the caller; for a bridge in
    HOLDS_TAIL, until the last chunk's first byte has and the bridge then went quiet."""
    if not holds_tail:
        return await wait_until(lambda: caller.rx_bytes >= target, caller.progress, WAIT_S)
    first = target - CHUNK_MULAW_BYTES
    if not await wait_until(lambda: caller.rx_bytes > first, caller.progress, WAIT_S):
        return False
    while caller.rx_bytes < target:
        seen = caller.rx_messages
        caller.progress.clear()
        try:
            await asyncio.wait_for(caller.progress.wait(), QUIET_S)
        except TimeoutError:
            if caller.rx_messages == seen:
                break
    return True


async def _barge_in(
    caller: Caller, result: LatencyResult, chunks: int, *, backlog: bool, holds_tail: bool = False
) -> None:
    live = caller.live
    assert live is not None
    caller.last_clear_ns = 0
    caller.sound_frames_after_clear = caller.silent_bytes_after_clear = 0
    caller.sound_frames_before_clear = 0
    clears = caller.clears
    expected = caller.rx_bytes + chunks * CHUNK_MULAW_BYTES
    for _ in range(chunks):
        await live.send_chunk()
    if not backlog:
        if not await _delivered(caller, expected, holds_tail):
            result.timeouts += 1
        await asyncio.sleep(random.uniform(0.0, 0.020))
    t0 = await live.send(LIVE_INTERRUPTED)
    await live.send(LIVE_TURN_COMPLETE)
    if not await wait_until(lambda: caller.clears > clears, caller.progress, WAIT_S):
        result.timeouts += 1
        return
    (result.backlog_ns if backlog else result.barge_ns).append(caller.last_clear_ns - t0)
    if backlog:
        result.backlog_frames_before_clear += caller.sound_frames_before_clear
        result.backlog_frames_expected += chunks * CHUNK_MULAW_BYTES // 160
    # Chunks the bridge dropped never reach the caller: forget them for out-latency pairing.
    live.sent_chunks.clear()
    caller.rx_bytes = live.chunks_sent * CHUNK_MULAW_BYTES
    if not await _drain_after_clear(caller, result):
        result.timeouts += 1
    caller.rx_bytes = live.chunks_sent * CHUNK_MULAW_BYTES
    live.sent_chunks.clear()
    caller.last_clear_ns = 0


async def measure(impl: str, samples: int, *, live: FakeLive, pin: bool) -> LatencyResult:
    result = LatencyResult(impl)
    live.models.clear()
    live.input_mime.clear()
    warmup_in = min(WARMUP_IN_FRAMES, samples // 10)
    warmup_out = min(WARMUP_OUT_CHUNKS, samples // 10)
    gateway = await asyncio.to_thread(GatewayProcess, impl, live.url, pin=pin)
    stop = asyncio.Event()
    try:
        result.rss_before_mib = gateway.rss_mib()[0]
        gateway.reset_peak_rss()
        async with aiohttp.ClientSession() as session:
            caller = await open_call(session, gateway.url, live, 0, impl)
            caller.classify = True
            caller.echo_marks = False
            result.listening_after_ms = caller.listening_after_ns / 1e6
            streamer = asyncio.create_task(_stream(caller, caller_frames(), stop))
            cpu0, wall0 = gateway.cpu_s(), time.perf_counter()
            holds_tail = impl in HOLDS_TAIL
            assert caller.live is not None
            await asyncio.sleep(0.2)
            # out: one chunk at a time, at a random moment
            for _ in range(samples + warmup_out):
                await asyncio.sleep(random.uniform(0.010, 0.060))
                target = (caller.live.chunks_sent + 1) * CHUNK_MULAW_BYTES
                await caller.live.send_chunk()
                if not await _delivered(caller, target, holds_tail):
                    result.timeouts += 1
            await caller.live.send(LIVE_TURN_COMPLETE)
            result.out_ns = [lat for _, lat in caller.out_latencies[warmup_out:]]
            # barge-in, then barge-in behind a backlog
            for _ in range(samples):
                await _barge_in(caller, result, 1, backlog=False, holds_tail=holds_tail)
            for _ in range(max(1, samples // 5)):
                await asyncio.sleep(random.uniform(0.0, 0.020))
                await _barge_in(caller, result, BACKLOG_CHUNKS, backlog=True)
            # in: keep streaming until there are enough caller frames
            await wait_until(
                lambda: len(caller.in_latencies) >= samples + warmup_in,
                caller.progress,
                samples * 0.020 + WAIT_S,
            )
            stop.set()
            await streamer
            result.gateway_cpu_s = gateway.cpu_s() - cpu0
            result.wall_s = time.perf_counter() - wall0
            result.rss_peak_mib = gateway.rss_mib()[1]
            await caller.hang_up(close=impl not in ENDS_CALL_ON_STOP)
            await asyncio.wait_for(caller.live.closed.wait(), WAIT_S)
            result.frames_lost_in = caller.frames_sent - caller.live.audio_in
            result.in_ns = [lat for _, lat in caller.in_latencies[warmup_in:]]
            await caller.ws.close()
            if caller.reader is not None:
                await caller.reader
        await asyncio.sleep(AFTER_S)
        result.rss_after_mib = gateway.rss_mib()[0]
    finally:
        stop.set()
        await asyncio.to_thread(gateway.stop)
    result.problems = gateway.problems()
    result.recordings = gateway.recordings()
    result.seen = live.seen()
    return result


def render(results: list[LatencyResult], args: argparse.Namespace, command: str) -> str:
    lines = [
        machine_line(),
        gateway_defaults(),
        *peers_line([r.impl for r in results], set_up=False),
        "",
        f"Command: `{command}`"
        + ("" if args.let_cores_sleep else " (both cores kept awake: harness.KeepAwake)"),
        "",
        "| bridge | in: Twilio frame → Live msg, p50 / p99 ms | out: Live audio → first Twilio "
        "frame, p50 / p99 ms | barge-in: `interrupted` → `clear`, p50 / p99 ms | barge-in behind "
        "1 s backlog, p50 / p99 ms | samples in / out / barge / backlog | stale frames after "
        "clear | caller frames lost |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        row = result.row()
        lines.append(
            f"| {IMPL_LABELS[row['impl']]} | {row['in']} | {row['out']} | {row['barge']} | "
            f"{row['backlog']} | {row['samples']} | {row['stale']} | {row['lost']} |"
        )
    lines += [
        "",
        "| bridge | CPU % of a core for the call | CPU s per call-minute | reply: Live audio → "
        "first Twilio frame, p50 / p99 ms | barge-in: `interrupted` → `clear`, p50 / p99 ms | "
        "RSS before → peak → after the call, MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        row = result.row()
        lines.append(
            f"| {IMPL_LABELS[result.impl]} | {result.cpu_pct:.1f} | "
            f"{result.cpu_s_per_call_minute:.2f} | {row['out']} | {row['barge']} | "
            f"{result.rss} |"
        )
    ours = next((r for r in results if r.impl == "ours"), None)
    for other in ("baseline", *sorted(PEER_IMPLS)):
        base = next((r for r in results if r.impl == other), None)
        if ours is None or base is None:
            continue
        ratios = []
        for name, a, b in (
            ("in", ours.in_ns, base.in_ns),
            ("out", ours.out_ns, base.out_ns),
            ("barge-in", ours.barge_ns, base.barge_ns),
            ("barge-in behind a backlog", ours.backlog_ns, base.backlog_ns),
        ):
            ratios.append(f"{name} {percentile_ms(b, 99) / percentile_ms(a, 99):.2f}×")
        who = "the baseline" if other == "baseline" else IMPL_LABELS[other]
        lines += ["", f"p99 of {who} ÷ p99 of ours: " + ", ".join(ratios) + "."]
    if ours is not None:
        checks = [
            ("in p99", percentile_ms(ours.in_ns, 99), TARGET_DIRECTION_P99_MS),
            ("out p99", percentile_ms(ours.out_ns, 99), TARGET_DIRECTION_P99_MS),
            ("barge-in p99", percentile_ms(ours.barge_ns, 99), TARGET_BARGE_IN_P99_MS),
        ]
        verdicts = [
            f"{name} {value:.3f} ms {'≤' if value <= target else '>'} {target:g} ms "
            f"({'met' if value <= target else 'MISSED'})"
            for name, value, target in checks
        ]
        stale_ok = "met" if not ours.stale_frames else "MISSED"
        verdicts.append(f"stale frames {ours.stale_frames} ({stale_ok})")
        lines += ["", "Targets (ours): " + "; ".join(verdicts) + "."]
    for result in results:
        if result.backlog_frames_expected:
            lines.append(
                f"- {IMPL_LABELS[result.impl]}: behind the backlog, "
                f"{result.backlog_frames_before_clear} of {result.backlog_frames_expected} "
                "frames of the interrupted audio went out before `clear` (the rest dropped); "
                f"gateway CPU {100 * result.gateway_cpu_s / max(result.wall_s, 1e-9):.1f}% of a "
                f"core for the call; timeouts {result.timeouts}; warnings/errors logged "
                f"{sum(result.problems.values())}"
                + (f" {result.problems}" if result.problems else "")
                + (
                    f"; calls recorded {result.recordings}"
                    if result.recordings is not None
                    else "; no recording"
                )
                + f"; {result.seen}"
            )
        if result.impl in START_MESSAGES:
            lines.append(
                f"- {IMPL_LABELS[result.impl]}: took caller audio "
                f"{result.listening_after_ms:.0f} ms after Twilio's `start` (its Live session "
                "set up and its context sent; audio before that it drops, so the caller "
                "started talking then)"
            )
        if result.impl in HOLDS_TAIL:
            lines.append(
                f"- {IMPL_LABELS[result.impl]}: holds back the end of a turn still being "
                "spoken (its output resampler): an out or barge-in chunk counted as delivered "
                f"once its first byte arrived and the bridge went quiet for {QUIET_S * 1000:.0f} "
                "ms (harness.HOLDS_TAIL)"
            )
    lines += ["", NOTES.strip()]
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> list[LatencyResult]:
    pinned = pin_self(DRIVER_CORE)
    live = FakeLive()
    await live.start()
    results = []
    try:
        for impl in args.impls:
            print(f"measuring {impl} …", file=sys.stderr, flush=True)
            with collector_paused():
                results.append(await measure(impl, args.samples, live=live, pin=pinned))
    finally:
        await live.stop()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=1000, help="samples per measurement")
    parser.add_argument(
        "--impls",
        type=lambda s: [x for x in s.split(",") if x],
        default=list(DEFAULT_IMPLS),
        help=f"comma-separated, from {', '.join(IMPLS)} (default: all but the peers)",
    )
    parser.add_argument(
        "--let-cores-sleep",
        action="store_true",
        help="no idle-priority spinners (harness.KeepAwake): idle vCPUs halt and wake slowly",
    )
    parser.add_argument("--no-write", action="store_true", help="do not touch bench/RESULTS.md")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    for impl in args.impls:
        if impl not in IMPLS:
            parser.error(f"unknown impl {impl!r}")
    with KeepAwake(not args.let_cores_sleep):
        results = use_uvloop()(run(args))
    command = "bench/latency.py " + " ".join(sys.argv[1:] if argv is None else argv)
    body = render(results, args, command.strip())
    if args.json:
        rows = [r.row() | {"problems": r.problems, "timeouts": r.timeouts} for r in results]
        print(json.dumps(rows))
    else:
        print(body)
    if not args.no_write:
        write_section(SECTION_HEADING, body)


if __name__ == "__main__":
    main()
