"""Helpers for driving the console in headless Chromium (tests/cdp.py) and taking screenshots."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.cdp import Browser, Page

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "console"
SCREENSHOT_MAX_BYTES = 150_000
VIEWPORT = {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False}
WAIT_S = 15.0


async def open_page(browser: Browser, url: str) -> Page:
    page = await browser.new_page("about:blank")
    await page.send("Emulation.setDeviceMetricsOverride", VIEWPORT)
    loaded = browser.expect_event("Page.loadEventFired", page.session_id)
    await page.send("Page.navigate", {"url": url})
    await loaded
    return page


async def reload(page: Page, browser: Browser) -> None:
    loaded = browser.expect_event("Page.loadEventFired", page.session_id)
    await page.send("Page.reload")
    await loaded


async def wait_js(page: Page, browser: Browser, expression: str, what: str = "") -> Any:
    """Polls `expression` in the page (every 20 ms, in the page) until it is truthy; its value.

    The page gives up at the deadline too, so nothing keeps polling after a failure.
    """
    script = f"""new Promise((resolve) => {{
      const deadline = performance.now() + {WAIT_S * 1000};
      const check = () => {{
        let value;
        try {{ value = ({expression}); }} catch (error) {{ value = undefined; }}
        if (value) resolve(value instanceof Node ? true : value);
        else if (performance.now() > deadline) resolve(null);
        else setTimeout(check, 20);
      }};
      check();
    }})"""
    async with asyncio.timeout(WAIT_S + 5):
        value = await page.evaluate(script)
    if not value:
        body = await page.evaluate(
            "document.getElementById('view')?.innerText ?? document.body.innerText"
        )
        pytest.fail(
            f"page never showed {what or expression}\n-- page --\n{body}\n{browser.diagnostics()}"
        )
    return value


async def click(page: Page, selector: str) -> None:
    """A real mouse click in the middle of the element (scrolled into view first)."""
    box = await page.evaluate(
        f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
          if (!e) return null; e.scrollIntoView({{block: 'center'}});
          const r = e.getBoundingClientRect();
          return {{x: r.x + r.width / 2, y: r.y + r.height / 2}}; }})()"""
    )
    assert box is not None, f"no element {selector}"
    for kind in ("mousePressed", "mouseReleased"):
        await page.send(
            "Input.dispatchMouseEvent",
            {
                "type": kind,
                "x": box["x"],
                "y": box["y"],
                "button": "left",
                "clickCount": 1,
            },
        )


async def press(page: Page, key: str, code: str, key_code: int) -> None:
    for kind in ("rawKeyDown", "keyUp"):
        await page.send(
            "Input.dispatchKeyEvent",
            {
                "type": kind,
                "key": key,
                "code": code,
                "windowsVirtualKeyCode": key_code,
            },
        )


async def type_text(page: Page, text: str) -> None:
    await page.send("Input.insertText", {"text": text})


async def screenshot(page: Page, name: str, *, dark: bool = False) -> None:
    """docs/console/<name>.png (1280×800) when CONSOLE_SCREENSHOTS=1; CI leaves them alone.

    `dark` takes it with `prefers-color-scheme: dark`, then puts the page back to light.
    """
    if os.environ.get("CONSOLE_SCREENSHOTS") != "1":
        return
    if dark:
        await page.send(
            "Emulation.setEmulatedMedia",
            {
                "features": [{"name": "prefers-color-scheme", "value": "dark"}],
            },
        )
    await page.evaluate("window.scrollTo(0, 0); document.activeElement?.blur(); true")
    shot = await page.send(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False}
    )
    data = base64.b64decode(shot["data"])
    assert len(data) <= SCREENSHOT_MAX_BYTES, f"{name}.png is {len(data)} bytes"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / f"{name}.png").write_bytes(data)
    if dark:
        await page.send("Emulation.setEmulatedMedia", {"features": []})
