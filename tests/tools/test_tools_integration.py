"""Every tool kind through the real server, called by the Live emulator scripted to call it.

The caller presses a key (DTMF reaches the model as text), the emulator's scripted turn calls a
tool, and the test asserts the `toolResponse` the emulator received — what the model would
read. Built-ins that hang up or transfer go through a fake Twilio REST API on loopback.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.call.control import TRANSFER_FAILED_PROMPT
from gateway.live.models import ToolBehavior
from tests.generations import EVERY_GENERATION, Generation
from tests.tools import probe
from tests.tools.fake_twilio import FakeTwilioApi
from tests.tools.harness import (
    ACCOUNT_SID,
    CALL_SID,
    CALLER,
    REST_ACCOUNT_SID,
    REST_AUTH_TOKEN,
    script,
    tool_gateway,
    write_agent,
)

KINDS_TOOLS = """
    import asyncio
    import threading

    from gateway.tools import ToolContext, ToolError
    from tests.tools import probe


    def add(a: int, b: int, context: ToolContext) -> dict:
        return {
            "sum": a + b,
            "call_sid": context.call_sid,
            "caller": context.from_number,
            "line": context.to_number,
            "agent": context.agent,
            "in_worker_thread": threading.current_thread() is not threading.main_thread(),
        }


    async def greet(name: str) -> str:
        await asyncio.sleep(0)
        return f"Hello, {name}!"


    async def hang() -> None:
        probe.PROBE.started.set()
        try:
            await probe.PROBE.release.wait()
        except asyncio.CancelledError:
            probe.PROBE.cancelled.set()
            raise


    def broken() -> None:
        raise RuntimeError("database password is hunter2")


    def refuse(order_id: str) -> None:
        raise ToolError(f"order {order_id} belongs to someone else", status="permission_denied")
"""

KINDS_YAML = """
    name: kinds
    lines: ["+15550007777"]
    tools:
      - name: add
        description: Add two whole numbers.
        parameters:
          type: object
          properties: {a: {type: integer}, b: {type: integer}}
          required: [a, b]
        python: tools:add
      - name: greet
        description: Greet someone by name.
        parameters: {type: object, properties: {name: {type: string}}, required: [name]}
        python: tools:greet
      - name: hang
        description: Never answers.
        python: tools:hang
        timeout_s: 0.2
      - name: hang_long
        description: Never answers either, but may take its time.
        python: tools:hang
        timeout_s: 60
        HANG_LONG_BEHAVIOR
      - name: broken
        description: Always fails.
        python: tools:broken
      - name: refuse
        description: Refuses politely.
        parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id]}
        python: tools:refuse
"""


@pytest.fixture
def kinds_dir(tmp_path: Path, generation: Generation) -> Path:
    agents = tmp_path / "agents"
    # Only BLOCKING calls are cancelled by new caller input; extended thinking has none.
    blocking = ToolBehavior.BLOCKING in generation.profile.tool_behaviors
    behavior = "behavior: blocking" if blocking else "# (no blocking calls on this model)"
    yaml_text = KINDS_YAML.replace("HANG_LONG_BEHAVIOR", behavior)
    write_agent(agents, "kinds", yaml_text, tools_py=KINDS_TOOLS)
    probe.reset()
    return agents


def responses(gateway: Any) -> list[tuple[str, str, dict[str, Any]]]:
    return [(r.id, r.name, r.response) for r in gateway.emulator.tool_responses]


def ok(name: str, result: Any, message: str | None = None) -> dict[str, Any]:
    said = message or f"The tool {name} succeeded; its answer is in result."
    return {"status": "ok", "retryable": False, "message": said, "result": result}


def failed(status: str, message: str, error: str | None = None, *, retryable: bool = False) -> Any:
    return {"status": status, "retryable": retryable, "message": message, "error": error or message}


@EVERY_GENERATION
async def test_python_tools_sync_and_async_answer_the_model(
    kinds_dir: Path, tmp_path: Path, generation: Generation
) -> None:
    turns = script(("add", {"a": 2, "b": 3}), ("greet", {"name": "Ada"}))
    async with tool_gateway(
        kinds_dir, turns, data_dir=tmp_path / "data", generation=generation
    ) as gw:
        async with gw.call(to="+15550007777") as phone:
            await phone.send(phone.twilio.dtmf("1"))
            await gw.emulator.wait_tool_responses(1)
            await phone.send(phone.twilio.dtmf("2"))
            await gw.emulator.wait_tool_responses(2)
            await phone.send(phone.twilio.stop())
            await phone.rest()
    assert responses(gw) == [
        (
            "fc-1",
            "add",
            ok(
                "add",
                {
                    "sum": 5,
                    "call_sid": CALL_SID,
                    "caller": CALLER,
                    "line": "+15550007777",
                    "agent": "kinds",
                    "in_worker_thread": True,
                },
            ),
        ),
        ("fc-2", "greet", ok("greet", "Hello, Ada!")),
    ]
    declared = gw.emulator.setups[-1]["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in declared][:2] == ["add", "greet"]
    assert declared[0]["parameters"]["properties"]["a"] == {"type": "INTEGER"}


@EVERY_GENERATION
async def test_dtmf_reaches_the_model_as_text_even_before_live_is_ready(
    kinds_dir: Path, tmp_path: Path, generation: Generation
) -> None:
    async with tool_gateway(kinds_dir, data_dir=tmp_path / "data", generation=generation) as gw:
        async with gw.call() as phone:
            await phone.send(phone.twilio.dtmf("5"))  # sent right after start: Live may not be up
            answer = await phone.until("mark")  # the model answered the keypress
            assert any(m["event"] == "media" for m in answer)
            await phone.send(phone.twilio.dtmf("#"))
            await phone.until("mark")
            await phone.send(phone.twilio.stop())
            await phone.rest()
    assert gw.emulator.client_texts == ["The caller pressed 5.", "The caller pressed #."]


@EVERY_GENERATION
async def test_arguments_that_break_the_schema_become_an_error_response(
    kinds_dir: Path, tmp_path: Path, generation: Generation
) -> None:
    turns = script(("add", {"a": "two", "b": 3}), ("add", {"a": 1}), ("nope", {}))
    async with tool_gateway(
        kinds_dir, turns, data_dir=tmp_path / "data", generation=generation
    ) as gw:
        async with gw.call(agent="kinds") as phone:
            for n, digit in enumerate("123", start=1):
                await phone.send(phone.twilio.dtmf(digit))
                await gw.emulator.wait_tool_responses(n)
            await phone.send(phone.twilio.stop())
            await phone.rest()
    fix = "Correct them, asking the caller if needed, before calling it again."
    known = "add, greet, hang, hang_long, broken, refuse"
    assert [r for _, _, r in responses(gw)] == [
        failed(
            "invalid_argument",
            f"The arguments for add were not accepted (a: expected integer, got string 'two'). "
            f"{fix}",
            "invalid arguments: a: expected integer, got string 'two'",
        ),
        failed(
            "invalid_argument",
            f"The arguments for add were not accepted (b: required argument is missing). {fix}",
            "invalid arguments: b: required argument is missing",
        ),
        failed(
            "unknown_tool",
            f"There is no tool called 'nope'; do not call it again. The tools you have: {known}.",
            "unknown tool 'nope'",
        ),
    ]


@EVERY_GENERATION
async def test_a_tool_that_times_out_gets_an_error_and_the_call_goes_on(
    kinds_dir: Path, tmp_path: Path, generation: Generation
) -> None:
    turns = script(("hang", {}), after_tool="Sorry, that took too long.")
    async with tool_gateway(
        kinds_dir, turns, data_dir=tmp_path / "data", generation=generation
    ) as gw:
        async with gw.call(agent="kinds") as phone:
            await phone.send(phone.twilio.dtmf("1"))
            await gw.emulator.wait_tool_responses(1)
            spoken = await phone.until("mark")  # the model spoke on after the error
            assert sum(1 for m in spoken if m["event"] == "media") > 5
            await phone.send(phone.twilio.stop())
            await phone.rest()
    assert responses(gw) == [
        (
            "fc-1",
            "hang",
            failed(
                "timeout",
                "The tool hang did not answer within 0.2 s; you may try once more.",
                "the tool hang did not answer within 0.2 s",
                retryable=True,
            ),
        )
    ]


@EVERY_GENERATION
async def test_exceptions_become_error_responses_without_leaking_internals(
    kinds_dir: Path, tmp_path: Path, generation: Generation
) -> None:
    turns = script(("broken", {}), ("refuse", {"order_id": "A1"}))
    async with tool_gateway(
        kinds_dir, turns, data_dir=tmp_path / "data", generation=generation
    ) as gw:
        async with gw.call(agent="kinds") as phone:
            await phone.send(phone.twilio.dtmf("1"))
            await gw.emulator.wait_tool_responses(1)
            await phone.send(phone.twilio.dtmf("2"))
            await gw.emulator.wait_tool_responses(2)
            await phone.send(phone.twilio.stop())
            await phone.rest()
    assert [r for _, _, r in responses(gw)] == [
        failed(
            "error",
            "The tool broken failed because of an internal problem; trying again will not "
            "help. Tell the caller it cannot be done right now.",
            "the tool broken failed",
        ),
        failed("permission_denied", "order A1 belongs to someone else"),
    ]
    assert "hunter2" not in json.dumps(responses(gw))


@EVERY_GENERATION
async def test_tool_call_cancellation_cancels_the_running_tool(
    kinds_dir: Path, tmp_path: Path, generation: Generation
) -> None:
    if ToolBehavior.BLOCKING not in generation.profile.tool_behaviors:
        pytest.skip(f"{generation.model} has no blocking calls for new input to cancel")
    turns = script(("hang_long", {}))
    async with tool_gateway(
        kinds_dir, turns, data_dir=tmp_path / "data", generation=generation
    ) as gw:
        async with gw.call(agent="kinds") as phone:
            await phone.send(phone.twilio.dtmf("1"))
            await probe.PROBE.started.wait()
            # The caller interrupts: the emulator sends `interrupted` and toolCallCancellation.
            await phone.send(phone.twilio.dtmf("2"))
            await probe.PROBE.cancelled.wait()
            await phone.until("clear")
            await phone.send(phone.twilio.stop())
            await phone.rest()
        await gw.emulator.wait_closed_sessions(1)
    assert gw.emulator.tool_responses == []  # a cancelled call gets no response


# --------------------------------------------------------------------------- http tools

SECRET = "s3cret-for-hmac"


class Receiver:
    """An HTTP tool's server on loopback; checks the HMAC signature like a real one would."""

    def __init__(self, status: int = 200, reply: Any = None) -> None:
        self.status = status
        self.reply = {"balance_usd": 42.5} if reply is None else reply
        self.requests: list[tuple[dict[str, str], bytes, bool]] = []
        self.runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/tool", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}/tool"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers.get("X-Gateway-Timestamp", "")
        expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        signed = request.headers.get("X-Acme-Signature") == "sha256=" + expected.hexdigest()
        self.requests.append((dict(request.headers), body, signed))
        if self.status >= 400:
            return web.Response(status=self.status, text="upstream exploded")
        return web.json_response(self.reply)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    yield server
    if server.runner is not None:
        await server.runner.cleanup()


@EVERY_GENERATION
async def test_http_tool_posts_signed_json_and_the_reply_reaches_the_model(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, generation: Generation
) -> None:
    monkeypatch.setenv("CRM_SECRET", SECRET)
    url = await receiver.start()
    agents = tmp_path / "agents"
    write_agent(
        agents,
        "crm",
        f"""
        name: crm
        tools:
          - name: account_balance
            description: The caller's account balance.
            parameters: {{type: object, properties: {{account: {{type: string}}}}}}
            http:
              url: {url}
              headers: {{X-Api-Version: "2"}}
              hmac_secret_env: CRM_SECRET
              hmac_header: X-Acme-Signature
            timeout_s: 5
        """,
    )
    turns = script(("account_balance", {"account": "77-12"}))
    async with tool_gateway(agents, turns, data_dir=tmp_path / "data", generation=generation) as gw:
        async with gw.call(agent="crm", to="+15550001111") as phone:
            await phone.send(phone.twilio.dtmf("1"))
            await gw.emulator.wait_tool_responses(1)
            await phone.send(phone.twilio.stop())
            await phone.rest()
    assert responses(gw) == [
        ("fc-1", "account_balance", ok("account_balance", {"balance_usd": 42.5}))
    ]
    [(headers, body, signed)] = receiver.requests
    assert signed, "the X-Acme-Signature header must be a valid HMAC of timestamp.body"
    assert json.loads(body) == {"account": "77-12"}
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Gateway-Tool"] == "account_balance"
    assert headers["X-Gateway-Call-Sid"] == CALL_SID
    assert headers["X-Gateway-Agent"] == "crm"
    assert headers["X-Gateway-From"] == CALLER
    assert headers["X-Gateway-To"] == "+15550001111"
    assert headers["X-Api-Version"] == "2"


async def test_http_tool_error_status_becomes_an_error_response(
    tmp_path: Path,
) -> None:
    receiver = Receiver(status=502)
    url = await receiver.start()
    agents = tmp_path / "agents"
    write_agent(
        agents,
        "crm",
        f"""
        name: crm
        tools:
          - name: account_balance
            description: The caller's account balance.
            http: {{url: "{url}"}}
        """,
    )
    try:
        async with tool_gateway(
            agents, script(("account_balance", {})), data_dir=tmp_path / "data"
        ) as gw:
            async with gw.call(agent="crm") as phone:
                await phone.send(phone.twilio.dtmf("1"))
                await gw.emulator.wait_tool_responses(1)
                await phone.send(phone.twilio.stop())
                await phone.rest()
    finally:
        assert receiver.runner is not None
        await receiver.runner.cleanup()
    assert [r for _, _, r in responses(gw)] == [
        failed(
            "unavailable",
            "The service behind account_balance is unavailable right now (HTTP 502: upstream "
            "exploded); you may try once more.",
            retryable=True,
        )
    ]
    [(headers, _, signed)] = receiver.requests
    assert not signed and "X-Gateway-Timestamp" not in headers  # no secret: unsigned


# --------------------------------------------------------------------------- built-ins

BUILTINS_YAML = """
    name: desk
    transfer:
      human: {number: "+15550100199", description: a person}
      billing: "sip:billing@pbx.example.com"
    tools:
      - builtin: end_call
      - builtin: transfer_call
      - builtin: send_dtmf
"""


@pytest.fixture
def desk_dir(tmp_path: Path) -> Path:
    agents = tmp_path / "agents"
    write_agent(agents, "desk", BUILTINS_YAML)
    return agents


CALL_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{CALL_SID}.json"


async def hear_until_the_carrier_is_called(phone: Any, twilio: FakeTwilioApi) -> list[Any]:
    """Play every turn out like Twilio (echo its mark) until the gateway calls Twilio REST;
    returns what the caller heard. Models differ in how many turns come first (a filler
    while a non-blocking call runs, extended thinking's "let me think")."""
    heard: list[Any] = []
    said = await phone.until("mark")
    while True:
        assert twilio.requests == [], "the gateway acted before the last turn was heard"
        heard += said
        await phone.send(phone.twilio.mark(said[-1]["mark"]["name"]))  # played
        request = asyncio.create_task(twilio.wait_requests(1))
        next_turn = asyncio.create_task(phone.until("mark"))
        done, _ = await asyncio.wait({request, next_turn}, return_when=asyncio.FIRST_COMPLETED)
        if request in done:
            next_turn.cancel()
            await asyncio.gather(next_turn, return_exceptions=True)
            return heard
        request.cancel()
        said = next_turn.result()


@pytest.mark.parametrize("api_key", [False, True], ids=["auth_token", "api_key"])
@EVERY_GENERATION
async def test_end_call_says_goodbye_then_hangs_up_through_twilio_rest(
    desk_dir: Path, tmp_path: Path, api_key: bool, generation: Generation
) -> None:
    twilio = FakeTwilioApi()
    turns = script(("end_call", {"reason": "caller is done"}), after_tool="Goodbye!")
    async with tool_gateway(
        desk_dir,
        turns,
        data_dir=tmp_path / "data",
        generation=generation,
        twilio=twilio,
        api_key=api_key,
    ) as gw:
        async with gw.call(agent="desk") as phone:
            await phone.send(phone.twilio.dtmf("1"))
            heard = await hear_until_the_carrier_is_called(phone, twilio)
            assert sum(1 for m in heard if m["event"] == "media") > 5  # the goodbye
            [request] = await twilio.wait_requests(1)
            assert await phone.rest() == []  # the gateway closed the stream
    assert responses(gw)[0][2]["result"]["status"] == "ending"
    assert request.method == "POST"
    assert request.path == CALL_PATH
    assert request.form == {"Status": "completed"}
    if api_key:
        assert (request.username, request.password) == ("SK" + "e" * 32, "api-key-secret")
    else:
        assert (request.username, request.password) == (REST_ACCOUNT_SID, REST_AUTH_TOKEN)


async def test_end_call_without_twilio_credentials_closes_the_stream(
    desk_dir: Path, tmp_path: Path
) -> None:
    turns = script(("end_call", {}), after_tool="Goodbye!")
    async with tool_gateway(desk_dir, turns, data_dir=tmp_path / "data") as gw:
        async with gw.call(agent="desk") as phone:
            await phone.send(phone.twilio.dtmf("1"))
            goodbye = await phone.until("mark")
            await phone.send(phone.twilio.mark(goodbye[-1]["mark"]["name"]))
            assert await phone.rest() == []
            assert phone.ws.closed


@EVERY_GENERATION
async def test_transfer_dials_the_target_through_twilio_rest(
    desk_dir: Path, tmp_path: Path, generation: Generation
) -> None:
    twilio = FakeTwilioApi()
    turns = script(("transfer_call", {"target": "human"}), after_tool="Connecting you now.")
    async with tool_gateway(
        desk_dir, turns, data_dir=tmp_path / "data", generation=generation, twilio=twilio
    ) as gw:
        async with gw.call(agent="desk") as phone:
            await phone.send(phone.twilio.dtmf("0"))
            await hear_until_the_carrier_is_called(phone, twilio)
            [request] = await twilio.wait_requests(1)
            assert await phone.rest() == []
    instruction = "Tell the caller in one short sentence that you are connecting them."
    assert responses(gw) == [
        (
            "fc-1",
            "transfer_call",
            ok(
                "transfer_call",
                {"status": "transferring", "target": "human", "instruction": instruction},
                instruction,
            ),
        )
    ]
    assert request.method == "POST" and request.path == CALL_PATH
    assert (request.username, request.password) == (REST_ACCOUNT_SID, REST_AUTH_TOKEN)
    assert request.form == {"Twiml": "<Response><Dial>+15550100199</Dial></Response>"}


async def test_transfer_to_a_sip_target(desk_dir: Path, tmp_path: Path) -> None:
    twilio = FakeTwilioApi()
    turns = script(("transfer_call", {"target": "billing"}), after_tool="One moment.")
    async with tool_gateway(desk_dir, turns, data_dir=tmp_path / "data", twilio=twilio) as gw:
        async with gw.call(agent="desk") as phone:
            await phone.send(phone.twilio.dtmf("0"))
            said = await phone.until("mark")
            await phone.send(phone.twilio.mark(said[-1]["mark"]["name"]))
            [request] = await twilio.wait_requests(1)
            await phone.rest()
    assert request.form == {
        "Twiml": "<Response><Dial><Sip>sip:billing@pbx.example.com</Sip></Dial></Response>"
    }


async def test_transfer_without_credentials_is_an_error_and_the_call_goes_on(
    desk_dir: Path, tmp_path: Path
) -> None:
    turns = script(("transfer_call", {"target": "human"}), after_tool="I cannot transfer you.")
    async with tool_gateway(desk_dir, turns, data_dir=tmp_path / "data") as gw:
        async with gw.call(agent="desk") as phone:
            await phone.send(phone.twilio.dtmf("0"))
            said = await phone.until("mark")
            await phone.send(phone.twilio.mark(said[-1]["mark"]["name"]))
            await phone.send(phone.twilio.dtmf("1"))  # the call is still up: the model answers
            await phone.until("mark")
            await phone.send(phone.twilio.stop())
            await phone.rest()
    [(_, _, response)] = responses(gw)
    assert response["error"].startswith("transfers are not available")
    assert (response["status"], response["retryable"]) == ("unavailable", False)
    assert response["message"] == response["error"]


@EVERY_GENERATION
async def test_a_failed_transfer_keeps_the_call_and_tells_the_model(
    desk_dir: Path, tmp_path: Path, generation: Generation
) -> None:
    twilio = FakeTwilioApi(status=500)
    turns = script(("transfer_call", {"target": "human"}), after_tool="Connecting you now.")
    async with tool_gateway(
        desk_dir, turns, data_dir=tmp_path / "data", generation=generation, twilio=twilio
    ) as gw:
        async with gw.call(agent="desk") as phone:
            await phone.send(phone.twilio.dtmf("0"))
            await hear_until_the_carrier_is_called(phone, twilio)  # every turn heard, as Twilio
            apology = await phone.until("mark")  # the model speaks about the failure
            assert any(m["event"] == "media" for m in apology)
            await phone.send(phone.twilio.stop())
            await phone.rest()
    assert TRANSFER_FAILED_PROMPT in gw.emulator.client_texts


@EVERY_GENERATION
async def test_send_dtmf_plays_the_tones_to_the_caller(
    desk_dir: Path, tmp_path: Path, generation: Generation
) -> None:
    turns = script(("send_dtmf", {"digits": "12#"}), after_tool="Done.")
    async with tool_gateway(
        desk_dir, turns, data_dir=tmp_path / "data", generation=generation
    ) as gw:
        async with gw.call(agent="desk") as phone:
            await phone.send(phone.twilio.dtmf("1"))
            await gw.emulator.wait_tool_responses(1)
            heard = await phone.until("mark")
            await phone.send(phone.twilio.stop())
            await phone.rest()
    assert responses(gw) == [
        (
            "fc-1",
            "send_dtmf",
            ok(
                "send_dtmf",
                {"status": "sent", "digits": "12#"},
                "The keys 12# were pressed; their tones are playing in the call.",
            ),
        )
    ]
    # 3 × (120 ms tone + 80 ms pause) = 600 ms = 30 frames of tones, then the model's "Done."
    assert sum(1 for m in heard if m["event"] == "media") >= 30
