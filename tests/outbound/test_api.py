"""The /calls API: bearer token, routes off without API_TOKEN, errors that name the field,
the OpenAPI document — and nothing reaches the carrier until a request is valid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate

from gateway.outbound.openapi import openapi_document
from tests.gateway_harness import loopback_gateway
from tests.outbound.test_outbound_calls_harness import (
    API_TOKEN,
    AUTH,
    CALLEE,
    OutboundGateway,
    outbound_gateway,
)

VARIABLES = {"first_name": "Ana", "topic": "your order"}


def schema(name: str) -> dict[str, Any]:
    document = openapi_document()
    return {"$ref": f"#/components/schemas/{name}", "components": document["components"]}


def conforms(instance: Any, name: str) -> None:
    jsonschema.Draft202012Validator(schema(name)).validate(instance)


async def post(gw: OutboundGateway, body: Any, **headers: str) -> tuple[int, dict[str, Any]]:
    response = await gw.client.post("/calls", json=body, headers={**AUTH, **headers})
    return response.status, await response.json()


async def test_without_api_token_the_routes_are_off(tmp_path: Path) -> None:
    async with loopback_gateway(public_url="https://gw.example.test") as gw:
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        body = {"agent": "default", "to": CALLEE}
        assert (await gw.client.post("/calls", json=body, headers=headers)).status == 404
        assert (await gw.client.get("/calls/openapi.json", headers=headers)).status == 404
        assert (await gw.client.get(f"/calls/oc_{'0' * 24}", headers=headers)).status == 404
        assert (await gw.client.post("/twilio/status?outbound=x", data={})).status == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-the-token-at-all", f"Basic {API_TOKEN}", "Bearer", f"bearer{API_TOKEN}"],
    ids=["none", "wrong", "basic", "empty", "no_space"],
)
async def test_a_missing_or_wrong_token_is_refused(
    tmp_path: Path, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with outbound_gateway(tmp_path) as gw:
        body = {"agent": "sales", "to": CALLEE, "variables": VARIABLES}
        for method, path in (
            ("POST", "/calls"),
            ("GET", "/calls"),
            ("GET", "/calls/openapi.json"),
            ("GET", f"/calls/oc_{'0' * 24}"),
            ("DELETE", f"/calls/oc_{'0' * 24}"),
        ):
            response = await gw.client.request(method, path, json=body, headers=headers)
            assert response.status == 401, (method, path)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            error = (await response.json())["error"]
            assert error["field"] == "Authorization"
        assert gw.twilio.requests == []


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"to": CALLEE}, "agent", 400),
        ({"agent": "nobody", "to": CALLEE}, "agent", 400),
        ({"agent": "sales"}, "to", 400),
        ({"agent": "sales", "to": "5557770001"}, "to", 400),
        ({"agent": "sales", "to": "+1 555 777"}, "to", 400),
        ({"agent": "sales", "to": 15557770001}, "to", 400),
        ({"agent": "sales", "to": CALLEE, "from": "+0123"}, "from", 400),
        ({"agent": "sales", "to": CALLEE, "carrier": "pigeon"}, "carrier", 400),
        ({"agent": "sales", "to": CALLEE, "variables": {"first_name": 7}}, "variables", 400),
        ({"agent": "sales", "to": CALLEE, "variables": ["Ana"]}, "variables", 400),
        ({"agent": "sales", "to": CALLEE, "variables": []}, "variables", 400),
        ({"agent": "sales", "to": CALLEE, "callback_url": "ftp://x/y"}, "callback_url", 400),
        ({"agent": "sales", "to": CALLEE, "callback": "https://x/y"}, "callback", 400),
        ({"agent": "sales", "to": CALLEE, "variables": {"first_name": "Ana"}}, "variables", 422),
        ({"agent": "sales", "to": CALLEE}, "variables", 422),
    ],
    ids=[
        "agent_missing", "agent_unknown", "to_missing", "to_not_e164", "to_spaces",
        "to_number", "from_bad", "carrier_unknown", "variable_not_text", "variables_list",
        "variables_empty_list",
        "callback_not_http", "unknown_field", "variable_missing", "variables_missing",
    ],
)
async def test_a_bad_request_names_its_field_and_places_nothing(
    tmp_path: Path, body: dict[str, Any], field: str, status: int
) -> None:
    async with outbound_gateway(tmp_path) as gw:
        got, document = await post(gw, body)
        assert (got, document["error"]["field"]) == (status, field), document
        assert document["error"]["message"]
        conforms(document, "Error")
        assert gw.twilio.requests == []
        listed = await (await gw.client.get("/calls", headers=AUTH)).json()
        assert listed == {"calls": []}


async def test_missing_variables_are_listed(tmp_path: Path) -> None:
    async with outbound_gateway(tmp_path) as gw:
        status, document = await post(gw, {"agent": "sales", "to": CALLEE})
    assert status == 422
    assert document["missing"] == ["first_name", "topic"]


async def test_a_body_that_is_not_a_json_object_is_refused(tmp_path: Path) -> None:
    async with outbound_gateway(tmp_path) as gw:
        for raw in (b"{not json", b"[1, 2]", b""):
            response = await gw.client.post("/calls", data=raw, headers=AUTH)
            assert response.status == 400
            assert (await response.json())["error"]["field"] is None
        assert gw.twilio.requests == []


async def test_without_public_url_placing_is_refused_naming_it(tmp_path: Path) -> None:
    async with outbound_gateway(tmp_path, public_url=None) as gw:
        status, document = await post(gw, {"agent": "sales", "to": CALLEE, "variables": VARIABLES})
    assert status == 503
    assert "PUBLIC_URL" in document["error"]["message"]
    assert gw.twilio.requests == []


async def test_without_twilio_credentials_placing_is_refused_naming_them(tmp_path: Path) -> None:
    async with outbound_gateway(tmp_path, twilio_account_sid=None) as gw:
        status, document = await post(gw, {"agent": "sales", "to": CALLEE, "variables": VARIABLES})
    assert (status, document["error"]["field"]) == (503, "carrier")
    assert "TWILIO_ACCOUNT_SID" in document["error"]["message"]


async def test_a_failed_rest_request_is_502_and_the_call_failed(tmp_path: Path) -> None:
    async with outbound_gateway(tmp_path) as gw:
        gw.twilio.fail_with = 400
        status, document = await post(gw, {"agent": "sales", "to": CALLEE, "variables": VARIABLES})
        assert status == 502
        assert "Invalid 'To' Phone Number" in document["error"]["message"]
        conforms(document, "Error")
        call = await gw.get(document["call"]["id"])
        metrics = await (await gw.client.get("/metrics")).text()
    assert (call["state"], call["end_reason"]) == ("failed", "carrier_rest_failed")
    assert 'gateway_outbound_calls_total{state="failed"} 1.0' in metrics
    assert 'gateway_outbound_calls_placed_total{carrier="twilio"}' not in metrics


async def test_get_list_and_unknown_ids(tmp_path: Path) -> None:
    async with outbound_gateway(tmp_path) as gw:
        _, first = await post(gw, {"agent": "sales", "to": CALLEE, "variables": VARIABLES})
        _, second = await post(gw, {"agent": "sales", "to": CALLEE, "variables": VARIABLES})
        conforms(first, "Call")
        got = await gw.get(first["id"])
        conforms(got, "Call")
        assert got == first
        listed = await (await gw.client.get("/calls", headers=AUTH)).json()
        assert [c["id"] for c in listed["calls"]] == [second["id"], first["id"]]
        queued = await gw.client.get("/calls?state=completed", headers=AUTH)
        assert (await queued.json()) == {"calls": []}
        assert (await gw.client.get("/calls?state=nope", headers=AUTH)).status == 400
        for missing in (f"oc_{'0' * 24}", "oc_short", f"oc_{'Z' * 24}"):
            response = await gw.client.get(f"/calls/{missing}", headers=AUTH)
            assert response.status == 404
            assert (await response.json())["error"]["field"] == "id"


async def test_the_openapi_document_is_valid_openapi_3_1(tmp_path: Path) -> None:
    async with outbound_gateway(tmp_path) as gw:
        response = await gw.client.get("/calls/openapi.json", headers=AUTH)
        assert response.status == 200
        document = await response.json()
    validate(document)  # raises on an invalid document
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {"/calls", "/calls/{id}", "/calls/openapi.json"}
    assert set(document["paths"]["/calls/{id}"]) == {"parameters", "get", "delete"}
    states = document["components"]["schemas"]["Call"]["properties"]["state"]["enum"]
    assert set(states) == {
        "queued", "ringing", "in-progress", "completed", "busy", "no-answer", "failed",
        "voicemail", "canceled",
    }  # fmt: skip
