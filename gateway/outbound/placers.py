"""Every carrier's placer, built from settings (or why it has none)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.outbound.placer import Placer, SignalWirePlacer, TwilioPlacer

if TYPE_CHECKING:
    from gateway.settings import Settings

__all__ = ["placers_from_settings"]


def placers_from_settings(settings: Settings) -> dict[str, Placer | str]:
    """Per carrier, its placer, or why it has none (a message naming the settings)."""
    from gateway.outbound.plivo_placer import plivo_placer
    from gateway.outbound.telnyx_placer import telnyx_placer
    from gateway.outbound.vonage_placer import vonage_placer
    from gateway.telephony.signalwire import SignalWireRest
    from gateway.telephony.twilio_rest import TwilioRest  # the SDK: only with outbound on

    twilio: Placer | str
    rest = TwilioRest.from_settings(settings)
    if rest is None:
        twilio = (
            "Twilio REST credentials are not set: TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN, "
            "or TWILIO_API_KEY_SID + TWILIO_API_KEY_SECRET"
        )
    elif not settings.twilio_auth_token:
        twilio = "TWILIO_AUTH_TOKEN is not set: Twilio's status callbacks could not be verified"
    else:
        twilio = TwilioPlacer(rest)
    signalwire: Placer | str
    signalwire_rest = SignalWireRest.from_settings(settings)
    if signalwire_rest is None:
        signalwire = (
            "SignalWire REST credentials are not set: SIGNALWIRE_SPACE_URL, "
            "SIGNALWIRE_PROJECT_ID and SIGNALWIRE_API_TOKEN"
        )
    elif not settings.signalwire_signing_key:
        signalwire = (
            "SIGNALWIRE_SIGNING_KEY is not set: SignalWire's status callbacks could not be "
            "verified"
        )
    else:
        signalwire = SignalWirePlacer(signalwire_rest)
    return {
        "twilio": twilio,
        "signalwire": signalwire,
        "telnyx": telnyx_placer(settings),
        "plivo": plivo_placer(settings),
        "vonage": vonage_placer(settings),
    }
