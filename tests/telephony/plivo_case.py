"""Plivo in the conformance suite.

A hang-up is `DELETE /v1/Account/{auth_id}/Call/{call_uuid}/`; a transfer is
`POST /v1/Account/{auth_id}/Call/{call_uuid}/` with a JSON body `{"legs": "aleg", "aleg_url":
…}`, and its target is the `number` query parameter of `aleg_url`
(`gateway.telephony.plivo.DIAL_TARGET_PARAMETER`, which the server's dial URL carries).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from gateway.telephony.plivo import DIAL_TARGET_PARAMETER
from gateway.telephony.plivo_phone import PlivoPhone
from tests.telephony.carrier_case import CarrierCase, RestAction, RestRequest

AUTH_ID = "MAZDQ0ZTRLYTY1NJM2MZ"
AUTH_TOKEN = "plivo-conformance-token"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_CALL_PATH = re.compile(rf"/v1/Account/([A-Za-z0-9]+)/Call/({_UUID})/")
_API_ID = "08c94608-58bd-11e1-86da-adf28403fe48"


def _json(request: RestRequest) -> dict[str, Any]:
    try:
        document = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def rest_action(request: RestRequest) -> RestAction | None:
    match = _CALL_PATH.fullmatch(request.path)
    if match is None:
        return None
    call_uuid = match.group(2)
    if request.method == "DELETE":
        return ("hang_up", call_uuid, "")
    body = _json(request)
    if request.method == "POST" and body.get("legs") == "aleg" and "aleg_url" in body:
        query = parse_qs(urlsplit(str(body["aleg_url"])).query)
        return ("transfer", call_uuid, query.get(DIAL_TARGET_PARAMETER, [""])[0])
    return None


def rest_reply(request: RestRequest) -> tuple[int, str]:
    """What Plivo's Call API answers: 204 to a hang-up, 202 to a transfer."""
    action = rest_action(request)
    if action is None:
        return 404, json.dumps({"api_id": _API_ID, "error": "not found"})
    if action[0] == "hang_up":
        return 204, ""
    return 202, json.dumps({"message": "call transferred", "api_id": _API_ID})


def rest_settings(base_url: str) -> dict[str, Any]:
    """Only the base URL: the suite merges these with `settings`, which hold the credentials
    (the Auth ID is also the account the stream binding covers, so it belongs there)."""
    return {"plivo_api_base_url": base_url}


def case() -> CarrierCase:
    return CarrierCase(
        name="plivo",
        settings={"plivo_auth_id": AUTH_ID, "plivo_auth_token": AUTH_TOKEN},
        make_phone=lambda: PlivoPhone(AUTH_TOKEN, AUTH_ID),
        make_wrong_phone=lambda: PlivoPhone("not-the-token", AUTH_ID),
        rest_settings=rest_settings,
        rest_action=rest_action,
        rest_reply=rest_reply,
    )
