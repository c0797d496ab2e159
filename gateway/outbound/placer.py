"""Placing an outbound call, and hanging it up, through a carrier's REST API.

A `Placer` per carrier. Twilio's asks Calls create to fetch the call's answer from our own
voice webhook, `{PUBLIC_URL}/twilio/voice?outbound=<id>` (which connects the media stream back
to this gateway), and to report its progress to `{PUBLIC_URL}/twilio/status?outbound=<id>`.
SignalWire's Compatibility API is Twilio's: the same Calls create on the space's LaML REST,
answered at `{PUBLIC_URL}/signalwire/voice?outbound=<id>`, reporting to
`{PUBLIC_URL}/signalwire/status?outbound=<id>`. Telnyx (TeXML), Plivo and Vonage have their
own modules (`gateway.outbound.telnyx_placer`, `…plivo_placer`, `…vonage_placer`), on the same
URLs under `/telnyx/…`, `/plivo/…` and `/vonage/…`; `gateway.outbound.placers` builds them all
from settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from gateway.telephony.signalwire import SignalWireRest
    from gateway.telephony.twilio_rest import TwilioRest

__all__ = [
    "CARRIERS",
    "HANG_UP_ON_MACHINES",
    "TWILIO_STATUS_EVENTS",
    "PlaceRequest",
    "PlacedCall",
    "Placer",
    "SignalWirePlacer",
    "TwilioPlacer",
    "status_url",
    "twilio_status_url",
    "twilio_voice_url",
    "voice_url",
]

CARRIERS: Final = ("twilio", "signalwire", "telnyx", "plivo", "vonage")
"""Carriers outbound calls can be placed on (each gets outbound as it lands)."""
HANG_UP_ON_MACHINES: Final = frozenset({"plivo", "vonage"})
"""Carriers asked to hang up themselves on a machine (`hang_up_machines`): their detection's
verdict comes in a status callback, which is all the gateway then has to note."""
TWILIO_STATUS_EVENTS: Final = ("initiated", "ringing", "answered", "completed")
TWILIO_MACHINE_DETECTION: Final = "DetectMessageEnd"
"""Twilio answers our webhook after the greeting's beep: a message left starts at the tone."""


@dataclass(frozen=True, slots=True)
class PlaceRequest:
    """One call to place: our id (it names the call in the carrier's webhooks) and numbers."""

    call_id: str
    to: str
    from_number: str
    public_url: str
    """The gateway's public base URL (PUBLIC_URL), without a trailing slash."""
    machine_detection: bool
    hang_up_machines: bool = True
    """The agent hangs up on machines (`voicemail: hang_up`): a carrier that can do it itself
    when its detection runs in the background (Plivo) is asked to."""


@dataclass(frozen=True, slots=True)
class PlacedCall:
    carrier_call_id: str | None
    """None when the carrier's answer does not name the call (Plivo answers a request id):
    its first signed callback does, and binds it."""
    account_id: str | None


class Placer(Protocol):
    async def place(self, request: PlaceRequest) -> PlacedCall:
        """Start the call; raises CarrierRestError."""
        ...

    async def hang_up(self, account_id: str | None, carrier_call_id: str) -> None:
        """End the call whatever its state; raises CarrierRestError."""
        ...


def voice_url(carrier: str, public_url: str, call_id: str) -> str:
    """Where `carrier` fetches the answer of our outbound call `call_id`."""
    return f"{public_url}/{carrier}/voice?outbound={call_id}"


def status_url(carrier: str, public_url: str, call_id: str) -> str:
    """Where `carrier` reports the progress of our outbound call `call_id`."""
    return f"{public_url}/{carrier}/status?outbound={call_id}"


def twilio_voice_url(public_url: str, call_id: str) -> str:
    return voice_url("twilio", public_url, call_id)


def twilio_status_url(public_url: str, call_id: str) -> str:
    return status_url("twilio", public_url, call_id)


class TwilioPlacer:
    """Twilio Calls create (gateway.telephony.twilio_rest)."""

    def __init__(self, rest: TwilioRest) -> None:
        self._rest = rest

    async def place(self, request: PlaceRequest) -> PlacedCall:
        placed = await self._rest.place_call(
            to=request.to,
            from_number=request.from_number,
            url=twilio_voice_url(request.public_url, request.call_id),
            status_callback=twilio_status_url(request.public_url, request.call_id),
            status_callback_events=TWILIO_STATUS_EVENTS,
            machine_detection=TWILIO_MACHINE_DETECTION if request.machine_detection else None,
        )
        return PlacedCall(placed.call_sid, placed.account_sid)

    async def hang_up(self, account_id: str | None, carrier_call_id: str) -> None:
        await self._rest.hang_up(account_id, carrier_call_id)


class SignalWirePlacer:
    """SignalWire's Calls create (gateway.telephony.signalwire: Twilio's, on the space)."""

    def __init__(self, rest: SignalWireRest) -> None:
        self._rest = rest

    async def place(self, request: PlaceRequest) -> PlacedCall:
        placed = await self._rest.place_call(
            to=request.to,
            from_number=request.from_number,
            url=voice_url("signalwire", request.public_url, request.call_id),
            status_callback=status_url("signalwire", request.public_url, request.call_id),
            status_callback_events=TWILIO_STATUS_EVENTS,
            machine_detection=TWILIO_MACHINE_DETECTION if request.machine_detection else None,
        )
        return PlacedCall(placed.call_id, placed.project_id)

    async def hang_up(self, account_id: str | None, carrier_call_id: str) -> None:
        await self._rest.hang_up(account_id, carrier_call_id)
