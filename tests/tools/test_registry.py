"""Tool specs → callable tools: built-in declarations and load-time problems, by tool index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.live.models import ToolBehavior, ToolScheduling
from gateway.tools import ToolContext, ToolError, ToolResult, ToolSpec, TransferTarget
from gateway.tools.registry import ToolSetError, build_toolset

TARGETS = {
    "human": TransferTarget(number="+15550100199", description="a person"),
    "billing": TransferTarget(number="+15550100198"),
}


class Control:
    def __init__(self, *, transfers: bool = True) -> None:
        self.transfers = transfers
        self.events: list[tuple[str, Any]] = []

    def end_after_turn(self, reason: str) -> None:
        self.events.append(("end", reason))

    def can_transfer(self) -> bool:
        return self.transfers

    def transfer_after_turn(self, target_name: str, target: TransferTarget) -> None:
        self.events.append(("transfer", (target_name, target.number)))

    def play_dtmf(self, digits: str) -> None:
        self.events.append(("dtmf", digits))


def specs(*items: dict[str, Any]) -> list[ToolSpec]:
    return [ToolSpec.model_validate(item) for item in items]


def test_builtin_declarations() -> None:
    tools = build_toolset(
        specs(
            {"builtin": "end_call"},
            {"builtin": "transfer_call"},
            {"name": "to_human", "builtin": "transfer_call", "target": "human"},
            {"builtin": "send_dtmf", "description": "Press keys."},
        ),
        agent_dir=Path("."),
        transfer=TARGETS,
    )
    end, transfer, to_human, dtmf = tools.declarations
    assert end["name"] == "end_call" and "goodbye" in end["description"]
    assert end["parameters"]["properties"] == {
        "reason": {"type": "string", "description": "Why, in a few words (for the call log)."}
    }
    assert transfer["parameters"]["required"] == ["target"]
    assert transfer["parameters"]["properties"]["target"]["enum"] == ["human", "billing"]
    assert "human: a person" in transfer["parameters"]["properties"]["target"]["description"]
    assert "target" not in to_human["parameters"]["properties"]  # fixed target
    assert dtmf["description"] == "Press keys."


async def test_builtins_act_through_call_control() -> None:
    tools = build_toolset(
        specs(
            {"builtin": "end_call"},
            {"builtin": "transfer_call"},
            {"name": "to_human", "builtin": "transfer_call", "target": "human"},
            {"builtin": "send_dtmf"},
        ),
        agent_dir=Path("."),
        transfer=TARGETS,
    )
    control = Control()
    context = ToolContext(call_sid="CA1", agent="a", transfer_targets=TARGETS, control=control)

    async def call(name: str, **args: Any) -> Any:
        tool = tools.get(name)
        assert tool is not None
        return await tool.invoke(args, context)

    ending = await call("end_call", reason="done")
    assert isinstance(ending, ToolResult) and ending.result["status"] == "ending"
    assert ending.message == "Say a brief goodbye now; the call ends when you finish speaking."
    assert (await call("transfer_call", target="billing")).result["target"] == "billing"
    assert (await call("to_human")).result["target"] == "human"
    pressed = await call("send_dtmf", digits="12#a")
    assert pressed.result == {"status": "sent", "digits": "12#A"}
    assert pressed.message is not None and "12#A" in pressed.message
    assert control.events == [
        ("end", "done"),
        ("transfer", ("billing", "+15550100198")),
        ("transfer", ("human", "+15550100199")),
        ("dtmf", "12#A"),
    ]
    with pytest.raises(ToolError, match="unknown transfer target 'nobody'") as unknown:
        await call("transfer_call", target="nobody")
    assert "the targets are: human, billing" in str(unknown.value)
    assert (unknown.value.status, unknown.value.retryable) == ("invalid_argument", False)
    with pytest.raises(ToolError, match="not DTMF digits") as not_dtmf:
        await call("send_dtmf", digits="12x")
    assert not_dtmf.value.status == "invalid_argument"
    no_transfers = ToolContext(
        call_sid="CA1", agent="a", transfer_targets=TARGETS, control=Control(transfers=False)
    )
    tool = tools.get("to_human")
    assert tool is not None
    with pytest.raises(ToolError, match="transfers are not available") as refused:
        await tool.invoke({}, no_transfers)
    assert (refused.value.status, refused.value.retryable) == ("unavailable", False)


def test_tools_carry_their_behavior_and_scheduling_builtins_too(tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text("def f():\n    return 1\n")
    tools = build_toolset(
        specs(
            {"name": "plain", "description": "d", "python": "tools:f"},
            {"name": "slow", "description": "d", "python": "tools:f",
             "behavior": "non_blocking", "scheduling": "silent"},
            {"name": "hook", "description": "d", "http": {"url": "https://h.example/x"},
             "behavior": "blocking"},
            {"builtin": "end_call", "scheduling": "interrupt"},
            {"builtin": "send_dtmf", "behavior": "blocking"},
        ),
        agent_dir=tmp_path,
        transfer=TARGETS,
    )  # fmt: skip
    assert {t.name: (t.behavior, t.scheduling) for t in tools} == {
        "plain": (None, None),
        "slow": (ToolBehavior.NON_BLOCKING, ToolScheduling.SILENT),
        "hook": (ToolBehavior.BLOCKING, None),
        "end_call": (None, ToolScheduling.INTERRUPT),
        "send_dtmf": (ToolBehavior.BLOCKING, None),
    }


@pytest.mark.parametrize(
    ("items", "transfer", "problem"),
    [
        ([{"builtin": "transfer_call"}], {}, "tools.0.builtin: transfer_call needs at least one"),
        ([{"builtin": "transfer_call", "target": "sales"}], TARGETS,
         "tools.0.target: 'sales' is not a transfer target (billing, human)"),
        ([{"builtin": "end_call"}, {"builtin": "end_call"}], {},
         "tools.1.builtin: tool 'end_call' is defined twice"),
        ([{"name": "x", "description": "d", "http": {"url": "https://h.example/x",
                                                     "hmac_secret_env": "NOT_SET_ANYWHERE"}}],
         {}, "tools.0.http.hmac_secret_env: environment variable NOT_SET_ANYWHERE is not set"),
        ([{"name": "x", "description": "d", "python": "nowhere:f"}], {},
         "tools.0.python: module 'nowhere' not found"),
    ],
)  # fmt: skip
def test_problems_name_the_tool_and_field(
    items: list[dict[str, Any]], transfer: dict[str, TransferTarget], problem: str
) -> None:
    with pytest.raises(ToolSetError) as caught:
        build_toolset(specs(*items), agent_dir=Path("."), transfer=transfer, environ={})
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"name": "x", "description": "d"}, "set exactly one of python, http or builtin"),
        ({"name": "x", "description": "d", "python": "a:b", "builtin": "end_call"},
         "set exactly one of python, http or builtin"),
        ({"description": "d", "python": "a:b"}, "a python or http tool needs a name"),
        ({"name": "x", "python": "a:b"}, "tool 'x' needs a description"),
        ({"name": "9x", "description": "d", "python": "a:b"}, "not a valid tool name"),
        ({"name": "x", "description": "d", "python": "a.b"}, "not of the form module:function"),
        ({"builtin": "end_call", "parameters": {"type": "object"}}, "has fixed parameters"),
        ({"builtin": "end_call", "target": "human"}, "target is only for builtin: transfer_call"),
        ({"builtin": "hang_up"}, "Input should be 'end_call', 'transfer_call' or 'send_dtmf'"),
        ({"name": "x", "description": "d", "http": {"url": "ftp://x"}}, "not an http"),
        ({"name": "x", "description": "d", "http": {"url": "https://h.example",
                                                    "headers": {"Bad Header": "1"}}},
         "not a valid HTTP header name"),
        ({"name": "x", "description": "d", "python": "a:b", "timeout_s": 0},
         "greater than 0"),
    ],
)  # fmt: skip
def test_spec_errors(item: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ToolSpec.model_validate(item)
