"""Telnyx in the conformance suite.

A hang-up is `POST /v2/texml/Accounts/{account}/Calls/{call_control_id}` with the form
`Status=completed`; a transfer is the same request with `Texml=<Response><Dial><Number>…`.
The API key is in `settings` (it is the stream-binding secret too), so `rest_settings` only
adds the base URL: the suite passes both dicts to one `load_settings` call, where a key in both
would be an error.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.telephony.telnyx_phone import DEFAULT_ACCOUNT_ID, TelnyxPhone
from tests.telephony.carrier_case import CarrierCase, RestAction, RestRequest

PRIVATE_KEY = Ed25519PrivateKey.generate()
OTHER_PRIVATE_KEY = Ed25519PrivateKey.generate()
PUBLIC_KEY = base64.b64encode(
    PRIVATE_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
).decode("ascii")
API_KEY = "KEY0123456789ABCDEF_telnyx-conformance"
ACCOUNT_ID = DEFAULT_ACCOUNT_ID
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
CALL_PATH = re.compile(rf"/v2/texml/Accounts/({_UUID})/Calls/(v[0-9]+:[A-Za-z0-9_-]+)")


def form(request: RestRequest) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.body.decode()).items()}


def rest_action(request: RestRequest) -> RestAction | None:
    match = CALL_PATH.fullmatch(request.path)
    if request.method != "POST" or match is None:
        return None
    fields = form(request)
    if fields.get("Status") == "completed":
        return ("hang_up", match.group(2), "")
    if "Texml" in fields:
        dial = ElementTree.fromstring(fields["Texml"]).find("Dial")
        return ("transfer", match.group(2), "".join(dial.itertext()) if dial is not None else "")
    return None


def rest_reply(request: RestRequest) -> tuple[int, str]:
    """A TeXML call resource, as Telnyx answers an update (401 without our key)."""
    if request.headers.get("authorization") != f"Bearer {API_KEY}":
        return 401, json.dumps(
            {"errors": [{"code": "10009", "title": "Authentication failed", "detail": "…"}]}
        )
    match = CALL_PATH.fullmatch(request.path)
    if match is None:
        return 404, json.dumps({"errors": [{"code": "10005", "title": "Resource not found"}]})
    account, sid = match.groups()
    return 200, json.dumps(
        {
            "account_sid": account,
            "sid": sid,
            "status": form(request).get("Status", "in-progress"),
            "direction": "inbound",
            "uri": f"/v2/texml/Accounts/{account}/Calls/{sid}.json",
        }
    )


def rest_settings(base_url: str) -> dict[str, Any]:
    return {"telnyx_api_base_url": base_url}


def case() -> CarrierCase:
    return CarrierCase(
        name="telnyx",
        settings={"telnyx_public_key": PUBLIC_KEY, "telnyx_api_key": API_KEY},
        make_phone=lambda: TelnyxPhone(PRIVATE_KEY, ACCOUNT_ID),
        make_wrong_phone=lambda: TelnyxPhone(OTHER_PRIVATE_KEY, ACCOUNT_ID),
        rest_settings=rest_settings,
        rest_action=rest_action,
        rest_reply=rest_reply,
    )
