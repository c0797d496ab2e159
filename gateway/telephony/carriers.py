"""Every carrier the gateway serves, by route name (`/{name}/voice`, `/{name}/media`).

Adding a carrier: its module (a `Carrier` with `from_settings`, see `carrier.py`), its fake
phone (`phone.py`), one line here, and one line in tests/telephony/cases.py.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from gateway.settings import Settings
from gateway.telephony.asterisk import AsteriskCarrier
from gateway.telephony.carrier import Carrier
from gateway.telephony.exotel import ExotelCarrier
from gateway.telephony.phone import CarrierPhone
from gateway.telephony.plivo import PlivoCarrier
from gateway.telephony.signalwire import SignalWireCarrier
from gateway.telephony.telnyx import TelnyxCarrier
from gateway.telephony.twilio import TwilioCarrier
from gateway.telephony.vonage import VonageCarrier

__all__ = [
    "CARRIERS",
    "L16_CARRIERS",
    "PHONES",
    "carriers_from_settings",
    "media_path",
    "new_phone",
]

CARRIERS: Final[Mapping[str, Callable[[Settings], Carrier]]] = MappingProxyType(
    {
        "twilio": TwilioCarrier.from_settings,
        "signalwire": SignalWireCarrier.from_settings,
        "plivo": PlivoCarrier.from_settings,
        "telnyx": TelnyxCarrier.from_settings,
        "vonage": VonageCarrier.from_settings,
        "exotel": ExotelCarrier.from_settings,
        "asterisk": AsteriskCarrier.from_settings,
    }
)
"""Route name → how to build the carrier from settings."""

PHONES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "twilio": "gateway.telephony.twilio_caller:TwilioPhone",
        "signalwire": "gateway.telephony.signalwire_phone:SignalWirePhone",
        "plivo": "gateway.telephony.plivo_phone:PlivoPhone",
        "telnyx": "gateway.telephony.telnyx_phone:TelnyxPhone",
        "vonage": "gateway.telephony.vonage_phone:VonagePhone",
        "exotel": "gateway.telephony.exotel_phone:ExotelPhone",
        "asterisk": "gateway.telephony.asterisk_phone:AsteriskPhone",
    }
)
"""Route name → its fake phone (module:class, imported when asked for: `gateway serve`
never needs one), without keys (`gateway call --carrier`; a gateway without the carrier's
keys takes its unsigned, unbound streams)."""


L16_CARRIERS: Final = frozenset({"vonage", "exotel"})
"""Carriers whose streams (as their phones speak them) are 16-bit PCM at 8 kHz, not μ-law."""


def new_phone(carrier: str) -> CarrierPhone:
    """A fresh keyless phone of `carrier`; ValueError naming the carriers there are."""
    where = PHONES.get(carrier)
    if where is None:
        raise ValueError(f"no carrier named {carrier!r} (carriers: {', '.join(sorted(PHONES))})")
    module, _, name = where.partition(":")
    phone: CarrierPhone = getattr(importlib.import_module(module), name)()
    return phone


def media_path(carrier: str) -> str:
    """Where a carrier's media stream connects (Twilio keeps its historic `/media`)."""
    return "/media" if carrier == "twilio" else f"/{carrier}/media"


def carriers_from_settings(settings: Settings) -> dict[str, Carrier]:
    """One configured instance of every carrier (each serves its routes whether or not its
    keys are set: without them its webhooks are unsigned and its streams unbound)."""
    return {name: build(settings) for name, build in CARRIERS.items()}
