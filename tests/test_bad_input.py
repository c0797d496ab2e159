"""Hostile input against a running gateway on loopback (hypothesis-generated): malformed JSON,
wrong types, huge or non-base64 payloads, out-of-order events, random bytes. Whatever the bad
call sends, it ends or goes on cleanly, nothing raises unhandled, no task is left behind, and a
good call at the same time gets its answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp
import structlog
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.server import CALLS
from tests.caller_audio import silence_frames, speech_frames
from tests.fuzz import SERVER_FUZZ, twilio_frames
from tests.gateway_harness import loopback_gateway
from tests.test_integration import PhoneCall
from tests.twilio_frames import TwilioCaller

Frame = str | bytes
UNHANDLED = {"call_failed", "call_task_failed", "emulator_session_failed", "observer_failed"}

_caller = TwilioCaller()
MEDIA = json.dumps(_caller.media(b"\xff" * 160))
DTMF = json.dumps(_caller.dtmf("5"))
MARK = json.dumps(_caller.mark("turn-9"))
START = json.dumps(_caller.start())
STOP = json.dumps(_caller.stop())


async def send(ws: aiohttp.ClientWebSocketResponse, frame: Frame) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):  # the gateway may have hung up
        if isinstance(frame, bytes):
            await ws.send_bytes(frame)
        else:
            await ws.send_str(frame)


async def answered_or_closed(phone: PhoneCall) -> str:
    """'answered' once a turn's mark arrives, 'closed' if the gateway ends the stream first."""
    while (message := await phone.next()) is not None:
        if message["event"] == "mark":
            return "answered"
    return "closed"


async def bad_call(
    phone: PhoneCall, before: list[Frame], after: list[Frame], late: list[Frame]
) -> str:
    ws = phone.ws
    await send(ws, json.dumps(phone.twilio.connected()))
    for frame in before:  # before `start`: media, marks, junk
        await send(ws, frame)
    await send(ws, json.dumps(phone.twilio.start()))
    for frame in after:
        await send(ws, frame)
    for frame in speech_frames(600) + silence_frames(800):
        await send(ws, json.dumps(phone.twilio.media(frame)))
    outcome = await answered_or_closed(phone)
    await send(ws, json.dumps(phone.twilio.stop()))
    for frame in late:  # after `stop`
        await send(ws, frame)
    await phone.rest()
    return outcome


async def good_call(phone: PhoneCall) -> int:
    await phone.start()
    await phone.say(speech_frames(600) + silence_frames(800))
    answer = await phone.until("mark")
    await phone.send(phone.twilio.stop())
    await phone.rest()
    return sum(1 for m in answer if m["event"] == "media")


async def scenario(before: list[Frame], after: list[Frame], late: list[Frame]) -> None:
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: unhandled.append(context))
    with structlog.testing.capture_logs() as logs:
        async with loopback_gateway(speed=200.0) as gw:
            baseline = asyncio.all_tasks()
            async with (
                gw.client.ws_connect("/media") as bad_ws,
                gw.client.ws_connect("/media") as good_ws,
            ):
                bad = PhoneCall(bad_ws)
                good = PhoneCall(good_ws)
                good.twilio = TwilioCaller(stream_sid="MZ" + "6" * 32, call_sid="CA" + "6" * 32)
                async with asyncio.timeout(30):
                    outcome, heard = await asyncio.gather(
                        bad_call(bad, before, after, late), good_call(good)
                    )
            assert outcome in ("answered", "closed")
            assert heard > 25  # the good call was not disturbed
            # Every call ends and every task it started finishes, without being cancelled.
            async with asyncio.timeout(10):
                await asyncio.gather(*(call.finished.wait() for call in gw.client.app[CALLS]))
                leftover = asyncio.all_tasks() - baseline - {asyncio.current_task()}
                if leftover:
                    await asyncio.wait(leftover)
            assert asyncio.all_tasks() - {asyncio.current_task()} <= baseline
    assert sum(e["event"] == "call_ended" for e in logs) == 2  # the logs were captured
    assert not [e for e in logs if e["event"] in UNHANDLED], logs
    assert unhandled == []


frames = st.lists(twilio_frames(), max_size=8)


@SERVER_FUZZ
@given(before=frames, after=frames, late=frames)
@example(before=[MEDIA, DTMF, MARK, MEDIA], after=[START, "{", b"\x00\xff"], late=[MEDIA, STOP])
@example(before=[STOP], after=[], late=[])
@example(before=[], after=["[" * 100_000 + "]" * 100_000], late=[])
@example(before=[], after=['{"event":"media","streamSid":"MZ","media":{"payload":"%%%"}}'], late=[])
@example(
    before=[],
    after=[json.dumps({"event": "media", "media": {"payload": "A" * 40_000}})],
    late=[],
)
def test_a_hostile_call_ends_or_continues_cleanly_and_a_good_call_is_unaffected(
    before: list[Frame], after: list[Frame], late: list[Frame]
) -> None:
    asyncio.run(scenario(before, after, late))
