"""Opening Gemini Live sessions: endpoint choice, auth headers, the setup handshake, and a thin
session object that sends built messages and yields parsed ones.

Protocol details live in `protocol.py`; this module only does IO. Each send is one JSON string
and one WebSocket frame; receiving decodes text or binary frames alike.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import struct
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.protocol import State

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

from gateway.live.auth import VertexTokenProvider
from gateway.live.protocol import (
    LiveProtocolError,
    ServerMessage,
    SessionConfig,
    build_setup,
    encode_audio_input,
    encode_audio_input_utf8,
    encode_message,
    parse_server_message,
)
from gateway.ops.url_redaction import redact_url
from gateway.settings import LiveBackend, Settings

__all__ = [
    "MAX_MESSAGE_BYTES",
    "LiveConnectionClosed",
    "LiveConnector",
    "LiveEndpoint",
    "LiveSession",
    "live_endpoint",
    "vertex_host",
]

log = structlog.get_logger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
CLOSE_TIMEOUT_S = 5.0
HIGH_WATER_BYTES = 64 * 1024
"""Past this many unsent bytes, caller audio goes through websockets' flow control."""
GEMINI_HOST = "generativelanguage.googleapis.com"
VERTEX_MULTI_REGIONS = frozenset({"us", "eu"})
"""Agent Platform multi-region locations, served from `aiplatform.{loc}.rep.googleapis.com`."""


def vertex_host(location: str) -> str:
    """The Vertex / Agent Platform host for `location`, as the google-genai SDK picks it:
    `global` → aiplatform.googleapis.com; `us`, `eu` → aiplatform.{loc}.rep.googleapis.com;
    a region → {region}-aiplatform.googleapis.com."""
    if location == "global":
        return "aiplatform.googleapis.com"
    if location in VERTEX_MULTI_REGIONS:
        return f"aiplatform.{location}.rep.googleapis.com"
    return f"{location}-aiplatform.googleapis.com"


@dataclass(frozen=True)
class LiveEndpoint:
    """Where to connect and what goes in `setup.model`."""

    url: str
    model_path: str


def live_endpoint(settings: Settings, model: str | None = None) -> LiveEndpoint:
    """The endpoint for `model` (default: settings.model) on the configured backend.

    LIVE_URL overrides the URL of any backend; a model containing "/" is used as the path as-is.
    """
    model_id = model or settings.model
    version = settings.api_version
    if settings.backend is LiveBackend.VERTEX:
        location = settings.google_cloud_location
        host = vertex_host(location)
        url = (
            f"wss://{host}/ws/google.cloud.aiplatform.{version}.LlmBidiService/BidiGenerateContent"
        )
        model_path = (
            model_id
            if "/" in model_id
            else f"projects/{settings.google_cloud_project}/locations/{location}"
            f"/publishers/google/models/{model_id}"
        )
    else:
        url = (
            f"wss://{GEMINI_HOST}/ws/google.ai.generativelanguage.{version}"
            ".GenerativeService.BidiGenerateContent"
        )
        model_path = model_id if "/" in model_id else f"models/{model_id}"
    if settings.live_url:
        url = settings.live_url
    return LiveEndpoint(url=url, model_path=model_path)


class LiveConnectionClosed(Exception):
    """The Live connection ended abnormally or could not be opened.

    `code` is the WebSocket close code (1007 bad request, 1008 policy / model not found, 1011
    internal error or deadline, 1006 no close frame) or None when no WebSocket was established.
    """

    def __init__(self, code: int | None, reason: str) -> None:
        self.code = code
        self.reason = reason
        detail = reason or "no reason given"
        super().__init__(
            f"Live connection closed ({code}): {detail}" if code is not None else detail
        )


def _closed(exc: ConnectionClosed) -> LiveConnectionClosed:
    if exc.rcvd is not None:
        return LiveConnectionClosed(exc.rcvd.code, exc.rcvd.reason)
    if exc.sent is not None:
        return LiveConnectionClosed(exc.sent.code, exc.sent.reason)
    return LiveConnectionClosed(1006, "connection lost without a close frame")


class LiveSession:
    """One open BidiGenerateContent WebSocket after setupComplete.

    Send from one task and iterate from another; iterate only once. The session owns the
    WebSocket: `close()` (idempotent) or `async with` ends it. `session_id` is the service's
    name for the session (`setupComplete.sessionId`; Vertex sends one), None when not given.
    """

    def __init__(
        self,
        ws: ClientConnection,
        *,
        endpoint: LiveEndpoint,
        setup: Mapping[str, Any],
        setup_complete: ServerMessage,
    ) -> None:
        self._ws = ws
        self.endpoint = endpoint
        self.setup = setup
        self.setup_complete = setup_complete
        self._closing = False

    @property
    def session_id(self) -> str | None:
        """`setupComplete.sessionId`, to log with the call (None when the service sent none)."""
        return self.setup_complete.session_id

    async def send(self, message: Mapping[str, Any]) -> None:
        """Send one client message (from the protocol builders)."""
        await self._send_text(encode_message(message))

    async def send_audio(self, pcm16le: bytes, rate_hz: int) -> None:
        """Send one chunk of caller audio (PCM16LE mono at rate_hz).

        Every 20 ms of every call, so when the connection is plainly open (no compression, no
        fragmented message in progress, socket not backed up) the frame is built and masked
        here and written in one call — the same bytes `ws.send` would write, without its
        per-message machinery (bench/RESULTS.md, Capacity). Otherwise `ws.send` does it.
        """
        ws = self._ws
        transport = ws.transport
        if (
            ws.protocol.state is State.OPEN
            and not ws.protocol.extensions
            and getattr(ws, "send_in_progress", None) is None
            and not transport.is_closing()
            and transport.get_write_buffer_size() <= HIGH_WATER_BYTES
        ):
            transport.write(_masked_text_frame(encode_audio_input_utf8(pcm16le, rate_hz)))
            return
        await self._send_text(encode_audio_input(pcm16le, rate_hz))

    async def _send_text(self, text: str) -> None:
        try:
            await self._ws.send(text)
        except ConnectionClosed as exc:
            raise _closed(exc) from None

    def __aiter__(self) -> AsyncIterator[ServerMessage]:
        """Parsed server messages; ends after our own `close()`. Any close the service makes
        raises LiveConnectionClosed, a normal one (1000) too: mid-call the service never ends a
        conversation on purpose (1000 "The operation was cancelled." is seen at the connection
        limit), so the caller can tell a lost connection from its own close. Malformed frames
        are logged and skipped."""
        return self._messages()

    async def _messages(self) -> AsyncIterator[ServerMessage]:
        ws = self._ws
        while True:
            try:
                frame = await ws.recv()
            except ConnectionClosed as exc:
                if self._closing:
                    return
                raise _closed(exc) from None
            try:
                message = parse_server_message(frame)
            except LiveProtocolError as exc:
                log.warning("live_frame_malformed", error=str(exc), frame=_preview(frame))
                continue
            yield message

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code

    @property
    def close_reason(self) -> str | None:
        return self._ws.close_reason

    async def close(self) -> None:
        """Close the WebSocket (code 1000). Safe to call more than once."""
        self._closing = True
        await self._ws.close()

    async def __aenter__(self) -> LiveSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


_PACK_LEN2 = struct.Struct("!BBH").pack
_PACK_LEN8 = struct.Struct("!BBQ").pack


class _MaskKeys:
    """Unpredictable 4-byte masking keys (RFC 6455 10.3), 1024 per `os.urandom` call rather
    than one system call per frame."""

    def __init__(self, keys_per_draw: int = 1024) -> None:
        self._size = 4 * keys_per_draw
        self._pool = b""
        self._at = 0

    def next(self) -> bytes:
        at = self._at
        if at >= len(self._pool):
            self._pool, at = os.urandom(self._size), 0
        self._at = at + 4
        return self._pool[at : at + 4]


_MASK_KEYS = _MaskKeys()


def _masked_text_frame(payload: bytes) -> bytes:
    """One client text frame (RFC 6455 5.2: FIN, opcode 1, masked with a fresh random key)."""
    size = len(payload)
    if size < 126:
        header = bytes((0x81, 0x80 | size))
    elif size < 65536:
        header = _PACK_LEN2(0x81, 0x80 | 126, size)
    else:
        header = _PACK_LEN8(0x81, 0x80 | 127, size)
    mask = _MASK_KEYS.next()
    return header + mask + apply_mask(payload, mask)


def _proxy_for(url: str) -> Literal[True] | None:
    """Env proxies (websockets' default) for real endpoints, never for loopback (the emulator)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return None
    try:
        return None if ipaddress.ip_address(host).is_loopback else True
    except ValueError:
        return True


def _preview(frame: str | bytes, limit: int = 200) -> str:
    text = frame if isinstance(frame, str) else frame[:limit].decode("utf-8", "replace")
    return text[:limit]


class LiveConnector:
    """Opens `LiveSession`s for the configured backend (one connector per process is fine)."""

    def __init__(
        self,
        settings: Settings,
        *,
        token_provider: VertexTokenProvider | None = None,
        url_override: str | None = None,
    ) -> None:
        self._settings = settings
        self._url_override = url_override
        if token_provider is None and settings.backend is LiveBackend.VERTEX:
            token_provider = VertexTokenProvider()
        self._token_provider = token_provider

    def endpoint(self, model: str | None = None) -> LiveEndpoint:
        """The endpoint `connect` uses for `model` (a full path is kept as-is)."""
        endpoint = live_endpoint(self._settings, model or None)
        if self._url_override:
            endpoint = replace(endpoint, url=self._url_override)
        return endpoint

    async def _headers(self) -> dict[str, str]:
        """Auth headers: vertex → Bearer token, gemini → API key, emulator → none."""
        backend = self._settings.backend
        if backend is LiveBackend.VERTEX:
            assert self._token_provider is not None
            return {"Authorization": f"Bearer {await self._token_provider.token()}"}
        if backend is LiveBackend.GEMINI:
            assert self._settings.gemini_api_key is not None
            return {"x-goog-api-key": self._settings.gemini_api_key}
        return {}

    async def connect(self, config: SessionConfig, *, open_timeout_s: float = 10.0) -> LiveSession:
        """Open the WebSocket, send the setup and wait for setupComplete (all within the timeout).

        Raises LiveConnectionClosed when the connection fails, is refused or times out, and
        LiveProtocolError when the service answers something other than setupComplete.
        """
        endpoint = self.endpoint(config.model)
        setup = build_setup(replace(config, model=endpoint.model_path))
        headers = await self._headers()
        url = endpoint.url
        shown = redact_url(url)  # LIVE_URL may carry `?key=…`: logs and errors never show it
        ws: ClientConnection | None = None
        try:
            try:
                async with asyncio.timeout(open_timeout_s):
                    ws = await connect(
                        url,
                        additional_headers=headers,
                        compression=None,
                        max_size=MAX_MESSAGE_BYTES,
                        open_timeout=None,
                        close_timeout=CLOSE_TIMEOUT_S,
                        proxy=_proxy_for(url),
                    )
                    await ws.send(encode_message(setup))
                    first = await ws.recv()
            except TimeoutError:
                what = "connecting to" if ws is None else "waiting for setupComplete from"
                raise LiveConnectionClosed(
                    None, f"timed out after {open_timeout_s:g} s {what} {shown}"
                ) from None
            except ConnectionClosed as exc:
                raise _closed(exc) from None
            except InvalidStatus as exc:
                status = exc.response.status_code
                body = exc.response.body or b""
                detail = body.decode("utf-8", "replace")[:200]
                raise LiveConnectionClosed(
                    None, f"{shown} refused the WebSocket upgrade: HTTP {status} {detail}".rstrip()
                ) from None
            except (InvalidURI, ValueError):  # a bad port is a ValueError; both repeat the URL
                raise LiveConnectionClosed(None, f"{shown} is not a valid WebSocket URL") from None
            except (OSError, InvalidHandshake) as exc:
                raise LiveConnectionClosed(None, f"cannot connect to {shown}: {exc}") from None
            message = parse_server_message(first)
            if not message.setup_complete:
                raise LiveProtocolError(
                    f"expected setupComplete as the first message from {shown}, "
                    f"got {_preview(first)}"
                )
        except BaseException:
            if ws is not None:
                await ws.close()
            raise
        log.info(
            "live_session_opened",
            url=shown,
            model=endpoint.model_path,
            session_id=message.session_id,
        )
        return LiveSession(ws, endpoint=endpoint, setup=setup, setup_complete=message)
