"""Every carrier of the conformance suite: adding one is one line here."""

from __future__ import annotations

from tests.telephony import plivo_case, signalwire_case, telnyx_case, twilio_case
from tests.telephony.carrier_case import CarrierCase

CASES: list[CarrierCase] = [
    twilio_case.case(),
    signalwire_case.case(),
    plivo_case.case(),
    telnyx_case.case(),
]
