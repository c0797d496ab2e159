"""SignalWire in the conformance suite."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree

from gateway.telephony.signalwire_phone import SignalWirePhone
from tests.telephony.carrier_case import CarrierCase, RestAction, RestRequest

SIGNING_KEY = "PSK_signalwire-conformance-key"
PROJECT_ID = "0f4e3a52-6a2b-4c1d-9e8f-1a2b3c4d5e6f"
API_TOKEN = "PT_signalwire-conformance-token"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_CALL_PATH = re.compile(rf"/api/laml/2010-04-01/Accounts/({_UUID})/Calls/({_UUID})\.json")


def _form(request: RestRequest) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.body.decode()).items()}


def rest_action(request: RestRequest) -> RestAction | None:
    match = _CALL_PATH.fullmatch(request.path)
    if request.method != "POST" or match is None:
        return None
    form = _form(request)
    if form.get("Status") == "completed":
        return ("hang_up", match.group(2), "")
    if "Twiml" in form:
        dial = ElementTree.fromstring(form["Twiml"]).find("Dial")
        return ("transfer", match.group(2), "".join(dial.itertext()) if dial is not None else "")
    return None


def rest_reply(request: RestRequest) -> tuple[int, str]:
    """A Calls resource, as SignalWire's Compatibility API answers an update."""
    match = _CALL_PATH.fullmatch(request.path)
    account, sid = match.groups() if match else ("", "")
    status = _form(request).get("Status", "in-progress")
    return 200, json.dumps(
        {
            "sid": sid,
            "account_sid": account,
            "status": status,
            "api_version": "2010-04-01",
            "uri": f"/api/laml/2010-04-01/Accounts/{account}/Calls/{sid}.json",
        }
    )


def rest_settings(base_url: str) -> dict[str, Any]:
    return {
        "signalwire_space_url": base_url,
        "signalwire_project_id": PROJECT_ID,
        "signalwire_api_token": API_TOKEN,
    }


def case() -> CarrierCase:
    return CarrierCase(
        name="signalwire",
        settings={"signalwire_signing_key": SIGNING_KEY},
        make_phone=lambda: SignalWirePhone(SIGNING_KEY, PROJECT_ID),
        make_wrong_phone=lambda: SignalWirePhone("PSK_not-the-key", PROJECT_ID),
        rest_settings=rest_settings,
        rest_action=rest_action,
        rest_reply=rest_reply,
    )
