"""The console's routes: the app shell, its static files, and the JSON / SSE API under /console.

Every route checks `ConsoleAuth` first (a bearer token or the session cookie): the API answers
401 JSON, the pages a small 401 page. Paths under /console that name nothing are 404 only
once authorized, so an anonymous client learns nothing from probing. Blocking work (the
recording index, agent checks, files) runs in worker threads; the live views read the hub.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

import structlog
from aiohttp import web

from gateway import gateway_version
from gateway.agents.store import AgentStore
from gateway.call.hooks import CallObserver
from gateway.console.agents_view import AgentsView
from gateway.console.auth import ConsoleAuth
from gateway.console.detail import FileCache, recording_detail
from gateway.console.glance import HourlyCounts, glance
from gateway.console.history import HistoryQuery, ReadableStore, RecordingIndex
from gateway.console.live import ConsoleHub
from gateway.ops.metrics import GatewayMetrics
from gateway.recording.upload import FileStore, GcsStore, S3Store, store_for
from gateway.settings import RecordingsUrl, Settings, parse_recordings_url

__all__ = ["CONSOLE", "Console", "add_console"]

log = structlog.get_logger("gateway.console")

STATIC_DIR: Final = Path(__file__).parent / "static"
SHELL: Final = "index.html"
SHELL_PATHS: Final = (
    "/console", "/console/calls", "/console/calls/{id}", "/console/history",
    "/console/history/{id}", "/console/agents", "/console/glance",
)  # fmt: skip
"""Client-side routes: each answers the app shell."""
CONTENT_TYPES: Final = {
    ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
    ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon",
    ".json": "application/json", ".html": "text/html", ".webp": "image/webp",
    ".woff2": "font/woff2", ".map": "application/json",
}  # fmt: skip
_STATIC_NAME: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*")
_NO_CACHE: Final = {"Cache-Control": "no-cache"}
_PRIVATE: Final = {"Cache-Control": "no-store"}
MAX_PAGE_SIZE: Final = 200
DOWNLOAD_KINDS: Final = ("jsonl", "wav", "txt", "audio")
PLACEHOLDER: Final = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Gateway console</title></head>"
    "<body><h1>Gateway console</h1><p>The console's page is not installed "
    "(gateway/console/static/index.html); the API is under /console/api/.</p></body></html>"
)
UNAUTHORIZED_PAGE: Final = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Unauthorized</title></head>"
    "<body><h1>401 Unauthorized</h1><p>Open <code>/console?token=&lt;CONSOLE_TOKEN&gt;</code> "
    "once, or send <code>Authorization: Bearer &lt;CONSOLE_TOKEN&gt;</code>.</p></body></html>"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Console:
    """Everything the console's handlers share (app[CONSOLE])."""

    def __init__(
        self,
        settings: Settings,
        *,
        agents: AgentStore,
        metrics: GatewayMetrics,
        store: ReadableStore | None,
        url: RecordingsUrl | None,
    ) -> None:
        public = settings.public_url or ""
        assert settings.console_token is not None
        self.auth = ConsoleAuth(
            settings.console_token, secure_cookie=public.startswith(("https://", "wss://"))
        )
        self.hub = ConsoleHub()
        self.hourly = HourlyCounts()
        self.metrics = metrics
        self.agents = AgentsView(agents, settings.model)
        self.index = RecordingIndex(settings.recordings_dir, store)
        self.cache = FileCache(store) if store is not None else None
        self.url = url
        self.instance = os.environ.get("POD_NAME") or socket.gethostname()
        self.started_at = datetime.now(UTC)

    def observers(self, carrier: str) -> list[CallObserver]:
        """One call's console observers (live view, hourly counts)."""
        return [self.hub.observer(carrier), self.hourly.observer(carrier)]


CONSOLE = web.AppKey("console", Console)


def _readable_store(settings: Settings) -> tuple[ReadableStore | None, RecordingsUrl | None]:
    if not settings.recordings_url:
        return None, None
    url = parse_recordings_url(settings.recordings_url)
    store = store_for(url, project=settings.google_cloud_project)
    if isinstance(store, S3Store | GcsStore | FileStore):
        return store, url
    return None, url


def _unauthorized(request: web.Request, api: bool) -> web.Response:
    log.warning("console_unauthorized", path=request.path, method=request.method)
    if api:
        return web.json_response({"error": "unauthorized"}, status=401, headers=_PRIVATE)
    return web.Response(
        text=UNAUTHORIZED_PAGE, status=401, content_type="text/html", headers=_PRIVATE
    )


def _guard(handler: Handler, *, api: bool) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        if not request.app[CONSOLE].auth.authorized(request):
            return _unauthorized(request, api)
        return await handler(request)

    return guarded


# ------------------------------------------------------------------ shell and static files


async def handle_shell(request: web.Request) -> web.StreamResponse:
    """The app shell; `?token=` (once) trades the token for the session cookie."""
    console = request.app[CONSOLE]
    if "token" in request.query:
        if not console.auth.token_matches(request.query["token"]):
            return _unauthorized(request, api=False)
        # 303 to the same page without the query: the token leaves the address bar.
        response = web.Response(status=303, headers={"Location": request.path, **_PRIVATE})
        console.auth.set_session_cookie(request, response)
        log.info("console_session_started", path=request.path)
        return response
    if not console.auth.authorized(request):
        return _unauthorized(request, api=False)
    shell = STATIC_DIR / SHELL
    body = shell.read_bytes() if shell.is_file() else PLACEHOLDER.encode()
    return web.Response(body=body, content_type="text/html", charset="utf-8", headers=_NO_CACHE)


async def handle_static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    content_type = CONTENT_TYPES.get(Path(name).suffix.lower())
    if content_type is None or ".." in name or not _STATIC_NAME.fullmatch(name):
        raise web.HTTPNotFound(text="no such console file")
    path = (STATIC_DIR / name).resolve()
    if not path.is_relative_to(STATIC_DIR.resolve()) or not path.is_file():
        raise web.HTTPNotFound(text="no such console file")
    charset = "utf-8" if content_type.startswith(("text/", "application/json")) else None
    return web.Response(
        body=path.read_bytes(), content_type=content_type, charset=charset, headers=_NO_CACHE
    )


async def handle_not_found(request: web.Request) -> web.StreamResponse:
    if request.path.startswith("/console/api/"):
        return web.json_response({"error": "not_found"}, status=404)
    raise web.HTTPNotFound(text="no such console page")


# ------------------------------------------------------------------ live calls


async def handle_instance(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    return web.json_response(
        {
            "instance": console.instance,
            "started_at": console.started_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "version": gateway_version(),
        },
        headers=_PRIVATE,
    )


async def handle_calls(request: web.Request) -> web.Response:
    return web.json_response({"calls": request.app[CONSOLE].hub.live_calls()}, headers=_PRIVATE)


async def handle_events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: call_started / call_updated / call_ended, transcript, levels."""
    hub = request.app[CONSOLE].hub
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache, no-store",
            "X-Accel-Buffering": "no",  # nginx: do not hold the stream back
        }
    )
    await response.prepare(request)
    client = hub.subscribe()
    try:
        await response.write(b"retry: 3000\n\n")
        while not client.dropped:
            try:
                async with asyncio.timeout(hub.heartbeat_s):
                    await client.wakeup.wait()
            except TimeoutError:
                await response.write(b": heartbeat\n\n")
                continue
            data = client.take()
            if data:
                await response.write(data)
        if not client.closed:
            log.warning("console_events_client_dropped", reason="too_slow")
    except (ConnectionError, RuntimeError):  # the browser went away
        pass
    finally:
        hub.unsubscribe(client)
    return response


async def handle_live_transcript(request: web.Request) -> web.Response:
    state = request.app[CONSOLE].hub.calls.get(request.match_info["id"])
    if state is None:
        return web.json_response({"error": "not_found"}, status=404)
    return web.json_response({"lines": state.transcript()}, headers=_PRIVATE)


async def handle_hangup(request: web.Request) -> web.Response:
    call_id = request.match_info["id"]
    if not request.app[CONSOLE].hub.hang_up(call_id):
        return web.json_response({"error": "not_found"}, status=404)
    log.info("console_hung_up_call", call_id=call_id)
    return web.json_response({"ok": True}, status=202)


# ------------------------------------------------------------------ history


def _int(request: web.Request, name: str, default: int, high: int) -> int:
    raw = request.query.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= high:
        raise web.HTTPBadRequest(text=f'{{"error": "bad_{name}"}}', content_type="application/json")
    return int(raw)


def _day(request: web.Request, name: str) -> str:
    raw = request.query.get(name, "")
    if raw:
        try:
            date.fromisoformat(raw)
        except ValueError:
            raise web.HTTPBadRequest(
                text=f'{{"error": "bad_{name}"}}', content_type="application/json"
            ) from None
    return raw


async def handle_history(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    page = _int(request, "page", 1, 1_000_000)
    page_size = _int(request, "page_size", 25, MAX_PAGE_SIZE)
    query = HistoryQuery(
        q=request.query.get("q", "")[:200],
        agent=request.query.get("agent", ""),
        end_reason=request.query.get("end_reason", ""),
        date_from=_day(request, "date_from"),
        date_to=_day(request, "date_to"),
    )
    items, total = await asyncio.to_thread(console.index.search, query, page, page_size)
    return web.json_response(
        {"items": items, "total": total, "page": page, "page_size": page_size}, headers=_PRIVATE
    )


async def _entry(request: web.Request) -> Any:
    entry = await asyncio.to_thread(request.app[CONSOLE].index.entry, request.match_info["id"])
    if entry is None:
        raise web.HTTPNotFound(text='{"error": "not_found"}', content_type="application/json")
    return entry


async def handle_history_detail(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    entry = await _entry(request)
    body = await asyncio.to_thread(recording_detail, entry, console.cache, console.url)
    return web.json_response(body, headers=_PRIVATE)


async def _file(request: web.Request, kind: str) -> Path:
    console = request.app[CONSOLE]
    entry = await _entry(request)
    location = entry.files.get(kind)
    if location is None:
        raise web.HTTPNotFound(text='{"error": "not_found"}', content_type="application/json")
    if location.path is not None:
        return Path(location.path)
    assert console.cache is not None
    return await asyncio.to_thread(console.cache.path, entry.stem, location)


async def handle_download(request: web.Request) -> web.StreamResponse:
    kind = request.match_info["kind"]
    if kind not in DOWNLOAD_KINDS:
        return web.json_response({"error": "not_found"}, status=404)
    path = await _file(request, kind)
    return web.FileResponse(
        path,
        headers={
            "Content-Disposition": f'attachment; filename="{path.name}"',
            "Content-Type": _download_type(path.name),
            **_PRIVATE,
        },
    )


def _download_type(name: str) -> str:
    if name.endswith(".gz"):
        return "application/gzip"
    if name.endswith(".jsonl"):
        return "application/x-ndjson"
    if name.endswith(".wav"):
        return "audio/wav"
    if name.endswith(".txt"):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


async def handle_audio(request: web.Request) -> web.StreamResponse:
    path = await _file(request, "wav")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav", **_PRIVATE})


# ------------------------------------------------------------------ agents and glance


async def handle_agents(request: web.Request) -> web.Response:
    return web.json_response(await request.app[CONSOLE].agents.listing(), headers=_PRIVATE)


async def handle_glance(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    return web.json_response(glance(console.metrics, console.hourly), headers=_PRIVATE)


# ------------------------------------------------------------------ wiring


def add_console(
    app: web.Application,
    settings: Settings,
    *,
    agents: AgentStore,
    metrics: GatewayMetrics,
    call_observers: list[Callable[[str], list[CallObserver]]],
) -> Console:
    """The console (CONSOLE_TOKEN is set): its routes, and its observers on every call
    (`call_observers` is the list the server asks for each call's extra observers)."""
    store, url = _readable_store(settings)
    console = Console(settings, agents=agents, metrics=metrics, store=store, url=url)
    app[CONSOLE] = console
    call_observers.append(console.observers)

    async def close_streams(_: web.Application) -> None:
        console.hub.close()

    async def clean_cache(_: web.Application) -> None:
        if console.cache is not None:
            console.cache.close()

    app.on_shutdown.append(close_streams)
    app.on_cleanup.append(clean_cache)
    router = app.router
    for path in SHELL_PATHS:
        router.add_get(path, handle_shell)  # checks auth itself (the token login)
    api: list[tuple[str, str, Handler]] = [
        ("GET", "/console/api/instance", handle_instance),
        ("GET", "/console/api/calls", handle_calls),
        ("GET", "/console/api/events", handle_events),
        ("GET", "/console/api/calls/{id}/transcript", handle_live_transcript),
        ("POST", "/console/api/calls/{id}/hangup", handle_hangup),
        ("GET", "/console/api/history", handle_history),
        ("GET", "/console/api/history/{id}", handle_history_detail),
        ("GET", "/console/api/history/{id}/download/{kind}", handle_download),
        ("GET", "/console/api/history/{id}/audio.wav", handle_audio),
        ("GET", "/console/api/agents", handle_agents),
        ("GET", "/console/api/glance", handle_glance),
    ]
    for method, path, handler in api:
        router.add_route(method, path, _guard(handler, api=True))
    router.add_get("/console/static/{name:.+}", _guard(handle_static, api=False))
    router.add_route("*", "/console/api/{tail:.*}", _guard(handle_not_found, api=True))
    router.add_route("*", "/console/{tail:.*}", _guard(handle_not_found, api=False))
    log.info("console_enabled", path="/console", recordings_url=str(url) if url else None)
    return console
