"""The operator console (/console) in headless Chromium.

Against a fake backend that follows the console's HTTP contract (tests/console/fake_backend.py:
canned JSON and an event stream the test feeds), every page is driven through the DOM: live
calls appear, change and go from the event stream; a call hangs up through the API; history
filters and pages; a recorded call draws both lanes and its markers and seeks from the
transcript; the agents page shows a broken reload; glance renders its numbers and charts.
The last test drives the real app (create_app with CONSOLE_TOKEN) the same way: a call through
the emulator, a committed recording, a broken agent reload.
`CONSOLE_SCREENSHOTS=1` also writes docs/console/*.png. Skipped without Chromium.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway.agents.config import load_agents
from gateway.agents.store import AgentStore
from tests.caller_audio import silence_frames, speech_frames
from tests.cdp import Browser, Page, find_chromium
from tests.console.backend_harness import TOKEN, caller, console_gateway, copy_fixture
from tests.console.browser import (
    click,
    open_page,
    press,
    reload,
    screenshot,
    type_text,
    wait_js,
)
from tests.console.fake_backend import (
    DETAIL_EVENTS,
    DETAIL_ID,
    DETAIL_TRANSCRIPT,
    MARKED,
    FakeConsole,
    stereo_wav,
)
from tests.test_integration import PhoneCall

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (apt-get install chromium; .ci/run does it on CI)",
)


def live_call(n: int, **changes: Any) -> dict[str, Any]:
    return {
        "id": f"call-{n}",
        "stream_sid": f"MZ{n:032d}",
        "agent": ("support", "billing")[n % 2],
        "carrier": ("twilio", "telnyx")[n % 2],
        "from": f"+1555123{n:04d}",
        "to": "+15550001111",
        "started_at": "2026-12-03T15:10:00Z",
        "duration_s": 40.0 + 17 * n,
        "state": "listening",
        "last_line": {"role": "caller", "text": f"Question number {n}?"},
        **changes,
    }


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[tuple[FakeConsole, str]]:
    wav = tmp_path / "call.wav"
    stereo_wav(wav)
    console = FakeConsole(wav=wav)
    server = TestServer(console.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield console, f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    assert CHROMIUM is not None
    running = await Browser.launch(CHROMIUM, tmp_path / "profile")
    try:
        yield running
    finally:
        await running.close()


async def choose(page: Page, control_id: str, value: str) -> None:
    """Sets a select/date control as a person would, and fires its change event."""
    await page.evaluate(
        f"(() => {{ const c = document.getElementById({json.dumps(control_id)});"
        f" c.value = {json.dumps(value)}; c.dispatchEvent(new Event('change')); }})()"
    )


async def test_live_calls_appear_update_and_go_with_the_event_stream(
    fake: tuple[FakeConsole, str], browser: Browser
) -> None:
    console, base = fake
    console.calls = [
        live_call(1),
        live_call(2, state="speaking", last_line={"role": "agent", "text": "One moment."}),
    ]
    page = await open_page(browser, f"{base}/console")
    await wait_js(
        page,
        browser,
        "document.getElementById('instance').textContent === 'gw-test-east-1'",
        "the instance name",
    )
    await wait_js(page, browser, "document.querySelectorAll('#live-calls tbody tr').length === 2")
    await wait_js(page, browser, "document.getElementById('conn').dataset.state === 'open'")
    assert "gw-test-east-1" in await page.evaluate("document.title")
    assert (
        await page.evaluate(
            "document.querySelector('[data-nav=live]').getAttribute('aria-current')"
        )
        == "page"
    )

    console.emit("call_started", live_call(3, state="listening", last_line=None))
    row = "document.querySelector('[data-call-id=\"call-3\"]')"
    await wait_js(page, browser, row, "the new call's row")
    cells = await page.evaluate(f"[...{row}.cells].map(c => c.textContent)")
    assert cells[:4] == ["billing", "telnyx", "+15551230003", "+15550001111"]
    assert cells[4] in ("1:31", "1:32")  # 91 s, ticking
    assert cells[5] == "listening"

    console.emit("call_updated", live_call(3, state="tool"))
    await wait_js(page, browser, f"{row}.querySelector('.badge').dataset.state === 'tool'")
    console.emit(
        "transcript", {"id": "call-3", "role": "agent", "text": "Looking up your order.", "t": 12.5}
    )
    await wait_js(page, browser, f"{row}.cells[6].textContent === 'agent: Looking up your order.'")
    await screenshot(page, "live")

    console.emit("call_ended", {**live_call(3), "end_reason": "caller_hung_up"})
    await wait_js(
        page,
        browser,
        f"!{row} && document.querySelectorAll('#live-calls tbody tr').length === 2",
        "the ended call's row gone",
    )
    assert (
        await page.evaluate("document.getElementById('live-count').textContent") == "2 in progress"
    )


async def test_a_live_call_shows_its_transcript_and_levels_and_hangs_up(
    fake: tuple[FakeConsole, str], browser: Browser
) -> None:
    console, base = fake
    console.calls = [live_call(1), live_call(2)]
    console.transcripts["call-2"] = [
        {"t": 1.2, "role": "agent", "text": "Thanks for calling Acme billing."},
        {"t": 3.9, "role": "caller", "text": "I was charged twice."},
    ]
    page = await open_page(browser, f"{base}/console")
    await wait_js(page, browser, "document.querySelector('[data-call-id=\"call-2\"] a')")
    await page.evaluate("window.notReloaded = true")
    await click(page, '[data-call-id="call-2"] a')
    await wait_js(page, browser, "location.pathname === '/console/calls/call-2'")
    await wait_js(
        page, browser, "document.querySelectorAll('#live-transcript .tline').length === 2"
    )
    assert await page.evaluate("window.notReloaded") is True  # client-side routing
    assert (
        await page.evaluate("document.querySelector('h1').textContent")
        == "+15551230002 → +15550001111"
    )
    await wait_js(page, browser, "document.getElementById('conn').dataset.state === 'open'")

    console.emit(
        "transcript", {"id": "call-1", "role": "caller", "text": "not this call", "t": 2.0}
    )
    console.emit(
        "transcript", {"id": "call-2", "role": "agent", "text": "Let me check that.", "t": 5.5}
    )
    await wait_js(
        page, browser, "document.querySelectorAll('#live-transcript .tline').length === 3"
    )
    lines = await page.evaluate(
        "[...document.querySelectorAll('#live-transcript .tline')].map(l => "
        "l.innerText.replace(/\\s+/g, ' '))"
    )
    assert lines[2] == "0:05 agent Let me check that."
    # The gateway streams fragments with the line they extend: one line grows.
    for fragment, line_text in (("Twice", "Twice"), (" on Monday.", "Twice on Monday.")):
        console.emit(
            "transcript",
            {
                "id": "call-2",
                "role": "caller",
                "text": fragment,
                "t": 7.4,
                "line": 3,
                "line_t": 7.0,
                "line_text": line_text,
            },
        )
    last = (
        "document.querySelector('#live-transcript .tline:last-child')"
        ".innerText.replace(/\\s+/g, ' ')"
    )
    await wait_js(page, browser, f"{last} === '0:07 caller Twice on Monday.'")
    assert await page.evaluate("document.querySelectorAll('#live-transcript .tline').length") == 4

    console.emit("levels", {"id": "call-2", "caller_db": -42.0, "agent_db": -12.5})
    await wait_js(
        page,
        browser,
        "document.getElementById('level-agent').getAttribute('aria-valuenow') === '-13'",
    )
    assert (
        await page.evaluate("document.getElementById('level-caller').getAttribute('aria-valuenow')")
        == "-42"
    )
    width = await page.evaluate("document.querySelector('#level-agent span').style.width")
    assert width.startswith("79.1")  # (60 − 12.5) / 60
    console.emit("call_updated", live_call(2, state="speaking"))
    await wait_js(
        page, browser, "document.querySelector('#call-state .badge').dataset.state === 'speaking'"
    )
    await screenshot(page, "live-call")

    # Hang up asks first; Cancel does nothing, confirming posts to the API.
    await click(page, "#hangup")
    await wait_js(page, browser, "document.getElementById('confirm-hangup').open")
    await click(page, "#confirm-hangup button[value=cancel]")
    await wait_js(page, browser, "!document.getElementById('confirm-hangup').open")
    assert console.hangups == []
    await click(page, "#hangup")
    await wait_js(page, browser, "document.getElementById('confirm-hangup').open")
    await click(page, "#confirm-hangup-yes")
    await wait_js(
        page,
        browser,
        "document.getElementById('hangup-status').textContent === 'Hang-up requested.'",
    )
    assert console.hangups == ["call-2"]

    console.emit("call_ended", {**live_call(2), "end_reason": "agent_ended"})
    await wait_js(
        page,
        browser,
        "document.getElementById('ended-banner')?.textContent === 'Call endedagent ended'",
    )
    assert await page.evaluate("document.getElementById('hangup').disabled") is True


async def test_history_searches_filters_and_pages(
    fake: tuple[FakeConsole, str], browser: Browser
) -> None:
    console, base = fake
    page = await open_page(browser, f"{base}/console/history")
    rows = "document.querySelectorAll('#history-table tbody tr')"
    await wait_js(page, browser, f"{rows}.length === 25")
    await wait_js(
        page, browser, "document.querySelectorAll('#f-agent option').length === 4", "agent options"
    )
    label = "document.getElementById('page-label').textContent"
    assert await page.evaluate(label) == "1–25 of 60 · page 1 of 3"
    assert await page.evaluate("document.getElementById('page-prev').disabled") is True
    await screenshot(page, "history")

    await click(page, "#page-next")
    await wait_js(page, browser, f"{label} === '26–50 of 60 · page 2 of 3'")
    assert await page.evaluate(f"{rows}[0].dataset.historyId") == "rec_0025"
    assert "page=2" in await page.evaluate("location.search")

    # The agent filter starts again at page 1, and is kept in the address from the first search.
    await choose(page, "f-agent", "billing")
    await wait_js(page, browser, f"{label} === '1–20 of 20 · page 1 of 1'")
    agents = await page.evaluate(f"[...{rows}].map(r => r.cells[1].textContent)")
    assert set(agents) == {"billing"}
    assert console.history_queries[-1] == {"agent": "billing", "page": "1", "page_size": "25"}
    await reload(page, browser)
    await wait_js(page, browser, f"{label} === '1–20 of 20 · page 1 of 1'")
    assert console.history_queries[-1] == {"agent": "billing", "page": "1", "page_size": "25"}
    assert await page.evaluate("document.getElementById('f-agent').value") == "billing"
    await wait_js(page, browser, "document.querySelectorAll('#f-agent option').length === 4")

    await choose(page, "f-end_reason", "agent_ended")
    await wait_js(page, browser, f"{label} === '1–5 of 5 · page 1 of 1'")

    # Searching by number, typed (debounced).
    await click(page, "#f-reset")
    await wait_js(page, browser, f"{label} === '1–25 of 60 · page 1 of 3'")
    await click(page, "#f-q")
    await type_text(page, "+15550000042")
    await wait_js(
        page, browser, f"{rows}.length === 1 && {rows}[0].dataset.historyId === 'rec_0042'"
    )
    assert await page.evaluate("document.getElementById('history-summary').textContent") == "1 call"

    # A date range, then nothing matches.
    await click(page, "#f-reset")
    await choose(page, "f-date_to", "2026-12-02")
    await wait_js(page, browser, f"{label} === '1–25 of 30 · page 1 of 2'")
    await choose(page, "f-date_from", "2026-12-05")
    await wait_js(page, browser, "!document.getElementById('history-empty').hidden")
    assert await page.evaluate("document.getElementById('page-next').disabled") is True

    # Filters live in the address: a reload keeps them.
    await reload(page, browser)
    await wait_js(page, browser, "document.getElementById('history-empty')?.hidden === false")
    assert await page.evaluate("document.getElementById('f-date_from').value") == "2026-12-05"


async def test_a_recorded_call_draws_both_lanes_and_its_events_and_seeks(
    fake: tuple[FakeConsole, str], browser: Browser
) -> None:
    _, base = fake
    await browser.send(
        "Browser.grantPermissions",
        {
            "origin": base,
            "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
        },
    )
    page = await open_page(browser, f"{base}/console/history")
    await wait_js(page, browser, f"document.querySelector('[data-history-id=\"{DETAIL_ID}\"] a')")
    await click(page, f'[data-history-id="{DETAIL_ID}"] a')
    await wait_js(page, browser, "document.getElementById('waveform')", "the waveform")
    assert await page.evaluate("location.pathname") == f"/console/history/{DETAIL_ID}"

    lanes = await page.evaluate(
        "[...document.querySelectorAll('#waveform [data-lane]')].map(p => [p.dataset.lane, "
        "p.getAttribute('d').split('M').length - 1])"
    )
    assert [lane for lane, _ in lanes] == ["caller", "agent"]
    assert all(bars >= 500 for _, bars in lanes), lanes  # one bar every 2 px of 1146
    markers = await page.evaluate(
        "[...document.querySelectorAll('#waveform .marker')].map(m => [m.dataset.kind, "
        "Number(m.dataset.t)])"
    )
    assert len(markers) == MARKED == 4
    assert markers == [
        [e["kind"], e["t"]]
        for e in DETAIL_EVENTS
        if e["kind"] in ("barge_in", "tool_call", "reconnect")
    ]
    assert await page.evaluate("document.querySelectorAll('#event-log tbody tr').length") == len(
        DETAIL_EVENTS
    )
    downloads = await page.evaluate(
        "[...document.querySelectorAll('[data-download]')].map(a => a.dataset.download)"
    )
    assert downloads == ["jsonl", "wav", "txt"]
    lines = "document.querySelectorAll('#call-transcript .tline')"
    assert await page.evaluate(f"{lines}.length") == len(DETAIL_TRANSCRIPT)

    # Clicking a transcript line seeks the audio there and lights the line up.
    await wait_js(
        page, browser, "document.getElementById('call-audio').readyState >= 1", "audio metadata"
    )
    assert await page.evaluate("document.getElementById('call-audio').duration") == pytest.approx(
        12.0
    )
    await screenshot(page, "call")
    await screenshot(page, "call-dark", dark=True)
    await click(page, "#call-transcript .tline:nth-child(4)")
    await wait_js(
        page,
        browser,
        "Math.abs(document.getElementById('call-audio').currentTime - 6.8) < 0.01",
        "the audio at 6.8 s",
    )
    current = await page.evaluate(
        f"[...{lines}].findIndex(l => l.getAttribute('aria-current') === 'true')"
    )
    assert current == 3
    playhead = await page.evaluate(
        "Number(document.querySelector('#waveform .playhead').getAttribute('x1'))"
    )
    assert playhead == pytest.approx(54 + 6.8 / 12 * 1146, abs=0.5)

    # The waveform is a slider: → seeks 5 s on, and the line at that time lights up.
    await page.evaluate("document.getElementById('waveform').focus(); true")
    await press(page, "ArrowRight", "ArrowRight", 39)
    await wait_js(
        page, browser, "Math.abs(document.getElementById('call-audio').currentTime - 11.8) < 0.01"
    )
    assert await page.evaluate(f"{lines}[4].getAttribute('aria-current')") == "true"
    assert (
        await page.evaluate("document.getElementById('waveform').getAttribute('aria-valuetext')")
        == "0:11 of 0:12"
    )

    # Playing moves the playhead and the highlighted line with the audio.
    await click(page, "#call-transcript .tline:nth-child(1)")
    await wait_js(
        page, browser, "Math.abs(document.getElementById('call-audio').currentTime - 0.6) < 0.01"
    )
    await page.evaluate("document.getElementById('call-audio').play()", user_gesture=True)
    await wait_js(
        page,
        browser,
        "document.getElementById('call-audio').currentTime > 2.6",
        "playback past 2.6 s",
    )
    await wait_js(
        page, browser, f"{lines}[1].getAttribute('aria-current') === 'true'", "the 2nd line lit"
    )
    moved = await page.evaluate(
        "Number(document.querySelector('#waveform .playhead').getAttribute('x1'))"
    )
    assert moved > 54 + 2.4 / 12 * 1146
    await page.evaluate("document.getElementById('call-audio').pause(); true")

    # The replay command, and its copy button.
    command = await page.evaluate("document.getElementById('replay-command').textContent")
    assert command.startswith("gateway replay recordings/CA")
    await click(page, "#copy-replay")
    await wait_js(page, browser, "document.getElementById('copy-status').textContent === 'Copied.'")
    assert await page.evaluate("navigator.clipboard.readText()") == command


async def test_the_agents_page_shows_a_broken_reload_and_a_failing_check(
    fake: tuple[FakeConsole, str], browser: Browser
) -> None:
    console, base = fake
    page = await open_page(browser, f"{base}/console")
    await wait_js(
        page,
        browser,
        "document.getElementById('live-empty') && !document.getElementById('live-empty').hidden",
    )
    await click(page, "[data-nav=agents]")
    await wait_js(
        page, browser, "document.getElementById('reload-error')", "the reload error banner"
    )
    banner = await page.evaluate("document.getElementById('reload-error')")
    assert banner is not None
    text = await page.evaluate("document.getElementById('reload-error').innerText")
    assert "unknown tool 'refund_v2'" in text and "last agent reload failed" in text
    assert (
        await page.evaluate("document.getElementById('reload-error').getAttribute('role')")
        == "alert"
    )
    rows = await page.evaluate(
        "[...document.querySelectorAll('#agents-table tbody tr')].map(r => [r.dataset.agent, "
        "r.dataset.check])"
    )
    assert rows == [["support", "ok"], ["billing", "failed"], ["reminders", "ok"]]
    billing = await page.evaluate("document.querySelector('[data-agent=billing]').innerText")
    assert "tool 'refund_v2' is not registered" in billing and "+15550002222" in billing
    assert "gemini-3.8-live" in billing and "Kore" in billing
    await screenshot(page, "agents")

    console.reload = {"ok": True, "error": None, "at": "2026-12-03T15:20:00Z"}
    await reload(page, browser)
    await wait_js(page, browser, "document.getElementById('agents-table')")
    assert await page.evaluate("document.getElementById('reload-error')") is None


async def test_glance_shows_todays_numbers_and_hourly_bars(
    fake: tuple[FakeConsole, str], browser: Browser
) -> None:
    _, base = fake
    page = await open_page(browser, f"{base}/console/glance")
    await wait_js(page, browser, "document.querySelectorAll('[data-tile]').length === 6")
    tiles = await page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('[data-tile]')].map(t => "
        "[t.dataset.tile, t.querySelector('.value').textContent]))"
    )
    assert tiles == {
        "calls_today": "64",
        "p50": "612 ms",
        "p95": "1480 ms",
        "barge_ins": "12",
        "tool_errors": "2",
        "live_reconnects": "1",
    }
    charts = await page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('[data-chart]')].map(c => "
        "[c.dataset.chart,"
        " [...c.querySelectorAll('rect.bar')].map(r => Number(r.dataset.value))]))"
    )
    assert list(charts) == ["calls", "barge_ins", "tool_errors", "reconnects"]
    assert all(len(values) == 24 for values in charts.values())
    assert (
        sum(charts["calls"]) == 64
        and charts["tool_errors"][10] == 1
        and charts["reconnects"][11] == 1
    )
    heights = await page.evaluate(
        "[...document.querySelectorAll('[data-chart=calls] rect.bar')].map(r => "
        "Number(r.getAttribute('height')))"
    )
    assert heights[0] == 0 and max(heights) > 70  # empty hours draw nothing, the busiest is tall
    label = await page.evaluate(
        "document.querySelector('[data-chart=reconnects] svg').getAttribute('aria-label')"
    )
    assert label == "Reconnects per hour: 1 in total, most at 11:00 (1)"
    await screenshot(page, "glance")


# ------------------------------------------------------------------ against the real gateway

SUPPORT_AGENT = """\
name: support
lines: ["+15550001111"]
carriers: [twilio]
voice: Kore
system_instruction: Help callers.
tools:
  - builtin: end_call
"""
BROKEN_AGENT = """\
name: billing
voice: Kore
greting: Hello!
"""


async def test_the_console_against_the_real_gateway(tmp_path: Path, browser: Browser) -> None:
    """create_app with CONSOLE_TOKEN, a real call through the emulator, a committed recording."""
    agents_dir = tmp_path / "agents"
    agents_dir.mkdir()
    (agents_dir / "support.yaml").write_text(SUPPORT_AGENT)
    store = AgentStore(load_agents(agents_dir), agents_dir)
    copy_fixture("barge_in", tmp_path / "recordings")  # a barge-in, no audio
    async with console_gateway(tmp_path, agents=store) as gateway:
        port = gateway.client.server.port
        instance = (await gateway.get_json("/console/api/instance"))["instance"]
        page = await open_page(browser, f"http://127.0.0.1:{port}/console?token={TOKEN}")
        await wait_js(
            page,
            browser,
            f"document.getElementById('instance').textContent === {json.dumps(instance)}",
            "the instance name",
        )
        assert "token" not in await page.evaluate("location.href")
        await wait_js(page, browser, "document.getElementById('conn').dataset.state === 'open'")
        await wait_js(page, browser, "document.getElementById('live-empty')?.hidden === false")

        # A live call: its row appears with the agent's answer as the last line.
        call_id = f"CA{9:032d}"
        row = f"document.querySelector('[data-call-id=\"{call_id}\"]')"
        async with gateway.client.ws_connect("/media") as ws:
            phone = PhoneCall(ws)
            phone.twilio = caller(9)
            await phone.start(**{"from": "+15551230009", "to": "+15550001111"})
            await wait_js(page, browser, row, "the live call's row")
            cells = await page.evaluate(f"[...{row}.cells].map(c => c.textContent)")
            assert cells[:4] == ["support", "twilio", "+15551230009", "+15550001111"]
            await phone.say(speech_frames(600) + silence_frames(800))
            await phone.until("mark")
            await wait_js(
                page,
                browser,
                f"{row}.cells[6].textContent.includes('This is reply number 1.')",
                "the agent's line in the row",
            )

            # Its page: the transcript so far, the caller's level, and hang-up.
            await click(page, f'[data-call-id="{call_id}"] a')
            await wait_js(
                page,
                browser,
                "[...document.querySelectorAll('#live-transcript .tline')]"
                ".some(l => l.textContent.includes('This is reply number 1.'))",
            )
            await phone.say(speech_frames(400))
            await wait_js(
                page,
                browser,
                "Number(document.getElementById('level-caller').getAttribute('aria-valuenow')) > "
                "-50",
                "the caller's level",
            )
            await click(page, "#hangup")
            await wait_js(page, browser, "document.getElementById('confirm-hangup').open")
            await click(page, "#confirm-hangup-yes")
            await phone.rest()  # the gateway ends the stream
        await wait_js(
            page,
            browser,
            "document.getElementById('ended-banner')?.textContent === 'Call endedoperator hung up'",
        )
        await gateway.recordings_written()

        # History: both calls; search finds the committed one; its page marks the barge-in.
        await click(page, "[data-nav=history]")
        rows = "document.querySelectorAll('#history-table tbody tr')"
        await wait_js(page, browser, f"{rows}.length === 2")
        await click(page, "#f-q")
        await type_text(page, "CA00000000000000000000000000000002")
        await wait_js(
            page,
            browser,
            f"{rows}.length === 1 && {rows}[0].cells[3].textContent === '+15551230000'",
        )
        await click(page, "#history-table tbody tr a")
        await wait_js(page, browser, "document.getElementById('waveform')")
        assert await page.evaluate("document.querySelectorAll('#waveform [data-lane]').length") == 2
        markers = await page.evaluate(
            "[...document.querySelectorAll('#waveform .marker')].map(m => m.dataset.kind)"
        )
        assert markers == ["barge_in"]
        assert (
            await page.evaluate("document.querySelectorAll('#call-transcript .tline').length") == 4
        )
        assert await page.evaluate("document.getElementById('no-audio') !== null")

        # The real call's recording has audio: a transcript line seeks it.
        await page.evaluate("history.back(); true")
        await wait_js(
            page, browser, f"location.pathname === '/console/history' && {rows}.length === 1"
        )
        await click(page, "#f-reset")
        await wait_js(
            page, browser, f"document.querySelector('[data-history-id*=\"{call_id}\"] a')"
        )
        await click(page, f'[data-history-id*="{call_id}"] a')
        await wait_js(
            page,
            browser,
            "document.getElementById('call-audio')?.readyState >= 1",
            "audio metadata",
        )
        lanes = await page.evaluate(
            "[...document.querySelectorAll('#waveform [data-lane]')].map(p => "
            "p.getAttribute('d').length)"
        )
        assert len(lanes) == 2 and all(length > 1000 for length in lanes)
        target = await page.evaluate(
            "Number(document.querySelector('#call-transcript .tline:last-child').dataset.t)"
        )
        assert target > 0
        await click(page, "#call-transcript .tline:last-child")
        await wait_js(
            page,
            browser,
            f"Math.abs(document.getElementById('call-audio').currentTime - {target}) < 0.01",
            "the audio at the line",
        )
        statuses = await page.evaluate(
            "Promise.all([...document.querySelectorAll('[data-download]')].map(a => "
            "fetch(a.href).then(r => [a.dataset.download, r.status])))"
        )
        assert dict(statuses) == {"jsonl": 200, "wav": 200, "txt": 200, "audio": 200}

        # Agents: a reload that fails shows as an error banner, the broken agent as failing.
        (agents_dir / "billing.yaml").write_text(BROKEN_AGENT)
        assert await store.reload_async() is False
        await click(page, "[data-nav=agents]")
        await wait_js(
            page, browser, "document.getElementById('reload-error')", "the reload error banner"
        )
        assert "greting: unknown field" in await page.evaluate(
            "document.getElementById('reload-error').innerText"
        )
        checks = await page.evaluate(
            "Object.fromEntries([...document.querySelectorAll('#agents-table tbody tr')].map(r => "
            "[r.dataset.agent, r.dataset.check]))"
        )
        assert checks == {"support": "ok", "billing": "failed"}

        # Glance: today's one call, and a day of hourly bars per chart.
        await click(page, "[data-nav=glance]")
        await wait_js(
            page,
            browser,
            "document.querySelector('[data-tile=calls_today] .value')?.textContent === '1'",
        )
        bars = await page.evaluate(
            "[...document.querySelectorAll('[data-chart]')].map(c => "
            "c.querySelectorAll('rect.bar').length)"
        )
        assert bars == [24, 24, 24, 24]
        p50 = await page.evaluate("document.querySelector('[data-tile=p50] .value').textContent")
        assert p50.endswith(" ms")
