"""Call identity comes from us: `/twiml` binds each call (gateway.security.call_binding), `/media`
starts only bound calls, Twilio REST acts only on verified SIDs, and forwarded headers count
only from trusted proxies — against the real server on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree import ElementTree

import pytest
import structlog
from twilio.request_validator import RequestValidator

from gateway.agents.config import load_agents
from gateway.security.call_binding import (
    BINDING_LIFETIME_S,
    BINDING_PARAMETER,
    BindingRefused,
    BoundCall,
    CallBinder,
    is_account_sid,
    is_call_sid,
)
from gateway.server import CALL_BINDER, create_app
from gateway.settings import load_settings
from gateway.telephony.twilio_rest import TwilioCredentials, TwilioRest, TwilioRestError
from gateway.tools.spec import TransferTarget
from tests.gateway_harness import loopback_gateway
from tests.test_integration import PhoneCall
from tests.tools.fake_twilio import FakeTwilioApi
from tests.tools.harness import ToolGateway, script, tool_gateway, write_agent
from tests.twilio_frames import (
    ACCOUNT_SID,
    CALL_SID,
    TwilioCaller,
    parameters_of,
    stream_parameters,
    twiml_form,
)

VICTIM_CALL_SID = "CA" + "9" * 32
OTHER_ACCOUNT_SID = "AC" + "7" * 32
PARAMS = {"agent": "desk", "from": "+15551230000", "to": "+15550001111"}


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------------- the binding, sans-IO


def test_a_binding_verifies_once_for_exactly_what_it_was_issued_for() -> None:
    clock = Clock()
    binder = CallBinder("token", clock=clock)
    token = binder.issue(CALL_SID, ACCOUNT_SID, PARAMS)
    start_params = {**PARAMS, BINDING_PARAMETER: token, "transcript": "1"}
    bound = binder.verify(CALL_SID, ACCOUNT_SID, start_params)
    assert bound == BoundCall(CALL_SID, ACCOUNT_SID, int(clock.now) + BINDING_LIFETIME_S)
    assert binder.verify(CALL_SID, ACCOUNT_SID, start_params) == BindingRefused("reused")


@pytest.mark.parametrize(
    ("call_sid", "account_sid", "changed"),
    [
        (VICTIM_CALL_SID, ACCOUNT_SID, {}),
        (CALL_SID, OTHER_ACCOUNT_SID, {}),
        (CALL_SID, ACCOUNT_SID, {"agent": "admin"}),
        (CALL_SID, ACCOUNT_SID, {"from": "+15559999999"}),
        (CALL_SID, ACCOUNT_SID, {"to": "+15558888888"}),
        (CALL_SID, ACCOUNT_SID, {"to": ""}),
    ],
    ids=["call_sid", "account_sid", "agent", "from", "to", "to_dropped"],
)
def test_any_field_changed_after_issue_is_refused(
    call_sid: str, account_sid: str, changed: dict[str, str]
) -> None:
    binder = CallBinder("token")
    token = binder.issue(CALL_SID, ACCOUNT_SID, PARAMS)
    params = {**PARAMS, **changed, BINDING_PARAMETER: token}
    assert binder.verify(call_sid, account_sid, params) == BindingRefused("mismatch")


def test_missing_malformed_expired_and_foreign_bindings_are_refused() -> None:
    clock = Clock()
    binder = CallBinder("token", clock=clock)
    token = binder.issue(CALL_SID, ACCOUNT_SID, PARAMS)
    verify = binder.verify
    assert verify(CALL_SID, ACCOUNT_SID, PARAMS) == BindingRefused("missing")
    for bad in ("nodot", "12x.abc", "." + "A" * 43, "9" * 90 + ".x"):
        params = {**PARAMS, BINDING_PARAMETER: bad}
        assert verify(CALL_SID, ACCOUNT_SID, params) == BindingRefused("malformed")
    other_key = CallBinder("another-token", clock=clock).issue(CALL_SID, ACCOUNT_SID, PARAMS)
    params = {**PARAMS, BINDING_PARAMETER: other_key}
    assert verify(CALL_SID, ACCOUNT_SID, params) == BindingRefused("mismatch")
    longer = token.split(".")[0] + "0." + token.split(".")[1]  # a later expiry, same MAC
    params = {**PARAMS, BINDING_PARAMETER: longer}
    assert verify(CALL_SID, ACCOUNT_SID, params) == BindingRefused("mismatch")
    clock.now += BINDING_LIFETIME_S + 1
    params = {**PARAMS, BINDING_PARAMETER: token}
    assert verify(CALL_SID, ACCOUNT_SID, params) == BindingRefused("expired")


def test_twilio_sid_formats() -> None:
    assert is_call_sid(CALL_SID) and is_account_sid(ACCOUNT_SID)
    for bad in ("CA1", "CA" + "G" * 32, "CA" + "0" * 33, "ca" + "0" * 32, CALL_SID + "\n"):
        assert not is_call_sid(bad)
    assert not is_account_sid("ACsoftphone") and not is_account_sid(CALL_SID)


# ---------------------------------------------------------------------- the gateway


DESK_YAML = """
    name: desk
    transfer:
      human: {number: "+15550100199", description: a person}
    tools:
      - builtin: end_call
      - builtin: transfer_call
"""


@contextlib.asynccontextmanager
async def desk_gateway(tmp_path: Path, twilio: FakeTwilioApi) -> AsyncIterator[ToolGateway]:
    agents = tmp_path / "agents"
    write_agent(agents, "desk", DESK_YAML)
    turns = script(("end_call", {}), after_tool="Goodbye!")
    async with tool_gateway(agents, turns, data_dir=tmp_path / "data", twilio=twilio) as gw:
        yield gw


@contextlib.asynccontextmanager
async def signed_stream(gw: ToolGateway) -> AsyncIterator[PhoneCall]:
    """A `/media` upgrade signed like Twilio's (captured, or Twilio's own)."""
    token = gw.settings.twilio_auth_token
    assert token
    url = f"ws://127.0.0.1:{gw.client.server.port}/media"
    headers = {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, {})}
    async with gw.client.ws_connect("/media", headers=headers) as ws:
        yield PhoneCall(ws)


async def test_a_stream_naming_another_call_cannot_hang_it_up(tmp_path: Path) -> None:
    """The attack: call the number once (a binding for your own call), then start a stream that
    names someone else's call SID, and make the agent end the call — today that hung up the
    victim's call through Twilio REST with the gateway's credentials."""
    twilio = FakeTwilioApi()
    async with desk_gateway(tmp_path, twilio) as gw:
        own = await stream_parameters(
            gw.client, token=gw.settings.twilio_auth_token, path="/twiml?agent=desk"
        )
        async with signed_stream(gw) as phone:
            phone.twilio = TwilioCaller(call_sid=VICTIM_CALL_SID)
            with structlog.testing.capture_logs() as logs:
                await phone.start(**own)
                await phone.send(phone.twilio.dtmf("1"))  # "end the call", in the script
                assert await phone.rest() == []  # closed before any audio: no call started
        assert gw.emulator.sessions_opened == 0
        assert twilio.requests == []
    [rejected] = [line for line in logs if line["event"] == "stream_rejected"]
    assert rejected["reason"] == "binding_mismatch"
    assert rejected["call_sid"] == VICTIM_CALL_SID


async def test_a_bound_call_hangs_up_its_own_sid_and_its_binding_starts_one_stream(
    tmp_path: Path,
) -> None:
    twilio = FakeTwilioApi()
    async with desk_gateway(tmp_path, twilio) as gw:
        own = await stream_parameters(
            gw.client, token=gw.settings.twilio_auth_token, path="/twiml?agent=desk"
        )
        async with signed_stream(gw) as phone:
            await phone.start(**own)
            await phone.send(phone.twilio.dtmf("1"))
            goodbye = await phone.until("mark")
            await phone.send(phone.twilio.mark(goodbye[-1]["mark"]["name"]))
            [request] = await twilio.wait_requests(1)
            assert await phone.rest() == []
        assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{CALL_SID}.json"
        async with signed_stream(gw) as replayed:  # the captured upgrade and start, again
            await replayed.start(**own)
            assert await replayed.rest() == []
        assert gw.emulator.sessions_opened == 1


@pytest.mark.parametrize("binding", [None, "1.AAAA", "forged"], ids=["none", "bad", "forged"])
async def test_with_a_token_a_start_without_a_valid_binding_is_refused(
    tmp_path: Path, binding: str | None
) -> None:
    twilio = FakeTwilioApi()
    async with desk_gateway(tmp_path, twilio) as gw:
        params = dict(PARAMS, agent="desk")
        if binding == "forged":
            binding = CallBinder("guessed-token").issue(CALL_SID, ACCOUNT_SID, params)
        if binding is not None:
            params[BINDING_PARAMETER] = binding
        async with signed_stream(gw) as phone:
            await phone.start(**params)
            assert await phone.rest() == []
        assert gw.emulator.sessions_opened == 0


async def test_the_allow_list_checks_the_bound_account(tmp_path: Path) -> None:
    """A stream may not claim an allowed account for a call /twiml bound to another."""
    twilio = FakeTwilioApi()
    agents = tmp_path / "agents"
    write_agent(agents, "desk", DESK_YAML)
    async with tool_gateway(
        agents,
        data_dir=tmp_path / "data",
        twilio=twilio,
        twilio_account_sids=f"{ACCOUNT_SID},{OTHER_ACCOUNT_SID}",
    ) as gw:
        token = gw.settings.twilio_auth_token
        own = await stream_parameters(gw.client, token=token, path="/twiml?agent=desk")
        async with signed_stream(gw) as phone:
            phone.twilio = TwilioCaller(account_sid=OTHER_ACCOUNT_SID)
            await phone.start(**own)
            assert await phone.rest() == []
        assert gw.emulator.sessions_opened == 0


async def test_twiml_refuses_sids_that_are_not_twilio_sids(tmp_path: Path) -> None:
    async with loopback_gateway() as gw:
        for field, value in (("CallSid", "CA1/../../Accounts"), ("AccountSid", "ACsoftphone")):
            response = await gw.client.post("/twiml", data=twiml_form(**{field: value}))
            assert response.status == 400
            assert field in await response.text()
        assert (await gw.client.post("/twiml", data=twiml_form())).status == 200


async def test_rest_refuses_a_bad_sid_before_any_request() -> None:
    twilio = FakeTwilioApi()
    url = await twilio.start()
    try:
        rest = TwilioRest(TwilioCredentials("user", "secret", ACCOUNT_SID, url))
        for call_sid in ("CA1", f"{CALL_SID}/../x", CALL_SID + "?Status=completed"):
            with pytest.raises(TwilioRestError, match="Call SID"):
                await rest.hang_up(None, call_sid)
        with pytest.raises(TwilioRestError, match="Account SID"):
            await rest.transfer("AC../..", CALL_SID, TransferTarget(number="+15550100199"))
        assert twilio.requests == []
        await rest.hang_up(None, CALL_SID)
        [request] = twilio.requests
        assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{CALL_SID}.json"
    finally:
        await twilio.stop()


async def test_control_characters_never_reach_the_twiml(tmp_path: Path) -> None:
    async with loopback_gateway() as gw:
        form = twiml_form(From="+1555\x00123\x1b[2J", To="+1555\r\n0001\x85")
        response = await gw.client.post("/twiml", data=form)
        assert response.status == 200
        params = parameters_of(await response.text())
        assert (params["from"], params["to"]) == ("+1555123[2J", "+15550001")


# ---------------------------------------------------------------------- forwarded headers

TOKEN = "auth-token-for-forwarding"
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "another-app.example.com"}


def signed_for(url: str, form: dict[str, str]) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, form)}


async def test_forwarded_headers_from_an_untrusted_peer_are_ignored() -> None:
    """A signature Twilio made for another app on the account (another URL) must not pass
    by naming that app's host in X-Forwarded-Host."""
    form = twiml_form()
    async with loopback_gateway(twilio_auth_token=TOKEN) as gw:
        other_app = signed_for("https://another-app.example.com/twiml", form)
        response = await gw.client.post("/twiml", data=form, headers={**FORWARDED, **other_app})
        assert response.status == 403
        own = signed_for(f"http://127.0.0.1:{gw.port}/twiml", form)
        response = await gw.client.post("/twiml", data=form, headers={**FORWARDED, **own})
        assert response.status == 200
        assert stream_url_of(await response.text()) == f"ws://127.0.0.1:{gw.port}/media"


async def test_forwarded_headers_from_a_trusted_proxy_count() -> None:
    form = twiml_form()
    trusted = "10.0.0.0/8, 127.0.0.1"
    async with loopback_gateway(twilio_auth_token=TOKEN, trusted_proxies=trusted) as gw:
        proxied = signed_for("https://another-app.example.com/twiml", form)
        response = await gw.client.post("/twiml", data=form, headers={**FORWARDED, **proxied})
        assert response.status == 200
        assert stream_url_of(await response.text()) == "wss://another-app.example.com/media"


def stream_url_of(twiml: str) -> str:
    stream = ElementTree.fromstring(twiml).find("./Connect/Stream")
    assert stream is not None
    return stream.get("url", "")


# ---------------------------------------------------------------------- unauthenticated set-ups


def test_api_key_credentials_without_a_token_warn_that_streams_are_unauthenticated(
    tmp_path: Path,
) -> None:
    write_agent(tmp_path, "desk", DESK_YAML)
    agents = load_agents(tmp_path)
    api_key_only = load_settings(
        env_file=None,
        twilio_account_sid=ACCOUNT_SID,
        twilio_api_key_sid="SK" + "e" * 32,
        twilio_api_key_secret="secret",
    )
    with structlog.testing.capture_logs() as logs:
        app = create_app(api_key_only, agents)
    [warning] = [line for line in logs if line["event"] == "streams_unauthenticated"]
    assert warning["log_level"] == "warning" and "TWILIO_AUTH_TOKEN" in warning["message"]
    assert app[CALL_BINDER] is None  # so no call acts on Twilio REST
    with structlog.testing.capture_logs() as logs:
        app = create_app(load_settings(env_file=None, twilio_auth_token="t"), agents)
    assert not [line for line in logs if line["event"] == "streams_unauthenticated"]
    assert app[CALL_BINDER] is not None


async def test_without_a_token_end_call_never_uses_twilio_rest(tmp_path: Path) -> None:
    """No token: nothing vouches for the stream's call SID, so ending the call only closes the
    stream, even with API-key credentials for Twilio REST."""
    twilio = FakeTwilioApi()
    agents = tmp_path / "agents"
    write_agent(agents, "desk", DESK_YAML)
    turns = script(("end_call", {}), after_tool="Goodbye!")
    async with tool_gateway(
        agents,
        turns,
        data_dir=tmp_path / "data",
        twilio=twilio,
        api_key=True,
        twilio_auth_token=None,  # only the API key is configured
    ) as gw:
        async with gw.client.ws_connect("/media") as ws:
            phone = PhoneCall(ws)
            phone.twilio = TwilioCaller(call_sid=VICTIM_CALL_SID)
            await phone.start(agent="desk", **{"from": "+15551230000"})
            await phone.send(phone.twilio.dtmf("1"))
            goodbye = await phone.until("mark")
            await phone.send(phone.twilio.mark(goodbye[-1]["mark"]["name"]))
            assert await phone.rest() == []
        assert twilio.requests == []
