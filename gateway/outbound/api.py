"""The outbound-call API and the carrier's side of an outbound call.

`POST /calls` places a call, `GET /calls` and `GET /calls/{id}` report calls, `DELETE
/calls/{id}` hangs one up; `GET /calls/openapi.json` describes them (`gateway.outbound.openapi`).
Every one needs `Authorization: Bearer <API_TOKEN>` (compared in constant time); without
API_TOKEN the routes do not exist. Errors are `{"error": {"field": …, "message": …}}`.

`OutboundService` also answers what the carrier (Twilio, SignalWire, Telnyx, Plivo, Vonage)
asks about a call it placed: its voice webhook (`voice_answer`: connect the stream, or hang up
on an answering machine) and its status callbacks (`status_report`). The server checks the carrier's
signature on those first; here a request must also name a call this process placed, on that
carrier, by our id *and* the carrier's call id.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from gateway.agents.config import AgentConfig, AgentSet
from gateway.ops.logs import clip
from gateway.outbound.agents import missing_variables, voicemail_policy, wants_machine_detection
from gateway.outbound.notify import OutboundNotifier
from gateway.outbound.placer import CARRIERS, HANG_UP_ON_MACHINES, Placer, PlaceRequest
from gateway.outbound.registry import (
    OutboundCall,
    OutboundRegistry,
    RegistryFull,
    is_outbound_id,
    new_outbound_id,
)
from gateway.outbound.reports import read_report
from gateway.outbound.states import (
    FINAL_STATES,
    CallState,
    is_machine,
    next_state,
)
from gateway.outbound.variables import InvalidVariables, check_variables
from gateway.telephony.carrier import CarrierRestError
from gateway.telephony.numbers import E164

__all__ = [
    "CALLS_PATH",
    "OPENAPI_PATH",
    "OUTBOUND_SERVICE",
    "OutboundService",
    "StatusOutcome",
    "VoiceAnswer",
    "add_outbound_routes",
]

log = structlog.get_logger("gateway.outbound")

CALLS_PATH: Final = "/calls"
OPENAPI_PATH: Final = "/calls/openapi.json"
MAX_URL_CHARS: Final = 2000
MAX_LISTED: Final = 1000
FIELDS: Final = frozenset({"agent", "to", "from", "carrier", "variables", "callback_url"})
MAX_BODY_BYTES: Final = 64 * 1024
_CARRIER_CALL_IDS: Final = (
    ("twilio", re.compile(r"CA[0-9a-f]{32}")),
    ("signalwire", re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")),
    ("plivo", re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")),
    ("vonage", re.compile(r"[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}")),
    ("telnyx", re.compile(r"v[0-9]{1,2}_[A-Za-z0-9_-]{1,200}")),  # `v3:…`, `:` made `_`
)

END_API_HANG_UP: Final = "api_hang_up"
END_REST_FAILED: Final = "carrier_rest_failed"
END_VOICEMAIL_HANG_UP: Final = "voicemail_hang_up"
END_VOICEMAIL_LEFT: Final = "voicemail_left"
END_MACHINE_LATE: Final = "voicemail_detected_late"
"""A machine was named after the agent had started talking (background detection)."""


class ApiError(Exception):
    """An answer other than success: HTTP status, the field at fault (None: the request as a
    whole), what is wrong."""

    def __init__(self, status: int, field: str | None, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message
        self.extra = extra

    def response(self) -> web.Response:
        body = {"error": {"field": self.field, "message": self.message}, **self.extra}
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return web.json_response(body, status=self.status, headers=headers)


@dataclass(frozen=True, slots=True)
class CallRequest:
    """A `POST /calls` body, checked."""

    agent: AgentConfig
    to: str
    from_number: str
    carrier: str
    variables: Mapping[str, str]
    callback_url: str | None


class StatusOutcome(StrEnum):
    """What became of a status callback: `updated`, `ignored` (an event about something else:
    204 too), or refused as `unknown` (no such call here: 404), `mismatch` (another call's
    carrier id: 400) or `malformed` (400)."""

    UPDATED = "updated"
    IGNORED = "ignored"
    UNKNOWN = "unknown"
    MISMATCH = "mismatch"
    MALFORMED = "malformed"


@dataclass(frozen=True, slots=True)
class VoiceAnswer:
    """How the voice webhook answers an outbound call: connect `agent` with `parameters`
    added to the stream's, or (`agent` None) hang up."""

    agent: str | None
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass
class OutboundService:
    """Outbound calls of one gateway app."""

    token: str
    public_url: str | None
    default_from: str | None
    registry: OutboundRegistry
    placers: Mapping[str, Placer | str]
    """Per carrier, its placer, or why it cannot place calls."""
    agents: Callable[[], AgentSet]
    """The agents now (they hot-reload)."""
    notifier: OutboundNotifier

    # ------------------------------------------------------------------ the API

    def authorize(self, request: web.Request) -> None:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise ApiError(401, "Authorization", "needs Authorization: Bearer <API_TOKEN>")
        if not hmac.compare_digest(presented.strip().encode(), self.token.encode()):
            log.warning("api_rejected", reason="wrong_token", path=request.path)
            raise ApiError(401, "Authorization", "wrong bearer token")

    def parse(self, document: Any) -> CallRequest:
        """The body as a `CallRequest`, or ApiError naming the first field at fault."""
        if not isinstance(document, dict):
            raise ApiError(400, None, "the body must be a JSON object")
        unknown = sorted(set(document) - FIELDS)
        if unknown:
            raise ApiError(400, str(unknown[0])[:64], "unknown field")
        carrier = _text(document, "carrier", required=False) or "twilio"
        if carrier not in CARRIERS:
            raise ApiError(400, "carrier", f"outbound calls work on: {', '.join(CARRIERS)}")
        name = _text(document, "agent")
        agents = self.agents().for_carrier(carrier)
        agent = agents.get(name) if agents is not None else None
        if agent is None:
            raise ApiError(400, "agent", f"no agent named {clip(name)!r} answers {carrier} calls")
        to = _number(document, "to")
        from_number = _number(document, "from", required=False) or self._default_from(agent)
        try:
            raw = document.get("variables")
            variables = check_variables({} if raw is None else raw)
        except InvalidVariables as exc:
            raise ApiError(400, "variables", str(exc)) from None
        callback_url = _text(document, "callback_url", required=False)
        if callback_url is not None:
            parts = urlsplit(callback_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ApiError(400, "callback_url", "must be an http:// or https:// URL")
            if len(callback_url) > MAX_URL_CHARS:
                raise ApiError(400, "callback_url", f"longer than {MAX_URL_CHARS} characters")
        missing = missing_variables(agent, variables)
        if missing:
            listed = ", ".join(missing)
            raise ApiError(
                422, "variables", f"agent {agent.name!r} needs: {listed}", missing=missing
            )
        return CallRequest(agent, to, from_number, carrier, variables, callback_url)

    def _default_from(self, agent: AgentConfig) -> str:
        if self.default_from:
            return self.default_from
        lines = [line for line in agent.lines if E164.fullmatch(line)]
        if not lines:
            raise ApiError(
                400,
                "from",
                "required: the agent has no line to call from (or set OUTBOUND_FROM_NUMBER)",
            )
        return lines[0]

    async def place(self, wanted: CallRequest) -> OutboundCall:
        """Register the call and place it; ApiError (the call `failed`) when the carrier says no."""
        if not self.public_url:
            raise ApiError(
                503, None, "PUBLIC_URL is not set: the carrier fetches the call's answer there"
            )
        placer = self.placers.get(wanted.carrier)
        if placer is None or isinstance(placer, str):
            raise ApiError(503, "carrier", placer or f"{wanted.carrier} cannot place calls")
        call = OutboundCall(
            id=new_outbound_id(),
            agent=wanted.agent.name,
            to=wanted.to,
            from_number=wanted.from_number,
            carrier=wanted.carrier,
            variables=dict(wanted.variables),
            callback_url=wanted.callback_url,
            agent_config=wanted.agent,
        )
        try:
            self.registry.add(call)
        except RegistryFull as exc:
            raise ApiError(503, None, str(exc)) from None
        request = PlaceRequest(
            call.id,
            call.to,
            call.from_number,
            self.public_url,
            machine_detection=wants_machine_detection(wanted.agent),
            hang_up_machines=voicemail_policy(wanted.agent) == "hang_up",
        )
        try:
            placed = await placer.place(request)
        except CarrierRestError as exc:
            log.error("outbound_place_failed", outbound=call.id, error=str(exc))
            call.state = CallState.FAILED
            call.end_reason = END_REST_FAILED
            self._ended(call)
            raise ApiError(502, None, str(exc), call=call.to_json()) from None
        if placed.carrier_call_id is None:
            pass  # the carrier names it in its first (signed) callback (Plivo): bound then
        elif not self.registry.set_carrier_call_id(call, placed.carrier_call_id):
            log.warning(  # a webhook named another id first: the REST answer is the truth
                "outbound_call_id_conflict", outbound=call.id, call_sid=placed.carrier_call_id
            )
        call.account_id = placed.account_id
        self.notifier.placed(call)
        log.info(
            "outbound_call_placed",
            outbound=call.id,
            call_sid=placed.carrier_call_id,
            agent=call.agent,
            carrier=call.carrier,
        )
        return call

    async def hang_up(self, call: OutboundCall) -> OutboundCall:
        """Ask the carrier to end `call` (its final state comes with the status callback)."""
        if call.ended or call.state in FINAL_STATES:
            return call
        placer = self.placers.get(call.carrier)
        if call.carrier_call_id is None or placer is None or isinstance(placer, str):
            raise ApiError(409, "id", "the call is still being placed; try again")
        try:
            await placer.hang_up(call.account_id, call.carrier_call_id)
        except CarrierRestError as exc:
            log.error("outbound_hang_up_failed", outbound=call.id, error=str(exc))
            raise ApiError(502, None, str(exc), call=call.to_json()) from None
        call.hang_up_requested = True
        log.info("outbound_hang_up_requested", outbound=call.id, call_sid=call.carrier_call_id)
        return call

    def lookup(self, request: web.Request) -> OutboundCall:
        call_id = request.match_info["id"]
        call = self.registry.get(call_id) if is_outbound_id(call_id) else None
        if call is None:
            raise ApiError(404, "id", "no such call")
        return call

    # ------------------------------------------------------------------ the carrier's side

    def voice_answer(
        self, call_id: str, call_sid: str, answered_by: str, *, carrier: str = "twilio"
    ) -> VoiceAnswer:
        """`carrier`'s voice webhook of outbound call `call_id` (`call_sid`: the request's)."""
        call = self._claim(call_id, call_sid, carrier)
        if call is None:
            log.warning("outbound_voice_refused", outbound=clip(call_id), call_sid=call_sid)
            return VoiceAnswer(None)
        if call.ended:
            return VoiceAnswer(None)
        agent = self.agents().get(call.agent)
        if agent is None:
            log.warning("outbound_agent_gone", outbound=call.id, agent=call.agent)
            return VoiceAnswer(None)
        if answered_by:
            call.answered_by = clip(answered_by)
        machine = is_machine(call.answered_by)  # or named earlier, by a status callback
        parameters = {"outbound": call.id}
        if machine and voicemail_policy(agent) == "hang_up":
            call.state = CallState.VOICEMAIL
            call.end_reason = END_VOICEMAIL_HANG_UP
            log.info("outbound_voicemail_hang_up", outbound=call.id, answered_by=answered_by)
            return VoiceAnswer(None)
        if machine:
            parameters["answered_by"] = "machine"
        call.state = next_state(call.state, CallState.IN_PROGRESS, machine=machine)
        return VoiceAnswer(call.agent, parameters)

    def status_report(
        self, call_id: str, params: Mapping[str, str], *, carrier: str = "twilio"
    ) -> StatusOutcome:
        """A status callback of `carrier` (already signature-checked) for outbound call
        `call_id`: Twilio's fields (SignalWire and Telnyx send the same), or Plivo's."""
        report = read_report(carrier, params)
        call_sid = report.call_id
        call = self._claim(call_id, call_sid, carrier)
        if call is None:
            known = is_outbound_id(call_id) and self.registry.get(call_id) is not None
            outcome = StatusOutcome.MISMATCH if known else StatusOutcome.UNKNOWN
            log.warning(
                "outbound_status_refused",
                reason=outcome.value,
                outbound=clip(call_id),
                call_sid=clip(call_sid),
            )
            return outcome
        reported = report.state
        if reported is None and report.informational:
            return StatusOutcome.IGNORED
        if reported is None:
            log.warning("outbound_status_refused", reason="call_status", outbound=call.id)
            return StatusOutcome.MALFORMED
        answered_by = report.answered_by
        if answered_by and call.answered_by is None:
            call.answered_by = clip(answered_by)
            if is_machine(answered_by) and call.end_reason is None:
                self._machine_detected(call)
        duration = report.duration
        if duration.isascii() and duration.isdigit() and len(duration) <= 9:
            call.duration_s = int(duration)
        call.state = next_state(call.state, reported, machine=is_machine(call.answered_by))
        log.info(
            "outbound_status", outbound=call.id, call_status=reported.value, state=call.state
        )
        if reported in FINAL_STATES and not call.ended:
            call.end_reason = _end_reason(call, reported)
            self._ended(call)
        return StatusOutcome.UPDATED

    def _machine_detected(self, call: OutboundCall) -> None:
        """A machine named by a status callback, not at the voice webhook (Plivo detects in
        the background; Vonage's verdict is an event): with `hang_up` on a carrier we asked to
        hang up itself, the call is `voicemail` at once. Otherwise, once a stream has started
        with the agent's ordinary greeting, no message was left after a beep: it says so
        (before any stream, the voice webhook acts on the verdict)."""
        agent = call.agent_config
        if agent is None:
            return
        if voicemail_policy(agent) == "hang_up" and call.carrier in HANG_UP_ON_MACHINES:
            call.state = CallState.VOICEMAIL
            call.end_reason = END_VOICEMAIL_HANG_UP
            log.info("outbound_voicemail_hang_up", outbound=call.id, answered_by=call.answered_by)
        elif call.streamed:
            call.end_reason = END_MACHINE_LATE
            log.info("outbound_machine_after_stream", outbound=call.id)

    def recording_written(self, jsonl: Path, wav: Path, txt: Path) -> None:
        """The recorder finished a recording (named `<time>-<call id>…`: a Twilio CallSid, a
        SignalWire or Plivo UUID, a Telnyx id with its `:` made `_`): if it is an outbound
        call's, note where it is."""
        call = None
        for carrier, pattern in _CARRIER_CALL_IDS:
            found = pattern.search(jsonl.stem)
            if found is not None:
                carrier_id = found.group(0)
                if carrier == "telnyx":
                    carrier_id = carrier_id.replace("_", ":", 1)
                call = self.registry.by_carrier_call_id(carrier, carrier_id)
            if call is not None:
                break
        if call is not None:
            call.recording = {"jsonl": str(jsonl), "wav": str(wav), "txt": str(txt)}

    def _claim(self, call_id: str, call_sid: str, carrier: str) -> OutboundCall | None:
        """The call `call_id` placed on `carrier` whose carrier id is `call_sid`, else None."""
        if not is_outbound_id(call_id):
            return None
        known = self.registry.get(call_id)
        if known is None or known.carrier != carrier:  # never bind another carrier's id
            return None
        return self.registry.claim(call_id, call_sid)

    def _ended(self, call: OutboundCall) -> None:
        if self.registry.mark_ended(call):
            self.notifier.ended(call)


def _end_reason(call: OutboundCall, reported: CallState) -> str:
    """Why the call ended, most telling first: hung up through the API, an answering machine,
    the stream's own end (`agent_ended`, `caller_hung_up`, …), else the carrier's status."""
    if call.hang_up_requested:
        return END_API_HANG_UP
    if call.end_reason is not None:  # e.g. voicemail_hang_up, set at the voice webhook
        return call.end_reason
    if call.state is CallState.VOICEMAIL:
        return END_VOICEMAIL_LEFT
    if call.stream_end_reason is not None:
        return call.stream_end_reason
    return reported.value


def _text(document: Mapping[str, Any], name: str, *, required: bool = True) -> Any:
    value = document.get(name)
    if value is None:
        if required:
            raise ApiError(400, name, "required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, name, "must be a non-empty string")
    if len(value) > MAX_URL_CHARS:
        raise ApiError(400, name, f"longer than {MAX_URL_CHARS} characters")
    return value.strip()


def _number(document: Mapping[str, Any], name: str, *, required: bool = True) -> Any:
    value = _text(document, name, required=required)
    if value is not None and not E164.fullmatch(value):
        raise ApiError(400, name, "must be an E.164 number: + and 7 to 15 digits")
    return value


# ---------------------------------------------------------------------- routes

OUTBOUND_SERVICE = web.AppKey("outbound_service", OutboundService)


def _service(request: web.Request) -> OutboundService:
    service = request.app[OUTBOUND_SERVICE]
    service.authorize(request)
    return service


def _api(
    handler: Callable[[web.Request], Any],
) -> Callable[[web.Request], Any]:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except ApiError as exc:
            return exc.response()
        return response

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


@_api
async def handle_create(request: web.Request) -> web.Response:
    """POST /calls"""
    service = _service(request)
    body = await request.content.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, None, f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        document = json.loads(body) if body else None
    except ValueError as exc:
        raise ApiError(400, None, f"the body is not JSON: {exc}") from None
    call = await service.place(service.parse(document))
    return web.json_response(call.to_json(), status=201)


@_api
async def handle_list(request: web.Request) -> web.Response:
    """GET /calls[?state=…&limit=…]: newest first."""
    service = _service(request)
    wanted = request.query.get("state")
    if wanted is not None and wanted not in {state.value for state in CallState}:
        raise ApiError(400, "state", "not a call state")
    limit_text = request.query.get("limit", "100")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LISTED:
        raise ApiError(400, "limit", f"must be 1 to {MAX_LISTED}")
    calls = [c for c in service.registry if wanted is None or c.state.value == wanted]
    return web.json_response({"calls": [c.to_json() for c in calls[: int(limit_text)]]})


@_api
async def handle_get(request: web.Request) -> web.Response:
    """GET /calls/{id}"""
    service = _service(request)
    return web.json_response(service.lookup(request).to_json())


@_api
async def handle_delete(request: web.Request) -> web.Response:
    """DELETE /calls/{id}"""
    service = _service(request)
    call = await service.hang_up(service.lookup(request))
    return web.json_response(call.to_json())


@_api
async def handle_openapi(request: web.Request) -> web.Response:
    """GET /calls/openapi.json"""
    from gateway.outbound.openapi import openapi_document

    _service(request)
    return web.json_response(openapi_document())


def add_outbound_routes(app: web.Application, service: OutboundService) -> None:
    """The /calls routes (openapi.json before /calls/{id}, which would match it)."""
    app[OUTBOUND_SERVICE] = service
    app.router.add_post(CALLS_PATH, handle_create)
    app.router.add_get(CALLS_PATH, handle_list)
    app.router.add_get(OPENAPI_PATH, handle_openapi)
    app.router.add_get(CALLS_PATH + "/{id}", handle_get)
    app.router.add_delete(CALLS_PATH + "/{id}", handle_delete)
