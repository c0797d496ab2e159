"""Asterisk: chan_websocket frames (both control forms) through the codec and the fake phone,
the carrier's stream token, and AudioSocket framing, pacing, marks and clear over a real
loopback TCP connection (paced by a clock the test steps, never by sleeping)."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import pytest

from gateway.telephony.asterisk import (
    MAX_CUSTOM_PARAMETERS,
    MAX_MEDIA_PAYLOAD_BYTES,
    NO_WEBHOOK,
    AsteriskCarrier,
    AsteriskCodec,
)
from gateway.telephony.asterisk_phone import AsteriskPhone
from gateway.telephony.audiosocket import (
    HANGUP_FRAME,
    KIND_AUDIO,
    KIND_DTMF,
    KIND_ERROR,
    KIND_HANGUP,
    KIND_UUID,
    LOCAL_MARK,
    MAX_FRAME_PAYLOAD_BYTES,
    AudioSocketCodec,
    AudioSocketTransport,
    RealTimeClock,
    build_frame,
)
from gateway.telephony.base import (
    CarrierNotice,
    Dtmf,
    MarkEcho,
    MediaFrame,
    MediaStreamCodec,
    StreamStart,
    StreamStop,
    TelephonyProtocolError,
    UnknownEvent,
)
from gateway.telephony.carrier import L16, MULAW, Carrier, CarrierRequestError, WebhookRequest

pytestmark = pytest.mark.timeout(15)  # a hung socket fails fast

TOKEN = "s3cret-token"
STREAM_URL = "wss://gw.test/asterisk/media"
QUERY = {"agent": "support", "to": "+15550001111", "from": "+15551230000"}
ULAW = bytes(range(160))


def upgrade(
    params: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> WebhookRequest:
    return WebhookRequest("GET", STREAM_URL, headers or {}, b"", params or {})


def started(
    phone: AsteriskPhone, query: dict[str, str] | None = None
) -> tuple[AsteriskCodec, StreamStart]:
    codec = AsteriskCarrier(TOKEN).codec(upgrade({**(query or QUERY), "token": TOKEN}))
    (frame,) = phone.opening({})
    start = codec.parse(frame)
    assert isinstance(start, StreamStart)
    return codec, start


# ------------------------------------------------------------------------- chan_websocket


@pytest.mark.parametrize("control", ["plain-text", "json"])
def test_media_start_carries_channel_ids_format_and_the_query(control: str) -> None:
    phone = AsteriskPhone(TOKEN, control_format=control)  # type: ignore[arg-type]
    codec, start = started(phone)
    assert (start.stream_sid, start.call_sid, start.account_sid) == (
        phone.channel,
        phone.call_id,
        "",
    )
    assert (start.encoding, start.sample_rate_hz, start.channels) == (MULAW, 8000, 1)
    assert dict(start.custom_parameters) == QUERY  # the token is not among them
    assert codec.control_format == control
    assert isinstance(codec, MediaStreamCodec)


def test_slin_streams_are_l16_and_other_formats_are_refused_by_name() -> None:
    _, start = started(AsteriskPhone(audio_format="slin"))
    assert (start.encoding, start.sample_rate_hz) == (L16, 8000)
    wide, start = started(AsteriskPhone(audio_format="slin16"))
    assert (start.encoding, start.sample_rate_hz) == (L16, 16000)
    frame = wide.parse(bytes(640))
    assert isinstance(frame, MediaFrame) and frame.payload == bytes(640)
    text = "MEDIA_START connection_id:c channel:WebSocket/c/0x1 format:slin24 ptime:20"
    with pytest.raises(TelephonyProtocolError, match=r"MEDIA_START\.format .*'slin24'"):
        AsteriskCodec().parse(text)
    text = "MEDIA_START channel:WebSocket/c/0x1 format:slin16 optimal_frame_size:320"
    with pytest.raises(TelephonyProtocolError, match=r"optimal_frame_size must be 640"):
        AsteriskCodec().parse(text)
    text = "MEDIA_START channel:WebSocket/c/0x1 format:ulaw optimal_frame_size:240"
    with pytest.raises(TelephonyProtocolError, match=r"optimal_frame_size must be 160"):
        AsteriskCodec().parse(text)
    with pytest.raises(TelephonyProtocolError, match=r"ptime must be 20"):
        AsteriskCodec().parse("MEDIA_START channel:WebSocket/c/0x1 format:ulaw ptime:30")


def test_media_start_of_older_releases_names_the_call_by_its_channel() -> None:
    """22.6 / 21.11 sent neither channel_id nor ptime."""
    text = (
        "MEDIA_START connection_id:e226e283 channel:WebSocket/c/0x9 format:ulaw "
        "optimal_frame_size:160"
    )
    start = AsteriskCodec().parse(text)
    assert isinstance(start, StreamStart)
    assert start.call_sid == start.stream_sid == "WebSocket/c/0x9"


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("MEDIA_START channel", r"field 'channel' is not key:value"),
        ("MEDIA_START format:ulaw", r"missing field MEDIA_START\.channel"),
        ('{"event": 5}', r"event must be a non-empty string"),
        ("[1, 2]", r"field .2\]. is not key:value"),
        ('{"event": "MEDIA_START"', r"not JSON"),
        ("   ", r"empty"),
        ("X" * 20000, r"over the limit of 16384"),
        ("MEDIA_START channel:a channel:b format:ulaw", r"repeats field channel"),
    ],
)
def test_malformed_control_messages_are_refused_with_the_field_named(
    frame: str, error: str
) -> None:
    with pytest.raises(TelephonyProtocolError, match=error):
        AsteriskCodec().parse(frame)


def test_binary_messages_are_media_frames_with_running_chunk_and_time() -> None:
    phone = AsteriskPhone()
    codec, start = started(phone)
    first, second = codec.parse(phone.media(ULAW)), codec.parse(phone.media(ULAW[::-1]))
    assert isinstance(first, MediaFrame) and isinstance(second, MediaFrame)
    assert (first.payload, first.chunk, first.timestamp_ms) == (ULAW, 1, 0)
    assert (second.payload, second.chunk, second.timestamp_ms) == (ULAW[::-1], 2, 20)
    assert second.stream_sid == start.stream_sid


def test_bad_media_is_refused_with_the_rule_named() -> None:
    with pytest.raises(TelephonyProtocolError, match="before MEDIA_START"):
        AsteriskCodec().parse(ULAW)
    codec, _ = started(AsteriskPhone())
    with pytest.raises(TelephonyProtocolError, match="MAX_MEDIA_PAYLOAD_BYTES=3840"):
        codec.parse(bytes(MAX_MEDIA_PAYLOAD_BYTES + 1))
    with pytest.raises(TelephonyProtocolError, match="empty"):
        codec.parse(b"")
    slin, _ = started(AsteriskPhone(audio_format="slin"))
    with pytest.raises(TelephonyProtocolError, match="not whole samples"):
        slin.parse(bytes(321))


@pytest.mark.parametrize("control", ["plain-text", "json"])
def test_dtmf_marks_and_clear_round_trip_through_the_phone(control: str) -> None:
    phone = AsteriskPhone(control_format=control)  # type: ignore[arg-type]
    codec, start = started(phone)
    dtmf = codec.parse(phone.dtmf("#"))
    assert isinstance(dtmf, Dtmf) and (dtmf.digit, dtmf.stream_sid) == ("#", start.stream_sid)
    mark = codec.build_mark(start.stream_sid, "turn-3")
    assert phone.read(mark).kind == "mark" and phone.read(mark).name == "turn-3"
    echo = codec.parse(phone.mark_played("turn-3"))
    assert isinstance(echo, MarkEcho) and echo.name == "turn-3"
    assert phone.read(codec.build_clear(start.stream_sid)).kind == "clear"
    media = phone.read(codec.build_media(start.stream_sid, ULAW))
    assert (media.kind, media.audio) == ("media", ULAW)


def test_commands_follow_the_control_form_of_media_start() -> None:
    plain, _ = started(AsteriskPhone())
    assert plain.build_mark("", "turn-1") == "MARK_MEDIA turn-1"
    assert (plain.build_clear(""), plain.build_hangup(), plain.build_answer()) == (
        "FLUSH_MEDIA",
        "HANGUP",
        "ANSWER",
    )
    as_json, _ = started(AsteriskPhone(control_format="json"))
    assert json.loads(as_json.build_mark("", "turn-1")) == {
        "command": "MARK_MEDIA",
        "correlation_id": "turn-1",
    }
    assert json.loads(as_json.build_hangup()) == {"command": "HANGUP"}


def test_bad_dtmf_and_mark_names_are_refused() -> None:
    codec, _ = started(AsteriskPhone())
    with pytest.raises(TelephonyProtocolError, match=r"DTMF_END\.digit .*'x'"):
        codec.parse("DTMF_END digit:x channel_id:1.1")
    with pytest.raises(ValueError, match="mark name"):
        codec.build_mark("", "has space")
    with pytest.raises(ValueError, match="mark name"):
        codec.build_mark("", "m" * 65)
    with pytest.raises(ValueError, match="65500"):
        codec.build_media("", bytes(65501))


def test_flow_control_status_and_errors_are_notices() -> None:
    codec, start = started(AsteriskPhone())
    xoff, xon = codec.parse("MEDIA_XOFF"), codec.parse("MEDIA_XON")
    assert isinstance(xoff, CarrierNotice) and "nearly full" in xoff.detail
    assert isinstance(xon, CarrierNotice) and (xon.event, xon.detail) == ("MEDIA_XON", "")
    error = codec.parse("ERROR channel_id:1.1 error_text:MARK_MEDIA not supported in passthrough")
    assert isinstance(error, CarrierNotice)
    assert error.detail == "MARK_MEDIA not supported in passthrough"
    assert error.stream_sid == start.stream_sid
    status = codec.parse(
        '{"event":"STATUS","channel_id":"1.1","queue_length":3,"queue_full":false}'
    )
    assert isinstance(status, CarrierNotice) and status.event == "STATUS"
    assert isinstance(codec.parse("MEDIA_SOMETHING_NEW a:b"), UnknownEvent)


def test_query_parameters_are_bounded_by_name() -> None:
    many = {f"p{i}": "v" for i in range(MAX_CUSTOM_PARAMETERS + 1)}
    with pytest.raises(TelephonyProtocolError, match="33 query parameters"):
        started(AsteriskPhone(), many)
    with pytest.raises(TelephonyProtocolError, match="query parameter 'agent' is 513 chars"):
        started(AsteriskPhone(), {"agent": "a" * 513})


def test_the_socket_closing_is_the_hang_up() -> None:
    codec = AsteriskCodec()
    assert codec.stop_on_close() is None
    phone = AsteriskPhone()
    codec, _ = started(phone)
    stop = codec.stop_on_close()
    assert isinstance(stop, StreamStop) and stop.call_sid == phone.call_id
    with pytest.raises(NotImplementedError, match="closing the WebSocket"):
        phone.stop()


# ----------------------------------------------------------------------------- the carrier


def test_the_carrier_has_no_webhook_and_no_rest() -> None:
    carrier: Carrier = AsteriskCarrier()
    assert (carrier.name, carrier.signed, carrier.binding_secret) == ("asterisk", False, None)
    assert carrier.account_allowlist == frozenset() and carrier.rest() is None
    with pytest.raises(CarrierRequestError, match=NO_WEBHOOK):
        carrier.inbound_call(upgrade())
    answer = carrier.connect(STREAM_URL + "?token=x", {"agent": "support", "to": "+1555"})
    assert answer.content_type == "text/plain"
    assert f"uri = {STREAM_URL}?token=x" in answer.body
    assert "Dial(WebSocket/gateway/c(ulaw)v(agent=support,to=%2B1555))" in answer.body
    refused = carrier.refuse("all lines are busy")
    assert "all lines are busy" in refused.body and refused.content_type == "text/plain"
    phone = AsteriskPhone()
    with pytest.raises(NotImplementedError, match="no voice webhook"):
        phone.voice_webhook(STREAM_URL, from_number="+1", to_number="+2")
    with pytest.raises(NotImplementedError, match="v\\(\\) option"):
        phone.read_answer("text/plain", answer.body)


def test_streams_are_open_without_a_token_and_need_it_with_one() -> None:
    assert AsteriskCarrier().verify_stream(upgrade()) is None
    carrier = AsteriskCarrier(TOKEN)
    assert carrier.signed
    assert carrier.verify_stream(upgrade({"token": TOKEN})) is None
    assert carrier.verify_stream(upgrade({"token": "wrong"})) == "invalid_token"
    assert carrier.verify_stream(upgrade()) == "missing_token"
    bearer = {"authorization": f"Bearer {TOKEN}"}
    assert carrier.verify_stream(upgrade(headers=bearer)) is None
    basic = base64.b64encode(f"asterisk:{TOKEN}".encode()).decode()
    assert carrier.verify_stream(upgrade(headers={"authorization": f"Basic {basic}"})) is None
    assert carrier.verify_stream(upgrade(headers={"authorization": "Basic !!"})) == (
        "missing_token"
    )


def test_from_settings_reads_the_stream_token_when_there_is_one() -> None:
    with_token = cast(Any, SimpleNamespace(asterisk_stream_token=TOKEN))
    assert AsteriskCarrier.from_settings(with_token).signed
    assert not AsteriskCarrier.from_settings(cast(Any, SimpleNamespace())).signed


def test_the_phone_puts_parameters_and_token_in_the_stream_url() -> None:
    phone = AsteriskPhone(TOKEN)
    url = phone.stream_url(STREAM_URL, {"agent": "support", "to": "+1555"})
    assert url == f"{STREAM_URL}?agent=support&to=%2B1555&token={TOKEN}"
    assert phone.stream_headers(url) == {}
    assert phone.media(ULAW) == ULAW


# --------------------------------------------------------------------- AudioSocket codec

CALL_UUID = uuid.UUID("40325ec2-5efd-4bd3-805f-53576e581d13")
PCM = bytes(range(256)) + bytes(64)  # 320 bytes: 20 ms


def uuid_frame(call: uuid.UUID = CALL_UUID) -> bytes:
    return build_frame(KIND_UUID, call.bytes)


def audiosocket_started() -> AudioSocketCodec:
    codec = AudioSocketCodec({"agent": "support"})
    start = codec.parse(uuid_frame())
    assert isinstance(start, StreamStart)
    return codec


def test_audiosocket_frames_round_trip_through_the_codec() -> None:
    codec = AudioSocketCodec({"agent": "support"})
    start = codec.parse(uuid_frame())
    assert isinstance(start, StreamStart)
    assert (start.call_sid, start.encoding, start.sample_rate_hz) == (str(CALL_UUID), L16, 8000)
    assert dict(start.custom_parameters) == {"agent": "support"}
    assert codec.parse(uuid_frame()) is start  # the same UUID again is the same call
    media = codec.parse(codec.build_media(start.stream_sid, PCM))
    later = codec.parse(build_frame(KIND_AUDIO, PCM))
    assert isinstance(media, MediaFrame) and isinstance(later, MediaFrame)
    assert (media.payload, media.chunk, media.timestamp_ms, later.timestamp_ms) == (PCM, 1, 0, 20)
    dtmf = codec.parse(build_frame(KIND_DTMF, b"7"))
    assert isinstance(dtmf, Dtmf) and dtmf.digit == "7"
    error = codec.parse(build_frame(KIND_ERROR, b"\x03"))
    assert isinstance(error, CarrierNotice)
    assert error.detail == "error code 0x03: hangup of calling party, frame forwarding error"
    echo = codec.parse(codec.build_mark(start.stream_sid, "turn-1"))
    assert isinstance(echo, MarkEcho) and echo.name == "turn-1"
    stop = codec.parse(codec.build_hangup())
    assert isinstance(stop, StreamStop) and stop.call_sid == str(CALL_UUID)
    assert codec.build_hangup() == HANGUP_FRAME == bytes((KIND_HANGUP, 0, 0))


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b"\x10\x00", r"header is 2 bytes"),
        (b"\x10\x00\x05abc", r"length says 5 bytes, carries 3"),
        (build_frame(KIND_AUDIO, bytes(321)), r"321 bytes, not whole samples"),
        (build_frame(KIND_AUDIO, bytes(1922)), r"MAX_FRAME_PAYLOAD_BYTES=1920"),
        (build_frame(KIND_DTMF, b"x"), r"DTMF payload"),
        (build_frame(0x12, PCM), r"0x12 is not 8 kHz"),
        (build_frame(KIND_UUID, bytes(15)), r"UUID payload is 15 bytes"),
        (uuid_frame(uuid.UUID(int=1)), r"a second UUID"),
    ],
)
def test_malformed_audiosocket_frames_are_refused_by_name(frame: bytes, error: str) -> None:
    with pytest.raises(TelephonyProtocolError, match=error):
        audiosocket_started().parse(frame)


def test_audio_before_the_uuid_and_text_are_refused_unknown_kinds_kept() -> None:
    with pytest.raises(TelephonyProtocolError, match="before the UUID"):
        AudioSocketCodec().parse(build_frame(KIND_AUDIO, PCM))
    with pytest.raises(TelephonyProtocolError, match="binary, got text"):
        AudioSocketCodec().parse("hello")
    unknown = audiosocket_started().parse(build_frame(0x42, b"ab"))
    assert isinstance(unknown, UnknownEvent) and unknown.event == "0x42"
    with pytest.raises(ValueError, match="not whole"):
        AudioSocketCodec().build_media("", bytes(3))


# ------------------------------------------------------------------ AudioSocket transport


class SteppedClock:
    """A `FrameClock` the test steps: each `grant` lets one more frame go."""

    def __init__(self) -> None:
        self._slots: asyncio.Queue[None] = asyncio.Queue()
        self.blocked = asyncio.Event()
        self.restarts = 0

    def grant(self, slots: int = 1) -> None:
        for _ in range(slots):
            self._slots.put_nowait(None)

    async def next_slot(self) -> None:
        if self._slots.empty():
            self.blocked.set()
        await self._slots.get()
        self.blocked.clear()

    async def wait_blocked(self) -> None:
        """Until the writer waits for a slot it was not granted."""
        await self.blocked.wait()

    def restart(self) -> None:
        self.restarts += 1


@dataclass
class Link:
    transport: AudioSocketTransport
    clock: SteppedClock
    asterisk_reader: asyncio.StreamReader
    asterisk_writer: asyncio.StreamWriter

    async def read_frame(self) -> bytes:
        header = await self.asterisk_reader.readexactly(3)
        return header + await self.asterisk_reader.readexactly(int.from_bytes(header[1:], "big"))


@pytest.fixture
async def link() -> AsyncIterator[Link]:
    """Asterisk (the client) connected over loopback TCP to a transport (the server side)."""
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put((reader, writer))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client_reader, client_writer = await asyncio.open_connection("127.0.0.1", port)
    sock = client_writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small writes, own segments
    reader, writer = await accepted.get()
    clock = SteppedClock()
    transport = AudioSocketTransport(reader, writer, clock=clock, drain_timeout_s=5.0)
    yield Link(transport, clock, client_reader, client_writer)
    async with asyncio.timeout(10):  # a guard against a hang, not a synchronisation
        await transport.close()
    client_writer.close()
    server.close()
    await server.wait_closed()


async def test_receive_reassembles_frames_from_partial_reads(link: Link) -> None:
    wire = uuid_frame() + build_frame(KIND_AUDIO, PCM) + build_frame(KIND_DTMF, b"5")
    for size in (1, 2, 5, 17, 3, 200, 1000):  # cuts through headers and payloads alike
        piece, wire = wire[:size], wire[size:]
        link.asterisk_writer.write(piece)
        await link.asterisk_writer.drain()
    codec = AudioSocketCodec()
    events = [codec.parse(cast(bytes, await link.transport.receive())) for _ in range(3)]
    assert isinstance(events[0], StreamStart) and events[0].call_sid == str(CALL_UUID)
    assert isinstance(events[1], MediaFrame) and events[1].payload == PCM
    assert isinstance(events[2], Dtmf) and events[2].digit == "5"


async def test_a_frame_cut_short_by_the_close_ends_the_stream(link: Link) -> None:
    link.asterisk_writer.write(uuid_frame() + build_frame(KIND_AUDIO, PCM)[:100])
    link.asterisk_writer.close()
    assert await link.transport.receive() == uuid_frame()
    assert await link.transport.receive() is None
    assert link.transport.error == "connection closed inside a frame (97 bytes read)"


@pytest.mark.parametrize(
    ("header", "error"),
    [
        (bytes((KIND_AUDIO,)) + (40000).to_bytes(2, "big"), "declares length 40000"),
        (bytes((LOCAL_MARK, 0, 1)), "kind 0xf0 is not an AudioSocket kind"),
    ],
)
async def test_oversized_lengths_and_local_kinds_from_the_wire_end_the_stream(
    link: Link, header: bytes, error: str
) -> None:
    link.asterisk_writer.write(uuid_frame() + header)
    await link.asterisk_writer.drain()
    assert await link.transport.receive() == uuid_frame()
    assert await link.transport.receive() is None
    assert link.transport.error is not None and error in link.transport.error
    if "length" in error:
        assert f"MAX_FRAME_PAYLOAD_BYTES={MAX_FRAME_PAYLOAD_BYTES}" in link.transport.error


def audio(n: int) -> bytes:
    return AudioSocketCodec().build_media("", bytes([n]) * 320)


async def test_audio_is_written_one_frame_per_slot_and_marks_echo_after_it(link: Link) -> None:
    codec = audiosocket_started()
    transport, clock = link.transport, link.clock
    assert transport.send_now([audio(1), audio(2), codec.build_mark("", "turn-1"), audio(3)])
    clock.grant(1)
    assert await link.read_frame() == audio(1)
    await clock.wait_blocked()  # the writer waits for the next slot: it never writes ahead
    assert (transport.frames_written, transport.queued_frames) == (1, 2)
    clock.grant(1)
    assert await link.read_frame() == audio(2)
    echo = codec.parse(cast(bytes, await transport.receive()))  # right after audio 2 went out
    assert isinstance(echo, MarkEcho) and echo.name == "turn-1"
    await clock.wait_blocked()
    assert (transport.frames_written, transport.queued_frames) == (2, 1)
    clock.grant(1)
    assert await link.read_frame() == audio(3)


async def test_clear_drops_unwritten_audio_and_echoes_its_marks(link: Link) -> None:
    codec = audiosocket_started()
    transport, clock = link.transport, link.clock
    frames = [audio(n) for n in range(1, 6)]
    assert transport.send_now([*frames[:3], codec.build_mark("", "turn-1"), *frames[3:]])
    clock.grant(1)
    assert await link.read_frame() == audio(1)
    await clock.wait_blocked()
    restarts = clock.restarts
    await transport.send(codec.build_clear(""))
    assert (transport.frames_cleared, transport.queued_frames) == (4, 0)
    assert clock.restarts == restarts + 1  # the next frame goes at once
    echo = codec.parse(cast(bytes, await transport.receive()))
    assert isinstance(echo, MarkEcho) and echo.name == "turn-1"
    await transport.send(audio(9))
    clock.grant(2)  # the slot the writer waited for, and one more
    assert await link.read_frame() == audio(9)  # nothing cleared ever reached the wire
    assert transport.frames_written == 2


async def test_close_plays_out_the_queue_then_hangs_up(link: Link) -> None:
    transport, clock = link.transport, link.clock
    await transport.send(audio(1))
    await transport.send(audio(2))
    closing = asyncio.create_task(transport.close())
    clock.grant(1)
    assert await link.read_frame() == audio(1)
    await clock.wait_blocked()
    assert not closing.done()  # it waits for the queue to play out
    clock.grant(1)
    assert [await link.read_frame() for _ in range(2)] == [audio(2), HANGUP_FRAME]
    await closing
    assert await link.asterisk_reader.read() == b""  # then the socket closes
    with pytest.raises(ConnectionResetError):
        await transport.send(audio(3))
    assert not transport.send_now([audio(3)])
    assert await transport.receive() is None


async def test_after_the_caller_hangs_up_close_drops_the_queue(link: Link) -> None:
    transport = link.transport
    await transport.send(audio(1))  # never granted a slot: the caller is gone first
    link.asterisk_writer.write(uuid_frame() + HANGUP_FRAME)
    await link.asterisk_writer.drain()
    codec = AudioSocketCodec()
    codec.parse(cast(bytes, await transport.receive()))
    assert isinstance(codec.parse(cast(bytes, await transport.receive())), StreamStop)
    assert await transport.receive() is None
    await transport.close()  # returns without waiting for the unplayed frame
    assert await link.asterisk_reader.read() == b""  # no audio, no hang-up frame: just closed


async def test_text_frames_are_dropped_and_other_kinds_refused(link: Link) -> None:
    await link.transport.send('{"event":"transcript"}')
    assert link.transport.text_frames_dropped == 1
    with pytest.raises(ValueError, match="audio only, not kind 0x01"):
        await link.transport.send(uuid_frame())
    with pytest.raises(ValueError, match="length says"):
        await link.transport.send(b"\x10\x00\x09abc")


async def test_real_time_clock_keeps_absolute_deadlines() -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds

    clock = RealTimeClock(0.02, now=lambda: now[0], sleep=sleep)
    await clock.next_slot()  # the first frame goes at once
    await clock.next_slot()
    now[0] += 0.005  # writing took 5 ms: the next deadline does not move
    await clock.next_slot()
    assert slept == [0.02, 0.015]
    now[0] += 0.5  # a stalled loop: start again from now, no burst to catch up
    await clock.next_slot()
    await clock.next_slot()
    assert slept == [0.02, 0.015, 0.02]
    clock.restart()
    await clock.next_slot()
    assert slept == [0.02, 0.015, 0.02]


def test_only_a_token_checked_asterisk_upgrade_vouches_for_its_call() -> None:
    """Streams whose upgrade alone vouches for the call id get the carrier's REST (AMI); every
    webhook carrier's streams are vouched for by the binding instead, never by the upgrade."""
    from gateway.settings import load_settings
    from gateway.telephony.carriers import carriers_from_settings

    assert AsteriskCarrier(TOKEN).upgrade_vouches_call
    assert not AsteriskCarrier().upgrade_vouches_call
    carriers = carriers_from_settings(load_settings(env_file=None))
    others = [name for name in carriers if name != "asterisk"]
    assert len(others) == 6
    assert not any(carriers[name].upgrade_vouches_call for name in others)
