"""Placing an outbound call on Vonage, through the Voice API's create-call resource.

`POST {VONAGE_API_BASE_URL}/v1/calls`, authorised by an application JWT (RS256 with the
application's private key), JSON: `to` / `from` phone endpoints (numbers without the `+`),
`answer_url` = [`{PUBLIC_URL}/vonage/voice?outbound=<id>`] (GET, as the application's answer
webhook is), `event_url` = [`{PUBLIC_URL}/vonage/status?outbound=<id>`] (POST), and
`advanced_machine_detection` in a synchronous mode: the `human` / `machine` event comes before
the NCCO runs; `behavior: hangup` (with `mode: detect`) when the agent hangs up on machines
(Vonage hangs up itself), else `continue` with `mode: detect_beep` (the message after the
beep). Vonage answers the call's `uuid`. Events are signed webhooks (a JWT keyed with the
signature secret, VONAGE_SIGNATURE_SECRET), checked as the voice webhook is. Hang-up is
`VonageRest.hang_up` (`PUT /v1/calls/{uuid}` `{"action": "hangup"}`).

Docs relied on:
Vonage's Voice OpenAPI description of create-call, as republished in
github.com/api-evangelist/vonage (json-schema/vonage-create-call-request-answer-url-schema.json:
to, from, answer_url as an array, answer_method, event_url, event_method), the @vonage/voice
SDK's types (CreateCallResponse: uuid, status, direction, conversation_uuid;
AdvancedMachineDetection: behavior hangup | continue, mode default | detect | detect_beep),
https://developer.vonage.com/en/voice/voice-api/concepts/advanced-machine-detection
(synchronous and asynchronous modes, behavior hangup | continue, the human / machine event),
https://developer.vonage.com/en/voice/voice-api/webhook-reference (event statuses: started,
ringing, answered, busy, cancelled, unanswered, rejected, failed, timeout, completed;
`duration`), https://developer.vonage.com/en/getting-started/concepts/authentication
(application JWTs).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.outbound.carrier_http import post_json
from gateway.outbound.placer import PlacedCall, Placer, PlaceRequest, status_url, voice_url
from gateway.telephony.carrier import CarrierRestError
from gateway.telephony.vonage import (
    REST_TIMEOUT_S,
    VonageRest,
    application_jwt,
    is_call_uuid,
    load_private_key,
)
from gateway.telephony.vonage import rest_error_detail as error_detail

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from gateway.settings import Settings

__all__ = ["VonagePlacer", "vonage_placer"]


def _phone(number: str) -> dict[str, str]:
    return {"type": "phone", "number": number.removeprefix("+")}


@dataclass(frozen=True, slots=True)
class VonagePlacer:
    """Vonage's Voice API: `place` (create a call) and `hang_up` (modify the call)."""

    rest: VonageRest
    application_id: str
    private_key: rsa.RSAPrivateKey = field(repr=False)
    base_url: str = "https://api.nexmo.com"
    timeout_s: float = REST_TIMEOUT_S
    clock: Callable[[], float] = time.time

    async def place(self, request: PlaceRequest) -> PlacedCall:
        body: dict[str, Any] = {
            "to": [_phone(request.to)],
            "from": _phone(request.from_number),
            "answer_url": [voice_url("vonage", request.public_url, request.call_id)],
            "answer_method": "GET",
            "event_url": [status_url("vonage", request.public_url, request.call_id)],
            "event_method": "POST",
        }
        if request.machine_detection:
            body["advanced_machine_detection"] = (
                {"behavior": "hangup", "mode": "detect"}
                if request.hang_up_machines
                else {"behavior": "continue", "mode": "detect_beep"}
            )
        answer = await self._post(body)
        call_id = answer.get("uuid") if isinstance(answer, dict) else None
        if not isinstance(call_id, str) or not is_call_uuid(call_id):
            raise CarrierRestError("Vonage answered without a call uuid")
        return PlacedCall(call_id.lower(), self.application_id)

    async def hang_up(self, account_id: str | None, carrier_call_id: str) -> None:
        await self.rest.hang_up(account_id, carrier_call_id)

    async def _post(self, body: dict[str, Any]) -> object:
        token = application_jwt(self.application_id, self.private_key, now=self.clock())
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        return await post_json(
            f"{self.base_url}/v1/calls",
            body,
            headers,
            carrier="Vonage",
            timeout_s=self.timeout_s,
            detail=error_detail,
        )


def vonage_placer(settings: Settings) -> Placer | str:
    """Vonage's placer, or what is missing (a message naming the settings)."""
    rest = VonageRest.from_settings(settings)
    if rest is None or not settings.vonage_application_id or not settings.vonage_private_key:
        return "Vonage REST credentials are not set: VONAGE_APPLICATION_ID and VONAGE_PRIVATE_KEY"
    if not settings.vonage_signature_secret:
        return "VONAGE_SIGNATURE_SECRET is not set: Vonage's call events could not be verified"
    return VonagePlacer(
        rest,
        settings.vonage_application_id,
        load_private_key(settings.vonage_private_key),
        settings.vonage_api_base_url.rstrip("/"),
    )
