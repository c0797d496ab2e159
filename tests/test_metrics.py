"""Prometheus metrics: the per-call observer, per-app registries, and /metrics after real calls."""

from __future__ import annotations

import asyncio

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from gateway.call.bridge import Call
from gateway.call.outcome import CallStats, EndReason
from gateway.call.session_config import session_config_for
from gateway.live.protocol import FunctionResponse, ServerMessage
from gateway.ops.metrics import GatewayMetrics, is_speech
from gateway.server import CALLS
from gateway.telephony.twilio import TwilioCodec
from tests.caller_audio import silence_frames, speech_frames
from tests.fakes import FakeConnector, FakeTransport
from tests.gateway_harness import loopback_gateway, sample_agents
from tests.test_integration import PhoneCall
from tests.twilio_frames import TwilioCaller


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def pcm16(level: float, samples: int = 480) -> bytes:
    t = np.arange(samples) / 24000
    return (np.sin(2 * np.pi * 200 * t) * level * 32767).astype("<i2").tobytes()


LOUD = pcm16(0.3)  # about -13 dBFS
QUIET = pcm16(0.001)  # about -63 dBFS
AGENT_AUDIO = ServerMessage(audio=(b"\x00\x01" * 100,))


def value(metrics: GatewayMetrics, name: str, **labels: str) -> float:
    sample = metrics.registry.get_sample_value(name, labels)
    return 0.0 if sample is None else sample


def test_speech_threshold() -> None:
    assert is_speech(LOUD)
    assert not is_speech(QUIET)
    assert not is_speech(b"")


def test_reply_latency_runs_from_the_last_speech_frame_to_the_first_agent_audio() -> None:
    metrics = GatewayMetrics()
    clock = Clock()
    observer = metrics.observer(clock)
    # A greeting with no caller speech before it is not a reply: no sample.
    observer.live_in(AGENT_AUDIO)
    observer.live_in(ServerMessage(turn_complete=True))
    assert value(metrics, "gateway_reply_latency_seconds_count") == 0

    observer.live_audio_out(LOUD, 24000)
    clock.now_s = 101.0
    observer.live_audio_out(LOUD, 24000)  # the last speech frame
    for _ in range(30):
        clock.now_s += 0.02
        observer.live_audio_out(QUIET, 24000)  # silence does not move the end of speech
    clock.now_s = 101.75
    observer.live_in(AGENT_AUDIO)
    clock.now_s = 102.5
    observer.live_in(AGENT_AUDIO)  # later audio of the same turn: not a new sample
    assert value(metrics, "gateway_reply_latency_seconds_count") == 1
    assert value(metrics, "gateway_reply_latency_seconds_sum") == 0.75

    # Barge-in: the caller talks over the agent; the next turn is timed from that speech.
    clock.now_s = 103.0
    observer.live_audio_out(LOUD, 24000)
    observer.live_in(ServerMessage(interrupted=True))
    observer.barge_in(12)
    clock.now_s = 104.25
    observer.live_in(AGENT_AUDIO)
    assert value(metrics, "gateway_reply_latency_seconds_count") == 2
    assert value(metrics, "gateway_reply_latency_seconds_sum") == 0.75 + 1.25
    assert value(metrics, "gateway_barge_ins_total") == 1
    assert value(metrics, "gateway_frames_dropped_total", reason="barge_in") == 12


def test_call_outcome_duration_tools_and_live_closes() -> None:
    metrics = GatewayMetrics()
    clock = Clock()
    observer = metrics.observer(clock)
    observer.tool_result(FunctionResponse("fc-1", "lookup_order", {"ok": True}), 0.3, "ok")
    observer.tool_result(FunctionResponse("fc-2", "lookup_order", {}), 5.0, "timeout")
    observer.error("malformed_caller_frame", "not JSON")
    observer.live_reconnected(1011)
    observer.live_closed(None)
    stats = CallStats(started_monotonic=40.0, caller_frames_dropped_while_connecting=3)
    observer.call_ended(EndReason.LIVE_FAILED, stats)

    assert value(metrics, "gateway_tool_calls_total", tool="lookup_order", outcome="ok") == 1
    assert value(metrics, "gateway_tool_calls_total", tool="lookup_order", outcome="timeout") == 1
    assert value(metrics, "gateway_tool_call_duration_seconds_sum", tool="lookup_order") == 5.3
    assert value(metrics, "gateway_frames_dropped_total", reason="malformed") == 1
    assert value(metrics, "gateway_frames_dropped_total", reason="caller_buffer_full") == 3
    assert value(metrics, "gateway_live_reconnects_total") == 1
    assert value(metrics, "gateway_live_closes_total", code="1011") == 1
    assert value(metrics, "gateway_live_closes_total", code="none") == 1
    assert value(metrics, "gateway_calls_total", outcome="live_failed") == 1
    assert value(metrics, "gateway_calls_total", outcome="caller_hung_up") == 0
    assert value(metrics, "gateway_call_duration_seconds_sum") == 60.0


async def test_frames_over_the_carrier_rate_limit_are_counted() -> None:
    async with loopback_gateway(max_carrier_frames_per_s=10.0) as gateway:
        async with gateway.client.ws_connect("/media") as ws:
            phone = PhoneCall(ws)
            await phone.start(agent="default")
            await phone.say(silence_frames(1200))  # 60 frames at once; the bucket holds 20
            (call,) = gateway.client.server.app[CALLS]
        await call.finished.wait()
        samples = scrape(await (await gateway.client.get("/metrics")).text())
    dropped = sample(samples, "gateway_frames_dropped_total", reason="rate_limited")
    assert 0 < dropped <= 60


def test_each_app_has_its_own_registry() -> None:
    first, second = GatewayMetrics(), GatewayMetrics()
    first.observer().barge_in(0)
    assert value(first, "gateway_barge_ins_total") == 1
    assert value(second, "gateway_barge_ins_total") == 0
    calls = [1, 2, 3]
    first.count_active_calls(lambda: len(calls))
    assert value(first, "gateway_active_calls") == 3


async def test_a_reconnect_reported_by_the_connector_reaches_the_summary_and_metrics() -> None:
    metrics = GatewayMetrics()
    transport, connector = FakeTransport(), FakeConnector()
    call = Call(
        transport, TwilioCodec(), sample_agents(), connector,
        lambda agent, start: session_config_for(agent, start, default_model="m"),
        observers=[metrics.observer()],
    )
    caller = TwilioCaller()
    transport.push(caller.connected())
    transport.push(caller.start(agent="default"))
    running = asyncio.create_task(call.run())
    await connector.session()
    call.note_live_reconnect(1011)
    transport.push(caller.stop())
    assert await running is EndReason.CALLER_HUNG_UP
    assert call.stats.live_reconnects == 1
    assert value(metrics, "gateway_live_reconnects_total") == 1
    assert value(metrics, "gateway_live_closes_total", code="1011") == 1


async def test_a_cancelled_call_still_reports_its_end() -> None:
    metrics = GatewayMetrics()
    transport, connector = FakeTransport(), FakeConnector()
    call = Call(
        transport, TwilioCodec(), sample_agents(), connector,
        lambda agent, start: session_config_for(agent, start, default_model="m"),
        observers=[metrics.observer()],
    )
    caller = TwilioCaller()
    transport.push(caller.connected())
    transport.push(caller.start(agent="default"))
    running = asyncio.create_task(call.run())
    await connector.session()
    running.cancel()  # what aiohttp does to the handler on shutdown
    await asyncio.gather(running, return_exceptions=True)
    assert running.cancelled() and call.finished.is_set()
    assert call.end_reason is EndReason.GATEWAY_SHUTDOWN
    assert value(metrics, "gateway_calls_total", outcome="gateway_shutdown") == 1
    assert transport.closed.is_set()


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def sample(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
           **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_metrics_after_real_calls_through_the_server_and_emulator() -> None:
    async with loopback_gateway() as gateway:
        async with gateway.client.ws_connect("/media") as ws:
            phone = PhoneCall(ws)
            await phone.start(agent="default")
            await phone.say(speech_frames(600) + silence_frames(800))
            await phone.until("media")
            during = await gateway.client.get("/metrics")
            assert during.status == 200
            assert during.headers["Content-Type"].startswith("text/plain; version=")
            assert sample(scrape(await during.text()), "gateway_active_calls") == 1
            await phone.say(speech_frames(400, fundamental_hz=140))
            await phone.until("clear")
            await phone.say(silence_frames(800))
            await phone.until("mark")
            await ws.send_str("{not json")
            await phone.send(phone.twilio.stop())
            await phone.rest()
        await gateway.emulator.wait_closed_sessions(1)

        # A second call that Live drops with 1011 (no resumption with this connector).
        async with gateway.client.ws_connect("/media") as ws:
            phone = PhoneCall(ws)
            phone.twilio = TwilioCaller(stream_sid="MZ" + "2" * 32, call_sid="CA" + "2" * 32)
            await phone.start(agent="default")
            await phone.say(speech_frames(600) + silence_frames(800))
            await phone.until("media")  # Live is up and answering
            await gateway.emulator.close_sessions(1011)
            while (message := await phone.next()) is not None:  # echo marks, as Twilio does
                if message["event"] == "mark":
                    await phone.send(phone.twilio.mark(message["mark"]["name"]))
        await gateway.emulator.wait_closed_sessions(2)

        samples = scrape(await (await gateway.client.get("/metrics")).text())

    assert sample(samples, "gateway_active_calls") == 0
    assert sample(samples, "gateway_calls_total", outcome="caller_hung_up") == 1
    assert sample(samples, "gateway_calls_total", outcome="live_failed") == 1
    assert sample(samples, "gateway_call_duration_seconds_count") == 2
    assert sample(samples, "gateway_call_duration_seconds_sum") > 0
    # Answer and re-answer after the barge-in on the first call, the answer on the second.
    assert sample(samples, "gateway_reply_latency_seconds_count") == 3
    assert sample(samples, "gateway_barge_ins_total") == 1
    assert sample(samples, "gateway_frames_dropped_total", reason="malformed") == 1
    assert sample(samples, "gateway_live_closes_total", code="1011") == 1
    assert sample(samples, "gateway_live_reconnects_total") == 0
