"""What the conformance suite needs to know about one carrier (one `CarrierCase` per carrier).

Adding a carrier to the suite is one entry in `tests/telephony/cases.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gateway.telephony.carrier import MULAW
from gateway.telephony.phone import CarrierPhone


@dataclass(frozen=True)
class RestRequest:
    """A request the gateway made to the carrier's (fake) REST API."""

    method: str
    path: str
    """Path and query, as sent."""
    headers: Mapping[str, str]
    body: bytes


RestAction = tuple[Literal["hang_up", "transfer"], str, str]
"""What a REST request asked for: the action, the carrier's call id, and (transfer) the target
number or SIP URI ("" for a hang-up)."""


@dataclass(frozen=True)
class CarrierCase:
    name: str
    """The carrier's route name."""
    settings: Mapping[str, Any]
    """Settings fields that switch the carrier's signature checks and stream binding on (the
    keys the phone signs with)."""
    make_phone: Callable[[], CarrierPhone]
    """A new phone (a new call id each time) holding the keys of `settings`."""
    rest_settings: Callable[[str], Mapping[str, Any]]
    """Settings fields that point the carrier's REST API at this base URL (a fake on loopback),
    with credentials."""
    rest_action: Callable[[RestRequest], RestAction | None]
    """What a request to the fake REST API asked for, None if it is not a hang-up/transfer."""
    rest_reply: Callable[[RestRequest], tuple[int, str]]
    """The fake REST API's answer (status, JSON body) to a request, as the carrier answers."""
    unsigned_settings: Mapping[str, Any] | None = None
    """Settings for "signatures on" with a phone that signs with the wrong key: None to use
    `settings` with a phone from `make_wrong_phone`."""
    make_wrong_phone: Callable[[], CarrierPhone] | None = None
    """A phone whose webhook signature must be refused under `settings`."""
    variant: str = ""
    """Told apart from the carrier's default case in test ids (e.g. `l16-16k`)."""
    stream_format: tuple[str, int] = (MULAW, 8000)
    """(encoding, rate) the carrier streams as `settings` make the gateway ask for it: μ-law
    at 8 kHz, or L16 at 8 kHz (320 bytes per 20 ms) or 16 kHz (640 bytes)."""
    transfers: bool = True
    """The gateway can transfer its calls through the carrier's REST API."""
