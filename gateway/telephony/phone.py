"""The carrier's side of a call, simulated: what every fake phone offers (sans-IO).

Each carrier has one (`TwilioPhone`, `TelnyxPhone`, …, next to its carrier module): it signs the
voice webhook as the carrier would, reads the gateway's answer for the stream URL and the
parameters it must bring back, builds the frames the carrier sends, and reads the frames the
gateway sends back. The conformance suite (tests/telephony/test_conformance.py), `gateway call
--carrier NAME` and the replay tools drive every carrier through this one interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = ["CarrierPhone", "PhoneEvent", "SignedRequest", "StreamOrder"]


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A voice webhook as the carrier sends it (signed when the phone has the carrier's key)."""

    method: Literal["GET", "POST"]
    url: str
    """The full URL requested (query included)."""
    headers: Mapping[str, str]
    body: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class StreamOrder:
    """What the gateway's answer tells the carrier to do: stream to `url`, with `parameters`."""

    url: str
    parameters: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class PhoneEvent:
    """One frame the gateway sent, read back: `media` (audio in the stream's format), `mark`
    (a playback marker, by name), `clear` (drop queued audio), or `other` (anything else)."""

    kind: Literal["media", "mark", "clear", "other"]
    audio: bytes = b""
    name: str = ""


class CarrierPhone(Protocol):
    """One call on one carrier, from the carrier's side."""

    @property
    def carrier(self) -> str:
        """The route name (`twilio`, `telnyx`, …)."""
        ...

    call_id: str
    """The carrier's id of this call (what its REST API is asked to act on)."""

    @property
    def stream_format(self) -> tuple[str, int]:
        """(encoding, rate in Hz) of the stream's audio as this phone speaks it (`media`'s
        input, `read`'s media output): `gateway.audio.codec.PhoneAudio` converts."""
        ...

    def voice_webhook(self, url: str, *, from_number: str, to_number: str) -> SignedRequest:
        """The webhook that announces this call to `url` (our /{carrier}/voice)."""
        ...

    def read_answer(self, content_type: str, body: str) -> StreamOrder:
        """The stream URL and parameters in the gateway's webhook answer; ValueError if the
        answer does not connect a bidirectional stream."""
        ...

    def stream_url(self, url: str, parameters: Mapping[str, str]) -> str:
        """The stream URL to dial without a webhook (`gateway call`): `url` itself, or with
        `parameters` in its query for carriers that carry them there (Asterisk)."""
        ...

    def stream_headers(self, url: str) -> Mapping[str, str]:
        """Headers of the WebSocket upgrade to `url` (signed where the carrier signs it)."""
        ...

    def opening(self, parameters: Mapping[str, str]) -> list[str | bytes]:
        """The frames a stream starts with (e.g. `connected`, `start`), carrying `parameters`."""
        ...

    def media(self, audio: bytes) -> str | bytes:
        """20 ms of caller audio (8 kHz μ-law unless the phone says otherwise)."""
        ...

    def dtmf(self, digit: str) -> str | bytes:
        """The caller pressed `digit`."""
        ...

    def mark_played(self, name: str) -> str | bytes:
        """The carrier's notice that the audio before marker `name` has played."""
        ...

    def stop(self) -> str | bytes:
        """The caller hung up; NotImplementedError when the carrier hangs up by closing the
        socket (Asterisk)."""
        ...

    def read(self, frame: str | bytes) -> PhoneEvent:
        """A frame the gateway sent on the stream."""
        ...
