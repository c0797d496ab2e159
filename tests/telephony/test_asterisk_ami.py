"""Asterisk's AMI client: the sans-IO encoder and parser, the channel lookup, and hang-up and
transfer against a fake AMI server on loopback (tests/telephony/fake_ami.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.agents.config import AgentConfig, AgentSet
from gateway.audio.codec import PhoneAudio
from gateway.call.control import TRANSFER_FAILED_PROMPT
from gateway.live.emulator.server import EmulatorScript, LiveEmulator
from gateway.server import create_app
from gateway.settings import SettingsError, load_settings
from gateway.telephony.asterisk import AsteriskCarrier
from gateway.telephony.asterisk_ami import (
    MAX_FIELDS,
    MAX_LINE_BYTES,
    MAX_MESSAGE_BYTES,
    AmiChannel,
    AmiCredentials,
    AmiParser,
    AmiProtocolError,
    AsteriskAmi,
    AsteriskAmiError,
    encode_action,
    find_call_channels,
    transfer_destination,
)
from gateway.telephony.asterisk_phone import AsteriskPhone
from gateway.telephony.carrier import CarrierRestError
from gateway.tools.spec import TransferTarget
from tests.caller_audio import silence_frames, speech_frames
from tests.telephony.fake_ami import CALLER, SECRET, USERNAME, FakeAmi, bridged_pair

OURS = "WebSocket/gateway/0x5140001a0001"
OURS_ID = "1700000000.2"
BANNER = b"Asterisk Call Manager/9.0.0\r\n"


# --------------------------------------------------------------------------------- encoder


def test_an_action_is_key_value_lines_and_a_blank_line() -> None:
    data = encode_action("Setvar", {"Channel": "PJSIP/a-1", "Variable": "X", "Value": ""}, "7")
    assert data == (
        b"Action: Setvar\r\nActionID: 7\r\nChannel: PJSIP/a-1\r\nVariable: X\r\nValue: \r\n\r\n"
    )
    assert encode_action("Logoff", [], "8") == b"Action: Logoff\r\nActionID: 8\r\n\r\n"


@pytest.mark.parametrize(
    "value", ["+1555\r\nAction: Originate", "a\nb", "a\rb", "nul\0", "x" * 1025]
)
def test_an_action_refuses_values_that_would_inject_fields(value: str) -> None:
    with pytest.raises(ValueError, match="Value"):
        encode_action("Setvar", {"Value": value}, "1")


@pytest.mark.parametrize("name", ["", "Bad Name", "X:Y", "Act\r\nion", "ActionID", "action"])
def test_an_action_refuses_names_that_are_not_words_or_are_its_own(name: str) -> None:
    with pytest.raises(ValueError):
        encode_action("Hangup", {name: "v"}, "1")
    with pytest.raises(ValueError):
        encode_action("Hangup", {}, "1\r\nAction: Originate")
    with pytest.raises(ValueError):
        encode_action("", {}, "1")


# ---------------------------------------------------------------------------------- parser


def test_the_parser_takes_the_banner_then_messages_fed_byte_by_byte() -> None:
    parser = AmiParser()
    stream = BANNER + (
        b"Response: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\n"
        b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"
    )
    got = [message for byte in stream for message in parser.feed(bytes([byte]))]
    assert parser.banner == "Asterisk Call Manager/9.0.0"
    assert got == [
        {"Response": "Success", "ActionID": "1", "Message": "Authentication accepted"},
        {"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"},
    ]


def test_the_parser_reads_several_messages_at_once_and_keeps_colons_in_values() -> None:
    parser = AmiParser(banner=False)
    data = b"\r\nEvent: A\nApplicationData: x:y,z\n\nEvent: B\r\nEvent: again\r\n\r\nEvent: C"
    assert parser.feed(data) == [
        {"Event": "A", "ApplicationData": "x:y,z"},
        {"Event": "B"},  # a repeated field keeps its first value
    ]
    assert parser.feed(b"\r\n\r\n") == [{"Event": "C"}]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"SSH-2.0-OpenSSH\r\n", "not an AMI banner"),
        (BANNER + b"no colon here\r\n", "not Key: Value"),
        (BANNER + b": empty name\r\n", "not Key: Value"),
        (BANNER + b"A: " + b"x" * MAX_LINE_BYTES, "line is over"),
        (BANNER + b"A: " + b"x" * MAX_LINE_BYTES + b"\r\n", "line is over"),
        (BANNER + b"".join(b"F%d: v\r\n" % i for i in range(MAX_FIELDS + 1)), "fields"),
        (BANNER + (b"A: " + b"x" * 4000 + b"\r\n") * (MAX_MESSAGE_BYTES // 4000 + 1), "bytes"),
    ],
)
def test_the_parser_refuses_what_is_not_ami_or_too_big(data: bytes, error: str) -> None:
    parser = AmiParser()
    with pytest.raises(AmiProtocolError, match=error):
        for start in range(0, len(data), 1000):
            parser.feed(data[start : start + 1000])


# ----------------------------------------------------------------------------- the lookup


def channels(*events: dict[str, str]) -> list[AmiChannel]:
    return [AmiChannel.from_event(event) for event in events]


def test_our_channel_is_found_by_uniqueid_or_name_and_the_caller_by_bridge() -> None:
    listed = channels(*bridged_pair(OURS, OURS_ID))
    for call_id in (OURS_ID, OURS):
        ours, caller = find_call_channels(listed, call_id)
        assert (ours.name, caller and caller.name) == (OURS, CALLER["Channel"])


def test_without_a_bridge_the_caller_is_the_channel_of_our_linkedid() -> None:
    listed = channels(
        {**CALLER, "Linkedid": CALLER["Uniqueid"]},
        {"Channel": OURS, "Uniqueid": OURS_ID, "Linkedid": CALLER["Uniqueid"], "BridgeId": ""},
    )
    _, caller = find_call_channels(listed, OURS_ID)
    assert caller is not None and caller.name == CALLER["Channel"]
    alone = channels({"Channel": OURS, "Uniqueid": OURS_ID, "Linkedid": OURS_ID})
    assert find_call_channels(alone, OURS_ID)[1] is None
    with pytest.raises(AsteriskAmiError, match="has the call ended"):
        find_call_channels(listed, "1700000000.99")


def test_an_audiosocket_call_is_found_by_the_uuid_in_its_application_data() -> None:
    uuid = "0f6b4bbd-0bb2-4c55-9f5b-1f3c0b7a8e41"
    listed = channels(
        {"Channel": "PJSIP/trunk-00000003", "Uniqueid": "1700000000.3",
         "Application": "AudioSocket", "ApplicationData": f"{uuid},10.0.0.5:9092"},
        {"Channel": "PJSIP/trunk-00000004", "Uniqueid": "1700000000.4",
         "Application": "AudioSocket",
         "ApplicationData": "1f6b4bbd-0bb2-4c55-9f5b-1f3c0b7a8e41,h:1"},
    )  # fmt: skip
    ours, caller = find_call_channels(listed, uuid.upper())
    assert ours.name == "PJSIP/trunk-00000003" and caller == ours


@pytest.mark.parametrize(
    "number",
    [
        "+15550100199",
        "sip:alice@pbx.example.com",
        "sip:+15550100199@10.0.0.7:5061;transport=tls",
        "sip:desk.example.com",
    ],
)
def test_transfer_targets_that_pass(number: str) -> None:
    assert transfer_destination(TransferTarget(number=number)) == (number, None)


@pytest.mark.parametrize(
    "number",
    [
        "+1555",  # too short for E.164
        "sip:a@b,,G(evil^s^1)",  # a comma would add Dial() options
        "sip:a@b&PJSIP/c",  # & would add a device
        "sip:a b@c",
        "sip:${SHELL}@c",
        "sip:a@-bad-",
        "sip:a@b;foo=bar",
    ],
)
def test_transfer_targets_that_are_refused(number: str) -> None:
    with pytest.raises(AsteriskAmiError, match="transfer target"):
        transfer_destination(TransferTarget.model_construct(number=number, caller_id=None))


# --------------------------------------------------------------------- against a fake AMI


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    server = FakeAmi(channels=bridged_pair(OURS, OURS_ID))
    yield server
    await server.stop()


async def ami_for(
    fake: FakeAmi, *, secret: str = SECRET, timeout_s: float = 5.0, context: str = "xfer"
) -> AsteriskAmi:
    port = await fake.start()
    credentials = AmiCredentials("127.0.0.1", USERNAME, secret, port)
    return AsteriskAmi(credentials, transfer_context=context, timeout_s=timeout_s)


async def test_a_transfer_sets_the_variables_and_redirects_the_caller(fake: FakeAmi) -> None:
    ami = await ami_for(fake)
    target = TransferTarget(number="+15550100199", caller_id="+15550004444")
    await ami.transfer("", OURS_ID, target)
    await fake.wait_action("Logoff")  # sent, not waited for: Asterisk closes on it
    assert fake.names() == ["Login", "CoreShowChannels", "Setvar", "Setvar", "Redirect", "Logoff"]
    login, _, to, caller_id, redirect, _ = fake.actions
    assert (login["Username"], login["Secret"], login["Events"]) == (USERNAME, SECRET, "off")
    caller = CALLER["Channel"]
    fields = ("Channel", "Variable", "Value")
    assert tuple(map(to.get, fields)) == (caller, "GATEWAY_TRANSFER_TO", "+15550100199")
    assert tuple(map(caller_id.get, fields)) == (
        caller,
        "GATEWAY_TRANSFER_CALLER_ID",
        "+15550004444",
    )
    assert {k: v for k, v in redirect.items() if k not in ("Action", "ActionID")} == {
        "Channel": caller,
        "Context": "xfer",
        "Exten": "s",
        "Priority": "1",
    }
    action_ids = [action["ActionID"] for action in fake.actions]
    assert len(set(action_ids)) == len(action_ids)


async def test_a_transfer_without_a_caller_id_sets_only_the_target(fake: FakeAmi) -> None:
    ami = await ami_for(fake)
    await ami.transfer(None, OURS, TransferTarget(number="sip:desk@pbx.example.com"))
    await fake.wait_action("Logoff")
    assert fake.names() == ["Login", "CoreShowChannels", "Setvar", "Redirect", "Logoff"]
    assert fake.actions[2]["Value"] == "sip:desk@pbx.example.com"


async def test_a_hang_up_hangs_up_our_channel(fake: FakeAmi) -> None:
    ami = await ami_for(fake)
    await ami.hang_up(None, OURS_ID)
    await fake.wait_action("Logoff")
    assert fake.names() == ["Login", "CoreShowChannels", "Hangup", "Logoff"]
    assert fake.actions[2]["Channel"] == OURS


async def test_a_bad_login_is_an_error_that_does_not_name_the_secret(fake: FakeAmi) -> None:
    ami = await ami_for(fake, secret="wrong-secret")
    with pytest.raises(CarrierRestError) as failed:
        await ami.transfer(None, OURS_ID, TransferTarget(number="+15550100199"))
    assert isinstance(failed.value, AsteriskAmiError)
    assert "login" in str(failed.value) and "Authentication failed" in str(failed.value)
    assert "wrong-secret" not in str(failed.value) and "wrong-secret" not in repr(ami.credentials)
    assert fake.actions == [] and len(fake.logins) == 1


async def test_an_unknown_channel_is_an_error_and_nothing_is_acted_on(fake: FakeAmi) -> None:
    ami = await ami_for(fake)
    with pytest.raises(AsteriskAmiError, match=r"1700000000\.55"):
        await ami.transfer(None, "1700000000.55", TransferTarget(number="+15550100199"))
    await fake.wait_action("Logoff")
    assert fake.names() == ["Login", "CoreShowChannels", "Logoff"]


async def test_an_action_asterisk_refuses_is_an_error_naming_it(fake: FakeAmi) -> None:
    fake.refuse = {"Redirect": "Permission denied"}
    ami = await ami_for(fake)
    with pytest.raises(AsteriskAmiError, match="Redirect to xfer: Permission denied"):
        await ami.transfer(None, OURS_ID, TransferTarget(number="+15550100199"))
    await fake.wait_action("Logoff")
    assert fake.names()[-2:] == ["Redirect", "Logoff"]


async def test_a_refused_channel_list_says_which_permission_it_needs(fake: FakeAmi) -> None:
    fake.refuse = {"CoreShowChannels": "Permission denied"}
    ami = await ami_for(fake)
    with pytest.raises(AsteriskAmiError, match="write = reporting"):
        await ami.hang_up(None, OURS_ID)


async def test_a_bad_target_is_refused_before_any_connection(fake: FakeAmi) -> None:
    ami = await ami_for(fake)
    bad = TransferTarget.model_construct(number="sip:a@b,,U(x)", caller_id=None)
    with pytest.raises(AsteriskAmiError, match="transfer target"):
        await ami.transfer(None, OURS_ID, bad)
    with pytest.raises(AsteriskAmiError, match="not an Asterisk call id"):
        await ami.hang_up(None, "has spaces\r\nAction: Originate")
    assert fake.connections == 0


async def test_a_silent_ami_times_out(fake: FakeAmi) -> None:
    fake.silent = True
    ami = await ami_for(fake, timeout_s=0.2)
    with pytest.raises(AsteriskAmiError, match=r"no answer from Asterisk AMI at 127\.0\.0\.1"):
        await ami.hang_up(None, OURS_ID)
    assert fake.connections == 1


async def test_an_unreachable_ami_is_an_error() -> None:
    fake = FakeAmi()
    port = await fake.start()
    await fake.stop()  # nothing listens there now
    ami = AsteriskAmi(AmiCredentials("127.0.0.1", USERNAME, SECRET, port), timeout_s=5.0)
    with pytest.raises(AsteriskAmiError, match="cannot reach Asterisk AMI"):
        await ami.hang_up(None, OURS_ID)


# -------------------------------------------------------------------------------- settings


def test_settings_turn_ami_on_only_with_host_user_and_secret() -> None:
    ami = {
        "asterisk_ami_host": "10.0.0.5",
        "asterisk_ami_username": USERNAME,
        "asterisk_ami_secret": SECRET,
    }
    settings = load_settings(env_file=None, asterisk_stream_token="t" * 20, **ami)
    rest = AsteriskCarrier.from_settings(settings).rest()
    assert isinstance(rest, AsteriskAmi)
    assert (rest.credentials.host, rest.credentials.port) == ("10.0.0.5", 5038)
    assert rest.transfer_context == "gateway-transfer"
    assert SECRET not in repr(settings) and SECRET not in repr(rest.credentials)
    assert AsteriskCarrier.from_settings(load_settings(env_file=None)).rest() is None
    for missing in ami:
        with pytest.raises(SettingsError, match="go together"):
            load_settings(
                env_file=None,
                asterisk_stream_token="t" * 20,
                **{k: v for k, v in ami.items() if k != missing},
            )
    with pytest.raises(SettingsError, match="ASTERISK_STREAM_TOKEN"):
        load_settings(env_file=None, **ami)
    with pytest.raises(SettingsError, match="ASTERISK_TRANSFER_CONTEXT"):
        load_settings(env_file=None, asterisk_transfer_context="bad context,x")


# ------------------------------------------------------------------------- a whole call

TRANSFER_SCRIPT = """turns:
  - say: "Let me put you through."
    tool_call: {name: transfer_call, args: {target: human}}
"""
STREAM_TOKEN = "asterisk-ami-stream-token"


async def test_a_websocket_channel_call_is_transferred_through_ami(fake: FakeAmi) -> None:
    phone = AsteriskPhone(token=STREAM_TOKEN)
    fake.channels = bridged_pair(phone.channel, phone.call_id)
    port = await fake.start()
    emulator = LiveEmulator(EmulatorScript.from_yaml(TRANSFER_SCRIPT), speed=50.0)
    live_url = await emulator.start("127.0.0.1", 0)
    settings = load_settings(
        env_file=None,
        live_url=live_url,
        record_calls="off",
        asterisk_stream_token=STREAM_TOKEN,
        asterisk_ami_host="127.0.0.1",
        asterisk_ami_port=port,
        asterisk_ami_username=USERNAME,
        asterisk_ami_secret=SECRET,
    )
    desk = AgentConfig.model_validate(
        {
            "name": "desk",
            "carriers": ["asterisk"],
            "transfer": {"human": {"number": "+15550100199", "description": "a person"}},
            "tools": [{"builtin": "transfer_call"}],
        }
    )
    agents = AgentSet.from_agents([AgentConfig(name="default"), desk])
    client = TestClient(TestServer(create_app(settings, agents), host="127.0.0.1"))
    await client.start_server()
    try:
        audio_in = PhoneAudio(*phone.stream_format)
        async with client.ws_connect(phone.stream_url("/asterisk/media", {"agent": "desk"})) as ws:
            for frame in [
                *phone.opening({}),
                *(
                    phone.media(audio_in.to_stream(audio))
                    for audio in speech_frames(600) + silence_frames(800)
                ),
            ]:
                await ws.send_str(frame) if isinstance(frame, str) else await ws.send_bytes(frame)
            while True:  # "Let me put you through.", then its mark
                message = await ws.receive()
                assert message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)
                event = phone.read(message.data)
                if event.kind == "mark":
                    break
            await ws.send_str(str(phone.mark_played(event.name)))
            await emulator.wait_tool_responses(1)  # transfer_call's: refused without REST
            assert "unavailable" not in repr(emulator.tool_responses[0]), emulator.tool_responses
            redirected = asyncio.create_task(fake.wait_action("Redirect"))
            failed = asyncio.create_task(
                emulator.wait_client_texts(lambda texts: TRANSFER_FAILED_PROMPT in texts)
            )
            done, pending = await asyncio.wait(
                {redirected, failed}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
            assert redirected in done, "the transfer failed (the model was told so)"
            redirect = redirected.result()
        assert redirect["Channel"] == CALLER["Channel"]
        assert redirect["Context"] == "gateway-transfer"
        setvar = next(a for a in fake.actions if a["Action"] == "Setvar")
        assert (setvar["Variable"], setvar["Value"]) == ("GATEWAY_TRANSFER_TO", "+15550100199")
    finally:
        await client.close()
        await emulator.stop()
