"""What recording a call costs the recorder's worker thread, per call-minute: this tree against
another commit of the gateway (default: the last commit before recording format 2), in one run.

    .venv/bin/python bench/recording.py                  # against fdfe90c
    .venv/bin/python bench/recording.py --before <rev> --minutes 2

One call-minute of events as the capacity bench's calls make them (the agent talking all the
time): 3000 caller media frames in, 3000 caller audio chunks to Live (16 kHz), 300 Live audio
messages of 200 ms (24 kHz), 3000 media frames out. Each tree's `RecordingSink` writes them in
batches of 25 events (what the writer hands over every half second), as its own gateway feeds
it: the before-tree parses the raw frames itself, this tree gets the call's parse with each
caller frame (`CallObserver.caller_media`) and the μ-law of each frame out (`agent_media`).
Reported per tree: CPU ms of the worker per call-minute (process time, best of three) and the
files' size. A git worktree of the other
commit is made under the system's temp folder and removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BEFORE = "fdfe90c"

WORKER = r"""
import base64, json, sys, tempfile, time
from pathlib import Path
import numpy as np
try:
    from gateway.recording.recorder import RecordingSink
    from gateway.recording.format import EventKind
except ImportError:  # the tree before the package layout
    from gateway.recording import RecordingSink
    from gateway.recording_format import EventKind
from gateway.live.protocol import parse_server_message
from gateway.telephony.twilio import build_media, parse_event
from gateway.telephony.twilio_caller import TwilioCaller

minutes = float(sys.argv[1])
hands_parse = "caller_media" in RecordingSink.__dict__ or hasattr(RecordingSink, "_caller_media")
hands_audio = hasattr(RecordingSink, "_built_agent_media")
sid = "MZ" + "0" * 32
phone = TwilioCaller(stream_sid=sid, call_sid="CA" + "0" * 32, account_sid="AC" + "0" * 32)
rng = np.random.default_rng(1)
mulaw = rng.integers(0, 256, 160, dtype=np.uint8).tobytes()
pcm16 = (rng.standard_normal(320) * 3000).astype("<i2").tobytes()
pcm24 = (rng.standard_normal(4800) * 3000).astype("<i2").tobytes()
live = parse_server_message(json.dumps({"serverContent": {"modelTurn": {"parts": [{"inlineData": {
    "mimeType": "audio/pcm;rate=24000", "data": base64.b64encode(pcm24).decode()}}]}}}))
frames = int(3000 * minutes)
meta = {"stream_sid": sid, "call_sid": phone.call_sid, "format": 0}
items = [(0.0, EventKind.CALL_STARTED, meta)]
for i in range(frames):
    t = i * 0.02
    raw = json.dumps(phone.media(mulaw))
    items.append((t, EventKind.TWILIO_IN, (raw, parse_event(raw)) if hands_parse else raw))
    items.append((t, EventKind.LIVE_OUT, (pcm16, 16000)))
    if i % 10 == 0:
        items.append((t, EventKind.LIVE_IN, live))
    out = build_media(sid, mulaw)
    items.append((t, EventKind.TWILIO_OUT, (out, mulaw) if hands_audio else out))
best = None
for _ in range(3):
    directory = Path(tempfile.mkdtemp())
    sink = RecordingSink(directory, "call", max_bytes=0)
    start = time.process_time()
    for k in range(0, len(items), 25):
        sink.write(items[k : k + 25])
    sink.finish(None)
    spent = time.process_time() - start
    size = sum(p.stat().st_size for p in directory.iterdir() if p.suffix != ".wav")
    wav = sum(p.stat().st_size for p in directory.iterdir() if p.suffix == ".wav")
    best = spent if best is None else min(best, spent)
print(json.dumps({"cpu_ms_per_call_minute": 1000 * best / minutes,
                  "mib_per_call_minute": size / minutes / 2**20,
                  "wav_mib_per_call_minute": wav / minutes / 2**20}))
"""


def measure(tree: Path, minutes: float) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", WORKER, str(minutes)],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--before", default=DEFAULT_BEFORE, help="the other commit (default %(default)s)"
    )
    parser.add_argument(
        "--minutes", type=float, default=1.0, help="call-minutes of events (default 1)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-recording-") as tmp:
        worktree = Path(tmp) / "before"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), args.before],
            check=True,
            capture_output=True,
        )
        try:
            before = measure(worktree, args.minutes)
            after = measure(REPO, args.minutes)
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)],
                check=False,
                capture_output=True,
            )
    print(
        "| recorder worker | CPU ms per call-minute | JSONL + audio MiB per call-minute | WAV MiB |"
    )
    print("|---|---:|---:|---:|")
    for name, row in ((f"before ({args.before})", before), ("this tree", after)):
        print(
            f"| {name} | {row['cpu_ms_per_call_minute']:.0f} | "
            f"{row['mib_per_call_minute']:.2f} | {row['wav_mib_per_call_minute']:.2f} |"
        )
    ratio = before["cpu_ms_per_call_minute"] / after["cpu_ms_per_call_minute"]
    print(
        f"\nbefore ÷ after: CPU {ratio:.1f}×, size "
        f"{before['mib_per_call_minute'] / after['mib_per_call_minute']:.1f}×"
    )


if __name__ == "__main__":
    main()
