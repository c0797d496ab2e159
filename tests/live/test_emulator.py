"""The Live emulator through the real LiveConnector (and the official google-genai client)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from gateway.live.client import LiveConnectionClosed, LiveConnector, LiveSession
from gateway.live.emulator.server import EmulatorScript, LiveEmulator
from gateway.live.emulator.voice import speak_pcm16
from gateway.live.models import ToolBehavior
from gateway.live.protocol import (
    FunctionResponse,
    ServerMessage,
    SessionConfig,
    build_audio_stream_end,
    build_client_content,
    build_text_input,
    build_tool_response,
)
from tests.live.conftest import FAST, emulator_settings, send_chunks, turn_complete, until
from tests.live.sdk import validate_server_frame
from tests.live.signals import (
    chunked,
    silence_pcm16,
    tone_pcm16,
    utterance,
)

OpenSession = Callable[..., Any]

TOOL_SCRIPT = EmulatorScript.from_yaml(
    """
turns:
  - say: "Let me look that up."
    tool_call: {name: lookup_order, args: {order_id: A1001}}
    after_tool: "Your order A1001 has shipped. {response}"
  - tool_call: {name: end_call}
"""
)


def blocking(*names: str) -> dict[str, Any]:
    """SessionConfig fields declaring `names` as BLOCKING tools (3.8 defaults to NON_BLOCKING)."""
    return {
        "function_declarations": tuple({"name": name} for name in names),
        "tool_behaviors": tuple((name, ToolBehavior.BLOCKING) for name in names),
    }


def audio_of(messages: list[ServerMessage]) -> bytes:
    return b"".join(chunk for m in messages for chunk in m.audio)


def transcript_of(messages: list[ServerMessage]) -> str:
    return "".join(m.output_transcription or "" for m in messages)


def heard(messages: list[ServerMessage]) -> list[str]:
    """The input transcriptions among the messages."""
    return [m.input_transcription for m in messages if m.input_transcription is not None]


async def let_it_play(session: LiveSession, reply: list[ServerMessage]) -> None:
    """Advance the caller's audio clock past the reply's playback with silence."""
    playback_ms = round(len(audio_of(reply)) / 2 / 24) + 100
    await send_chunks(session, chunked(silence_pcm16(playback_ms)))


def kinds(messages: list[ServerMessage]) -> list[str]:
    """A compact trace: one label per message field that is set."""
    out = []
    for m in messages:
        for label, present in (
            ("input_transcription", m.input_transcription is not None),
            ("audio", bool(m.audio)),
            ("output_transcription", m.output_transcription is not None),
            ("tool_call", bool(m.tool_calls)),
            ("tool_call_cancellation", bool(m.tool_call_cancellation_ids)),
            ("interrupted", m.interrupted),
            ("generation_complete", m.generation_complete),
            ("turn_complete", m.turn_complete),
        ):
            if present:
                out.append(label)
    return out


def squash(trace: list[str]) -> list[str]:
    """Runs of the same label collapsed: ["audio", "audio", "x"] → ["audio", "x"]."""
    return [label for i, label in enumerate(trace) if i == 0 or trace[i - 1] != label]


async def test_speech_then_silence_gets_a_spoken_reply_in_order(
    emulator: LiveEmulator, open_session: OpenSession
) -> None:
    session: LiveSession = await open_session()
    await send_chunks(session, utterance(600, 700))
    messages = await until(aiter(session), turn_complete)
    trace = kinds(messages)
    assert trace[0] == "input_transcription"
    assert heard(messages) == ["(caller speech 0.6 s)"]
    assert trace.index("audio") < trace.index("output_transcription")
    assert trace[-2:] == ["generation_complete", "turn_complete"]
    assert trace.count("generation_complete") == 1
    assert "interrupted" not in trace
    assert transcript_of(messages) == (
        "You said something for 0.6 seconds. This is reply number 1."
    )
    # The text arrives word by word as it is spoken, each piece keeping its space, so the
    # pieces concatenate (as clients do) into the sentence, not "Yousaidsomething…".
    pieces = [m.output_transcription for m in messages if m.output_transcription]
    assert len(pieces) > 3 and all(piece.endswith(" ") for piece in pieces[:-1])
    audio = audio_of(messages)
    assert len(audio) >= 24000 * 2 * 2  # seconds of speech, faster than real time
    assert audio == speak_pcm16(transcript_of(messages), None)  # the default voice saying it
    assert messages[-1].usage is not None and messages[-1].usage["responseTokenCount"] > 0
    await session.close()
    await emulator.wait_closed_sessions(1)
    assert emulator.sessions_closed == 1


async def test_barge_in_while_generating_interrupts_without_generation_complete(
    emulator: LiveEmulator, open_session: OpenSession
) -> None:
    session: LiveSession = await open_session()
    messages = aiter(session)
    emulator.speed = 0.01  # 4 s between chunks: the reply is still being generated
    await send_chunks(session, utterance(600, 700))
    first = await until(messages, lambda m: bool(m.audio))
    emulator.speed = FAST
    await send_chunks(session, chunked(tone_pcm16(600, freq_hz=500)))
    interrupted_turn = await until(messages, turn_complete)
    trace = kinds(first + interrupted_turn)
    assert "generation_complete" not in trace
    assert trace[-2:] == ["interrupted", "turn_complete"]

    await send_chunks(session, chunked(silence_pcm16(700)))
    second = await until(messages, turn_complete)
    trace = squash(kinds(second))
    assert trace[:2] == ["input_transcription", "audio"]
    assert set(trace[2:-2]) == {"audio", "output_transcription"}
    assert kinds(second)[-2:] == ["generation_complete", "turn_complete"]
    assert "interrupted" not in kinds(second)
    assert transcript_of(second).endswith("This is reply number 2.")
    assert audio_of(second) == speak_pcm16(transcript_of(second), None)


async def test_barge_in_while_a_generated_reply_plays_gives_one_turn_complete() -> None:
    # One chunk holds the whole reply, so it is generated at once; at this speed it then
    # "plays" for an hour of wall time, and for ~4 s of the caller's audio clock from 1.3 s.
    async with LiveEmulator(speed=0.001, chunk_ms=10_000) as emulator:
        connector = LiveConnector(emulator_settings(), url_override=emulator.url)
        async with await connector.connect(SessionConfig(model="m")) as session:
            messages = aiter(session)
            await send_chunks(session, utterance(600, 700))
            first = await until(messages, lambda m: m.generation_complete)
            assert audio_of(first)
            await send_chunks(session, chunked(tone_pcm16(300)))  # at 1.34 s: talks over it
            after = await until(messages, turn_complete)
            assert kinds(after) == ["interrupted", "turn_complete"]
            await send_chunks(session, chunked(silence_pcm16(700)))
            second = await until(messages, lambda m: m.generation_complete)
            assert "turn_complete" not in kinds(second)  # no second turnComplete for reply 1


async def test_speech_after_the_reply_has_played_is_not_a_barge_in(
    open_session: OpenSession,
) -> None:
    session: LiveSession = await open_session()
    messages = aiter(session)
    await send_chunks(session, utterance(600, 700))
    first = await until(messages, turn_complete)
    await let_it_play(session, first)
    await send_chunks(session, utterance(400, 600))
    second = await until(messages, turn_complete)
    assert "interrupted" not in kinds(second)
    assert heard(second) == ["(caller speech 0.4 s)"]
    assert kinds(second)[-2:] == ["generation_complete", "turn_complete"]


async def test_greeting_from_client_content(
    emulator: LiveEmulator, open_session: OpenSession
) -> None:
    session: LiveSession = await open_session()
    messages = aiter(session)
    await session.send(
        build_client_content('Greet the caller now by saying exactly: "Welcome to Acme!"')
    )
    greeting = await until(messages, turn_complete)
    assert transcript_of(greeting) == "Welcome to Acme!"
    assert kinds(greeting)[-2:] == ["generation_complete", "turn_complete"]
    await let_it_play(session, greeting)
    # A user turn with nothing to say verbatim is answered like caller text (Vertex sends key
    # presses and prompts this way).
    await session.send(build_client_content("Say hello to the caller."))
    plain = await until(messages, turn_complete)
    assert transcript_of(plain).startswith('You said "Say hello to the caller."')
    await let_it_play(session, plain)
    assert emulator.client_texts[0].endswith('"Welcome to Acme!"')
    await session.send(build_client_content("context only", turn_complete=False))
    await session.send(build_text_input("The caller pressed 1."))
    reply = await until(messages, turn_complete)
    assert transcript_of(reply) == 'You said "The caller pressed 1.". This is reply number 3.'
    assert emulator.client_texts[-2:] == ["context only", "The caller pressed 1."]


async def test_audio_stream_end_flushes_voice_detection(open_session: OpenSession) -> None:
    session: LiveSession = await open_session()
    await send_chunks(session, chunked(tone_pcm16(500)))
    await session.send(build_audio_stream_end())
    messages = await until(aiter(session), turn_complete)
    assert heard(messages) == ["(caller speech 0.5 s)"]
    assert audio_of(messages)


async def test_no_transcriptions_unless_asked(open_session: OpenSession) -> None:
    session: LiveSession = await open_session(
        input_transcription=False, output_transcription=False, session_resumption=False
    )
    await send_chunks(session, utterance())
    messages = await until(aiter(session), turn_complete)
    assert set(kinds(messages)) == {"audio", "generation_complete", "turn_complete"}


async def test_scripted_tool_call_waits_for_the_response() -> None:
    async with LiveEmulator(TOOL_SCRIPT, speed=FAST) as emulator:
        connector = LiveConnector(emulator_settings(), url_override=emulator.url)
        config = SessionConfig(model="m", **blocking("lookup_order"))
        async with await connector.connect(config) as session:
            messages = aiter(session)
            await send_chunks(session, utterance())
            before = await until(messages, lambda m: bool(m.tool_calls))
            assert transcript_of(before) == "Let me look that up."
            assert audio_of(before)
            assert before[-2].resumable is False  # mid-tool-call: not resumable
            (call,) = before[-1].tool_calls
            assert (call.id, call.name, call.args) == (
                "fc-1",
                "lookup_order",
                {"order_id": "A1001"},
            )
            response = FunctionResponse(call.id, call.name, {"result": {"status": "shipped"}})
            await session.send(build_tool_response([response]))
            after = await until(messages, turn_complete)
            assert transcript_of(after) == (
                'Your order A1001 has shipped. {"result":{"status":"shipped"}}'
            )
            assert kinds(after)[-2:] == ["generation_complete", "turn_complete"]
            assert emulator.tool_responses == [response]


async def test_barge_in_cancels_a_pending_tool_call() -> None:
    script = EmulatorScript.from_yaml("turns: [{tool_call: {name: end_call}}]")
    async with LiveEmulator(script, speed=FAST) as emulator:
        connector = LiveConnector(emulator_settings(), url_override=emulator.url)
        config = SessionConfig(model="m", **blocking("end_call"))
        async with await connector.connect(config) as session:
            messages = aiter(session)
            await send_chunks(session, utterance())
            await until(messages, lambda m: bool(m.tool_calls))
            await send_chunks(session, chunked(tone_pcm16(200)))
            after = await until(messages, turn_complete)
            assert kinds(after) == ["interrupted", "tool_call_cancellation", "turn_complete"]
            assert after[1].tool_call_cancellation_ids == ("fc-1",)
        assert emulator.tool_responses == []


async def test_resumption_handle_continues_the_conversation(
    emulator: LiveEmulator, connector: LiveConnector
) -> None:
    async with await connector.connect(SessionConfig(model="m")) as first:
        messages = aiter(first)
        await send_chunks(first, utterance())
        await until(messages, turn_complete)
        update = await until(messages, lambda m: m.resumption_handle is not None)
        handle = update[-1].resumption_handle
        assert handle is not None and update[-1].resumable is True
    async with await connector.connect(SessionConfig(model="m", resumption_handle=handle)) as again:
        await send_chunks(again, utterance())
        reply = await until(aiter(again), turn_complete)
    assert transcript_of(reply).endswith("This is reply number 2.")
    assert emulator.client_setups[1].resumption_handle == handle


async def test_go_away_and_dropped_sessions(
    emulator: LiveEmulator, open_session: OpenSession
) -> None:
    session: LiveSession = await open_session()
    messages = aiter(session)
    await emulator.go_away(1.5)
    got = await until(messages, lambda m: m.go_away_time_left_s is not None)
    assert got[-1].go_away_time_left_s == 1.5
    await emulator.close_sessions(1011, "deadline exceeded")
    with pytest.raises(LiveConnectionClosed) as caught:
        await until(messages, lambda m: False)
    assert caught.value.code == 1011
    await emulator.wait_closed_sessions(1)


async def test_first_frame_must_be_setup(emulator: LiveEmulator) -> None:
    async with connect(emulator.url) as ws:
        await ws.send('{"realtimeInput": {"text": "hi"}}')
        with pytest.raises(ConnectionClosedError) as caught:
            await ws.recv()
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1007
    assert "first message must be setup" in caught.value.rcvd.reason


async def test_text_modality_is_rejected_like_native_audio_models(emulator: LiveEmulator) -> None:
    async with connect(emulator.url) as ws:
        setup = {"model": "models/m", "generation_config": {"response_modalities": ["TEXT"]}}
        await ws.send(json.dumps({"setup": setup}))
        with pytest.raises(ConnectionClosedError) as caught:
            await ws.recv()
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1007


async def test_one_broken_session_does_not_affect_another(
    emulator: LiveEmulator, open_session: OpenSession
) -> None:
    good: LiveSession = await open_session()
    bad: LiveSession = await open_session()
    await bad.send({"realtimeInput": {"audio": {"data": "%%%", "mimeType": "audio/pcm"}}})
    with pytest.raises(LiveConnectionClosed) as caught:
        async for _ in bad:
            pass
    assert caught.value.code == 1007
    await send_chunks(good, utterance())
    messages = await until(aiter(good), turn_complete)
    assert audio_of(messages)
    await emulator.wait_closed_sessions(1)
    assert emulator.sessions_opened == 2


async def test_every_frame_the_emulator_sends_validates_against_the_sdk() -> None:
    async with LiveEmulator(TOOL_SCRIPT, speed=FAST, record_frames=True) as emulator:
        connector = LiveConnector(emulator_settings(), url_override=emulator.url)
        config = SessionConfig(model="m", voice="Kore", **blocking("lookup_order", "end_call"))
        async with await connector.connect(config) as session:
            messages = aiter(session)
            await session.send(build_client_content('Say exactly: "Hello!"'))
            greeting = await until(messages, turn_complete)
            await let_it_play(session, greeting)
            await send_chunks(session, utterance())  # scripted turn 1: tool call
            call = (await until(messages, lambda m: bool(m.tool_calls)))[-1].tool_calls[0]
            await session.send(build_tool_response([FunctionResponse(call.id, call.name, {})]))
            await until(messages, turn_complete)
            await send_chunks(session, utterance())  # scripted turn 2: a call, then barge-in
            await until(messages, lambda m: bool(m.tool_calls))
            await send_chunks(session, utterance())
            await until(messages, lambda m: bool(m.tool_call_cancellation_ids))
            await until(messages, lambda m: m.generation_complete)  # default reply 3
            await emulator.go_away(10)
            await until(messages, lambda m: m.go_away_time_left_s is not None)
    frames = emulator.sent_frames
    assert len(frames) > 50
    for frame in frames:
        validate_server_frame(frame)
    text = "\n".join(frames)
    for field in (
        "setupComplete",
        "inlineData",
        "inputTranscription",
        "outputTranscription",
        "generationComplete",
        "turnComplete",
        "usageMetadata",
        "interrupted",
        "toolCall",
        "toolCallCancellation",
        "sessionResumptionUpdate",
        "goAway",
    ):
        assert f'"{field}"' in text, field


# --------------------------------------------------------------------------- official SDK


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: the SDK always dials wss:// for an API key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def tls_contexts(tls_files: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) TLS contexts for the emulator on 127.0.0.1 and an SDK that trusts it
    (the SDK always dials wss)."""
    cert_path, key_path = tls_files
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert_path, key_path)
    return server_tls, ssl.create_default_context(cafile=str(cert_path))


async def test_the_official_google_genai_client_holds_a_session(
    tls_files: tuple[Path, Path],
) -> None:
    from google import genai
    from google.genai import types

    server_tls, client_tls = tls_contexts(tls_files)
    emulator = LiveEmulator(speed=FAST, record_frames=True)
    await emulator.start(ssl_context=server_tls)
    try:
        client = genai.Client(
            api_key="test",
            http_options=types.HttpOptions(
                base_url=f"http://127.0.0.1:{emulator.port}",
                api_version="v1beta",
                async_client_args={"ssl": client_tls},
            ),
        )
        model = "gemini-2.5-flash-native-audio-preview-12-2025"
        config = types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO])
        audio = b""
        async with client.aio.live.connect(model=model, config=config) as session:
            for chunk in utterance():
                await session.send_realtime_input(
                    audio=types.Blob(data=chunk, mime_type="audio/pcm;rate=24000")
                )
            async for message in session.receive():  # ends after turn_complete
                if message.data:
                    audio += message.data
        assert len(audio) > 24000
        await emulator.wait_closed_sessions(1)
        assert emulator.request_paths == [
            "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
        ]
        assert emulator.request_headers[0]["x-goog-api-key"] == "test"
        assert emulator.client_setups[0].model == f"models/{model}"
        for frame in emulator.sent_frames:
            validate_server_frame(frame)
    finally:
        await emulator.stop()


async def test_emulator_counts_sessions_and_waits_without_polling() -> None:
    emulator = LiveEmulator(speed=FAST)
    url = await emulator.start()
    try:
        connector = LiveConnector(emulator_settings(), url_override=url)
        sessions = [await connector.connect(SessionConfig(model="m")) for _ in range(3)]
        await emulator.wait_opened_sessions(3)
        await asyncio.gather(*(s.close() for s in sessions))
        await emulator.wait_closed_sessions(3)
        assert (emulator.sessions_opened, emulator.sessions_closed) == (3, 3)
    finally:
        await emulator.stop()
        await emulator.stop()  # idempotent
