"""The softphone page in headless Chromium with a fake microphone, against the real gateway.

Chromium plays `tests/data/softphone_speech.wav` (espeak-ng: "Hello, where is my order?", then
6 s of silence) as its microphone. The page must connect to /media, send that speech as 8 kHz
μ-law, play the emulator's answer, echo the turn's mark once it has played, and show the
transcript; its level meters follow the microphone and the playback. Skipped when no Chromium
is installed (`.ci/run` installs it on CI).
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gateway.audio.mulaw import decode_mulaw, encode_mulaw
from tests.cdp import Browser, Page, find_chromium
from tests.console.browser import SCREENSHOT_MAX_BYTES, SCREENSHOTS, VIEWPORT
from tests.gateway_harness import LoopbackGateway, loopback_gateway

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (apt-get install chromium; .ci/run does it on CI)",
)

DATA = Path(__file__).parent / "data"
SPEECH_WAV = DATA / "softphone_speech.wav"
"""1.5 s of speech, then 6 s of silence: one question, and time to hear the whole answer."""
SHORT_GAP_WAV = DATA / "softphone_speech_short_gap.wav"
"""The same speech with 1 s of silence: looped, the caller talks again over the answer."""
WAIT_S = 45.0


@pytest.fixture
async def gateway() -> AsyncIterator[LoopbackGateway]:
    async with loopback_gateway() as running:
        yield running


def media_flags(microphone_wav: Path) -> tuple[str, ...]:
    return (
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone_wav}",
        "--autoplay-policy=no-user-gesture-required",
    )


@pytest.fixture
async def browser(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Browser]:
    """Chromium whose microphone plays SPEECH_WAV (or the file given by indirect parametrize)."""
    assert CHROMIUM is not None
    wav = getattr(request, "param", SPEECH_WAV)
    running = await Browser.launch(CHROMIUM, tmp_path / "profile", *media_flags(wav))
    try:
        yield running
    finally:
        await running.close()


async def wait_for(page: Page, browser: Browser, predicate_js: str) -> dict[str, Any]:
    """`softphone.waitFor(predicate)`: resolves on the page's own state-change events."""
    try:
        async with asyncio.timeout(WAIT_S):
            stats: dict[str, Any] = await page.evaluate(
                f"softphone.waitFor((s, transcript) => {predicate_js})"
            )
            return stats
    except TimeoutError:
        stats = await page.evaluate("JSON.stringify(softphone.stats)")
        pytest.fail(f"page never reached {predicate_js}: {stats}\n{browser.diagnostics()}")


async def meter_when(page: Page, browser: Browser, who: str, predicate_js: str) -> dict[str, Any]:
    """The `who` level meter as shown at the state change where `predicate_js` first holds."""
    try:
        async with asyncio.timeout(WAIT_S):
            shown: dict[str, Any] = await page.evaluate(
                f"""softphone.waitFor((s) => {predicate_js}).then((s) => {{
                  const meter = document.getElementById('meter-{who}');
                  return {{db: Number.isFinite(s.{who}LevelDbfs) ? s.{who}LevelDbfs : null,
                          valuenow: Number(meter.getAttribute('aria-valuenow')),
                          valuetext: meter.getAttribute('aria-valuetext'),
                          width: parseFloat(meter.firstElementChild.style.width || '0')}};
                }})"""
            )
            return shown
    except TimeoutError:
        stats = await page.evaluate("JSON.stringify(softphone.stats)")
        pytest.fail(f"meter never reached {predicate_js}: {stats}\n{browser.diagnostics()}")


async def screenshot_softphone(page: Page) -> None:
    """docs/console/softphone.png (1280×800) when CONSOLE_SCREENSHOTS=1."""
    if os.environ.get("CONSOLE_SCREENSHOTS") != "1":
        return
    await page.send("Emulation.setDeviceMetricsOverride", VIEWPORT)
    shot = await page.send("Page.captureScreenshot", {"format": "png"})
    data = base64.b64decode(shot["data"])
    assert len(data) <= SCREENSHOT_MAX_BYTES
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "softphone.png").write_bytes(data)
    await page.send("Emulation.clearDeviceMetricsOverride")


async def test_a_call_from_the_browser_microphone(
    gateway: LoopbackGateway, browser: Browser
) -> None:
    page = await browser.new_page(f"http://127.0.0.1:{gateway.port}/softphone?agent=default")
    await wait_for(page, browser, "s.agentsLoaded === 2")
    options = await page.evaluate(
        "[...document.querySelectorAll('#agent option')].map(o => o.value)"
    )
    assert options == ["default", "greeter"]

    await page.evaluate("document.getElementById('call').click()", user_gesture=True)
    # The agent meter follows what is playing: while the answer plays it shows its level...
    playing = await meter_when(page, browser, "agent", "s.agentLevelDbfs > -45")
    assert playing["valuenow"] == round(playing["db"]) and playing["valuetext"].endswith("dBFS")
    assert playing["width"] == pytest.approx((playing["db"] + 60) / 60 * 100, abs=0.01)
    await screenshot_softphone(page)
    stats = await wait_for(
        page, browser,
        "s.marksEchoed >= 1 && transcript.some(l => l.role === 'agent' && !l.open)",
    )
    # ... and once it has all played, silence; the caller meter showed the speech.
    silent = await meter_when(page, browser, "agent", "s.agentLevelDbfs === -Infinity")
    assert (silent["valuenow"], silent["valuetext"], silent["width"]) == (-60, "silent", 0)
    assert stats["micPeakDbfs"] > -40 and stats["agentPeakDbfs"] > -45
    # It sent the microphone as 20 ms frames, received and played the whole answer, and
    # echoed the turn's mark after playing it (not because of a clear).
    assert stats["state"] == "in-call" and stats["error"] == ""
    assert stats["framesSent"] >= 100  # ≥ 2 s: the speech and the silence that ends it
    assert stats["framesReceived"] == 200  # the emulator's 4 s answer
    assert stats["secondsPlayed"] >= 3.99
    assert (stats["marksReceived"], stats["marksEchoed"], stats["marksCleared"]) == (1, 1, 0)
    assert stats["clears"] == 0

    # The live transcript, as the page shows it.
    text = await page.evaluate("document.getElementById('transcript').innerText")
    caller_line, agent_line = [line for line in text.splitlines() if line.strip()]
    assert re.fullmatch(r"caller\s+\(caller speech 1\.[4-7] s\)", caller_line), text
    assert re.fullmatch(
        r"agent\s+You said something for 1\.[4-7] seconds\. This is reply number 1\.", agent_line
    ), text
    assert await page.evaluate("document.getElementById('frames-received').textContent") == "200"

    health = await (await gateway.client.get("/healthz")).json()
    assert health["active_calls"] == 1
    await page.evaluate("softphone.hangUp()", user_gesture=True)
    await gateway.emulator.wait_closed_sessions(1)
    assert await page.evaluate("softphone.stats.state") == "ended"


@pytest.mark.parametrize("browser", [SHORT_GAP_WAV], indirect=True, ids=["short_gap"])
async def test_talking_over_the_agent_flushes_playback_and_returns_its_marks(
    gateway: LoopbackGateway, browser: Browser
) -> None:
    # The page must return a mark still pending when `clear` comes: the emulator ends its
    # turns by its own (fast) pacing, so the turn's mark is out while the answer still plays.
    gateway.emulator.playback_follows_caller = False
    page = await browser.new_page(f"http://127.0.0.1:{gateway.port}/softphone?agent=default")
    await wait_for(page, browser, "s.agentsLoaded === 2")
    await page.evaluate("document.getElementById('call').click()", user_gesture=True)
    # The answer (4 s) is still playing, its mark received and pending, when Live hears the
    # caller over it: the gateway sends `clear`; the page drops what it had queued and, like
    # Twilio, returns the turn's pending mark at once.
    await wait_for(page, browser, "s.marksReceived > s.marksEchoed && s.secondsQueued > 1")
    await gateway.emulator.interrupt_sessions()
    stats = await wait_for(page, browser, "s.marksCleared >= 1")
    assert stats["clears"] >= 1
    assert stats["secondsQueued"] == 0
    assert stats["secondsPlayed"] < 3.9  # cut short, not played to the end
    assert stats["marksReceived"] >= 1 and stats["marksEchoed"] >= 1
    health = await (await gateway.client.get("/healthz")).json()
    assert health["active_calls"] == 1
    await page.evaluate("softphone.hangUp()", user_gesture=True)
    await gateway.emulator.wait_closed_sessions(1)


async def test_the_page_mulaw_codec_is_bit_exact_with_the_gateway(
    gateway: LoopbackGateway, browser: Browser
) -> None:
    page = await browser.new_page(f"http://127.0.0.1:{gateway.port}/softphone")
    encoded = await page.evaluate(
        """(async () => {
          const m = await import('./softphone/softphone-audio.js');
          const codes = new Uint8Array(65536);
          for (let s = -32768; s < 32768; s++) codes[s + 32768] = m.encodeMulawSample(s);
          const everyCode = Uint8Array.from({length: 256}, (_, i) => i);
          const decoded = Array.from(m.decodeMulawInt16(everyCode));
          return { codes: m.bytesToBase64(codes), decoded };
        })()"""
    )
    every_int16 = np.arange(-32768, 32768, dtype=np.int16)
    assert base64.b64decode(encoded["codes"]) == encode_mulaw(every_int16)
    assert encoded["decoded"] == decode_mulaw(bytes(range(256))).tolist()


async def test_the_page_resampler_passes_speech_and_rejects_aliases(
    gateway: LoopbackGateway, browser: Browser
) -> None:
    page = await browser.new_page(f"http://127.0.0.1:{gateway.port}/softphone")
    result = await page.evaluate(
        """(async () => {
          const m = await import('./softphone/softphone-audio.js');
          const tone = (f, rate) => Float32Array.from(
            {length: rate}, (_, i) => 0.5 * Math.sin(2 * Math.PI * f * i / rate));
          const gainDb = (f, inRate, outRate) => {
            const out = new m.Resampler(inRate, outRate).process(tone(f, inRate));
            const middle = out.subarray(out.length / 5, out.length * 4 / 5);
            return m.levelDbfs(middle) - m.levelDbfs(tone(f, inRate));
          };
          const input = tone(1000, 48000);
          const whole = new m.Resampler(48000, 8000).process(input);
          const chunked = new m.Resampler(48000, 8000);
          const parts = [];
          for (let i = 0; i < input.length; i += 937) {
            parts.push(...chunked.process(input.subarray(i, i + 937)));
          }
          return {
            down1k: gainDb(1000, 48000, 8000), down3k: gainDb(3000, 44100, 8000),
            down6k: gainDb(6000, 48000, 8000), down5k: gainDb(5000, 44100, 8000),
            up1k: gainDb(1000, 8000, 48000),
            chunkingIndependent:
              parts.length === whole.length && parts.every((v, i) => v === whole[i]),
          };
        })()"""
    )
    assert abs(result["down1k"]) < 0.1 and abs(result["down3k"]) < 0.1
    assert abs(result["up1k"]) < 0.1
    assert result["down6k"] < -60 and result["down5k"] < -60  # no aliases into the phone band
    assert result["chunkingIndependent"] is True
