"""The browser softphone: `GET /softphone` (a static page), its scripts, and the agent list.

The page calls an agent from the browser's microphone over the same media-stream protocol a
phone uses (`/media`, 8 kHz μ-law in 20 ms frames) and asks for transcript frames
(`transcript=1`, see `gateway.telephony.transcript`). Files are package data in
`gateway/softphone/static/`, served from an allow-list; nothing here touches a call. The page
shares the operator console's stylesheet (`gateway/console/static/console.css`), served here as
`/softphone/console.css` so the softphone needs no console token.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any, Final

from aiohttp import web

from gateway.agents.config import AgentConfig, AgentSet

__all__ = [
    "SOFTPHONE_AGENTS_PATH",
    "SOFTPHONE_ASSETS",
    "SOFTPHONE_PATH",
    "SOFTPHONE_SHARED_ASSETS",
    "add_softphone_routes",
    "agent_listing",
    "read_static",
]

SOFTPHONE_PATH: Final = "/softphone"
SOFTPHONE_AGENTS_PATH: Final = "/softphone/agents"
SOFTPHONE_PAGE: Final = "softphone.html"
SOFTPHONE_ASSETS: Final = {
    "softphone.js": "text/javascript",
    "softphone-audio.js": "text/javascript",
    "softphone-worklet.js": "text/javascript",
}
"""Files under /softphone/ and their content types; anything else is 404."""
SOFTPHONE_SHARED_ASSETS: Final = {"console.css": ("gateway.console", "text/css")}
"""Files under /softphone/ that belong to another package: name → (package, content type)."""
_NO_CACHE: Final = {"Cache-Control": "no-cache"}


def read_static(name: str, package: str = "gateway.softphone") -> bytes:
    """One file of `<package>/static/` (package data; the softphone's by default)."""
    return resources.files(package).joinpath("static", name).read_bytes()


def agent_listing(agents: AgentSet) -> dict[str, Any]:
    """What the page's agent picker (and `gateway call`) needs to know; no instructions."""
    return {
        "default": agents.default.name,
        "agents": [_agent_entry(agent) for agent in agents.agents.values()],
    }


def _agent_entry(agent: AgentConfig) -> dict[str, Any]:
    return {
        "name": agent.name,
        "lines": list(agent.lines),
        "voice": agent.voice,
        "language": agent.language,
        "greeting": bool(agent.greeting),
    }


def add_softphone_routes(
    app: web.Application, current_agents: Callable[[web.Application], AgentSet]
) -> None:
    """`GET /softphone`, `GET /softphone/agents` (JSON) and `GET /softphone/{asset}`.

    `current_agents` is asked on every request, so the picker follows agent reloads.
    """

    async def page(request: web.Request) -> web.Response:
        return web.Response(
            body=read_static(SOFTPHONE_PAGE), content_type="text/html", charset="utf-8",
            headers=_NO_CACHE,
        )

    async def agent_list(request: web.Request) -> web.Response:
        return web.json_response(agent_listing(current_agents(request.app)), headers=_NO_CACHE)

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        package, content_type = "gateway.softphone", SOFTPHONE_ASSETS.get(name)
        if name in SOFTPHONE_SHARED_ASSETS:
            package, content_type = SOFTPHONE_SHARED_ASSETS[name]
        if content_type is None:
            raise web.HTTPNotFound(text=f"no softphone file {name!r}")
        return web.Response(
            body=read_static(name, package), content_type=content_type, charset="utf-8",
            headers=_NO_CACHE,
        )

    app.router.add_get(SOFTPHONE_PATH, page)
    app.router.add_get(SOFTPHONE_AGENTS_PATH, agent_list)
    app.router.add_get(SOFTPHONE_PATH + "/{name}", asset)
