"""Twilio in the conformance suite."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree

from gateway.telephony.twilio_caller import TwilioPhone
from tests.telephony.carrier_case import CarrierCase, RestAction, RestRequest

AUTH_TOKEN = "twilio-conformance-token"
ACCOUNT_SID = "AC" + "1" * 32
_CALL_PATH = re.compile(r"/2010-04-01/Accounts/(AC[0-9a-f]{32})/Calls/(CA[0-9a-f]{32})\.json")


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
    match = _CALL_PATH.fullmatch(request.path)
    sid = match.group(2) if match else ""
    return 200, json.dumps({"sid": sid, "status": _form(request).get("Status", "in-progress")})


def rest_settings(base_url: str) -> dict[str, Any]:
    return {"twilio_api_base_url": base_url, "twilio_account_sid": ACCOUNT_SID}


def case() -> CarrierCase:
    return CarrierCase(
        name="twilio",
        settings={"twilio_auth_token": AUTH_TOKEN},
        make_phone=lambda: TwilioPhone(AUTH_TOKEN, ACCOUNT_SID),
        make_wrong_phone=lambda: TwilioPhone("not-the-token", ACCOUNT_SID),
        rest_settings=rest_settings,
        rest_action=rest_action,
        rest_reply=rest_reply,
    )
