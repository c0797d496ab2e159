"""The aiohttp application: Twilio's voice webhook, the media-stream WebSocket, health, drain.

`create_app` builds the app from settings and a validated agent set; `serve` runs it until
SIGTERM/SIGINT, then stops accepting calls and lets live calls finish (bounded by
`DRAIN_TIMEOUT_S`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import signal
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from gateway.agents.config import AgentSet
from gateway.agents.store import AgentStore
from gateway.call.bridge import Call
from gateway.call.hooks import CallObserver
from gateway.call.outcome import EndReason
from gateway.call.ports import CallerTransport, LiveConnectorLike
from gateway.call.session_config import session_config_for
from gateway.frame_batcher import FrameBatcher
from gateway.live.client import LiveConnector
from gateway.live.emulator.server import LiveEmulator
from gateway.live.models import NEWEST_PROFILE, is_known_model
from gateway.live.resilient import ResilientLiveConnector
from gateway.ops.logs import clip
from gateway.ops.metrics import DROP_RATE_LIMITED, METRICS, add_metrics
from gateway.ops.post_call import PostCallWebhook, wait_for_deliveries
from gateway.recording.recorder import RECORDINGS, add_recordings
from gateway.security.call_binding import (
    BINDING_PARAMETER,
    CallBinder,
    is_account_sid,
    is_call_sid,
)
from gateway.security.http_guard import GuardedSite
from gateway.security.stream_guard import (
    SIGNATURE_HEADER,
    AudioBudget,
    CallSlots,
    GuardedTransport,
    SignatureCheck,
)
from gateway.settings import LiveBackend, Settings
from gateway.softphone.page import add_softphone_routes
from gateway.telephony.base import MediaStreamCodec
from gateway.telephony.carrier import (
    Carrier,
    CarrierRequestError,
    CarrierRest,
    WebhookAnswer,
    WebhookRequest,
)
from gateway.telephony.carriers import carriers_from_settings
from gateway.telephony.twilio import (
    TwilioCodec,
    build_connect_twiml,
    build_hangup_twiml,
    build_say_hangup_twiml,
    media_stream_url,
)
from gateway.telephony.twilio_rest import TwilioRest

if TYPE_CHECKING:  # loaded only with API_TOKEN (outbound calls): never at an idle start-up
    from gateway.outbound.api import OutboundService
    from gateway.outbound.streams import OutboundStreams

log = structlog.get_logger("gateway.server")

MEDIA_PATH = "/media"
PLIVO_DIAL_PATH = "/plivo/dial"
"""Where Plivo fetches a transfer's <Dial> (gateway.telephony.plivo.DIAL_PATH)."""
MAX_CARRIER_FRAME_BYTES = 64 * 1024
"""A Twilio media frame is ~300 bytes of JSON; anything this large is not a phone call.
The default of the MAX_CARRIER_FRAME_BYTES setting, which the handler uses."""
BUSY_MESSAGE = "Sorry, all our lines are busy. Please call again later."
UNAVAILABLE_MESSAGE = "Sorry, this line is not available. Goodbye."
"""What a caller hears when `?agent=` names no agent and UNKNOWN_AGENT=reject."""
KEEPALIVE_TIMEOUT_S = 75.0
"""How long `gateway serve` keeps an idle HTTP keep-alive connection (nginx's default)."""

class GatewayState:
    """Mutable process state shared by the handlers."""

    def __init__(self) -> None:
        self.draining = False
        self.calls_total = 0
        self.emulator: LiveEmulator | None = None
        self.audiosocket_port: int | None = None
        """The AudioSocket listener's port, once it listens (ASTERISK_AUDIOSOCKET_PORT)."""


SETTINGS = web.AppKey("settings", Settings)
AGENTS = web.AppKey("agents", AgentSet)
"""The agent set the app started with; `AGENT_STORE.current` is the live one (hot reload)."""
AGENT_STORE = web.AppKey("agent_store", AgentStore)
CONNECTOR = web.AppKey("connector", LiveConnectorLike)
CALLS: web.AppKey[set[Call]] = web.AppKey("calls")
STATE = web.AppKey("state", GatewayState)
SIGNATURES = web.AppKey("signatures", SignatureCheck)
CALL_SLOTS = web.AppKey("call_slots", CallSlots)
CALL_BINDER: web.AppKey[CallBinder | None] = web.AppKey("call_binder")
CARRIERS: web.AppKey[Mapping[str, Carrier]] = web.AppKey("carriers")
"""Every carrier by route name (gateway.telephony.carriers)."""
CARRIER_BINDERS: web.AppKey[dict[str, CallBinder | None]] = web.AppKey("carrier_binders")
"""Per carrier, the binder of its streams (None: its key is not set, streams are unbound)."""
"""Issues `/twiml` bindings and verifies them at `/media` (None without TWILIO_AUTH_TOKEN:
streams are then unauthenticated, and calls never use Twilio REST)."""
OUTBOUND: web.AppKey[OutboundService] = web.AppKey("outbound")
"""Outbound calls (gateway.outbound.api); only with API_TOKEN."""
OUTBOUND_STREAMS: web.AppKey[Mapping[str, OutboundStreams]] = web.AppKey("outbound_streams")
"""Per carrier that places calls, what its streams learn from the outbound registry."""
CALL_OBSERVERS: web.AppKey[list[Callable[[str], list[CallObserver]]]] = web.AppKey(
    "call_observers"
)
"""More observers for each call, asked per call with its carrier (the console's)."""
TWILIO_STATUS_PATH = "/twilio/status"
"""Twilio's status callbacks of outbound calls (gateway.outbound.placer)."""
OUTBOUND_CARRIERS = ("signalwire", "telnyx", "plivo", "vonage")
"""Carriers of `/{carrier}/voice` that place outbound calls (Twilio has its own handlers):
their webhook honours `?outbound=<id>`, and `/{carrier}/status` takes their status callbacks."""
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class WebSocketTransport:
    """`CallerTransport` over an aiohttp server WebSocket. With the connection's `transport`,
    frames sent in one event-loop step leave in one socket write (gateway.frame_batcher)."""

    def __init__(
        self, ws: web.WebSocketResponse, transport: asyncio.Transport | None = None
    ) -> None:
        self._ws = ws
        self._frames = FrameBatcher(ws, transport)

    async def receive(self) -> str | bytes | None:
        while True:
            message = await self._ws.receive()
            if message.type is WSMsgType.TEXT:
                return str(message.data)
            if message.type is WSMsgType.BINARY:
                return bytes(message.data)
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return None
            if message.type is WSMsgType.ERROR:
                error = self._ws.exception()
                if isinstance(error, ConnectionError):  # the peer went away: call_ended says so
                    log.debug("caller_socket_lost", error=repr(error))
                else:  # e.g. no pong to the heartbeat
                    log.warning("caller_socket_error", error=repr(error))
                return None

    async def send(self, frame: str | bytes) -> None:
        if self._ws.closed:
            raise ConnectionResetError("caller stream is closed")
        await self._frames.send(frame)

    def send_now(self, frames: Sequence[str | bytes]) -> bool:
        return not self._ws.closed and self._frames.send_now(frames)

    async def close(self) -> None:
        self._frames.flush()
        await self._ws.close()


def _public_base_url(request: web.Request, settings: Settings) -> str:
    """Where Twilio reaches us: PUBLIC_URL if set, else what the request itself says.

    X-Forwarded-Proto/-Host count only from a peer in TRUSTED_PROXIES: from anyone else they
    would let a signature made for another URL (another app on the account) pass.
    """
    if settings.public_url:
        return settings.public_url
    if _from_trusted_proxy(request, settings):
        proto = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
        host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
        return f"{proto}://{host}"
    return f"{request.scheme}://{request.host}"


def _from_trusted_proxy(request: web.Request, settings: Settings) -> bool:
    networks = settings.trusted_proxy_networks
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if not networks or not peer:
        return False
    try:
        address = ipaddress.ip_address(str(peer[0]).split("%")[0])
    except ValueError:  # a Unix socket or an unparsable peer: not a proxy we know
        return False
    return any(address in network for network in networks)


def _form_value(form: Mapping[str, Any], name: str) -> str:
    """A webhook form (or query) field without control characters (they never reach TwiML
    or logs)."""
    return _CONTROL_CHARACTERS.sub("", str(form.get(name, "")))


def _require_twilio_signature(request: web.Request, url: str, params: Mapping[str, Any]) -> None:
    """403 unless X-Twilio-Signature signs `url` (+ `params`); a no-op without an auth token."""
    problem = request.app[SIGNATURES].check(url, params, request.headers.get(SIGNATURE_HEADER))
    if problem is not None:
        log.warning("request_rejected", reason=problem, path=request.path, signed_url=url)
        raise web.HTTPForbidden(text="invalid or missing X-Twilio-Signature")


def warn_unknown_models(default_model: str, agents: AgentSet) -> list[str]:
    """One `live_model_unknown` warning per model id the profile table does not know (such a
    model is spoken to as the newest generation); returns those ids."""
    used = (agent.model_id(default_model) for agent in agents.agents.values())
    models = dict.fromkeys([default_model, *used])
    unknown = [model for model in models if not is_known_model(model)]
    for model in unknown:
        log.warning("live_model_unknown", model=model, treated_as=NEWEST_PROFILE.name)
    return unknown


async def handle_twiml(request: web.Request) -> web.Response:
    """Twilio's voice webhook: connect the call to our media stream, with its context."""
    settings = request.app[SETTINGS]
    form = await request.post()
    base_url = _public_base_url(request, settings)
    _require_twilio_signature(request, base_url + request.raw_path, form)  # as Twilio sent it
    call_sid = _form_value(form, "CallSid")
    account_sid = _form_value(form, "AccountSid")
    binder = request.app[CALL_BINDER]
    for name, value, valid in (
        ("CallSid", call_sid, is_call_sid),
        ("AccountSid", account_sid, is_account_sid),
    ):
        if (value or binder is not None) and not valid(value):
            log.warning("request_rejected", reason=f"bad_{name}", path=request.path)
            raise web.HTTPBadRequest(text=f"{name} is not a Twilio {name[:-3]} SID")
    allowed = settings.account_sid_allowlist
    if allowed and account_sid not in allowed:
        log.warning("request_rejected", reason="account_not_allowed", path=request.path)
        raise web.HTTPForbidden(text="account not allowed")
    outbound_id = _form_value(request.query, "outbound")
    outbound_agent: str | None = None
    outbound_parameters: Mapping[str, str] = {}
    if outbound_id:  # a call we placed (gateway.outbound): its agent, or a hang-up
        service = request.app.get(OUTBOUND)
        answer = (
            service.voice_answer(outbound_id, call_sid, _form_value(form, "AnsweredBy"))
            if service is not None
            else None
        )
        if answer is None or answer.agent is None:
            if service is None:
                log.warning("outbound_voice_refused", reason="outbound_off", call_sid=call_sid)
            return web.Response(text=build_hangup_twiml(), content_type="application/xml")
        outbound_agent, outbound_parameters = answer.agent, answer.parameters
    if request.app[CALL_SLOTS].full:
        log.warning("call_refused", reason="busy", call_sid=call_sid)
        busy = build_say_hangup_twiml(BUSY_MESSAGE)
        return web.Response(text=busy, content_type="application/xml")
    agents = request.app[AGENT_STORE].current.for_carrier("twilio")
    if agents is None:
        log.warning("call_refused", reason="no_agent_for_carrier", carrier="twilio")
        return web.Response(
            text=build_say_hangup_twiml(UNAVAILABLE_MESSAGE), content_type="application/xml"
        )
    to_number = _form_value(form, "To") or None
    from_number = _form_value(form, "From") or None
    requested = (
        outbound_agent or _form_value(request.query, "agent") or _form_value(form, "agent") or None
    )
    if requested is not None and requested not in agents.agents:
        log.warning(
            "agent_unknown",
            agent=clip(requested),
            call_sid=call_sid,
            unknown_agent=settings.unknown_agent,
        )
        if settings.unknown_agent == "reject":
            refusal = build_say_hangup_twiml(UNAVAILABLE_MESSAGE)
            return web.Response(text=refusal, content_type="application/xml")
        requested = None
    agent = agents.for_call(requested, to_number)
    stream_url = media_stream_url(base_url, MEDIA_PATH)
    parameters = {
        "agent": agent.name,
        "to": to_number or "",
        "from": from_number or "",
        "call_sid": call_sid,
        **outbound_parameters,  # not bound: the call's own SID (bound) must match the id's
    }
    if binder is not None:  # the stream must bring this back for /media to start the call
        parameters[BINDING_PARAMETER] = binder.issue(call_sid, account_sid, parameters)
    twiml = build_connect_twiml(stream_url, parameters)
    log.info("twiml_answered", call_sid=call_sid, agent=agent.name, line=to_number)
    return web.Response(text=twiml, content_type="application/xml")


async def handle_twilio_status(request: web.Request) -> web.Response:
    """Twilio's status callback of an outbound call: signed as the voice webhook is (else 403),
    and naming a call this process placed by our id and its CallSid (else 404 / 400)."""
    from gateway.outbound.api import StatusOutcome

    form = await request.post()
    base_url = _public_base_url(request, request.app[SETTINGS])
    _require_twilio_signature(request, base_url + request.raw_path, form)
    params = {name: _form_value(form, name) for name in form}
    outcome = request.app[OUTBOUND].status_report(_form_value(request.query, "outbound"), params)
    if outcome is StatusOutcome.UNKNOWN:
        raise web.HTTPNotFound(text="no such outbound call")
    if outcome is not StatusOutcome.UPDATED:
        raise web.HTTPBadRequest(text=f"status callback refused: {outcome.value}")
    return web.Response(status=204)


async def handle_media(request: web.Request) -> web.StreamResponse:
    """The media-stream WebSocket: one `Call` per connection."""
    state = request.app[STATE]
    if state.draining:
        raise web.HTTPServiceUnavailable(text="gateway is draining")
    settings = request.app[SETTINGS]
    signed_url = media_stream_url(_public_base_url(request, settings), request.path)
    raw_query = request.raw_path.partition("?")[2]
    if raw_query:
        signed_url += "?" + raw_query
    _require_twilio_signature(request, signed_url, {})
    binder = request.app[CALL_BINDER]
    return await _serve_stream(
        request,
        TwilioCodec(),
        carrier="twilio",
        recorder_codec=TwilioCodec(),
        binder=binder,
        account_sids=settings.account_sid_allowlist,
        # Twilio REST acts on the call's SID: only when /twiml vouched for it (the binding).
        carrier_rest=TwilioRest.from_settings(settings) if binder is not None else None,
    )


async def _serve_stream(
    request: web.Request,
    codec: MediaStreamCodec,
    *,
    carrier: str,
    recorder_codec: MediaStreamCodec,
    binder: CallBinder | None,
    account_sids: frozenset[str],
    carrier_rest: CarrierRest | None,
) -> web.StreamResponse:
    """Upgrade to the media WebSocket and run one `Call` on it, whatever the carrier."""
    settings = request.app[SETTINGS]
    agents = request.app[AGENT_STORE].current.for_carrier(carrier)  # the call keeps this set
    if agents is None:
        log.warning("call_refused", reason="no_agent_for_carrier", carrier=carrier)
        raise web.HTTPNotFound(text=f"no agent answers calls from {carrier}")
    slots = request.app[CALL_SLOTS]
    if slots.full:
        log.warning("call_refused", reason="busy", active_calls=slots.in_use)
        raise web.HTTPServiceUnavailable(text="all lines are busy")
    ws = web.WebSocketResponse(
        max_msg_size=settings.max_carrier_frame_bytes,
        autoping=True,
        heartbeat=settings.media_heartbeat_s or None,  # a peer that stops answering is closed
    )
    try:
        await ws.prepare(request)
    except ConnectionError as exc:  # the client went away mid-handshake: nothing to serve
        log.debug("media_upgrade_aborted", error=repr(exc))
        return web.Response(status=499, reason="Client Closed Request")  # nginx's convention
    if not slots.try_acquire():  # another upgrade took the last slot while we prepared
        await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"all lines are busy")
        return ws
    await _run_call(
        request.app,
        WebSocketTransport(ws, request.transport),
        codec,
        agents,
        carrier=carrier,
        recorder_codec=recorder_codec,
        binder=binder,
        account_sids=account_sids,
        carrier_rest=carrier_rest,
    )
    return ws


async def _run_call(
    app: web.Application,
    inner: CallerTransport,
    codec: MediaStreamCodec,
    agents: AgentSet,
    *,
    carrier: str,
    recorder_codec: MediaStreamCodec,
    binder: CallBinder | None,
    account_sids: frozenset[str],
    carrier_rest: CarrierRest | None,
) -> None:
    """One `Call` on a carrier connection whose slot is taken (released here)."""
    settings = app[SETTINGS]
    slots = app[CALL_SLOTS]
    outbound = app[OUTBOUND_STREAMS].get(carrier) if OUTBOUND_STREAMS in app else None
    transport = GuardedTransport(
        inner,
        codec,
        max_frames_per_s=settings.max_carrier_frames_per_s,
        account_sids=account_sids,
        binder=binder,
    )
    call = Call(
        transport,
        codec,
        agents,  # a live call keeps the set it started with
        app[CONNECTOR],
        partial(
            session_config_for,
            default_model=settings.model,
            backend=settings.dialect,
            compression_trigger_tokens=settings.live_context_trigger_tokens,
            compression_target_tokens=settings.live_context_target_tokens,
        ),
        live_input_rate_hz=settings.live_input_rate_hz,
        observers=[
            app[METRICS].observer(),
            app[RECORDINGS].recorder(carrier, recorder_codec),
            PostCallWebhook(outbound.summary if outbound is not None else None),
            *([outbound.observer()] if outbound is not None else []),
            *(observer for more in app[CALL_OBSERVERS] for observer in more(carrier)),
        ],
        carrier_rest=carrier_rest,
        data_dir=settings.data_dir,
        audio_budget=(
            AudioBudget(speed=settings.max_caller_audio_speed)
            if settings.max_caller_audio_speed > 0
            else None
        ),
        start_timeout_s=settings.start_timeout_s,
        carrier_idle_timeout_s=settings.carrier_idle_timeout_s,
        outbound=outbound,
    )
    calls = app[CALLS]
    calls.add(call)
    app[STATE].calls_total += 1
    try:
        await call.run()
    finally:
        calls.discard(call)
        slots.release()
        app[METRICS].count_frames_dropped(DROP_RATE_LIMITED, transport.frames_dropped)


# ---------------------------------------------------------------------- every other carrier


def _carrier(request: web.Request) -> tuple[Carrier, CallBinder | None]:
    name = request.match_info["carrier"]
    carrier = request.app[CARRIERS].get(name)
    if carrier is None:
        raise web.HTTPNotFound(text=f"no carrier named {clip(name)!r}")
    binders = request.app[CARRIER_BINDERS]
    if name not in binders:
        secret = carrier.binding_secret
        binders[name] = CallBinder(secret) if secret else None
    return carrier, binders[name]


async def _webhook_request(request: web.Request, url: str) -> WebhookRequest:
    """The request as the carrier made it: its body, and its fields (form, JSON or query)."""
    body = await request.read()
    params: dict[str, str] = {}
    if request.content_type == "application/x-www-form-urlencoded":
        params = {k: _form_value({k: v}, k) for k, v in (await request.post()).items()}
    elif request.content_type == "application/json" and body:
        try:
            document = json.loads(body)
        except ValueError:
            raise web.HTTPBadRequest(text="body is not JSON") from None
        if isinstance(document, dict):
            params = {k: _form_value(document, k) for k, v in document.items() if type(v) is str}
    else:
        params = {k: _form_value(request.query, k) for k in request.query}
    headers = {name.lower(): value for name, value in request.headers.items()}
    return WebhookRequest(request.method, url, headers, body, params)


async def handle_carrier_voice(request: web.Request) -> web.Response:
    """`/{carrier}/voice`: the carrier's voice webhook, answered as Twilio's `/twiml` is."""
    carrier, binder = _carrier(request)
    settings = request.app[SETTINGS]
    base_url = _public_base_url(request, settings)
    webhook = await _webhook_request(request, base_url + request.raw_path)
    problem = carrier.verify_webhook(webhook)
    if problem is not None:
        log.warning("request_rejected", reason=problem, carrier=carrier.name, path=request.path)
        raise web.HTTPForbidden(text=f"invalid or missing {carrier.name} signature")
    try:
        inbound = carrier.inbound_call(webhook)
    except CarrierRequestError as exc:
        log.warning("request_rejected", reason="bad_request", carrier=carrier.name, error=str(exc))
        raise web.HTTPBadRequest(text=str(exc)) from None
    allowed = carrier.account_allowlist
    if allowed and inbound.account_id not in allowed:
        log.warning("request_rejected", reason="account_not_allowed", carrier=carrier.name)
        raise web.HTTPForbidden(text="account not allowed")
    outbound_id = _form_value(request.query, "outbound")
    outbound_agent: str | None = None
    outbound_parameters: Mapping[str, str] = {}
    if outbound_id and carrier.name in OUTBOUND_CARRIERS:  # a call we placed (SignalWire, …)
        from gateway.outbound.reports import read_report

        service = request.app.get(OUTBOUND)
        verdict = (
            service.voice_answer(
                outbound_id,
                inbound.call_id,
                read_report(carrier.name, webhook.params).answered_by,
                carrier=carrier.name,
            )
            if service is not None
            else None
        )
        if verdict is None or verdict.agent is None:
            if service is None:
                log.warning("outbound_voice_refused", reason="outbound_off", carrier=carrier.name)
            return _answer(carrier.hang_up_answer())
        outbound_agent, outbound_parameters = verdict.agent, verdict.parameters
    if request.app[CALL_SLOTS].full:
        log.warning("call_refused", reason="busy", carrier=carrier.name, call_id=inbound.call_id)
        return _answer(carrier.refuse(BUSY_MESSAGE))
    agents = request.app[AGENT_STORE].current.for_carrier(carrier.name)
    if agents is None:
        log.warning("call_refused", reason="no_agent_for_carrier", carrier=carrier.name)
        return _answer(carrier.refuse(UNAVAILABLE_MESSAGE))
    requested = (
        outbound_agent
        or _form_value(request.query, "agent")
        or webhook.params.get("agent")
        or None
    )
    if requested is not None and requested not in agents.agents:
        log.warning("agent_unknown", agent=clip(requested), call_id=inbound.call_id)
        if settings.unknown_agent == "reject":
            return _answer(carrier.refuse(UNAVAILABLE_MESSAGE))
        requested = None
    agent = agents.for_call(requested, inbound.to_number)
    parameters = {
        "agent": agent.name,
        "to": inbound.to_number or "",
        "from": inbound.from_number or "",
        "call_sid": inbound.call_id,
        **outbound_parameters,  # not bound: the call's own id (bound) must match the id's
    }
    if binder is not None:  # the stream must bring this back for /{carrier}/media to start
        parameters[BINDING_PARAMETER] = binder.issue(
            inbound.call_id, inbound.account_id, parameters
        )
    stream_url = media_stream_url(base_url, f"/{carrier.name}/media")
    answer = carrier.connect(stream_url, {k: v for k, v in parameters.items() if v})
    log.info(
        "voice_answered",
        carrier=carrier.name,
        call_id=inbound.call_id,
        agent=agent.name,
        line=inbound.to_number,
    )
    return _answer(answer)


async def handle_carrier_status(request: web.Request) -> web.Response:
    """`/{signalwire,telnyx,plivo,vonage}/status`: the carrier's status callback of an outbound
    call, signed as its voice webhook is (else 403), naming a call placed here by our id and its
    call id (else 404 / 400). Twilio's own is `handle_twilio_status`."""
    from gateway.outbound.api import StatusOutcome

    carrier, _ = _carrier(request)
    base_url = _public_base_url(request, request.app[SETTINGS])
    webhook = await _webhook_request(request, base_url + request.raw_path)
    problem = carrier.verify_webhook(webhook)
    if problem is not None:
        log.warning("request_rejected", reason=problem, carrier=carrier.name, path=request.path)
        raise web.HTTPForbidden(text=f"invalid or missing {carrier.name} signature")
    outcome = request.app[OUTBOUND].status_report(
        _form_value(request.query, "outbound"), webhook.params, carrier=carrier.name
    )
    if outcome is StatusOutcome.UNKNOWN:
        raise web.HTTPNotFound(text="no such outbound call")
    if outcome not in (StatusOutcome.UPDATED, StatusOutcome.IGNORED):
        raise web.HTTPBadRequest(text=f"status callback refused: {outcome.value}")
    return web.Response(status=204)


async def handle_plivo_dial(request: web.Request) -> web.Response:
    """The `<Dial>` a Plivo transfer's `aleg_url` points at (`PlivoCarrier.dial_answer`):
    signed by Plivo like its webhooks, else 403."""
    from gateway.telephony.plivo import PlivoCarrier  # loaded with the carrier, not before

    carrier = request.app[CARRIERS]["plivo"]
    assert isinstance(carrier, PlivoCarrier)
    base_url = _public_base_url(request, request.app[SETTINGS])
    webhook = await _webhook_request(request, base_url + request.raw_path)
    problem = carrier.verify_webhook(webhook)
    if problem is not None:
        log.warning("request_rejected", reason=problem, carrier="plivo", path=request.path)
        raise web.HTTPForbidden(text="invalid or missing plivo signature")
    try:
        return _answer(carrier.dial_answer(webhook))
    except CarrierRequestError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


def _answer(answer: WebhookAnswer) -> web.Response:
    return web.Response(text=answer.body, content_type=answer.content_type)


async def handle_carrier_media(request: web.Request) -> web.StreamResponse:
    """`/{carrier}/media`: the carrier's media stream, one `Call` per connection."""
    carrier, binder = _carrier(request)
    if request.app[STATE].draining:
        raise web.HTTPServiceUnavailable(text="gateway is draining")
    settings = request.app[SETTINGS]
    url = media_stream_url(_public_base_url(request, settings), request.path)
    raw_query = request.raw_path.partition("?")[2]
    upgrade = await _webhook_request(request, url + ("?" + raw_query if raw_query else ""))
    problem = carrier.verify_stream(upgrade)
    if problem is not None:
        log.warning("request_rejected", reason=problem, carrier=carrier.name, path=request.path)
        raise web.HTTPForbidden(text=f"invalid or missing {carrier.name} signature")
    return await _serve_stream(
        request,
        carrier.codec(upgrade),
        carrier=carrier.name,
        recorder_codec=carrier.codec(upgrade),  # its own: the writer parses on its thread
        binder=binder,
        account_sids=carrier.account_allowlist,
        carrier_rest=_vouched_rest(carrier, binder),
    )


def _vouched_rest(carrier: Carrier, binder: CallBinder | None) -> CarrierRest | None:
    """The carrier's REST API for a stream, only when its call id is vouched for: by the
    binding the webhook issued, or by the upgrade itself (`Carrier.upgrade_vouches_call`:
    Asterisk with its stream token, which its AMI settings require)."""
    if binder is not None or carrier.upgrade_vouches_call:
        return carrier.rest()
    return None


async def handle_healthz(request: web.Request) -> web.Response:
    """Liveness/readiness: 503 while draining so load balancers stop sending calls."""
    state = request.app[STATE]
    body = {
        "status": "draining" if state.draining else "ok",
        "active_calls": len(request.app[CALLS]),
        "calls_total": state.calls_total,
        "live_backend": request.app[SETTINGS].backend.value,
    }
    return web.json_response(body, status=503 if state.draining else 200)


async def _embedded_emulator(app: web.Application) -> AsyncIterator[None]:
    """With LIVE_BACKEND=emulator and no LIVE_URL, run the Live emulator inside the process."""
    settings = app[SETTINGS]
    state = app[STATE]
    if CONNECTOR in app:
        yield
        return
    url_override = None
    if settings.backend is LiveBackend.EMULATOR and not settings.live_url:
        state.emulator = LiveEmulator()
        url_override = await state.emulator.start("127.0.0.1", 0)  # it logs emulator_started
    app[CONNECTOR] = ResilientLiveConnector.from_settings(
        LiveConnector(settings, url_override=url_override), settings
    )
    try:
        yield
    finally:
        if state.emulator is not None:
            await state.emulator.stop()


async def _audiosocket_listener(app: web.Application) -> AsyncIterator[None]:
    """With ASTERISK_AUDIOSOCKET_PORT: Asterisk's AudioSocket() calls over plain TCP."""
    settings = app[SETTINGS]
    if settings.asterisk_audiosocket_port is None:
        yield
        return

    from gateway.telephony.audiosocket import AudioSocketCodec, AudioSocketTransport

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        agents = app[AGENT_STORE].current.for_carrier("asterisk")
        slots = app[CALL_SLOTS]
        if app[STATE].draining or agents is None or not slots.try_acquire():
            log.warning("call_refused", reason="busy_or_no_agent", carrier="audiosocket")
            writer.close()
            return
        agent = settings.asterisk_audiosocket_agent
        parameters = {"agent": agent} if agent else {}
        await _run_call(
            app,
            AudioSocketTransport(reader, writer),
            AudioSocketCodec(parameters),
            agents,
            carrier="audiosocket",
            recorder_codec=AudioSocketCodec(parameters),
            binder=None,  # AudioSocket carries no credentials: a private network is the guard
            account_sids=frozenset(),
            carrier_rest=None,
        )

    server = await asyncio.start_server(
        connected, settings.asterisk_audiosocket_host, settings.asterisk_audiosocket_port
    )
    port = server.sockets[0].getsockname()[1]
    app[STATE].audiosocket_port = port
    log.info("audiosocket_listening", host=settings.asterisk_audiosocket_host, port=port)
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()


def create_app(
    settings: Settings,
    agents: AgentSet | AgentStore,
    connector: LiveConnectorLike | None = None,
) -> web.Application:
    """The gateway app. Pass `connector` to bridge calls somewhere other than `settings` say.

    Pass an `AgentStore` for hot reload (`serve` does); an `AgentSet` is served as it is.
    """
    app = web.Application()
    app[SETTINGS] = settings
    store = agents if isinstance(agents, AgentStore) else AgentStore(agents)
    app[AGENT_STORE] = store
    app[AGENTS] = store.current
    app[CALLS] = set()
    app[STATE] = GatewayState()
    app[SIGNATURES] = SignatureCheck(settings.twilio_auth_token)
    app[CALL_SLOTS] = CallSlots(settings.max_concurrent_calls)
    token = settings.twilio_auth_token
    app[CALL_BINDER] = CallBinder(token) if token else None
    if token and not settings.public_url and not settings.trusted_proxies:
        log.warning("signatures_checked_without_public_url")  # behind a proxy they will fail
    if not token and (settings.twilio_api_key_sid or settings.twilio_account_sid):
        log.warning(
            "streams_unauthenticated",
            message="TWILIO_AUTH_TOKEN is not set: /twiml and /media accept anyone and a "
            "stream's call identity cannot be verified, so calls will not use Twilio REST "
            "(end_call closes the stream, transfer_call is off). Set TWILIO_AUTH_TOKEN.",
        )
    warn_unknown_models(settings.model, store.current)
    if connector is not None:
        app[CONNECTOR] = connector
    app.cleanup_ctx.append(_embedded_emulator)
    app.cleanup_ctx.append(_audiosocket_listener)
    app.router.add_post("/twiml", handle_twiml)
    app.router.add_get(MEDIA_PATH, handle_media)
    app[CARRIERS] = carriers_from_settings(settings)
    app[CARRIER_BINDERS] = {}  # filled as each carrier is first used
    app.router.add_post("/twilio/voice", handle_twiml)  # Twilio's own handlers, as /twiml
    app.router.add_get("/twilio/media", handle_media)
    app.router.add_route("*", PLIVO_DIAL_PATH, handle_plivo_dial)  # a transfer's <Dial>
    app.router.add_route("*", "/{carrier}/voice", handle_carrier_voice)  # GET or POST
    app.router.add_get("/{carrier}/media", handle_carrier_media)
    app.router.add_get("/healthz", handle_healthz)
    add_metrics(app, active_calls=lambda: len(app[CALLS]))  # GET /metrics
    add_recordings(app, settings)  # RECORDINGS_DIR, RECORD_CALLS
    # GET /softphone, /softphone/agents, its scripts; the picker follows agent reloads.
    add_softphone_routes(app, lambda app: app[AGENT_STORE].current)
    if settings.api_token:  # POST/GET/DELETE /calls, /twilio/status, /signalwire/status
        _add_outbound(app, settings, store)
    app[CALL_OBSERVERS] = []
    if settings.console_token:  # /console: live calls, history, agents (gateway.console)
        from gateway.console import add_console

        add_console(
            app, settings, agents=store, metrics=app[METRICS], call_observers=app[CALL_OBSERVERS]
        )
    return app


def _add_outbound(app: web.Application, settings: Settings, store: AgentStore) -> None:
    """Outbound calls (API_TOKEN is set): the /calls API, Twilio's status callbacks, and what
    the voice webhook and the streams learn from the registry of calls placed here."""
    from gateway.outbound.api import OutboundService, add_outbound_routes
    from gateway.outbound.notify import OutboundNotifier
    from gateway.outbound.placers import placers_from_settings
    from gateway.outbound.registry import OutboundRegistry
    from gateway.outbound.streams import OutboundStreams

    assert settings.api_token
    registry = OutboundRegistry()
    placers = placers_from_settings(settings)
    service = OutboundService(
        token=settings.api_token,
        public_url=settings.public_url,
        default_from=settings.outbound_from_number,
        registry=registry,
        placers=placers,
        agents=lambda: store.current,
        notifier=OutboundNotifier(app[METRICS]),
    )
    app[OUTBOUND] = service
    app[OUTBOUND_STREAMS] = {
        name: OutboundStreams(registry, name) for name in ("twilio", *OUTBOUND_CARRIERS)
    }
    add_outbound_routes(app, service)
    app.router.add_post(TWILIO_STATUS_PATH, handle_twilio_status)
    for name in OUTBOUND_CARRIERS:
        app.router.add_post(f"/{{carrier:{name}}}/status", handle_carrier_status)
    app[RECORDINGS].on_written.append(
        lambda files: service.recording_written(files.jsonl, files.wav, files.txt)
    )
    if not settings.public_url:
        log.warning("outbound_needs_public_url", message="POST /calls answers 503 until set")
    for carrier, problem in placers.items():  # the others: only when some of it is set
        if isinstance(problem, str) and (carrier == "twilio" or _configured(settings, carrier)):
            log.warning("outbound_carrier_off", carrier=carrier, reason=problem)


def _configured(settings: Settings, carrier: str) -> bool:
    """Whether any `{CARRIER}_…` setting differs from its default (a carrier someone means
    to use)."""
    prefix = f"{carrier}_"
    return any(
        getattr(settings, name) != info.default
        for name, info in type(settings).model_fields.items()
        if name.startswith(prefix)
    )


async def drain(app: web.Application, timeout_s: float) -> int:
    """Stop taking calls and wait up to `timeout_s` for live ones; returns how many were cut."""
    app[STATE].draining = True
    active: set[Call] = app[CALLS]
    calls = list(active)
    log.info("drain_started", active_calls=len(calls), timeout_s=timeout_s)
    if calls:
        waiters = [asyncio.create_task(call.finished.wait()) for call in calls]
        _, pending = await asyncio.wait(waiters, timeout=timeout_s)
        for waiter in pending:
            waiter.cancel()
    cut = [call for call in calls if not call.finished.is_set()]
    for call in cut:
        call.hang_up(EndReason.GATEWAY_SHUTDOWN)
    if cut:
        await asyncio.wait([asyncio.create_task(call.finished.wait()) for call in cut], timeout=5)
    log.info("drain_finished", calls_cut=len(cut))
    return len(cut)


async def serve(settings: Settings, agents: AgentSet) -> None:
    """Run the gateway until SIGTERM/SIGINT, then drain and stop.

    SIGHUP, or a file change under AGENTS_DIR, reloads the agents (a broken set is refused).
    Requests that arrive too slowly are cut off (gateway.security.http_guard: HEADER_TIMEOUT_S,
    MAX_PENDING_REQUESTS_PER_IP).
    """
    store = AgentStore(
        agents, settings.agents_dir, ignore=settings.data_dir, default_model=settings.model
    )
    app = create_app(settings, store)
    # Idle keep-alive connections close after KEEPALIVE_TIMEOUT_S (aiohttp's default is an
    # hour), so idle sockets cannot pile up either.
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, keepalive_timeout=KEEPALIVE_TIMEOUT_S
    )
    await runner.setup()
    site = GuardedSite(  # slow or never-finished requests cannot hold connections open
        runner,
        settings.host,
        settings.port,
        header_timeout_s=settings.header_timeout_s,
        max_pending_per_ip=settings.max_pending_requests_per_ip,
    )
    try:
        await site.start()
    except OSError:  # e.g. the port is taken: the caller (`gateway serve`) says so in one line
        await runner.cleanup()
        raise
    # Signals are handled before we announce we are listening: a supervisor (or a test) may
    # send SIGHUP/SIGTERM as soon as it reads `gateway_listening`.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, store.request_reload, "sighup")
    watcher = asyncio.create_task(store.watch(), name="agents_watch")
    bound = [address for address in runner.addresses if isinstance(address, tuple)]
    log.info(
        "gateway_listening",
        host=settings.host,
        port=bound[0][1] if bound else settings.port,
        live_backend=settings.backend.value,
        agents=sorted(agents.agents),
    )
    try:
        await stop.wait()
        log.info("shutdown_requested")
        await site.stop()
        await drain(app, settings.drain_timeout_s)
        await wait_for_deliveries(timeout_s=10.0)  # post-call webhooks still in flight
    finally:
        watcher.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        log.info("gateway_stopped")
