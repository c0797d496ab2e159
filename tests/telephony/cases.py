"""Every carrier of the conformance suite: adding one is one line here."""

from __future__ import annotations

from dataclasses import replace

from gateway.telephony.carrier import L16
from tests.telephony import (
    exotel_case,
    plivo_case,
    signalwire_case,
    telnyx_case,
    twilio_case,
    vonage_case,
)
from tests.telephony.carrier_case import CarrierCase

PLIVO_L16_16K = "audio/x-l16;rate=16000"

CASES: list[CarrierCase] = [
    twilio_case.case(),
    signalwire_case.case(),
    plivo_case.case(),
    replace(
        plivo_case.case(),
        variant="l16-16k",
        settings={**plivo_case.case().settings, "plivo_stream_content_type": PLIVO_L16_16K},
        stream_format=(L16, 16000),
    ),
    telnyx_case.case(),
    replace(vonage_case.case(), stream_format=(L16, 16000)),
    replace(exotel_case.case(), stream_format=(L16, 8000), transfers=False),  # no REST one
]
