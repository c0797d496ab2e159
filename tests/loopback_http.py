"""A catch-all HTTP server on loopback, the base of the tests' fake carrier APIs and
receivers: `start` serves every path (of `METHOD`) with the subclass's `_handle`."""

from __future__ import annotations

from typing import ClassVar

from aiohttp import web


class LoopbackHttp:
    METHOD: ClassVar[str] = "*"
    """The HTTP method served (`*`: any)."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        """Listen on 127.0.0.1 at a free port; the base URL (also in `url`)."""
        app = web.Application()
        app.router.add_route(self.METHOD, "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError
