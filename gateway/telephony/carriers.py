"""Every carrier the gateway serves, by route name (`/{name}/voice`, `/{name}/media`).

Adding a carrier: its module (a `Carrier` with `from_settings`, see `carrier.py`), its fake
phone (`phone.py`), one line here, and one line in tests/telephony/cases.py.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Final

from gateway.settings import Settings
from gateway.telephony.carrier import Carrier
from gateway.telephony.phone import CarrierPhone

__all__ = [
    "CARRIERS",
    "PHONES",
    "carriers_from_settings",
    "media_path",
    "new_phone",
]

CARRIERS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "twilio": "gateway.telephony.twilio:TwilioCarrier",
        "signalwire": "gateway.telephony.signalwire:SignalWireCarrier",
        "plivo": "gateway.telephony.plivo:PlivoCarrier",
        "telnyx": "gateway.telephony.telnyx:TelnyxCarrier",
        "vonage": "gateway.telephony.vonage:VonageCarrier",
        "exotel": "gateway.telephony.exotel:ExotelCarrier",
        "asterisk": "gateway.telephony.asterisk:AsteriskCarrier",
    }
)
"""Route name → its carrier (module:class, with `from_settings`). A carrier whose settings are
all at their defaults loads at its first request (an idle gateway need not hold all seven
modules); a configured one is built at start-up, so a bad key stops the start."""


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


def new_phone(carrier: str) -> CarrierPhone:
    """A fresh keyless phone of `carrier`; ValueError naming the carriers there are."""
    where = PHONES.get(carrier)
    if where is None:
        raise ValueError(f"no carrier named {carrier!r} (carriers: {', '.join(sorted(PHONES))})")
    phone: CarrierPhone = _load(where)()
    return phone


def media_path(carrier: str) -> str:
    """Where a carrier's media stream connects (Twilio keeps its historic `/media`)."""
    return "/media" if carrier == "twilio" else f"/{carrier}/media"


class CarrierRegistry(Mapping[str, Carrier]):
    """Every carrier of CARRIERS, configured from `settings`, built when first asked for
    (Twilio and the configured ones at once)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._built: dict[str, Carrier] = {}
        for name in CARRIERS:
            if name == "twilio" or _configured(name, settings):
                self._build(name)  # now: its settings are checked at start-up

    def _build(self, name: str) -> Carrier:
        carrier: Carrier = _load(CARRIERS[name]).from_settings(self._settings)
        self._built[name] = carrier
        return carrier

    def __getitem__(self, name: str) -> Carrier:
        carrier = self._built.get(name)
        if carrier is not None:
            return carrier
        if name not in CARRIERS:
            raise KeyError(name)
        return self._build(name)

    def __iter__(self) -> Iterator[str]:
        return iter(CARRIERS)

    def __len__(self) -> int:
        return len(CARRIERS)


def _configured(name: str, settings: Settings) -> bool:
    """Whether any `{name}_…` setting differs from its default."""
    prefix = f"{name}_"
    return any(
        getattr(settings, field) != info.default
        for field, info in type(settings).model_fields.items()
        if field.startswith(prefix)
    )


def _load(where: str) -> Any:
    module, _, name = where.partition(":")
    return getattr(importlib.import_module(module), name)


def carriers_from_settings(settings: Settings) -> CarrierRegistry:
    """Every carrier, configured (each serves its routes whether or not its keys are set:
    without them its webhooks are unsigned and its streams unbound)."""
    return CarrierRegistry(settings)
