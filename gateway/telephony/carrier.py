"""What a carrier is to the gateway: one sans-IO description per carrier, all alike.

A carrier (Twilio, Telnyx, Plivo, SignalWire, …) answers three questions, and nothing else in
the gateway knows which carrier it serves:

* **its voice webhook** — is this request really from the carrier (`verify_webhook`), which call
  is it (`inbound_call`), and the document that connects the call to our media WebSocket with
  its context (`connect`) or turns it away with a spoken message (`refuse`);
* **its media stream** — a fresh `MediaStreamCodec` per stream (`codec`): inbound frames into
  `gateway.telephony.base` events, outbound audio / marks / clear into frames;
* **its REST API mid-call** — hang up and transfer (`rest`), when credentials are set.

Everything here is pure: requests come in as `WebhookRequest` (the public URL the carrier
signed, its headers, body and fields), answers go out as `WebhookAnswer`. `gateway.server`
does the HTTP; `gateway.telephony.carriers` lists the carriers by route name.

Audio on the stream is named by `StreamStart.encoding` (`MULAW` or `L16`) and
`StreamStart.sample_rate_hz`; media payloads and `build_media` audio are raw bytes in that
format (μ-law: one byte per sample; L16: 16-bit little-endian PCM).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from gateway.audio.codec import L16_ENCODING, MULAW_ENCODING
from gateway.telephony.base import MediaStreamCodec
from gateway.tools.spec import TransferTarget

__all__ = [
    "L16",
    "MULAW",
    "Carrier",
    "CarrierRequestError",
    "CarrierRest",
    "CarrierRestError",
    "InboundCall",
    "WebhookAnswer",
    "WebhookRequest",
]

MULAW: Final = MULAW_ENCODING
"""`StreamStart.encoding` of G.711 μ-law (one byte per sample)."""
L16: Final = L16_ENCODING
"""`StreamStart.encoding` of 16-bit linear PCM, little-endian (two bytes per sample)."""


class CarrierRequestError(ValueError):
    """A webhook request that is not a usable call (a field missing or malformed); the message
    names the field. The server answers 400 and logs it."""


class CarrierRestError(RuntimeError):
    """A carrier REST request failed (HTTP error, network, timeout); the message says which."""


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """An HTTP request from a carrier, as the carrier made (and signed) it."""

    method: str
    url: str
    """The full public URL the carrier requested, query included (what signatures cover)."""
    headers: Mapping[str, str]
    """Header names in lower case."""
    body: bytes = field(repr=False)
    params: Mapping[str, str]
    """The request's fields: the form of a form POST, the top-level strings of a JSON body,
    else the query string."""


@dataclass(frozen=True, slots=True)
class InboundCall:
    """What a voice webhook says about the call it announces."""

    call_id: str
    """The carrier's id for the call (what its REST API acts on)."""
    account_id: str
    """The carrier account the call belongs to ("" when the carrier does not say)."""
    from_number: str | None
    to_number: str | None


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    """The response body to a voice webhook (TwiML, TeXML, Plivo XML, NCCO JSON, …)."""

    body: str
    content_type: str


class CarrierRest(Protocol):
    """Mid-call REST operations; raise CarrierRestError (or a subclass) on failure."""

    async def hang_up(self, account_id: str | None, call_id: str) -> None: ...

    async def transfer(
        self, account_id: str | None, call_id: str, target: TransferTarget
    ) -> None: ...


class Carrier(Protocol):
    """One carrier, configured from settings (see `gateway.telephony.carriers`)."""

    @property
    def name(self) -> str:
        """Route name: the carrier's webhook is `/{name}/voice`, its stream `/{name}/media`."""
        ...

    @property
    def account_allowlist(self) -> frozenset[str]:
        """Accounts allowed to call in (empty: any), checked on the webhook and the stream."""
        ...

    @property
    def signed(self) -> bool:
        """Whether webhook signatures are checked (the carrier's key or token is set)."""
        ...

    @property
    def binding_secret(self) -> str | None:
        """A secret of this deployment to bind streams to the calls the webhook announced
        (gateway.security.call_binding); None: streams are not bound (unauthenticated)."""
        ...

    @property
    def upgrade_vouches_call(self) -> bool:
        """Whether a stream whose upgrade `verify_stream` accepted is vouched for by that alone:
        a carrier without a webhook to bind streams to, whose upgrade carries a secret of this
        deployment (Asterisk with ASTERISK_STREAM_TOKEN). Such streams, like bound ones, get the
        carrier's REST API, which acts on the call id the stream names."""
        ...

    def verify_webhook(self, request: WebhookRequest) -> str | None:
        """None when the request is signed by the carrier (or signatures are off), else why
        not (`missing_signature`, `invalid_signature`, `stale_signature`, …)."""
        ...

    def verify_stream(self, request: WebhookRequest) -> str | None:
        """The same for the media WebSocket's upgrade request (carriers that sign it)."""
        ...

    def inbound_call(self, request: WebhookRequest) -> InboundCall:
        """The call a voice webhook announces; raises CarrierRequestError. Its `call_id` and
        `account_id` are what the stream's `StreamStart.call_sid` / `account_sid` will say
        (the stream binding covers them)."""
        ...

    def connect(self, stream_url: str, parameters: Mapping[str, str]) -> WebhookAnswer:
        """The answer that streams the call, both ways, to `stream_url` (ws(s)://…), with
        `parameters` coming back in the stream's `StreamStart.custom_parameters`."""
        ...

    def refuse(self, message: str) -> WebhookAnswer:
        """The answer that says `message` and hangs up (all lines busy, no such agent)."""
        ...

    def hang_up_answer(self) -> WebhookAnswer:
        """The answer that ends the call at once, saying nothing (an outbound call answered by
        a machine the agent does not leave a message on, or one this gateway did not place)."""
        ...

    def codec(self, upgrade: WebhookRequest) -> MediaStreamCodec:
        """A codec for the media stream `upgrade` opens (codecs may keep per-stream state;
        a carrier that brings `connect`'s parameters back in the stream URL's query reads them
        from `upgrade.params` into `StreamStart.custom_parameters`)."""
        ...

    def rest(self) -> CarrierRest | None:
        """The carrier's REST API, or None without credentials."""
        ...
