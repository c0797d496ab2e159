"""All gateway settings, from the environment and an optional `.env` file, in one typed place.

A wrong value fails at start-up with a `SettingsError` that names the setting, so an operator
never has to guess which variable is off.
"""

from __future__ import annotations

import difflib
import importlib.util
import ipaddress
import re
import textwrap
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.live.models import DEFAULT_MODEL, Backend
from gateway.telephony.numbers import E164


class LiveBackend(StrEnum):
    VERTEX = "vertex"
    GEMINI = "gemini"
    EMULATOR = "emulator"


DEFAULT_VERTEX_MODEL = DEFAULT_MODEL
"""Google's default Live model (GA on Vertex / Agent Platform)."""
DEFAULT_GEMINI_MODEL = DEFAULT_MODEL
"""Google's default Live model (GA on the Developer API)."""
DEFAULT_COMPRESSION_TRIGGER_TOKENS = 32_000
"""Compress the context once it holds this many tokens: ~8 minutes of a two-way phone
conversation at Live's ~32 audio tokens per second per direction plus instructions and tools —
well below the 128k window, so a long call stays as fast as a short one."""
DEFAULT_COMPRESSION_TARGET_TOKENS = 16_000
"""What a compression keeps: the last ~4 minutes of the conversation (the window is cut at the
start of a caller turn; the system instruction is never cut)."""
DEFAULT_API_VERSION = {
    LiveBackend.VERTEX: "v1",
    LiveBackend.GEMINI: "v1beta",
    LiveBackend.EMULATOR: "v1beta",
}


class SettingsError(ValueError):
    """A setting is missing or wrong; the message names it."""


class Settings(BaseSettings):
    """Process-wide settings. Field names are the environment variable names, upper-cased."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,
        use_attribute_docstrings=True,  # the docstrings below are `gateway serve --help`
    )

    host: str = "0.0.0.0"
    """Listen address (`gateway serve --host`)."""
    port: int = Field(default=8080, ge=0, le=65535)
    """Listen port (`gateway serve --port`); 0 picks a free port, the bound port is logged."""
    public_url: str | None = None
    """Base URL Twilio uses to reach us (https://gw.example.com); the media URL is derived."""
    trusted_proxies: str | None = None
    """Comma-separated IPs / CIDR networks of reverse proxies whose X-Forwarded-Proto/-Host
    headers are believed (without PUBLIC_URL); from anyone else they are ignored."""

    live_backend: LiveBackend | None = None
    """vertex | gemini | emulator; unset: picked from the credentials present (none: emulator)."""
    live_url: str | None = None
    """Overrides the Live WebSocket endpoint of any backend (proxy, region, external emulator)."""
    live_api_version: str | None = None
    """Live API version in the endpoint path (default: v1 on Vertex, v1beta otherwise)."""
    google_cloud_project: str | None = None
    """Vertex AI / Agent Platform project (credentials from google-auth's default chain)."""
    google_cloud_location: str = "us-central1"
    """Vertex AI region of the Live endpoint."""
    gemini_api_key: str | None = Field(default=None, repr=False)
    """Developer API key (the `gemini` backend)."""
    live_model: str | None = None
    """Live model for agents that name none (default: Google's default Live model)."""
    live_input_rate_hz: int = 16000
    """Rate of caller audio sent to Live: 16000 (Live's documented input rate) or 24000."""
    live_context_trigger_tokens: int = Field(default=DEFAULT_COMPRESSION_TRIGGER_TOKENS, ge=1000)
    """`contextWindowCompression.triggerTokens`: context size that starts a compression."""
    live_context_target_tokens: int = Field(default=DEFAULT_COMPRESSION_TARGET_TOKENS, ge=500)
    """`contextWindowCompression.slidingWindow.targetTokens`: what a compression keeps."""
    live_resume_attempts: int = Field(default=5, ge=1)
    """Connection attempts (first connect, or each resumption) before a call gives up on Live."""
    live_resume_backoff_ms: int = Field(default=200, ge=0)
    """First retry delay; doubles per failed attempt (capped at 5 s, with jitter)."""

    agents_dir: Path = Path("agents")
    """Folder of agent YAML files (one agent per file, or per folder with agent.yaml)."""
    data_dir: Path = Path("data")
    """Writable folder for agents' state (DATA_DIR/<agent>/…, e.g. acme-support's SQLite)."""
    twilio_auth_token: str | None = Field(default=None, repr=False)
    """Checks Twilio's signatures on /twiml and /media and binds each stream to its call."""
    twilio_account_sid: str | None = None
    """Account for REST hang-up and transfer (with the auth token or an API key)."""
    twilio_api_key_sid: str | None = None
    """API key for the REST calls, instead of the auth token."""
    twilio_api_key_secret: str | None = Field(default=None, repr=False)
    """Secret of TWILIO_API_KEY_SID."""
    twilio_api_base_url: str = "https://api.twilio.com"
    """Twilio REST base URL (hang-up, transfer); tests point it at a fake on loopback."""
    twilio_account_sids: str | None = None
    """Comma-separated Account SIDs allowed to call in (unset: any)."""
    telnyx_public_key: str | None = None
    """Telnyx's Ed25519 public key (base64, Mission Control > Keys): checks the
    telnyx-signature-ed25519 header on /telnyx/voice (unset: not checked)."""
    telnyx_api_key: str | None = Field(default=None, repr=False)
    """Telnyx API v2 key: REST hang-up and transfer, and binds each stream to its call."""
    telnyx_api_base_url: str = "https://api.telnyx.com"
    """Telnyx REST base URL; tests point it at a fake on loopback."""
    telnyx_account_sid: str | None = None
    """Telnyx account id (AccountSid, the user_id UUID): the account outbound TeXML calls are
    placed on (`POST /calls` with carrier telnyx)."""
    telnyx_texml_application_id: str | None = None
    """The TeXML application outbound Telnyx calls are placed through (ApplicationSid)."""
    plivo_auth_id: str | None = None
    """Plivo Auth ID: the account of REST hang-up and transfer."""
    plivo_auth_token: str | None = Field(default=None, repr=False)
    """Plivo Auth Token: checks X-Plivo-Signature-V3 on /plivo/voice, REST, stream binding."""
    plivo_api_base_url: str = "https://api.plivo.com"
    """Plivo REST base URL; tests point it at a fake on loopback."""
    plivo_stream_content_type: Literal[
        "audio/x-mulaw;rate=8000", "audio/x-l16;rate=8000", "audio/x-l16;rate=16000"
    ] = "audio/x-mulaw;rate=8000"
    """What the `<Stream contentType>` asks Plivo to stream both ways: μ-law, or L16 at 8 kHz or
    16 kHz (wideband, straight into Live's 16 kHz input)."""
    signalwire_project_id: str | None = None
    """SignalWire project ID: the account of REST hang-up and transfer."""
    signalwire_api_token: str | None = Field(default=None, repr=False)
    """SignalWire API token (REST, with the project ID)."""
    signalwire_signing_key: str | None = Field(default=None, repr=False)
    """SignalWire signing key: checks X-SignalWire-Signature on /signalwire/voice and binds
    each stream to its call."""
    signalwire_space_url: str | None = None
    """Your SignalWire space's REST base URL, e.g. https://example.signalwire.com."""
    vonage_signature_secret: str | None = Field(default=None, repr=False)
    """Vonage's signature secret (Dashboard > Settings): checks the signed-webhook JWT on
    /vonage/voice and binds each stream to its call."""
    vonage_application_id: str | None = None
    """The Vonage application answering the calls (REST JWTs; the calls' account)."""
    vonage_private_key: str | None = Field(default=None, repr=False)
    """The application's private key (PEM; one line with \\n works): REST hang-up, transfer."""
    vonage_api_base_url: str = "https://api.nexmo.com"
    """Vonage Voice REST base URL; tests point it at a fake on loopback."""
    vonage_audio_rate_hz: Literal[8000, 16000] = 16000
    """The L16 rate the NCCO asks Vonage to stream: 16000 (wideband, passed straight to Live's
    16 kHz input) or 8000."""
    exotel_account_sid: str | None = None
    """Exotel account SID: the calls' account (Exotel's webhook does not say it)."""
    exotel_api_key: str | None = None
    """Exotel API key (REST hang-up, with the token)."""
    exotel_api_token: str | None = Field(default=None, repr=False)
    """Exotel API token: REST, and binds each stream to its call (with the account SID)."""
    exotel_api_base_url: str = "https://cpaas-api.exotel.com"
    """Exotel REST base URL (https://cpaas-api.in.exotel.com for Mumbai accounts)."""
    asterisk_stream_token: str | None = Field(default=None, repr=False)
    """Required on /asterisk/media (`?token=` in websocket_client.conf's uri, or a bearer
    token) when set; unset: the WebSocket channel is not authenticated."""
    asterisk_audiosocket_port: int | None = Field(default=None, ge=0, le=65535)
    """TCP port for Asterisk's AudioSocket() (unset: no listener). AudioSocket has no
    authentication: keep it on a private network."""
    asterisk_audiosocket_host: str = "127.0.0.1"
    """Address the AudioSocket listener binds."""
    asterisk_audiosocket_agent: str | None = None
    """The agent AudioSocket calls get (the protocol carries only the call's UUID)."""
    asterisk_ami_host: str | None = None
    """Asterisk Manager Interface (AMI) host, for hang-up and transfer of Asterisk calls (with
    ASTERISK_AMI_USERNAME and _SECRET; unset: no transfer, hang-up on the socket only)."""
    asterisk_ami_port: int = Field(default=5038, ge=1, le=65535)
    """AMI TCP port (manager.conf `port`)."""
    asterisk_ami_username: str | None = None
    """The manager.conf user (`write = call,reporting`)."""
    asterisk_ami_secret: str | None = Field(default=None, repr=False)
    """That user's `secret`."""
    asterisk_transfer_context: str = Field(
        default="gateway-transfer", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,78}$"
    )
    """The dialplan context a transfer redirects the caller to (extension `s`, priority 1),
    which dials ${GATEWAY_TRANSFER_TO}."""
    max_concurrent_calls: int = Field(default=200, ge=0)
    """Calls served at once; beyond it callers hear "busy" (0: no limit)."""
    max_carrier_frame_bytes: int = Field(default=64 * 1024, ge=1024)
    """Largest media-stream WebSocket message accepted (a Twilio frame is ~300 bytes)."""
    max_carrier_frames_per_s: float = Field(default=100.0, ge=0)
    """Sustained media-stream messages per second per call (Twilio sends ~50); 0: no limit."""
    max_caller_audio_speed: float = Field(default=1.0, ge=0)
    """Seconds of caller audio per second that reach Live (it bills them): 1 is real time, as
    Twilio sends, with 2 s of catch-up; beyond, audio is dropped and 5 s dropped ends the call.
    0: no limit (replays and tests run faster than real time)."""
    start_timeout_s: float = Field(default=3.0, gt=0)
    """How long a new media stream may take to send `start` (Twilio sends it at once); a
    stream that has not by then is closed and its call slot freed."""
    carrier_idle_timeout_s: float = Field(default=10.0, ge=0)
    """A started stream with no media frame for this long is ended as disconnected (Twilio
    sends one every 20 ms, silence included); 0: never."""
    media_heartbeat_s: float = Field(default=20.0, ge=0)
    """WebSocket ping interval on /media while the peer sends nothing; a peer that does not
    answer within half of it is closed. 0: no pings."""
    header_timeout_s: float = Field(default=10.0, ge=0)
    """How long an HTTP request (head and body, upgrades included) may take to arrive; a
    slower connection is closed. 0: no limit."""
    max_pending_requests_per_ip: int = Field(default=20, ge=0)
    """Connections one IP may have still sending a request; more are closed at once (behind a
    proxy that does not buffer requests, every client shares its IP). 0: no limit."""

    recordings_dir: Path = Path("recordings")
    """Where call recordings (.jsonl, .wav, .txt) are written."""
    record_calls: Literal["agent", "all", "off"] = "agent"
    """agent: as each agent's `recording` says; all: every call; off: none."""
    max_recording_bytes_per_call: int = Field(default=256 * 1024 * 1024, ge=0)
    """A call's recording (.jsonl, .audio and .wav together) stops growing here: ~40 minutes of
    a call whose agent never stops talking (~6 MiB a minute); the call goes on. 0: no limit."""
    recordings_url: str | None = None
    """Durable store for recordings: gs://BUCKET/PREFIX (Google Cloud Storage), s3://BUCKET/PREFIX
    (S3, or S3-compatible with AWS_ENDPOINT_URL) or file:///PATH (a mounted folder). Set, the
    RECORDINGS_DIR is a spool: each call's files are uploaded once it ends (retried until stored)
    and then removed there. Unset: recordings stay in RECORDINGS_DIR."""
    recordings_keep_local: bool = False
    """With RECORDINGS_URL: keep each recording in RECORDINGS_DIR after its verified upload too
    (else the spool copies are removed)."""
    recordings_upload_backoff_s: float = Field(default=1.0, gt=0)
    """With RECORDINGS_URL: wait before retrying a failed upload; doubles per failure in a row
    (with jitter) up to RECORDINGS_UPLOAD_MAX_BACKOFF_S, and an upload is retried until stored."""
    recordings_upload_max_backoff_s: float = Field(default=300.0, gt=0)
    """Longest wait between upload retries while the store is down."""
    recordings_upload_shutdown_s: float = Field(default=10.0, ge=0)
    """At shutdown, how long uploads still pending may go on; what is left stays in the spool
    and is uploaded at the next start."""

    api_token: str | None = Field(default=None, repr=False)
    """Bearer token of the outbound-call API (`POST /calls`, …; `Authorization: Bearer …`).
    Unset: the /calls routes and the carriers' /…/status routes are off (404)."""
    console_token: str | None = Field(default=None, repr=False)
    """Turns on the operator console at /console (live calls, history, agents): its bearer
    token, or open `/console?token=…` once for a session cookie. At least 16 characters.
    Unset: every /console path is 404. The console shows callers' numbers and transcripts:
    serve it only on an internal network or behind your own authentication."""
    outbound_from_number: str | None = None
    """The caller ID of outbound calls that name no `from` (E.164; unset: the agent's first
    line)."""

    unknown_agent: Literal["default", "reject"] = "default"
    """`/twiml?agent=NAME` naming no agent: `default` answers with the line's (or the default)
    agent, `reject` answers that the line is unavailable and hangs up; both log a warning."""
    drain_timeout_s: float = Field(default=30.0, ge=0)
    """On SIGTERM, how long live calls may run on before they are cut."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """debug | info | warning | error (JSON lines; pretty on a terminal)."""

    @field_validator("live_input_rate_hz")
    @classmethod
    def _check_input_rate(cls, value: int) -> int:
        if value not in (16000, 24000):
            raise ValueError("must be 24000 or 16000")
        return value

    @field_validator(
        "twilio_api_base_url",
        "telnyx_api_base_url",
        "plivo_api_base_url",
        "vonage_api_base_url",
        "exotel_api_base_url",
    )
    @classmethod
    def _check_twilio_api_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("outbound_from_number")
    @classmethod
    def _check_outbound_from_number(cls, value: str | None) -> str | None:
        if value is not None and not E164.fullmatch(value):
            raise ValueError("must be an E.164 number (+ and 7 to 15 digits)")
        return value

    @field_validator("api_token", "console_token")
    @classmethod
    def _check_api_token(cls, value: str | None) -> str | None:
        if value is not None and (len(value) < 16 or not value.isascii() or " " in value):
            raise ValueError("must be at least 16 ASCII characters without spaces")
        return value

    @field_validator("signalwire_space_url")
    @classmethod
    def _check_space_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_context_window(self) -> Settings:
        if self.live_context_target_tokens >= self.live_context_trigger_tokens:
            raise ValueError(
                "LIVE_CONTEXT_TARGET_TOKENS must be below LIVE_CONTEXT_TRIGGER_TOKENS "
                f"({self.live_context_target_tokens} >= {self.live_context_trigger_tokens})"
            )
        return self

    @field_validator("recordings_url")
    @classmethod
    def _check_recordings_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = parse_recordings_url(value).scheme
        if scheme in _STORE_LIBRARIES:
            module, package, extra = _STORE_LIBRARIES[scheme]
            try:
                found = importlib.util.find_spec(module) is not None  # found, not imported
            except ModuleNotFoundError:  # its parent package is missing too
                found = False
            if not found:
                raise ValueError(f"{scheme}:// needs {package}: pip install 'gateway[{extra}]'")
        return value

    @model_validator(mode="after")
    def _check_upload_backoff(self) -> Settings:
        if self.recordings_upload_max_backoff_s < self.recordings_upload_backoff_s:
            raise ValueError(
                "RECORDINGS_UPLOAD_MAX_BACKOFF_S must be at least RECORDINGS_UPLOAD_BACKOFF_S "
                f"({self.recordings_upload_max_backoff_s} < {self.recordings_upload_backoff_s})"
            )
        return self

    @model_validator(mode="after")
    def _check_twilio_api_key(self) -> Settings:
        if bool(self.twilio_api_key_sid) != bool(self.twilio_api_key_secret):
            raise ValueError("TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET go together")
        if bool(self.plivo_auth_id) != bool(self.plivo_auth_token):
            # The webhook names no account: streams are bound to PLIVO_AUTH_ID's calls.
            raise ValueError("PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN go together")
        if bool(self.vonage_application_id) != bool(self.vonage_private_key):
            raise ValueError("VONAGE_APPLICATION_ID and VONAGE_PRIVATE_KEY go together")
        ami = (self.asterisk_ami_host, self.asterisk_ami_username, self.asterisk_ami_secret)
        if any(ami) and not all(ami):
            raise ValueError(
                "ASTERISK_AMI_HOST, ASTERISK_AMI_USERNAME and ASTERISK_AMI_SECRET go together"
            )
        if all(ami) and not self.asterisk_stream_token:
            # Without it anyone could open a stream naming any channel for AMI to act on.
            raise ValueError("ASTERISK_AMI_* needs ASTERISK_STREAM_TOKEN (streams name channels)")
        return self

    @model_validator(mode="after")
    def _resolve_backend(self) -> Settings:
        if self.live_backend is None:
            if self.google_cloud_project:
                self.live_backend = LiveBackend.VERTEX
            elif self.gemini_api_key:
                self.live_backend = LiveBackend.GEMINI
            else:
                self.live_backend = LiveBackend.EMULATOR
        if self.live_backend is LiveBackend.VERTEX and not self.google_cloud_project:
            raise ValueError("GOOGLE_CLOUD_PROJECT is required when LIVE_BACKEND=vertex")
        if self.live_backend is LiveBackend.GEMINI and not self.gemini_api_key:
            raise ValueError("GEMINI_API_KEY is required when LIVE_BACKEND=gemini")
        if self.public_url is not None:
            if not self.public_url.startswith(("http://", "https://", "ws://", "wss://")):
                raise ValueError("PUBLIC_URL must start with http://, https://, ws:// or wss://")
            self.public_url = self.public_url.rstrip("/")
        if self.live_url is not None and not self.live_url.startswith(("ws://", "wss://")):
            raise ValueError("LIVE_URL must be a ws:// or wss:// URL")
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: str | None) -> str | None:
        for entry in _split_list(value):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR network") from None
        return value

    @property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """TRUSTED_PROXIES parsed; empty means no proxy is trusted."""
        return tuple(
            ipaddress.ip_network(entry, strict=False) for entry in _split_list(self.trusted_proxies)
        )

    @property
    def account_sid_allowlist(self) -> frozenset[str]:
        """TWILIO_ACCOUNT_SIDS as a set; empty means every account may call in."""
        raw = self.twilio_account_sids or ""
        return frozenset(sid.strip() for sid in raw.split(",") if sid.strip())

    @property
    def backend(self) -> LiveBackend:
        """The resolved backend (never None after validation)."""
        assert self.live_backend is not None
        return self.live_backend

    @property
    def dialect(self) -> Backend:
        """The Live dialect spoken: Vertex's, or the Developer API's (also the emulator's)."""
        return Backend.VERTEX if self.backend is LiveBackend.VERTEX else Backend.GEMINI

    @property
    def api_version(self) -> str:
        return self.live_api_version or DEFAULT_API_VERSION[self.backend]

    @property
    def model(self) -> str:
        if self.live_model:
            return self.live_model
        return DEFAULT_VERTEX_MODEL if self.backend is LiveBackend.VERTEX else DEFAULT_GEMINI_MODEL


@dataclass(frozen=True)
class RecordingsUrl:
    """RECORDINGS_URL taken apart: `gs` / `s3` with a bucket, or `file` with a folder (`path`)."""

    scheme: Literal["gs", "s3", "file"]
    bucket: str
    """The bucket (gs, s3); empty for file."""
    prefix: str
    """Object names start with `prefix/` (no slash at either end; may be empty)."""
    path: Path | None = None
    """The folder (file)."""

    def key(self, name: str) -> str:
        """The object name of a file called `name`: `<prefix>/<name>`."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def __str__(self) -> str:
        if self.scheme == "file":
            return f"file://{self.path}"
        return f"{self.scheme}://{self.bucket}/{self.prefix}".rstrip("/")


_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
_STORE_LIBRARIES = {
    "gs": ("google.cloud.storage", "google-cloud-storage", "gcs"),
    "s3": ("boto3", "boto3", "s3"),
}
"""The module each scheme needs (looked for, not imported), its package, the extra with it."""
_URL_FORMS = "gs://BUCKET/PREFIX, s3://BUCKET/PREFIX or file:///PATH"


def parse_recordings_url(url: str) -> RecordingsUrl:
    """RECORDINGS_URL's parts, or ValueError saying what the URL should look like."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("gs", "s3", "file"):
        raise ValueError(f"must be {_URL_FORMS}")
    if scheme == "file":
        host, slash, path = rest.partition("/")
        if host not in ("", "localhost") or not slash:
            raise ValueError(f"must be {_URL_FORMS} (file:// takes an absolute path)")
        return RecordingsUrl("file", "", "", Path("/" + path.strip("/")))
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.fullmatch(bucket) or "?" in prefix or "#" in prefix:
        raise ValueError(f"must be {_URL_FORMS} (a bucket is lowercase letters, digits, - . _)")
    return RecordingsUrl("gs" if scheme == "gs" else "s3", bucket, prefix.strip("/"))


def settings_help(width: int = 100) -> str:
    """Every setting with its default and what it does (the epilog of `gateway serve --help`)."""
    lines = ["settings (environment variables, or KEY=value lines in ./.env):"]
    for name, info in Settings.model_fields.items():
        default = info.default
        if isinstance(default, StrEnum):
            default = default.value
        shown = "unset" if default is None else str(default)
        lines.append(f"  {name.upper()} (default: {shown})")
        text = " ".join((info.description or "").split())
        lines += textwrap.wrap(text, width, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


def _split_list(raw: str | None) -> list[str]:
    return [entry.strip() for entry in (raw or "").split(",") if entry.strip()]


def unknown_env_file_keys(env_file: str | Path | None = ".env") -> list[tuple[str, str | None]]:
    """Keys in `env_file` that name no setting (a typo such as PROT=8080 is otherwise silently
    ignored), each with the nearest setting's name if one is close; [] without the file."""
    if env_file is None or not Path(env_file).is_file():
        return []
    from dotenv import dotenv_values  # pydantic-settings' own .env reader

    known = [name.upper() for name in Settings.model_fields]
    unknown = []
    for key in dotenv_values(env_file):
        if key.upper() not in known:
            nearest = difflib.get_close_matches(key.upper(), known, n=1, cutoff=0.75)
            unknown.append((key, nearest[0] if nearest else None))
    return unknown


def load_settings(env_file: str | None = ".env", **overrides: Any) -> Settings:
    """Build settings from env and `env_file` (plus explicit overrides), or raise `SettingsError`.

    Empty values count as unset, so a copied `.env.example` works as it is.
    """
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]).upper()
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{field}: {message}" if field else message)
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
