"""A stand-in for the console's backend, following its HTTP contract, for the browser tests.

Serves gateway/console/static exactly as the real routes do (index.html for every page,
`/console/static/{file}`) and canned JSON; the live event stream is fed by the test
(`FakeConsole.emit`). Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import math
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web

STATIC = Path(__file__).resolve().parents[2] / "gateway" / "console" / "static"
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
AGENT_NAMES = ("support", "billing", "reminders")
END_REASONS = ("caller_hung_up", "agent_ended", "max_duration", "live_failed")
DETAIL_ID = "rec_0007"
DETAIL_DURATION_S = 12.0
DETAIL_TRANSCRIPT = [
    {"t": 0.6, "role": "agent", "text": "Thanks for calling Acme, how can I help?"},
    {"t": 2.4, "role": "caller", "text": "Hi, where is my order?"},
    {"t": 4.0, "role": "agent", "text": "Let me look that up for you."},
    {"t": 6.8, "role": "caller", "text": "It's order 4411."},
    {"t": 8.9, "role": "agent", "text": "It ships tomorrow morning."},
]
DETAIL_EVENTS = [
    {"t": 3.1, "kind": "barge_in", "detail": "caller talked over the agent"},
    {"t": 5.0, "kind": "tool_call", "detail": {"name": "lookup_order", "args": {"order": "4411"}}},
    {"t": 5.4, "kind": "tool_result", "detail": {"name": "lookup_order", "ok": True}},
    {"t": 7.2, "kind": "reconnect", "detail": "Live session resumed after go_away"},
    {"t": 8.0, "kind": "dtmf", "detail": "4"},
    {"t": 9.6, "kind": "barge_in", "detail": "caller talked over the agent"},
]
MARKED = sum(
    1 for e in DETAIL_EVENTS if e["kind"] in ("barge_in", "tool_call", "reconnect", "error")
)


def history_items() -> list[dict[str, Any]]:
    """60 recorded calls, newest first: 20 per agent, every 3rd one by end reason."""
    items = []
    for n in range(60):
        items.append(
            {
                "id": f"rec_{n:04d}",
                "call_sid": f"CA{n:032d}",
                "agent": AGENT_NAMES[n % 3],
                "carrier": "twilio" if n % 2 else "telnyx",
                "from": f"+1555000{n:04d}",
                "to": "+15550009999",
                "started_at": (
                    f"2026-12-{3 - n // 30:02d}T{15 - (n % 30) // 3:02d}:{(59 - n) % 60:02d}:00Z"
                ),
                "duration_s": 30 + n,
                "end_reason": END_REASONS[n % 4],
            }
        )
    return items


def stereo_wav(path: Path, seconds: float = DETAIL_DURATION_S, rate: int = 8000) -> None:
    t = np.arange(int(seconds * rate)) / rate
    left = 0.3 * np.sin(2 * math.pi * 300 * t) * (np.sin(2 * math.pi * 0.25 * t) > 0)
    right = 0.3 * np.sin(2 * math.pi * 500 * t) * (np.sin(2 * math.pi * 0.25 * t) <= 0)
    frames = (np.stack([left, right], axis=1) * 32767).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)


def envelope(seconds: float, rate_hz: int, phase: float) -> list[float]:
    return [
        round(
            max(0.0, math.sin(2 * math.pi * 0.25 * i / rate_hz + phase))
            * (0.55 + 0.35 * math.sin(i / 3.0) ** 2),
            3,
        )
        for i in range(int(seconds * rate_hz))
    ]


@dataclass
class FakeConsole:
    wav: Path
    instance: str = "gw-test-east-1"
    calls: list[dict[str, Any]] = field(default_factory=list)
    transcripts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    hangups: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=history_items)
    history_queries: list[dict[str, str]] = field(default_factory=list)
    streams: list[asyncio.Queue[str | None]] = field(default_factory=list)
    stream_opened: asyncio.Event = field(default_factory=asyncio.Event)
    reload: dict[str, Any] = field(
        default_factory=lambda: {
            "ok": False,
            "error": "agents/billing.yaml: tools[0]: unknown tool 'refund_v2'",
            "at": "2026-12-03T15:02:11Z",
        }
    )

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        frame = f"event: {kind}\ndata: {json.dumps(data)}\n\n"
        for queue in self.streams:
            queue.put_nowait(frame)

    # ------------------------------------------------------------------ handlers

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(body=(STATIC / "index.html").read_bytes(), content_type="text/html")

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        path = STATIC / name
        if "/" in name or not path.is_file():
            raise web.HTTPNotFound()
        return web.Response(body=path.read_bytes(), content_type=CONTENT_TYPES[path.suffix])

    async def instance_info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"instance": self.instance, "started_at": "2026-12-03T14:00:00Z", "version": "0.1.0"}
        )

    async def live_calls(self, request: web.Request) -> web.Response:
        return web.json_response({"calls": self.calls})

    async def events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.streams.append(queue)
        await response.write(b": hello\n\n")
        self.stream_opened.set()
        try:
            while (frame := await queue.get()) is not None:
                await response.write(frame.encode())
        finally:
            self.streams.remove(queue)
        return response

    async def transcript(self, request: web.Request) -> web.Response:
        lines = self.transcripts.get(request.match_info["id"])
        if lines is None:
            raise web.HTTPNotFound()
        return web.json_response({"lines": lines})

    async def hangup(self, request: web.Request) -> web.Response:
        self.hangups.append(request.match_info["id"])
        return web.json_response({"ok": True}, status=202)

    async def history_list(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.history_queries.append(q)
        items = self.history
        if q.get("q"):
            needle = q["q"].lower()
            items = [
                i
                for i in items
                if any(needle in str(i[k]).lower() for k in ("id", "call_sid", "from", "to"))
            ]
        for key in ("agent", "end_reason"):
            if q.get(key):
                items = [i for i in items if i[key] == q[key]]
        if q.get("date_from"):
            items = [i for i in items if i["started_at"][:10] >= q["date_from"]]
        if q.get("date_to"):
            items = [i for i in items if i["started_at"][:10] <= q["date_to"]]
        page, size = int(q.get("page", 1)), int(q.get("page_size", 25))
        return web.json_response(
            {
                "items": items[(page - 1) * size : page * size],
                "total": len(items),
                "page": page,
                "page_size": size,
            }
        )

    async def history_detail(self, request: web.Request) -> web.Response:
        found = [i for i in self.history if i["id"] == request.match_info["id"]]
        if not found:
            raise web.HTTPNotFound()
        call = {**found[0], "duration_s": DETAIL_DURATION_S}
        return web.json_response(
            {
                "call": call,
                "meta": {
                    "started_at": call["started_at"],
                    "model": "gemini-3.8-live",
                    "voice": "Puck",
                },
                "transcript": DETAIL_TRANSCRIPT,
                "events": DETAIL_EVENTS,
                "waveform": {
                    "rate_hz": 50,
                    "caller": envelope(DETAIL_DURATION_S, 50, math.pi),
                    "agent": envelope(DETAIL_DURATION_S, 50, 0.0),
                },
                "duration_s": DETAIL_DURATION_S,
                "downloads": {
                    k: f"/console/api/history/{call['id']}/download.{k}"
                    for k in ("jsonl", "wav", "txt")
                },
                "replay_command": f"gateway replay recordings/{call['call_sid']}.jsonl.gz --url ws://127.0.0.1:8080/media",
            }
        )

    async def audio(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(self.wav, headers={"Content-Type": "audio/wav"})

    async def agents(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "agents": [
                    {
                        "name": "support",
                        "lines": ["+15550001111", "+15550001112"],
                        "carriers": ["twilio"],
                        "model": "gemini-3.8-live",
                        "voice": "Puck",
                        "tools": ["lookup_order", "transfer"],
                        "source": "agents/support.yaml",
                        "check": {"ok": True, "errors": []},
                    },
                    {
                        "name": "billing",
                        "lines": ["+15550002222"],
                        "carriers": ["twilio", "telnyx"],
                        "model": "gemini-3.8-live",
                        "voice": "Kore",
                        "tools": ["refund_v2"],
                        "source": "agents/billing.yaml",
                        "check": {"ok": False, "errors": ["tool 'refund_v2' is not registered"]},
                    },
                    {
                        "name": "reminders",
                        "lines": [],
                        "carriers": ["plivo"],
                        "model": "gemini-2.5-flash-live",
                        "voice": "Aoede",
                        "tools": [],
                        "source": "agents/reminders.yaml",
                        "check": {"ok": True, "errors": []},
                    },
                ],
                "reload": self.reload,
            }
        )

    async def glance(self, request: web.Request) -> web.Response:
        hourly = [
            {
                "hour": h,
                "calls": (h * 7) % 13 if 7 <= h <= 16 else 0,
                "barge_ins": (h * 3) % 4 if 8 <= h <= 15 else 0,
                "tool_errors": 1 if h in (10, 14) else 0,
                "reconnects": 1 if h == 11 else 0,
            }
            for h in range(24)
        ]
        return web.json_response(
            {
                "calls_today": sum(h["calls"] for h in hourly),
                "reply_latency_ms": {"p50": 612.4, "p95": 1480},
                "barge_ins": sum(h["barge_ins"] for h in hourly),
                "tool_errors": 2,
                "live_reconnects": 1,
                "hourly": hourly,
            }
        )

    def app(self) -> web.Application:
        app = web.Application()
        for page in (
            "/console",
            "/console/calls/{id}",
            "/console/history",
            "/console/history/{id}",
            "/console/agents",
            "/console/glance",
        ):
            app.router.add_get(page, self.index)
        app.router.add_get("/console/static/{name}", self.static)
        api = "/console/api"
        app.router.add_get(f"{api}/instance", self.instance_info)
        app.router.add_get(f"{api}/calls", self.live_calls)
        app.router.add_get(f"{api}/events", self.events)
        app.router.add_get(f"{api}/calls/{{id}}/transcript", self.transcript)
        app.router.add_post(f"{api}/calls/{{id}}/hangup", self.hangup)
        app.router.add_get(f"{api}/history", self.history_list)
        app.router.add_get(f"{api}/history/{{id}}", self.history_detail)
        app.router.add_get(f"{api}/history/{{id}}/audio.wav", self.audio)
        app.router.add_get(f"{api}/agents", self.agents)
        app.router.add_get(f"{api}/glance", self.glance)
        app.on_shutdown.append(self._close_streams)
        return app

    async def _close_streams(self, app: web.Application) -> None:
        for queue in self.streams:
            queue.put_nowait(None)
