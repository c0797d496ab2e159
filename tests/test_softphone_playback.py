"""`gateway call` hears a turn when it has *played*: paced in real time, a mark is echoed when
the phone's playhead reaches it (20 ms per 20 ms frame), so the caller never talks over the
greeting; `clear` drops the rest and echoes pending marks at once, as Twilio does."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gateway.softphone import cli as softphone_cli


class FakeStream:
    """A gateway's side of the media stream: sends `frames`, then holds the line open."""

    def __init__(self, frames: list[dict[str, Any] | asyncio.Event]) -> None:
        self._frames = frames
        self.sent: list[dict[str, Any]] = []
        self.hang_up = asyncio.Event()

    async def send_str(self, data: str) -> None:
        self.sent.append(json.loads(data))

    def __aiter__(self) -> AsyncIterator[aiohttp.WSMessage]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[aiohttp.WSMessage]:
        for frame in self._frames:
            if isinstance(frame, asyncio.Event):  # hold the rest until the test says so
                await frame.wait()
                continue
            yield aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, json.dumps(frame), None)
        await self.hang_up.wait()

    def echoed(self) -> list[str]:
        return [m["mark"]["name"] for m in self.sent if m.get("event") == "mark"]


def media(count: int) -> list[dict[str, Any]]:
    payload = base64.b64encode(b"\xff" * 160).decode()
    return [{"event": "media", "media": {"payload": payload}}] * count


def mark(name: str) -> dict[str, Any]:
    return {"event": "mark", "mark": {"name": name}}


async def test_a_mark_is_echoed_after_its_audio_has_played_in_real_time() -> None:
    stream = FakeStream([*media(50), mark("greeting"), *media(25), mark("second")])
    waits: list[float] = []
    echoed_before_wait: list[list[str]] = []

    async def fake_wait(cleared: asyncio.Event, delay_s: float) -> None:
        echoed_before_wait.append(stream.echoed())
        waits.append(delay_s)

    line = softphone_cli._Line(
        stream,  # type: ignore[arg-type]
        realtime=True,
        clock=lambda: 100.0,  # the frames arrive all at once, at t=100
        wait_until_played=fake_wait,
    )
    receiver = asyncio.create_task(line.receive())
    first = await line.turns.get()
    second = await line.turns.get()
    # 50 frames of 20 ms: the greeting has played 1.0 s after it arrived; the next 0.5 s later.
    assert waits == [pytest.approx(1.0), pytest.approx(1.5)]
    assert echoed_before_wait == [[], ["greeting"]]  # nothing echoed before its audio played
    assert (first.mark, len(first.mulaw), second.mark, len(second.mulaw)) == (
        "greeting", 50 * 160, "second", 25 * 160,
    )
    assert stream.echoed() == ["greeting", "second"]
    stream.hang_up.set()
    await receiver
    assert (await line.turns.get()).mark is None


async def test_clear_echoes_pending_marks_at_once() -> None:
    waiting = asyncio.Event()
    stream = FakeStream([*media(50), mark("cut-off"), waiting, {"event": "clear"}])
    delays: list[float] = []

    async def real_wait(cleared: asyncio.Event, delay_s: float) -> None:
        delays.append(delay_s)
        waiting.set()  # the clear is sent while the phone is still playing
        await softphone_cli._wait_until_played(cleared, 3600.0)  # only a clear ends it

    line = softphone_cli._Line(
        stream,  # type: ignore[arg-type]
        realtime=True,
        wait_until_played=real_wait,
    )
    receiver = asyncio.create_task(line.receive())
    turn = await line.turns.get()
    assert len(delays) == 1 and delays[0] > 0.5
    assert turn.mark == "cut-off"
    assert stream.echoed() == ["cut-off"]
    stream.hang_up.set()
    await receiver


async def test_fast_playback_echoes_on_arrival() -> None:
    stream = FakeStream([*media(50), mark("greeting")])

    async def never_waits(cleared: asyncio.Event, delay_s: float) -> None:
        raise AssertionError("fast playback must not wait")

    line = softphone_cli._Line(
        stream,  # type: ignore[arg-type]
        realtime=False,
        wait_until_played=never_waits,
    )
    receiver = asyncio.create_task(line.receive())
    assert (await line.turns.get()).mark == "greeting"
    stream.hang_up.set()
    await receiver
