"""Placing an outbound call on Plivo, through its Call API.

`POST {PLIVO_API_BASE_URL}/v1/Account/{PLIVO_AUTH_ID}/Call/`, basic auth Auth ID : Auth Token,
JSON: `from` / `to` (E.164 without the `+`, as Plivo writes numbers), `answer_url` =
`{PUBLIC_URL}/plivo/voice?outbound=<id>`, and `ring_url`, `hangup_url`, `machine_detection_url`
all = `{PUBLIC_URL}/plivo/status?outbound=<id>` (POST). Plivo's detection runs in the
background: `machine_detection=hangup` when the agent hangs up on machines (Plivo hangs up
itself), else `true`; its verdict (`Machine=true|false`) comes to the machine_detection_url.
Plivo answers `request_uuid`, not the call's UUID: the first signed callback names the
CallUUID, and binds it (the registry's `claim`). Every callback carries Plivo's V3 signature,
checked like the voice webhook's. Hang-up is `PlivoRest.hang_up` (DELETE the call).

Docs relied on:
https://docs.plivo.com/docs/voice/api/call/make-a-call (path, from/to without `+`,
answer_url, ring_url, hangup_url, machine_detection true | hangup, machine_detection_url),
https://docs.plivo.com/docs/voice/api/call/machine-detection (the machine_detection_url's
fields: CallUUID, Machine, CallStatus in-progress; the answer `request_uuid`),
https://docs.plivo.com/docs/voice/xml/request (CallUUID, CallStatus, Duration, HangupCause on
the hangup URL), https://docs.plivo.com/docs/voice/use-cases/dial-status-reporting (CallStatus
values: ringing, in-progress, completed, busy, no-answer, timeout, cancel, failed).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from gateway.outbound.carrier_http import post_json
from gateway.outbound.placer import PlacedCall, Placer, PlaceRequest, status_url, voice_url
from gateway.telephony.plivo import REST_TIMEOUT_S, PlivoRest

if TYPE_CHECKING:
    from gateway.settings import Settings

__all__ = ["PlivoPlacer", "plivo_placer"]

_AUTH_ID: Final = re.compile(r"[A-Za-z0-9]{1,64}")
_MAX_ERROR_CHARS: Final = 200


@dataclass(frozen=True, slots=True)
class PlivoPlacer:
    """Plivo's Call API: `place` (make a call) and `hang_up` (DELETE the call)."""

    rest: PlivoRest
    auth_id: str
    auth_token: str = field(repr=False)
    base_url: str = "https://api.plivo.com"
    timeout_s: float = REST_TIMEOUT_S

    async def place(self, request: PlaceRequest) -> PlacedCall:
        report = status_url("plivo", request.public_url, request.call_id)
        body: dict[str, str] = {
            "from": request.from_number.removeprefix("+"),
            "to": request.to.removeprefix("+"),
            "answer_url": voice_url("plivo", request.public_url, request.call_id),
            "answer_method": "POST",
            "ring_url": report,
            "ring_method": "POST",
            "hangup_url": report,
            "hangup_method": "POST",
        }
        if request.machine_detection:
            body["machine_detection"] = "hangup" if request.hang_up_machines else "true"
            body["machine_detection_url"] = report
            body["machine_detection_method"] = "POST"
        await self._post(body)
        return PlacedCall(None, self.auth_id)

    async def hang_up(self, account_id: str | None, carrier_call_id: str) -> None:
        await self.rest.hang_up(account_id or self.auth_id, carrier_call_id)

    async def _post(self, body: dict[str, str]) -> None:
        token = base64.b64encode(f"{self.auth_id}:{self.auth_token}".encode()).decode("ascii")
        url = f"{self.base_url}/v1/Account/{self.auth_id}/Call/"
        headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}
        await post_json(
            url, body, headers, carrier="Plivo", timeout_s=self.timeout_s, detail=_error
        )


def _error(raw: bytes) -> str:
    """Plivo's `error` (a string, or an object of messages), else the body."""
    try:
        document = json.loads(raw)
    except ValueError:
        document = None
    error = document.get("error") if isinstance(document, dict) else None
    text = (json.dumps(error) if isinstance(error, dict) else str(error)) if error else ""
    return (text or raw.decode("utf-8", "replace").strip() or "(no body)")[:_MAX_ERROR_CHARS]


def plivo_placer(settings: Settings) -> Placer | str:
    """Plivo's placer, or what is missing (a message naming the settings)."""
    rest = PlivoRest.from_settings(settings)
    if rest is None or not settings.plivo_auth_id or not settings.plivo_auth_token:
        return "Plivo REST credentials are not set: PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN"
    if _AUTH_ID.fullmatch(settings.plivo_auth_id) is None:
        return "PLIVO_AUTH_ID is not a Plivo Auth ID (letters and digits)"
    return PlivoPlacer(
        rest,
        settings.plivo_auth_id,
        settings.plivo_auth_token,
        settings.plivo_api_base_url.rstrip("/"),
    )
