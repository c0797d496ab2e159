"""The OpenAPI 3.1 document of the outbound-call API (served at `GET /calls/openapi.json`).

Written out by hand, next to nothing else: the states, fields and errors it lists are the
ones `gateway.outbound.api` enforces (tests/outbound/test_api_openapi.py checks the document
against the OpenAPI 3.1 schema and the API's answers against it).
"""

from __future__ import annotations

from typing import Any

from gateway.outbound.placer import CARRIERS
from gateway.outbound.states import CallState
from gateway.telephony.numbers import E164_PATTERN

__all__ = ["openapi_document"]

_E164 = f"^{E164_PATTERN}$"


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _call(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Call"}}},
    }


_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^oc_[0-9a-f]{24}$"},
}


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the document (callers may change it)."""
    states = [state.value for state in CallState]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Gateway outbound calls",
            "version": "1",
            "description": (
                "Place phone calls answered by one of the gateway's agents, follow their "
                "state, hang them up. Every route needs `Authorization: Bearer <API_TOKEN>`; "
                "without API_TOKEN the routes are off (404)."
            ),
        },
        "security": [{"bearer": []}],
        "paths": {
            "/calls": {
                "post": {
                    "operationId": "placeCall",
                    "summary": "Place a call through the carrier's REST API",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/CallRequest"}
                            }
                        },
                    },
                    "responses": {
                        "201": _call("The call was placed (state `queued`)."),
                        "400": _error("A field is wrong; `error.field` names it."),
                        "401": _error("Missing or wrong bearer token."),
                        "413": _error("The body is too large."),
                        "422": _error(
                            "The agent's {{placeholders}} need variables the request lacks "
                            "(`missing` lists them)."
                        ),
                        "502": _error(
                            "The carrier refused or failed to place the call; the call "
                            "(`call`, state `failed`) is kept."
                        ),
                        "503": _error(
                            "The gateway cannot place calls now (PUBLIC_URL, the carrier's "
                            "credentials, or too many calls under way)."
                        ),
                    },
                },
                "get": {
                    "operationId": "listCalls",
                    "summary": "This gateway's outbound calls, newest first",
                    "parameters": [
                        {
                            "name": "state",
                            "in": "query",
                            "schema": {"type": "string", "enum": states},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": 1000,
                                "default": 100,
                            },
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "The calls.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["calls"],
                                        "properties": {
                                            "calls": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Call"},
                                            }
                                        },
                                    }
                                }
                            },
                        },
                        "400": _error("A query parameter is wrong."),
                        "401": _error("Missing or wrong bearer token."),
                    },
                },
            },
            "/calls/{id}": {
                "parameters": [_ID],
                "get": {
                    "operationId": "getCall",
                    "summary": "A call's state now",
                    "responses": {
                        "200": _call("The call."),
                        "401": _error("Missing or wrong bearer token."),
                        "404": _error("No such call on this gateway."),
                    },
                },
                "delete": {
                    "operationId": "hangUpCall",
                    "summary": "Hang the call up through the carrier's REST API",
                    "description": (
                        "The carrier's status callback then gives the final state "
                        "(`end_reason` `api_hang_up`); a call already over is returned as it is."
                    ),
                    "responses": {
                        "200": _call("Hang-up requested (or the call was already over)."),
                        "401": _error("Missing or wrong bearer token."),
                        "404": _error("No such call on this gateway."),
                        "409": _error("The call is still being placed."),
                        "502": _error("The carrier refused or failed to hang up."),
                    },
                },
            },
            "/calls/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "401": _error("Missing or wrong bearer token."),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "CallRequest": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["agent", "to"],
                    "properties": {
                        "agent": {"type": "string", "description": "The agent's name."},
                        "to": {"type": "string", "pattern": _E164},
                        "from": {
                            "type": "string",
                            "pattern": _E164,
                            "description": "Default: OUTBOUND_FROM_NUMBER, else the agent's "
                            "first line.",
                        },
                        "carrier": {"type": "string", "enum": list(CARRIERS), "default": "twilio"},
                        "variables": {
                            "type": "object",
                            "additionalProperties": {"type": "string", "minLength": 1},
                            "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"},
                            "description": "Fill the agent's {{name}} placeholders.",
                        },
                        "callback_url": {
                            "type": "string",
                            "format": "uri",
                            "description": "POSTed the call (as GET /calls/{id} answers it) "
                            "once it ends.",
                        },
                    },
                },
                "Call": {
                    "type": "object",
                    "required": [
                        "id", "state", "agent", "to", "from", "carrier", "variables",
                        "created_at", "carrier_call_id", "end_reason", "answered_by",
                        "duration_s", "recording",
                    ],
                    "properties": {
                        "id": {"type": "string", "pattern": "^oc_[0-9a-f]{24}$"},
                        "state": {
                            "type": "string",
                            "enum": states,
                            "description": (
                                "queued → ringing → in-progress → one of completed, busy, "
                                "no-answer, failed, canceled (hung up before answered), "
                                "voicemail (an answering machine took it)."
                            ),
                        },
                        "agent": {"type": "string"},
                        "to": {"type": "string"},
                        "from": {"type": "string"},
                        "carrier": {"type": "string"},
                        "variables": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                        "created_at": {"type": "string", "format": "date-time"},
                        "carrier_call_id": {"type": ["string", "null"]},
                        "end_reason": {
                            "type": ["string", "null"],
                            "description": (
                                "Once over: api_hang_up, carrier_rest_failed, voicemail_hang_up, "
                                "voicemail_left, voicemail_detected_late, how the "
                                "media stream ended (agent_ended, "
                                "caller_hung_up, …), or the carrier's final status."
                            ),
                        },
                        "answered_by": {
                            "type": ["string", "null"],
                            "description": (
                                "The carrier's machine detection (AnsweredBy; Plivo's Machine "
                                "as machine / human)."
                            ),
                        },
                        "duration_s": {"type": ["integer", "null"], "minimum": 0},
                        "recording": {
                            "type": ["object", "null"],
                            "properties": {
                                "jsonl": {"type": "string"},
                                "wav": {"type": "string"},
                                "txt": {"type": "string"},
                            },
                        },
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["field", "message"],
                            "properties": {
                                "field": {"type": ["string", "null"]},
                                "message": {"type": "string"},
                            },
                        },
                        "missing": {"type": "array", "items": {"type": "string"}},
                        "call": {"$ref": "#/components/schemas/Call"},
                    },
                },
            },
        },
    }
