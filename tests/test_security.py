"""The public endpoint: Twilio signatures, the Account SID allow-list, limits, and no secrets
in the logs — against the real server on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import aiohttp
import pytest
import structlog
from aiohttp.test_utils import TestClient
from twilio.request_validator import RequestValidator

from gateway.live.client import LiveConnector, LiveSession
from gateway.live.protocol import SessionConfig
from gateway.ops.logs import configure_logging
from gateway.security.stream_guard import GuardedTransport, TokenBucket
from gateway.server import CALL_SLOTS
from gateway.settings import SettingsError, load_settings
from gateway.telephony.twilio import TwilioCodec
from tests.caller_audio import silence_frames, speech_frames
from tests.fakes import FakeTransport
from tests.gateway_harness import loopback_gateway
from tests.test_integration import PhoneCall
from tests.twilio_frames import ACCOUNT_SID, TwilioCaller, stream_parameters, twiml_form

TOKEN = "auth-token-0123456789abcdef-SECRET"
PUBLIC = "https://gw.example.com"
FORM = twiml_form(From="+15551230000", To="+15550001")


def sign(url: str, params: dict[str, str] | None = None, token: str = TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, params or {}))


async def signed_stream_parameters(client: TestClient[Any, Any], **fields: str) -> dict[str, str]:
    """The stream parameters (binding included) of a /twiml that Twilio signed for PUBLIC."""
    return await stream_parameters(client, token=TOKEN, signed_url=f"{PUBLIC}/twiml", **fields)


def media_headers(token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": sign("wss://gw.example.com/media", token=token)}


async def answer_one_question(phone: PhoneCall) -> int:
    await phone.say(speech_frames(600) + silence_frames(800))
    answer = await phone.until("mark")
    return sum(1 for m in answer if m["event"] == "media")


# ---------------------------------------------------------------------- signatures


async def test_twiml_needs_a_valid_signature_over_the_public_url() -> None:
    async with loopback_gateway(twilio_auth_token=TOKEN, public_url=PUBLIC) as gw:
        post = gw.client.post
        assert (await post("/twiml", data=FORM)).status == 403
        bad = {"X-Twilio-Signature": sign(f"{PUBLIC}/twiml", FORM, token="another-token")}
        assert (await post("/twiml", data=FORM, headers=bad)).status == 403
        # Signed for the gateway's own address (not what Twilio called): refused.
        local = f"http://127.0.0.1:{gw.port}/twiml"
        assert (await post("/twiml", data=FORM, headers={"X-Twilio-Signature": sign(local, FORM)})
                ).status == 403  # fmt: skip
        query = "?agent=default&note=a%20b"  # signed exactly as sent, encoding and all
        good = {"X-Twilio-Signature": sign(f"{PUBLIC}/twiml{query}", FORM)}
        response = await post(f"/twiml{query}", data=FORM, headers=good)
        assert response.status == 200
        stream = ElementTree.fromstring(await response.text()).find("./Connect/Stream")
        assert stream is not None and stream.get("url") == "wss://gw.example.com/media"


async def test_the_media_upgrade_needs_a_valid_signature_over_the_wss_url() -> None:
    async with loopback_gateway(twilio_auth_token=TOKEN, public_url=PUBLIC) as gw:
        for headers in ({}, media_headers(token="another-token")):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await gw.client.ws_connect("/media", headers=headers)
            assert refused.value.status == 403
        assert gw.emulator.sessions_opened == 0
        issued = await signed_stream_parameters(gw.client)
        async with gw.client.ws_connect("/media", headers=media_headers()) as ws:
            phone = PhoneCall(ws)
            await phone.start(**issued)
            assert await answer_one_question(phone) > 25
            await phone.send(phone.twilio.stop())
            await phone.rest()
        signed = {"X-Twilio-Signature": sign("wss://gw.example.com/media?x=1%2B1")}
        async with gw.client.ws_connect("/media?x=1%2B1", headers=signed) as ws:
            await ws.close()
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await gw.client.ws_connect("/media?x=2", headers=signed)


async def test_without_a_token_nothing_is_checked() -> None:
    async with loopback_gateway(public_url=PUBLIC) as gw:
        assert (await gw.client.post("/twiml", data=FORM)).status == 200


# ---------------------------------------------------------------------- account allow-list


async def test_twiml_from_an_account_not_on_the_allow_list_is_refused() -> None:
    async with loopback_gateway(twilio_account_sids=f"AC{'1' * 32}, {ACCOUNT_SID}") as gw:
        assert (await gw.client.post("/twiml", data=FORM)).status == 200
        stranger = {**FORM, "AccountSid": "AC" + "2" * 32}
        assert (await gw.client.post("/twiml", data=stranger)).status == 403


async def test_a_stream_from_an_account_not_on_the_allow_list_ends_before_live() -> None:
    async with loopback_gateway(twilio_account_sids="AC" + "3" * 32) as gw:
        async with gw.client.ws_connect("/media") as ws:
            phone = PhoneCall(ws)
            await phone.start()
            await phone.say(speech_frames(100))
            assert await phone.rest() == []
            assert ws.closed
        assert gw.emulator.sessions_opened == 0


# ---------------------------------------------------------------------- limits


async def test_calls_beyond_the_limit_hear_busy_and_extra_streams_get_503() -> None:
    async with loopback_gateway(max_concurrent_calls=1) as gw:
        async with gw.client.ws_connect("/media") as ws:
            phone = PhoneCall(ws)
            await phone.start()
            assert await answer_one_question(phone) > 25  # the one line is in use
            assert gw.client.server.app[CALL_SLOTS].in_use == 1
            busy = await gw.client.post("/twiml", data=FORM)
            assert busy.status == 200
            root = ElementTree.fromstring(await busy.text())
            say = root.find("./Say")
            assert say is not None and "busy" in (say.text or "")
            assert root.find("./Hangup") is not None and root.find("./Connect") is None
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await gw.client.ws_connect("/media")
            assert refused.value.status == 503
            await phone.send(phone.twilio.stop())
            await phone.rest()


async def test_an_oversized_frame_ends_only_that_call() -> None:
    async with loopback_gateway(max_carrier_frame_bytes=4096) as gw:
        async with (
            gw.client.ws_connect("/media") as bad_ws,
            gw.client.ws_connect("/media") as good_ws,
        ):
            bad, good = PhoneCall(bad_ws), PhoneCall(good_ws)
            good.twilio = TwilioCaller(stream_sid="MZ" + "9" * 32, call_sid="CA" + "9" * 32)
            await bad.start()
            await good.start()
            await bad_ws.send_str(json.dumps({"event": "media", "pad": "x" * 8000}))
            assert await bad.rest() == []
            assert bad_ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
            assert await answer_one_question(good) > 25
            await good.send(good.twilio.stop())
            await good.rest()


async def test_a_frame_flood_is_dropped_then_ends_that_call_only() -> None:
    async with loopback_gateway(max_carrier_frames_per_s=60) as gw:
        async with (
            gw.client.ws_connect("/media") as bad_ws,
            gw.client.ws_connect("/media") as good_ws,
        ):
            bad = PhoneCall(bad_ws)
            good = PhoneCall(good_ws)
            good.twilio = TwilioCaller(stream_sid="MZ" + "8" * 32, call_sid="CA" + "8" * 32)
            await bad.start()
            await good.start()
            flood = [json.dumps(bad.twilio.media(f)) for f in silence_frames(20_000)]
            sender = asyncio.create_task(send_all(bad_ws, flood))
            assert await bad.rest() == []  # the gateway hung up on the flood
            await asyncio.gather(sender, return_exceptions=True)
            assert await answer_one_question(good) > 25  # 70 frames: within its burst
            await good.send(good.twilio.stop())
            await good.rest()
        assert gw.emulator.audio_chunks_received < 1000  # most of the flood never reached Live


async def send_all(ws: aiohttp.ClientWebSocketResponse, frames: list[str]) -> None:
    for frame in frames:
        await ws.send_str(frame)


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate_per_s=50, burst=100, clock=lambda: now[0])
    assert sum(bucket.take() for _ in range(150)) == 100
    now[0] += 0.1  # 5 tokens later
    assert sum(bucket.take() for _ in range(10)) == 5


async def test_guarded_transport_drops_excess_frames_and_passes_the_rest_in_order() -> None:
    inner = FakeTransport()
    caller = TwilioCaller()
    guard = GuardedTransport(inner, TwilioCodec(), max_frames_per_s=1)  # burst of 2
    frames = [json.dumps(caller.media(bytes([n]) * 160)) for n in range(5)]
    for frame in frames:
        inner.push(frame)
    inner.push(None)
    got = [await guard.receive(), await guard.receive(), await guard.receive()]
    assert got == [frames[0], frames[1], None]
    assert guard.frames_dropped == 3 and guard.rejected is None


# ---------------------------------------------------------------------- secrets


@pytest.fixture
def production_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """Production logging at debug level, captured; structlog defaults restored after."""
    configure_logging("debug", json=True)
    capsys.readouterr()
    yield capsys
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_gateway_log_handler", False)]:
        root.removeHandler(handler)


class LateConnector:
    """A connector whose target is set once the emulator's URL is known."""

    target: LiveConnector | None = None

    async def connect(self, config: SessionConfig) -> LiveSession:
        assert self.target is not None
        return await self.target.connect(config)


async def test_secrets_never_reach_the_logs(
    production_logs: pytest.CaptureFixture[str],
) -> None:
    api_key = "AIzaSy-SECRET-api-key-987654321"
    signature = media_headers()["X-Twilio-Signature"]
    late = LateConnector()
    async with loopback_gateway(
        connector=late, twilio_auth_token=TOKEN, public_url=PUBLIC
    ) as gw:
        # The Gemini backend (its API key goes in a header) pointed at the emulator.
        settings = load_settings(
            None, live_backend="gemini", gemini_api_key=api_key, live_url=gw.emulator.url
        )
        late.target = LiveConnector(settings)
        issued = await signed_stream_parameters(gw.client)
        async with gw.client.ws_connect("/media", headers=media_headers()) as ws:
            phone = PhoneCall(ws)
            await phone.start(**issued)
            assert await answer_one_question(phone) > 25
            await phone.send(phone.twilio.stop())
            await phone.rest()
        assert gw.emulator.request_headers[-1]["x-goog-api-key"] == api_key  # it was used
        bad = {"X-Twilio-Signature": signature[::-1]}
        assert (await gw.client.post("/twiml", data=FORM, headers=bad)).status == 403
        assert TOKEN not in repr(gw.settings) and api_key not in repr(settings)
    logs = production_logs.readouterr()
    output = logs.out + logs.err
    events = [json.loads(line).get("event") for line in output.splitlines() if line[:1] == "{"]
    assert "call_ended" in events and "request_rejected" in events  # the logs were captured
    for secret in (TOKEN, api_key, signature, signature[::-1]):
        assert secret not in output


def test_limit_and_resumption_settings_parse_and_are_checked() -> None:
    settings = load_settings(
        None, twilio_account_sids=" AC1, ,AC2 ", live_resume_attempts=3, max_concurrent_calls=0
    )
    assert settings.account_sid_allowlist == frozenset({"AC1", "AC2"})
    assert load_settings(None).account_sid_allowlist == frozenset()
    for bad in ({"live_resume_attempts": 0}, {"max_carrier_frame_bytes": 10}):
        with pytest.raises(SettingsError, match=next(iter(bad)).upper()):
            load_settings(None, **bad)
