"""Carrier-neutral media-stream events and the codec interface every carrier implements.

The rest of the gateway only sees these events, so adding Telnyx, Plivo, … means one new
module that turns that carrier's JSON into them (and builds its outbound frames); nothing
downstream changes. Everything here is sans-IO: no sockets, no clocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias, runtime_checkable

__all__ = [
    "CarrierEvent",
    "CarrierNotice",
    "Connected",
    "Dtmf",
    "MarkEcho",
    "MediaFrame",
    "MediaStreamCodec",
    "StreamStart",
    "StreamStop",
    "TelephonyProtocolError",
    "UnknownEvent",
]


class TelephonyProtocolError(ValueError):
    """A carrier frame broke the wire protocol; the message names the field and the rule."""


@dataclass(frozen=True, slots=True)
class Connected:
    """The carrier opened the socket; no call metadata yet."""

    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class StreamStart:
    """Call metadata, sent once before any media; `custom_parameters` is read-only."""

    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    custom_parameters: Mapping[str, str]
    encoding: str
    sample_rate_hz: int
    channels: int
    sequence_number: int | None


@dataclass(frozen=True, slots=True)
class MediaFrame:
    """One chunk of caller audio; `payload` is the decoded μ-law bytes (owned by the event).

    `chunk` and `timestamp_ms` (since stream start) may skip or repeat on a bad network.
    """

    stream_sid: str
    track: str
    chunk: int | None
    timestamp_ms: int | None
    payload: bytes = field(repr=False)
    sequence_number: int | None


@dataclass(frozen=True, slots=True)
class Dtmf:
    """A key the caller pressed."""

    stream_sid: str
    digit: str
    track: str
    sequence_number: int | None


@dataclass(frozen=True, slots=True)
class MarkEcho:
    """A mark we sent came back: audio queued before it finished playing (or was cleared)."""

    stream_sid: str
    name: str
    sequence_number: int | None


@dataclass(frozen=True, slots=True)
class StreamStop:
    """The carrier ended the stream (hang-up or stream stopped); no more frames follow."""

    stream_sid: str
    call_sid: str
    account_sid: str
    sequence_number: int | None


@dataclass(frozen=True, slots=True)
class CarrierNotice:
    """A well-formed carrier event the call has nothing to do with: an acknowledgement (Plivo's
    `clearedAudio`), or the carrier's report that it refused something we sent (`detail` set,
    e.g. Telnyx's `error`): logged, never taken as a malformed frame."""

    stream_sid: str
    event: str
    detail: str = ""
    """For a carrier's error report: what it said (code, title, detail)."""


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """An event type this codec does not know; kept, not rejected, so carriers can add events."""

    event: str
    raw: Mapping[str, Any]


CarrierEvent: TypeAlias = (
    Connected
    | StreamStart
    | MediaFrame
    | Dtmf
    | MarkEcho
    | StreamStop
    | CarrierNotice
    | UnknownEvent
)


@runtime_checkable
class MediaStreamCodec(Protocol):
    """Parse one inbound frame and build outbound ones for a single carrier.

    `parse` raises TelephonyProtocolError on a malformed frame. Builders return the frame to
    send: text (a JSON message) or bytes (a binary WebSocket message, e.g. Vonage's raw
    audio). Outbound audio is raw bytes in the stream's format (`StreamStart.encoding` and
    `sample_rate_hz`: μ-law or 16-bit little-endian PCM), 20 ms per frame.
    """

    @property
    def name(self) -> str:
        """The carrier's route name (`twilio`, …)."""
        ...

    def parse(self, frame: str | bytes) -> CarrierEvent: ...

    def build_media(self, stream_sid: str, audio: bytes) -> str | bytes: ...

    def build_mark(self, stream_sid: str, name: str) -> str | bytes: ...

    def build_clear(self, stream_sid: str) -> str | bytes: ...
