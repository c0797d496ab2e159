"""Exotel in the conformance suite.

Exotel signs nothing, so there is no wrong-key phone. A hang-up is the Legs API's
`POST /v2/accounts/{account_sid}/legs/{call_sid}/actions/hangup`; Exotel has no REST transfer
(`ExotelRest.transfer` raises), so no request is ever a transfer. The settings need the
`exotel_*` fields in gateway/settings.py (see gateway.telephony.exotel).
"""

from __future__ import annotations

import json
import re
from typing import Any

from gateway.telephony.exotel_phone import ExotelPhone
from tests.telephony.carrier_case import CarrierCase, RestAction, RestRequest

ACCOUNT_SID = "gatewayconformance1"
API_KEY = "exotel-conformance-key"
API_TOKEN = "exotel-conformance-token"
_HANG_UP_PATH = re.compile(r"/v2/accounts/([A-Za-z0-9_-]+)/legs/([A-Za-z0-9_-]+)/actions/hangup")


def rest_action(request: RestRequest) -> RestAction | None:
    match = _HANG_UP_PATH.fullmatch(request.path)
    if request.method != "POST" or match is None:
        return None
    return ("hang_up", match.group(2), "")


def rest_reply(request: RestRequest) -> tuple[int, str]:
    """200 to a hang-up (the Legs API's body is not documented: a small JSON), else 404."""
    if rest_action(request) is None:
        return 404, json.dumps({"message": "not found"})
    return 200, json.dumps({"status": "success"})


def rest_settings(base_url: str) -> dict[str, Any]:
    """Only the base URL: the credentials are in `settings` (the Account SID is also the
    account the stream binding covers)."""
    return {"exotel_api_base_url": base_url}


def case() -> CarrierCase:
    return CarrierCase(
        name="exotel",
        settings={
            "exotel_account_sid": ACCOUNT_SID,
            "exotel_api_key": API_KEY,
            "exotel_api_token": API_TOKEN,
        },
        make_phone=lambda: ExotelPhone(ACCOUNT_SID),
        make_wrong_phone=None,
        rest_settings=rest_settings,
        rest_action=rest_action,
        rest_reply=rest_reply,
    )
