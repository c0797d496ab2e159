"""Fakes for the outbound tests — a virtual clock, an in-memory call API and the call API over
HTTP on loopback — and tests that the fakes themselves behave as the engine's tests assume.

The clock never sleeps: `sleep(s)` moves virtual time on by `s` and yields once. Calls on the
in-memory API end by virtual time (each lasts its scripted duration), so a test runs hours
of campaign in milliseconds and asserts exact start times.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from gateway.outbound.client import TERMINAL_STATES, ApiError, CallRecord, PlaceRequest

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
"""A Tuesday, 12:00 UTC: inside 09:00-21:00 in London."""
TOKEN = "campaign-test-token-0123"
"""The fake HTTP API's token (API_TOKEN must be 16 characters or more)."""


class Crash(BaseException):
    """Stands for the process dying: nothing in the engine catches a BaseException."""


class FakeClock:
    def __init__(self, start: datetime = START) -> None:
        self.t = start
        self.crash_at: datetime | None = None

    def now(self) -> datetime:
        return self.t

    async def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        target = self.t + timedelta(seconds=seconds)
        if self.crash_at is not None and target >= self.crash_at:
            self.t = self.crash_at
            raise Crash(f"killed at {self.crash_at}")
        self.t = target
        await asyncio.sleep(0)

    def at(self, seconds: float) -> datetime:
        return START + timedelta(seconds=seconds)


@dataclass
class FakeCall:
    record: CallRecord
    ends_at: datetime
    final: str
    seen_terminal: bool = False


@dataclass
class FakeApi:
    """The call API in memory. `script[number]` is the final state of each attempt in turn
    (default: completed); every call lasts `duration_s` of virtual time."""

    clock: FakeClock
    script: dict[str, list[str]] = field(default_factory=dict)
    duration_s: float = 30.0
    refuse: dict[str, ApiError] = field(default_factory=dict)
    crash_after_post: set[str] = field(default_factory=set)
    posts: list[tuple[datetime, PlaceRequest]] = field(default_factory=list)
    gets: Counter[str] = field(default_factory=Counter)
    calls: dict[str, FakeCall] = field(default_factory=dict)
    in_flight_at_post: list[int] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def place(self, request: PlaceRequest) -> CallRecord:
        await asyncio.sleep(0)
        self.in_flight_at_post.append(
            sum(1 for c in self.calls.values() if not c.seen_terminal)
        )
        self.posts.append((self.clock.now(), request))
        if request.to in self.refuse:
            raise self.refuse[request.to]
        attempt = sum(1 for _, r in self.posts if r.to == request.to)
        finals = self.script.get(request.to, [])
        final = finals[attempt - 1] if attempt <= len(finals) else "completed"
        call_id = f"call-{next(self._ids)}"
        record = CallRecord(id=call_id, state="queued", agent=request.agent, to=request.to,
                            variables=dict(request.variables))
        self.calls[call_id] = FakeCall(
            record, self.clock.now() + timedelta(seconds=self.duration_s), final
        )
        if request.to in self.crash_after_post:
            raise Crash("killed after the POST, before its answer was recorded")
        return record

    async def get(self, call_id: str) -> CallRecord:
        await asyncio.sleep(0)
        self.gets[call_id] += 1
        call = self.calls.get(call_id)
        if call is None:
            raise ApiError(404, "no such call", "id")
        if self.clock.now() < call.ends_at:
            return CallRecord(id=call_id, state="in-progress", to=call.record.to)
        call.seen_terminal = True
        answered = call.final in ("completed", "voicemail")
        return CallRecord(
            id=call_id, state=call.final, to=call.record.to,
            duration_s=self.duration_s if answered else 0.0,
            recording=f"recordings/{call_id}.wav" if answered else None,
            end_reason="hangup" if answered else call.final,
        )

    def start_times(self, number: str | None = None) -> list[float]:
        return [(t - START).total_seconds() for t, r in self.posts if number in (None, r.to)]

    def posted(self) -> Counter[str]:
        return Counter(r.to for _, r in self.posts)


class HttpApi:
    """The call API over HTTP (aiohttp, loopback). Each GET moves a call one step along
    `steps[number]` (default ringing → in-progress → completed); `hold` keeps every call
    ringing until released (`release()`)."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.steps: dict[str, list[str]] = {}
        self.refuse: dict[str, tuple[int, dict[str, Any]]] = {}
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.calls: dict[str, dict[str, Any]] = {}
        self.progress: dict[str, list[str]] = {}
        self.seen = asyncio.Condition()
        self.held = False
        self.deleted: list[str] = []
        self._ids = itertools.count(1)
        app = web.Application()
        app.router.add_post("/calls", self._post)
        app.router.add_get("/calls/{id}", self._get)
        app.router.add_delete("/calls/{id}", self._delete)
        self.runner = web.AppRunner(app)
        self.url = ""

    async def __aenter__(self) -> HttpApi:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()

    def posts_to(self) -> Counter[str]:
        return Counter(body["to"] for method, _, _, body in self.requests if method == "POST")

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Until `predicate()` holds, re-checked after every request."""
        async with self.seen:
            await self.seen.wait_for(predicate)

    async def _saw(self, method: str, request: web.Request, body: Any) -> None:
        self.requests.append((method, request.path, dict(request.headers), body))
        async with self.seen:
            self.seen.notify_all()

    def _refused(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response(
                {"error": {"field": "Authorization", "message": "bad or missing token"}},
                status=401,
            )
        return None

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        await self._saw("POST", request, body)
        if (refused := self._refused(request)) is not None:
            return refused
        if body["to"] in self.refuse:
            status, error = self.refuse[body["to"]]
            return web.json_response({"error": error}, status=status)
        call_id = f"CA{next(self._ids):04d}"
        call = {
            "id": call_id, "state": "queued", "agent": body["agent"], "to": body["to"],
            "from": body.get("from", "+15550009999"), "carrier": body.get("carrier", "twilio"),
            "variables": body.get("variables", {}), "created_at": "2026-03-10T12:00:00.000Z",
            "carrier_call_id": None, "end_reason": None, "answered_by": None,
            "duration_s": None, "recording": None,
        }
        self.calls[call_id] = call
        self.progress[call_id] = list(
            self.steps.get(body["to"], ["ringing", "in-progress", "completed"])
        )
        return web.json_response(call, status=201)

    async def _get(self, request: web.Request) -> web.Response:
        await self._saw("GET", request, None)
        if (refused := self._refused(request)) is not None:
            return refused
        call = self.calls.get(request.match_info["id"])
        if call is None:
            return web.json_response({"error": {"field": "id", "message": "no such call"}},
                                     status=404)
        steps = self.progress[call["id"]]
        if steps and not self.held:
            call["state"] = steps.pop(0)
            if call["state"] in TERMINAL_STATES:
                answered = call["state"] in ("completed", "voicemail")
                call["duration_s"] = 42.5 if answered else 0
                call["end_reason"] = "hangup" if answered else call["state"]
                call["recording"] = (
                    {kind: f"/recordings/{call['id']}.{kind}" for kind in ("jsonl", "wav", "txt")}
                    if answered else None
                )  # the real API's shape: the client reports the wav
        return web.json_response(call)

    async def _delete(self, request: web.Request) -> web.Response:
        await self._saw("DELETE", request, None)
        if (refused := self._refused(request)) is not None:
            return refused
        call = self.calls[request.match_info["id"]]
        self.deleted.append(call["id"])
        call["state"] = "canceled"
        return web.json_response(call)


# ------------------------------------------------------------------ the fakes themselves


async def test_the_fake_clock_moves_only_when_slept_and_crashes_when_told() -> None:
    clock = FakeClock()
    await clock.sleep(90)
    assert clock.now() == clock.at(90)
    clock.crash_at = clock.at(100)
    try:
        await clock.sleep(60)
    except Crash:
        pass
    assert clock.now() == clock.at(100)


async def test_fake_calls_end_by_virtual_time_with_their_scripted_state() -> None:
    clock = FakeClock()
    api = FakeApi(clock, script={"+15550100001": ["busy"]}, duration_s=10)
    call = await api.place(PlaceRequest(agent="a", to="+15550100001"))
    assert (await api.get(call.id)).state == "in-progress"
    await clock.sleep(10)
    assert (await api.get(call.id)).state == "busy"


async def test_the_http_fake_checks_the_token() -> None:
    import aiohttp

    async with HttpApi() as api, aiohttp.ClientSession() as session:
        async with session.post(f"{api.url}/calls", json={"agent": "a", "to": "+1"}) as r:
            assert r.status == 401
            assert json.loads(await r.text())["error"]["field"] == "Authorization"
