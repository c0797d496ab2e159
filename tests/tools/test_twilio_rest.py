"""Twilio REST hang-up and transfer against a fake Twilio on loopback; credentials; TwiML."""

from __future__ import annotations

import pytest

from gateway.settings import load_settings
from gateway.telephony.twilio_rest import (
    TwilioCredentials,
    TwilioRest,
    TwilioRestError,
    build_dial_twiml,
)
from gateway.tools import TransferTarget
from tests.tools.fake_twilio import FakeTwilioApi


def test_dial_twiml() -> None:
    assert build_dial_twiml(TransferTarget(number="+15550100199")) == (
        "<Response><Dial>+15550100199</Dial></Response>"
    )
    assert build_dial_twiml(
        TransferTarget(number="sip:a&b@pbx.example.com", caller_id="+15550100100")
    ) == (
        '<Response><Dial callerId="+15550100100"><Sip>sip:a&amp;b@pbx.example.com</Sip>'
        "</Dial></Response>"
    )


def test_credentials_from_settings() -> None:
    assert TwilioCredentials.from_settings(load_settings(env_file=None)) is None
    token_only = load_settings(env_file=None, twilio_auth_token="t")
    assert TwilioCredentials.from_settings(token_only) is None  # whose token? no account SID
    by_token = TwilioCredentials.from_settings(
        load_settings(env_file=None, twilio_account_sid="AC1", twilio_auth_token="t")
    )
    assert by_token == TwilioCredentials("AC1", "t", "AC1", "https://api.twilio.com")
    by_key = TwilioCredentials.from_settings(
        load_settings(
            env_file=None,
            twilio_account_sid="AC1",
            twilio_auth_token="t",
            twilio_api_key_sid="SK1",
            twilio_api_key_secret="key-secret",
            twilio_api_base_url="http://127.0.0.1:9/",
        )
    )
    assert by_key == TwilioCredentials("SK1", "key-secret", "AC1", "http://127.0.0.1:9")
    assert "key-secret" not in repr(by_key)  # the secret never reaches a log line


ACCOUNT = "AC" + "1" * 32
CALLER_ACCOUNT = "AC" + "c" * 32
CALL = "CA" + "9" * 32


async def test_hang_up_and_transfer_requests() -> None:
    twilio = FakeTwilioApi()
    url = await twilio.start()
    try:
        rest = TwilioRest(TwilioCredentials(ACCOUNT, "tok", ACCOUNT, url))
        await rest.hang_up(CALLER_ACCOUNT, CALL)
        await rest.transfer(None, CALL, TransferTarget(number="+15550100199"))
    finally:
        await twilio.stop()
    hang_up, transfer = twilio.requests
    assert hang_up.method == "POST"
    assert hang_up.path == f"/2010-04-01/Accounts/{CALLER_ACCOUNT}/Calls/{CALL}.json"
    assert (hang_up.username, hang_up.password, hang_up.form) == (
        ACCOUNT, "tok", {"Status": "completed"},
    )  # fmt: skip
    # the configured account:
    assert transfer.path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}.json"
    assert transfer.form == {"Twiml": "<Response><Dial>+15550100199</Dial></Response>"}


async def test_failures_raise_one_error_type() -> None:
    twilio = FakeTwilioApi(status=500)
    url = await twilio.start()
    try:
        rest = TwilioRest(TwilioCredentials(ACCOUNT, "tok", ACCOUNT, url))
        with pytest.raises(TwilioRestError, match="500"):
            await rest.hang_up(None, CALL)
    finally:
        await twilio.stop()
    unreachable = TwilioRest(TwilioCredentials(ACCOUNT, "tok", ACCOUNT, url))  # nobody listens now
    with pytest.raises(TwilioRestError, match="cannot reach Twilio"):
        await unreachable.hang_up(None, CALL)
    no_account = TwilioRest(TwilioCredentials("SK1", "s", None, url))
    with pytest.raises(TwilioRestError, match="no account SID"):
        await no_account.hang_up(None, CALL)
