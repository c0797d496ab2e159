"""Every carrier the gateway serves, by route name (`/{name}/voice`, `/{name}/media`).

Adding a carrier: its module (a `Carrier` with `from_settings`, see `carrier.py`), its fake
phone (`phone.py`), one line here, and one line in tests/telephony/cases.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from gateway.settings import Settings
from gateway.telephony.carrier import Carrier
from gateway.telephony.twilio import TwilioCarrier

__all__ = ["CARRIERS", "carriers_from_settings"]

CARRIERS: Final[Mapping[str, Callable[[Settings], Carrier]]] = MappingProxyType(
    {
        "twilio": TwilioCarrier.from_settings,
    }
)
"""Route name → how to build the carrier from settings."""


def carriers_from_settings(settings: Settings) -> dict[str, Carrier]:
    """One configured instance of every carrier (each serves its routes whether or not its
    keys are set: without them its webhooks are unsigned and its streams unbound)."""
    return {name: build(settings) for name, build in CARRIERS.items()}
