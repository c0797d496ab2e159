"""Vonage in the conformance suite.

A hang-up is `PUT /v1/calls/{uuid}` with `{"action": "hangup"}`; a transfer is the same request
with `{"action": "transfer", "destination": {"type": "ncco", "ncco": [{"action": "connect",
"endpoint": [{"type": "phone", "number": …}]}]}}` (numbers without `+`). The fake API answers
401 to a request whose application JWT does not verify with the key pair's public half.
The credentials are in `settings` (the signature secret is the binding secret, the application
id the account); `rest_settings` only adds the base URL (one `load_settings` call takes both).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from gateway.telephony.vonage_phone import VonagePhone
from tests.telephony.carrier_case import CarrierCase, RestAction, RestRequest

SIGNATURE_SECRET = "vonage-conformance-signature-secret"
APPLICATION_ID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PRIVATE_KEY_PEM = PRIVATE_KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption(),
).decode("ascii")
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
CALL_PATH = re.compile(rf"/v1/calls/({_UUID})")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_claims(request: RestRequest) -> dict[str, Any] | None:
    """The claims of the request's application JWT if RS256-signed with PRIVATE_KEY."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    parts = token.split(".")
    if scheme != "Bearer" or len(parts) != 3:
        return None
    try:
        PRIVATE_KEY.public_key().verify(
            _unb64url(parts[2]),
            f"{parts[0]}.{parts[1]}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, ValueError):
        return None
    if json.loads(_unb64url(parts[0])).get("alg") != "RS256":
        return None
    claims = json.loads(_unb64url(parts[1]))
    return claims if isinstance(claims, dict) else None


def _json(request: RestRequest) -> dict[str, Any]:
    try:
        document = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def rest_action(request: RestRequest) -> RestAction | None:
    match = CALL_PATH.fullmatch(request.path)
    if request.method != "PUT" or match is None:
        return None
    body = _json(request)
    if body.get("action") == "hangup":
        return ("hang_up", match.group(1), "")
    destination = body.get("destination")
    if body.get("action") == "transfer" and isinstance(destination, dict):
        for action in destination.get("ncco", []):
            for endpoint in action.get("endpoint", []):
                if endpoint.get("type") == "phone":
                    return ("transfer", match.group(1), "+" + str(endpoint.get("number", "")))
                if endpoint.get("type") == "sip":
                    return ("transfer", match.group(1), str(endpoint.get("uri", "")))
    return None


def rest_reply(request: RestRequest) -> tuple[int, str]:
    """What the modify-call resource answers: 204, 401 without a valid JWT, 404 elsewhere."""
    claims = jwt_claims(request)
    if claims is None or claims.get("application_id") != APPLICATION_ID:
        return 401, json.dumps(
            {
                "type": "https://developer.nexmo.com/api-errors#unauthorized",
                "title": "Invalid Token",
            }
        )
    if rest_action(request) is None:
        return 404, json.dumps({"title": "Not Found", "detail": "no such call"})
    return 204, ""


def rest_settings(base_url: str) -> dict[str, Any]:
    return {"vonage_api_base_url": base_url}


def case() -> CarrierCase:
    return CarrierCase(
        name="vonage",
        settings={
            "vonage_signature_secret": SIGNATURE_SECRET,
            "vonage_application_id": APPLICATION_ID,
            "vonage_private_key": PRIVATE_KEY_PEM,
        },
        make_phone=lambda: VonagePhone(SIGNATURE_SECRET, APPLICATION_ID),
        make_wrong_phone=lambda: VonagePhone("not-the-secret", APPLICATION_ID),
        rest_settings=rest_settings,
        rest_action=rest_action,
        rest_reply=rest_reply,
    )
