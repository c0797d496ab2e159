"""Just enough of the Chrome DevTools Protocol to drive headless Chromium from a test.

One WebSocket to the browser (flattened target sessions), commands matched to replies by id,
console output and page exceptions kept for failure messages. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

BASE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


def find_chromium() -> str | None:
    """CHROMIUM (env) or the first Chromium/Chrome on PATH."""
    configured = os.environ.get("CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else shutil.which(configured)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class CdpError(RuntimeError):
    """A CDP command failed or the page threw."""


class Browser:
    """A running headless Chromium and the DevTools connection to it."""

    def __init__(self, process: asyncio.subprocess.Process, ws: ClientConnection) -> None:
        self._process = process
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._event_waiters: list[tuple[str, str | None, asyncio.Future[dict[str, Any]]]] = []
        self.console: list[str] = []
        self.stderr_tail: list[str] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def launch(cls, executable: str, user_data_dir: Path, *flags: str) -> Browser:
        process = await asyncio.create_subprocess_exec(
            executable, *BASE_FLAGS, f"--user-data-dir={user_data_dir}", *flags, "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        lines: list[str] = []
        try:
            async with asyncio.timeout(30):
                while True:
                    raw = await process.stderr.readline()
                    if not raw:
                        raise CdpError("chromium exited early:\n" + "".join(lines[-20:]))
                    line = raw.decode(errors="replace")
                    lines.append(line)
                    if line.startswith("DevTools listening on "):
                        url = line.removeprefix("DevTools listening on ").strip()
                        break
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        ws = await websockets.connect(url, max_size=None)
        browser = cls(process, ws)
        browser.stderr_tail = lines
        browser._drain = asyncio.create_task(browser._drain_stderr())
        return browser

    async def _drain_stderr(self) -> None:
        assert self._process.stderr is not None
        while raw := await self._process.stderr.readline():
            self.stderr_tail = [*self.stderr_tail[-40:], raw.decode(errors="replace")]

    async def _read(self) -> None:
        async for frame in self._ws:
            message = json.loads(frame)
            if "id" in message:
                future = self._pending.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
            self._resolve_event_waiters(message)
            if message.get("method") == "Runtime.consoleAPICalled":
                args = message["params"].get("args", [])
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in args)
                self.console.append(f"console.{message['params'].get('type')}: {text}")
            elif message.get("method") == "Runtime.exceptionThrown":
                details = message["params"]["exceptionDetails"]
                exception = details.get("exception", {})
                self.console.append(
                    f"exception: {exception.get('description') or details.get('text')}"
                )

    def _resolve_event_waiters(self, message: dict[str, Any]) -> None:
        method, session_id = message.get("method"), message.get("sessionId")
        for waiter in list(self._event_waiters):
            wanted_method, wanted_session, future = waiter
            if method == wanted_method and session_id == wanted_session:
                self._event_waiters.remove(waiter)
                if not future.done():
                    future.set_result(message.get("params", {}))

    def expect_event(self, method: str, session_id: str | None) -> asyncio.Future[dict[str, Any]]:
        """A future for the next `method` event of `session_id` (register before triggering)."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._event_waiters.append((method, session_id, future))
        return future

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None
    ) -> dict[str, Any]:
        command_id = next(self._ids)
        message: dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        await self._ws.send(json.dumps(message))
        reply = await future
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def new_page(self, url: str) -> Page:
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, attached["sessionId"])
        await page.send("Runtime.enable")
        await page.send("Page.enable")
        loaded = self.expect_event("Page.loadEventFired", page.session_id)
        await page.send("Page.navigate", {"url": url})
        await loaded
        return page

    def diagnostics(self) -> str:
        """Console lines and the end of Chromium's stderr, for assertion messages."""
        return "\n".join(["-- console --", *self.console[-30:], "-- stderr --",
                          *self.stderr_tail[-15:]])

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(ProcessLookupError):
            self._process.terminate()
        try:
            async with asyncio.timeout(10):
                await self._process.wait()
        except TimeoutError:
            self._process.kill()
            await self._process.wait()
        drain = getattr(self, "_drain", None)
        if drain is not None:
            drain.cancel()


class Page:
    """One tab, attached through a flattened CDP session."""

    def __init__(self, browser: Browser, session_id: str) -> None:
        self._browser = browser
        self.session_id = session_id

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self._browser.send(method, params, self.session_id)

    async def evaluate(self, expression: str, *, user_gesture: bool = False) -> Any:
        """Evaluate `expression` (awaiting a promise result) and return its JSON value."""
        result = await self.send(
            "Runtime.evaluate",
            {
                "expression": expression,
                "awaitPromise": True,
                "returnByValue": True,
                "userGesture": user_gesture,
            },
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            description = details.get("exception", {}).get("description") or details.get("text")
            raise CdpError(f"{expression[:80]!r} threw: {description}")
        return result["result"].get("value")
