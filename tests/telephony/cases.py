"""Every carrier of the conformance suite: adding one is one line here."""

from __future__ import annotations

from dataclasses import replace

from gateway.telephony.carriers import L16_CARRIERS
from tests.telephony import (
    exotel_case,
    plivo_case,
    signalwire_case,
    telnyx_case,
    twilio_case,
    vonage_case,
)
from tests.telephony.carrier_case import CarrierCase

CASES: list[CarrierCase] = [
    twilio_case.case(),
    signalwire_case.case(),
    plivo_case.case(),
    telnyx_case.case(),
    replace(vonage_case.case(), l16="vonage" in L16_CARRIERS),
    replace(exotel_case.case(), l16="exotel" in L16_CARRIERS, transfers=False),  # no REST one
]
