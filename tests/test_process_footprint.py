"""A light process: `gateway serve` idles in ≤ 80 MiB and imports nothing it does not need.

What used to cost: scipy (~75 MiB, only to design the resampler's filters at import; the taps
now ship as constants in `gateway/audio/filter_taps.py`, and `gateway call` resamples its WAVs
with numpy). The twilio REST client and google-auth (with requests) load only on their paths:
a REST hang-up or transfer, Vertex AI credentials. Memory is deterministic enough to assert;
timings are not asserted (speed lives in bench/).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

REPO = Path(__file__).parent.parent
MAX_IDLE_RSS_MIB = 80
START_DEADLINE_S = 45.0

NEVER_AT_RUN_TIME = ("scipy", "gateway.audio.design_filters")
"""Design-time only: not imported by serving, by a call's codecs, nor by `gateway call`."""
ONLY_ON_THEIR_PATH = (
    "twilio.rest", "twilio.http", "google.auth", "google.oauth2", "requests",
    "cryptography",  # Telnyx's Ed25519 and Vonage's RS256: only with their keys set (~8 MiB)
    "espeakng_loader",  # the emulator's voice: libespeak-ng loads at its first reply (~3 MiB)
)  # fmt: skip
"""Imported when a call is hung up / transferred over REST, on Vertex AI, or when the emulator
first speaks: not at start-up."""
LAZY = NEVER_AT_RUN_TIME + ONLY_ON_THEIR_PATH

_IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \| *(\S+)$")


def _env(**extra: str) -> dict[str, str]:
    """The environment of an operator with no Google credentials: the embedded emulator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVE_", "GEMINI_", "GOOGLE_"))}
    env.update(extra)
    return env


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


# ------------------------------------------------------------------------------- imports


IMPORT_PROBE = """
import json, sys
import gateway.server
import gateway.cli
from gateway.agents.config import load_agents
from gateway.audio.codec import AgentAudioEncoder, CallerAudioDecoder
from gateway.settings import load_settings

settings = load_settings()
app = gateway.server.create_app(
    settings, load_agents(settings.agents_dir, default_model=settings.model)
)
for rate_hz in (16000, 24000):  # a call's codecs, both Live rates, both directions
    CallerAudioDecoder(rate_hz).decode(bytes(160))
    AgentAudioEncoder(rate_hz).encode(bytes(960))
import gateway.softphone.cli  # `gateway call`; its WAV reading is exercised below
print(json.dumps(sorted(sys.modules)))
"""


def test_serving_and_calls_import_no_design_time_or_path_only_modules() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    modules = set(json.loads(done.stdout))
    assert {"gateway.server", "gateway.cli", "gateway.audio.filter_taps", "numpy"} <= modules
    assert _loaded(modules, LAZY) == []


WAV_PROBE = """
import json, sys, wave
from pathlib import Path
import numpy as np
from gateway.softphone.cli import read_wav_pcm16_8k

path = Path(sys.argv[1])
with wave.open(str(path), "wb") as wav:
    wav.setnchannels(2)
    wav.setsampwidth(2)
    wav.setframerate(44100)
    wav.writeframes(np.zeros(44100 * 2, dtype="<i2").tobytes())
assert len(read_wav_pcm16_8k(path)) == 2 * 8000
print(json.dumps(sorted(sys.modules)))
"""


def test_gateway_call_resamples_its_wav_without_scipy(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WAV_PROBE, str(tmp_path / "in.wav")],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    modules = set(json.loads(done.stdout))
    assert "gateway.audio.polyphase" in modules
    assert _loaded(modules, NEVER_AT_RUN_TIME) == []


def test_the_probe_would_see_scipy() -> None:
    """The check above means something: importing the designer does load scipy."""
    probe = "import sys, gateway.audio.design_filters; print('scipy' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


# ------------------------------------------------------------------------ gateway serve


def _vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@contextlib.asynccontextmanager
async def _serving() -> AsyncIterator[tuple[asyncio.subprocess.Process, int, list[str]]]:
    """`gateway serve` with its defaults on a free port, and every line of its stderr so far.

    `-X importtime` makes the process name, on stderr, every module it imports (a line each,
    the moment it is first imported), beside its JSON log lines.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-X", "importtime", "-m", "gateway", "serve",
        "--host", "127.0.0.1", "--port", "0",
        cwd=REPO, env=_env(LOG_LEVEL="info"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    stderr = proc.stderr
    lines: list[str] = []
    listening: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def read() -> None:  # drained all along, so the pipe never blocks the gateway
        while line := (await stderr.readline()).decode():
            lines.append(line)
            if '"gateway_listening"' in line and not listening.done():
                listening.set_result(int(json.loads(line)["port"]))
        if not listening.done():
            listening.set_exception(AssertionError("gateway exited: " + "".join(lines[-20:])))

    reader = asyncio.create_task(read())
    try:
        async with asyncio.timeout(START_DEADLINE_S):
            port = await listening
        yield proc, port, lines
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
        await reader


async def _wait_for_health(port: int) -> dict[str, object]:
    """Poll /healthz until it answers 200 (bounded by START_DEADLINE_S)."""
    async with aiohttp.ClientSession() as http, asyncio.timeout(START_DEADLINE_S):
        while True:
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        health: dict[str, object] = await response.json()
                        return health
            await asyncio.sleep(0.05)  # a poll interval, not synchronisation


@pytest.mark.timeout(90)
async def test_gateway_serve_idles_in_at_most_80_mib_without_lazy_modules() -> None:
    async with _serving() as (proc, port, lines):
        health = await _wait_for_health(port)
        assert health["live_backend"] == "emulator"
        rss_kib = _vm_kib(proc.pid, "VmRSS")
        imported = {m.group(1) for line in lines if (m := _IMPORT_LINE.match(line.rstrip()))}
    assert {"gateway.server", "gateway.audio.codec", "aiohttp.web", "numpy"} <= imported
    assert _loaded(imported, LAZY) == []
    assert rss_kib <= MAX_IDLE_RSS_MIB * 1024, f"idle RSS {rss_kib / 1024:.1f} MiB"
