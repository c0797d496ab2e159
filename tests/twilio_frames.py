"""Twilio media-stream frames for tests: the gateway's own phone-side builder, and the
`<Parameter>`s of a `/twiml` answer (what Twilio sends back in `start.customParameters`)."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

from aiohttp.test_utils import TestClient
from twilio.request_validator import RequestValidator

from gateway.telephony.twilio_caller import ACCOUNT_SID, CALL_SID, STREAM_SID, TwilioCaller

__all__ = [
    "ACCOUNT_SID",
    "CALL_SID",
    "STREAM_SID",
    "TwilioCaller",
    "stream_parameters",
    "twiml_form",
]


def twiml_form(**fields: str) -> dict[str, str]:
    """The voice webhook's form for the test call (CALL_SID, ACCOUNT_SID), plus `fields`."""
    return {"CallSid": CALL_SID, "AccountSid": ACCOUNT_SID, **fields}


def parameters_of(twiml: str) -> dict[str, str]:
    """The `<Stream>`'s `<Parameter>`s, name → value."""
    stream = ElementTree.fromstring(twiml).find("./Connect/Stream")
    assert stream is not None, twiml
    return {p.get("name", ""): p.get("value", "") for p in stream.iter("Parameter")}


async def stream_parameters(
    client: TestClient[Any, Any],
    *,
    token: str | None = None,
    signed_url: str | None = None,
    path: str = "/twiml",
    **fields: str,
) -> dict[str, str]:
    """Do what Twilio does before a stream: POST the voice webhook (signed over `signed_url`
    with `token`, default: the loopback URL) and return the parameters its TwiML gives the
    stream — the call binding among them."""
    form = twiml_form(**fields)
    headers = {}
    if token:
        url = signed_url or f"http://127.0.0.1:{client.server.port}{path}"
        headers["X-Twilio-Signature"] = RequestValidator(token).compute_signature(url, form)
    response = await client.post(path, data=form, headers=headers)
    assert response.status == 200, await response.text()
    return parameters_of(await response.text())
