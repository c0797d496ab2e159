"""gateway.live.client: endpoints, headers, the setup handshake and session IO, on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from gateway.live.auth import VertexTokenProvider
from gateway.live.client import (
    LiveConnectionClosed,
    LiveConnector,
    LiveEndpoint,
    _proxy_for,
    live_endpoint,
)
from gateway.live.emulator.server import LiveEmulator
from gateway.live.protocol import LiveProtocolError, SessionConfig, build_audio_input
from gateway.settings import LiveBackend, Settings
from tests.live.conftest import emulator_settings, send_chunks, turn_complete, until
from tests.live.signals import utterance

VERTEX_PATH = "google.cloud.aiplatform.{}.LlmBidiService/BidiGenerateContent"
GEMINI_URL = (
    "wss://generativelanguage.googleapis.com/ws/"
    "google.ai.generativelanguage.{}.GenerativeService.BidiGenerateContent"
)


def vertex_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "live_backend": LiveBackend.VERTEX,
        "google_cloud_project": "my-proj",
        "google_cloud_location": "us-central1",
        "live_url": None,
        "live_model": None,
        "live_api_version": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def gemini_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "live_backend": LiveBackend.GEMINI,
        "gemini_api_key": "key-123",
        "live_url": None,
        "live_model": None,
        "live_api_version": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class FakeCredentials:
    def __init__(self) -> None:
        self.token: str | None = None
        self.expiry: datetime | None = None

    def refresh(self, request: Any) -> None:
        self.token = "vertex-token"
        self.expiry = datetime.now(UTC) + timedelta(hours=1)


def fake_token_provider() -> VertexTokenProvider:
    return VertexTokenProvider(FakeCredentials(), request_factory=lambda: None)


# --------------------------------------------------------------------------- endpoints


def test_vertex_endpoint() -> None:
    endpoint = live_endpoint(vertex_settings())
    assert endpoint == LiveEndpoint(
        url="wss://us-central1-aiplatform.googleapis.com/ws/" + VERTEX_PATH.format("v1"),
        model_path="projects/my-proj/locations/us-central1/publishers/google/models/"
        "gemini-3.8-live",
    )


@pytest.mark.parametrize(
    ("location", "host"),
    [
        ("us", "aiplatform.us.rep.googleapis.com"),
        ("eu", "aiplatform.eu.rep.googleapis.com"),
        ("global", "aiplatform.googleapis.com"),
        ("europe-west4", "europe-west4-aiplatform.googleapis.com"),
    ],
)
def test_vertex_hosts_follow_the_sdk_including_multi_regions(location: str, host: str) -> None:
    endpoint = live_endpoint(vertex_settings(google_cloud_location=location))
    assert endpoint.url == f"wss://{host}/ws/" + VERTEX_PATH.format("v1")
    assert endpoint.model_path.startswith(f"projects/my-proj/locations/{location}/")


def test_vertex_global_location_and_api_version() -> None:
    endpoint = live_endpoint(
        vertex_settings(google_cloud_location="global", live_api_version="v1beta1"), "m-1"
    )
    assert endpoint.url == "wss://aiplatform.googleapis.com/ws/" + VERTEX_PATH.format("v1beta1")
    assert endpoint.model_path == "projects/my-proj/locations/global/publishers/google/models/m-1"


@pytest.mark.parametrize("settings", [gemini_settings(), emulator_settings()])
def test_gemini_and_emulator_endpoint(settings: Settings) -> None:
    endpoint = live_endpoint(settings)
    assert endpoint.url == GEMINI_URL.format("v1beta")
    assert endpoint.model_path == "models/gemini-3.8-live"
    assert live_endpoint(gemini_settings(live_api_version="v1alpha"), "x").url == (
        GEMINI_URL.format("v1alpha")
    )


def test_live_url_overrides_any_backend_and_full_model_paths_are_kept() -> None:
    for settings in (
        vertex_settings(live_url="ws://proxy:1/x"),
        gemini_settings(live_url="ws://proxy:1/x"),
    ):
        assert live_endpoint(settings).url == "ws://proxy:1/x"
    assert live_endpoint(gemini_settings(), "models/custom").model_path == "models/custom"
    full = "projects/a/locations/b/publishers/google/models/c"
    assert live_endpoint(vertex_settings(), full).model_path == full
    assert live_endpoint(gemini_settings(live_model="m-2")).model_path == "models/m-2"


def test_loopback_urls_never_use_an_environment_proxy() -> None:
    assert _proxy_for("ws://127.0.0.1:9090/ws") is None
    assert _proxy_for("ws://[::1]:9090/ws") is None
    assert _proxy_for("ws://localhost:9090/ws") is None
    assert _proxy_for(GEMINI_URL.format("v1beta")) is True


# --------------------------------------------------------------------------- headers


async def test_header_choice_per_backend() -> None:
    assert await LiveConnector(emulator_settings())._headers() == {}
    assert await LiveConnector(gemini_settings())._headers() == {"x-goog-api-key": "key-123"}
    vertex = LiveConnector(vertex_settings(), token_provider=fake_token_provider())
    assert await vertex._headers() == {"Authorization": "Bearer vertex-token"}


@pytest.mark.parametrize(
    ("settings", "header", "value", "model"),
    [
        (gemini_settings(), "x-goog-api-key", "key-123", "models/gemini-test"),
        (
            vertex_settings(),
            "authorization",
            "Bearer vertex-token",
            "projects/my-proj/locations/us-central1/publishers/google/models/gemini-test",
        ),
    ],
)
async def test_connect_sends_auth_headers_and_the_backend_model_path(
    emulator: LiveEmulator, settings: Settings, header: str, value: str, model: str
) -> None:
    connector = LiveConnector(
        settings, token_provider=fake_token_provider(), url_override=emulator.url
    )
    session = await connector.connect(SessionConfig(model="gemini-test"))
    await session.close()
    assert emulator.request_headers[0][header] == value
    assert emulator.client_setups[0].model == model
    assert session.endpoint.url == emulator.url


async def test_emulator_backend_sends_no_credentials(emulator: LiveEmulator) -> None:
    session = await LiveConnector(emulator_settings(), url_override=emulator.url).connect(
        SessionConfig(model="models/full/path")
    )
    await session.close()
    headers = emulator.request_headers[0]
    assert "authorization" not in headers and "x-goog-api-key" not in headers
    assert emulator.client_setups[0].model == "models/full/path"


# --------------------------------------------------------------------------- handshake


async def test_setup_handshake(emulator: LiveEmulator, connector: LiveConnector) -> None:
    session = await connector.connect(SessionConfig(model="gemini-test", voice="Puck"))
    assert session.setup_complete.setup_complete
    assert session.setup["setup"]["model"] == "models/gemini-test"
    assert emulator.setups[0] == session.setup["setup"]
    assert emulator.client_setups[0].voice == "Puck"
    await session.close()
    await session.close()  # idempotent
    assert session.close_code == 1000
    await emulator.wait_closed_sessions(1)
    assert (emulator.sessions_opened, emulator.sessions_closed) == (1, 1)


async def test_rejected_setup_is_live_connection_closed_1007(connector: LiveConnector) -> None:
    with pytest.raises(LiveConnectionClosed) as caught:
        await connector.connect(SessionConfig(model="m", voice="NoSuchVoice"))
    assert caught.value.code == 1007
    assert "NoSuchVoice" in caught.value.reason


Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler, **kwargs: Any) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, **kwargs) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws"


def raw_connector(url: str) -> LiveConnector:
    return LiveConnector(emulator_settings(), url_override=url)


async def test_no_setup_complete_times_out_as_connection_closed() -> None:
    release = asyncio.Event()

    async def silent(ws: ServerConnection) -> None:
        await ws.recv()
        await release.wait()

    async with raw_server(silent) as url:
        with pytest.raises(LiveConnectionClosed, match="setupComplete") as caught:
            await raw_connector(url).connect(SessionConfig(model="m"), open_timeout_s=0.2)
        release.set()
    assert caught.value.code is None


async def test_wrong_first_message_is_a_protocol_error() -> None:
    async def chatty(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send('{"serverContent": {"turnComplete": true}}')
        await ws.wait_closed()

    async with raw_server(chatty) as url:
        with pytest.raises(LiveProtocolError, match="expected setupComplete"):
            await raw_connector(url).connect(SessionConfig(model="m"))


async def test_http_refusal_and_unreachable_hosts_are_connection_closed() -> None:
    def refuse(connection: ServerConnection, request: Request) -> Response:
        return Response(403, "Forbidden", Headers(), b"API key not valid")

    async def never(ws: ServerConnection) -> None:
        raise AssertionError("not reached")

    async with raw_server(never, process_request=refuse) as url:
        with pytest.raises(LiveConnectionClosed, match="HTTP 403 API key not valid"):
            await raw_connector(url).connect(SessionConfig(model="m"))
    with pytest.raises(LiveConnectionClosed, match="cannot connect"):
        await raw_connector(url).connect(SessionConfig(model="m"))  # server is gone


async def test_the_live_url_is_logged_and_reported_without_its_query(
    emulator: LiveEmulator,
) -> None:
    """LIVE_URL may carry `?key=…`: no log line and no error message repeats it."""
    secret = "key=AIza-sekrit"

    def connector(url: str) -> LiveConnector:
        return LiveConnector(emulator_settings(live_url=f"{url}?{secret}"))

    async def silent(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.wait_closed()

    def refuse(connection: ServerConnection, request: Request) -> Response:
        return Response(403, "Forbidden", Headers(), b"no")

    errors: list[str] = []
    with capture_logs() as logs:
        session = await connector(emulator.url).connect(SessionConfig(model="m"))
        await session.close()
        (opened,) = [entry for entry in logs if entry["event"] == "live_session_opened"]
        assert opened["url"] == emulator.url
        async with raw_server(silent) as url:
            with pytest.raises(LiveConnectionClosed) as timed_out:
                await connector(url).connect(SessionConfig(model="m"), open_timeout_s=0.2)
            errors.append(str(timed_out.value))
        async with raw_server(silent, process_request=refuse) as url:
            with pytest.raises(LiveConnectionClosed) as refused:
                await connector(url).connect(SessionConfig(model="m"))
            errors.append(str(refused.value))
        with pytest.raises(LiveConnectionClosed) as unreachable:
            await connector(url).connect(SessionConfig(model="m"))  # that server is gone
        errors.append(str(unreachable.value))
        with pytest.raises(LiveConnectionClosed) as invalid:
            await connector("ws://127.0.0.1:99999/ws").connect(SessionConfig(model="m"))
        errors.append(str(invalid.value))
    assert "timed out after 0.2 s waiting for setupComplete from ws://127.0.0.1:" in errors[0]
    assert errors[1].endswith("/ws refused the WebSocket upgrade: HTTP 403 no")
    assert errors[2].startswith("cannot connect to ws://127.0.0.1:")
    assert errors[3] == "ws://127.0.0.1:99999/ws is not a valid WebSocket URL" or (
        errors[3].startswith("cannot connect to ws://127.0.0.1:99999/ws")
    )
    for text in [*errors, *(json.dumps(entry, default=str) for entry in logs)]:
        assert "sekrit" not in text, text


# --------------------------------------------------------------------------- session IO


async def test_malformed_frames_are_skipped_and_our_own_close_ends_iteration() -> None:
    async def server(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send(b'{"setupComplete": {}}')
        await ws.send("{broken")
        await ws.send(b"\xff\xfe")
        await ws.send('{"serverContent": {"outputTranscription": {"text": "ok"}}}')
        await ws.wait_closed()

    async with raw_server(server) as url:
        session = await raw_connector(url).connect(SessionConfig(model="m"))
        messages = []
        async for message in session:
            messages.append(message)
            await session.close()  # the iteration then ends without an error
    assert [m.output_transcription for m in messages] == ["ok"]
    assert session.close_code == 1000


async def test_a_normal_close_the_client_did_not_ask_for_raises() -> None:
    """Seen at the connection limit: 1000 with no goAway first. Mid-call it is a lost
    connection, not the end of the conversation, so it must not look like our own close."""

    async def server(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send('{"setupComplete": {}}')
        await ws.close(1000, "The operation was cancelled.")

    async with raw_server(server) as url:
        session = await raw_connector(url).connect(SessionConfig(model="m"))
        with pytest.raises(LiveConnectionClosed) as caught:
            async for _ in session:
                pass
    assert (caught.value.code, caught.value.reason) == (1000, "The operation was cancelled.")


async def test_the_session_id_of_setup_complete_is_exposed_and_logged() -> None:
    async def server(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send('{"setupComplete": {"sessionId": "vertex-session-7"}}')
        await ws.wait_closed()

    async with raw_server(server) as url:
        with capture_logs() as logs:
            session = await raw_connector(url).connect(SessionConfig(model="m"))
        await session.close()
    assert session.session_id == "vertex-session-7"
    (opened,) = [entry for entry in logs if entry["event"] == "live_session_opened"]
    assert opened["session_id"] == "vertex-session-7"


async def test_abnormal_close_raises_with_code_and_reason() -> None:
    async def server(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send('{"setupComplete": {}}')
        await ws.close(1011, "deadline exceeded")

    async with raw_server(server) as url:
        session = await raw_connector(url).connect(SessionConfig(model="m"))
        with pytest.raises(LiveConnectionClosed) as caught:
            async for _ in session:
                pass
    assert (caught.value.code, caught.value.reason) == (1011, "deadline exceeded")
    assert session.close_reason == "deadline exceeded"
    with pytest.raises(LiveConnectionClosed):
        await session.send_audio(b"\x00\x00", 24000)


async def test_send_audio_is_one_compact_realtime_input_frame() -> None:
    received: list[str | bytes] = []
    got_audio = asyncio.Event()

    async def server(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send('{"setupComplete": {}}')
        received.append(await ws.recv())
        got_audio.set()
        await ws.wait_closed()

    async with raw_server(server) as url:
        session = await raw_connector(url).connect(SessionConfig(model="m"))
        await session.send_audio(b"\x01\x02" * 320, 16000)
        await got_audio.wait()
        await session.close()
    assert isinstance(received[0], str)
    assert json.loads(received[0]) == build_audio_input(b"\x01\x02" * 320, 16000)
    assert " " not in received[0]


async def test_media_chunks_surface_as_connection_closed_1007(
    open_session: Callable[..., Any],
) -> None:
    session = await open_session()
    chunk = {"data": "AAAA", "mimeType": "audio/pcm;rate=16000"}
    await session.send({"realtimeInput": {"mediaChunks": [chunk]}})
    with pytest.raises(LiveConnectionClosed) as caught:
        async for _ in session:
            pass
    assert caught.value.code == 1007
    assert "mediaChunks" in caught.value.reason


async def test_a_conversation_turn_through_the_client(open_session: Callable[..., Any]) -> None:
    session = await open_session()
    await send_chunks(session, utterance())
    messages = await until(aiter(session), turn_complete)
    assert b"".join(a for m in messages for a in m.audio)
    assert all(m.audio_rate_hz == 24000 for m in messages)
