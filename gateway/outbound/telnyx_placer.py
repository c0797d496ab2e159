"""Placing an outbound call on Telnyx, through its TeXML REST API (Twilio's Calls create, on
Telnyx's wire).

`POST {TELNYX_API_BASE_URL}/v2/texml/Accounts/{TELNYX_ACCOUNT_SID}/Calls`, bearer API key,
JSON: `ApplicationSid` (the TeXML application, TELNYX_TEXML_APPLICATION_ID), `To`, `From`,
`Url` = `{PUBLIC_URL}/telnyx/voice?outbound=<id>` (overrides the application's URL),
`StatusCallback` = `{PUBLIC_URL}/telnyx/status?outbound=<id>` with `StatusCallbackEvent`
(space-separated) and `MachineDetection=DetectMessageEnd` (synchronous AMD: its verdict,
`AnsweredBy` human / machine / fax / unknown, comes with the instructions' request and the
status callbacks). Callbacks are signed with Ed25519 as the voice webhook is, so
TELNYX_PUBLIC_KEY is required. Hang-up is `TelnyxRest.hang_up` (the call update).

Docs relied on:
https://developers.telnyx.com/api-reference/texml-rest-commands/initiate-an-outbound-call
(path, bearer auth, JSON body: ApplicationSid, To, From required; Url, UrlMethod,
StatusCallback, StatusCallbackMethod, StatusCallbackEvent "initiated ringing answered
completed", MachineDetection Enable | Disable | DetectMessageEnd),
https://developers.telnyx.com/docs/voice/programmable-voice/texml-instruction-fetching,
https://developers.telnyx.com/docs/voice/programmable-voice/texml-answering-machine
(AnsweredBy values), https://developers.telnyx.com/api-reference/callbacks/texml-call-answered
(status callback fields: CallSid, AccountSid, CallStatus, CallDuration; telnyx-signature-ed25519),
https://developers.telnyx.com/api-reference/texml-rest-commands/fetch-a-call (a call's `sid`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.outbound.carrier_http import post_json
from gateway.outbound.placer import (
    TWILIO_MACHINE_DETECTION,
    TWILIO_STATUS_EVENTS,
    PlacedCall,
    Placer,
    PlaceRequest,
    status_url,
    voice_url,
)
from gateway.telephony.telnyx import (
    REST_TIMEOUT_S,
    TelnyxRest,
    TelnyxRestError,
    is_account_id,
    is_call_control_id,
)
from gateway.telephony.telnyx import rest_error_detail as error_detail

if TYPE_CHECKING:
    from gateway.settings import Settings

__all__ = ["TelnyxPlacer", "telnyx_placer"]


@dataclass(frozen=True, slots=True)
class TelnyxPlacer:
    """Telnyx TeXML Calls: `place` (initiate) and `hang_up` (the call update)."""

    rest: TelnyxRest
    account_id: str
    """The Telnyx account (`AccountSid`, the user_id: a UUID), lower case."""
    application_id: str
    timeout_s: float = REST_TIMEOUT_S

    async def place(self, request: PlaceRequest) -> PlacedCall:
        body: dict[str, str] = {
            "ApplicationSid": self.application_id,
            "To": request.to,
            "From": request.from_number,
            "Url": voice_url("telnyx", request.public_url, request.call_id),
            "UrlMethod": "POST",
            "StatusCallback": status_url("telnyx", request.public_url, request.call_id),
            "StatusCallbackMethod": "POST",
            "StatusCallbackEvent": " ".join(TWILIO_STATUS_EVENTS),
        }
        if request.machine_detection:
            body["MachineDetection"] = TWILIO_MACHINE_DETECTION
        answer = await self._post(body)
        return PlacedCall(_call_id(answer), self.account_id)

    async def hang_up(self, account_id: str | None, carrier_call_id: str) -> None:
        await self.rest.hang_up(account_id or self.account_id, carrier_call_id)

    async def _post(self, body: dict[str, str]) -> object:
        credentials = self.rest.credentials
        url = f"{credentials.base_url}/v2/texml/Accounts/{self.account_id}/Calls"
        headers = {
            "Authorization": f"Bearer {credentials.api_key}",
            "Accept": "application/json",
        }
        return await post_json(
            url,
            body,
            headers,
            carrier="Telnyx",
            timeout_s=self.timeout_s,
            detail=error_detail,
            error=TelnyxRestError,
        )


def _call_id(answer: object) -> str | None:
    """The new call's CallSid (`call_sid`, or a call resource's `sid`, flat or under `data`);
    None when the answer names none (the first signed callback does)."""
    if isinstance(answer, dict) and isinstance(answer.get("data"), dict):
        answer = answer["data"]
    if not isinstance(answer, dict):
        return None
    for key in ("call_sid", "sid"):
        value = answer.get(key)
        if isinstance(value, str) and is_call_control_id(value):
            return value
    return None


def telnyx_placer(settings: Settings) -> Placer | str:
    """Telnyx's placer, or what is missing (a message naming the settings)."""
    missing = [
        name.upper()
        for name in (
            "telnyx_api_key",
            "telnyx_account_sid",
            "telnyx_texml_application_id",
            "telnyx_public_key",
        )
        if not getattr(settings, name)
    ]
    if missing:
        why = " (it checks the status callbacks)" if missing == ["TELNYX_PUBLIC_KEY"] else ""
        return f"Telnyx outbound calls need {', '.join(missing)}{why}"
    account = str(settings.telnyx_account_sid)
    if not is_account_id(account):
        return "TELNYX_ACCOUNT_SID is not a Telnyx account id (a UUID)"
    rest = TelnyxRest.from_settings(settings)
    assert rest is not None  # the API key is set
    return TelnyxPlacer(rest, account.lower(), str(settings.telnyx_texml_application_id))
