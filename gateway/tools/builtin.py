"""Built-in tools: `end_call`, `transfer_call`, `send_dtmf`.

They act on the call through `ToolContext.control` and answer at once, so the model can say
its goodbye ("connecting you now…") in the same turn; the call hangs up or transfers only after
that turn has played to the caller. Their answers tell the model what to say next (the
`message` of the runner's answer), and their refusals say what to do instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.tools.context import ToolContext, ToolError, ToolResult, ToolStatus
from gateway.tools.python_tool import ToolInvoker
from gateway.tools.spec import BuiltinName, TransferTarget

__all__ = ["DTMF_DIGITS", "builtin_declaration", "builtin_invoker"]

DTMF_DIGITS = "0123456789*#ABCD"

_DESCRIPTIONS: dict[BuiltinName, str] = {
    "end_call": (
        "Hang up the phone call. Use it when the caller says goodbye, asks to end the call, "
        "or the conversation is finished. Then say a short goodbye: the call ends when you "
        "finish speaking."
    ),
    "transfer_call": (
        "Transfer the caller to a person or another line. Use it when the caller asks for a "
        "human or you cannot help. Then tell the caller, in one short sentence, that you are "
        "connecting them: the transfer happens when you finish speaking."
    ),
    "send_dtmf": (
        "Press keys on the phone keypad (DTMF tones), e.g. to choose an option in a phone menu."
    ),
}

_REASON = {"type": "string", "description": "Why, in a few words (for the call log)."}


def builtin_declaration(
    builtin: BuiltinName,
    name: str,
    description: str | None,
    *,
    targets: Mapping[str, TransferTarget],
    fixed_target: str | None,
) -> dict[str, Any]:
    """The function declaration the model sees for a built-in tool."""
    parameters: dict[str, Any]
    if builtin == "end_call":
        parameters = {"type": "object", "properties": {"reason": _REASON}}
    elif builtin == "transfer_call":
        parameters = {"type": "object", "properties": {"reason": _REASON}}
        if fixed_target is None:
            choices = "; ".join(
                f"{key}: {target.description}" if target.description else key
                for key, target in targets.items()
            )
            parameters["properties"] = {
                "target": {
                    "type": "string",
                    "enum": list(targets),
                    "description": f"Who to transfer to ({choices}).",
                },
                "reason": _REASON,
            }
            parameters["required"] = ["target"]
    else:
        parameters = {
            "type": "object",
            "properties": {
                "digits": {
                    "type": "string",
                    "pattern": "^[0-9*#A-D]+$",
                    "maxLength": 32,
                    "description": "The keys to press, in order (0-9, *, #).",
                }
            },
            "required": ["digits"],
        }
    return {
        "name": name,
        "description": description or _DESCRIPTIONS[builtin],
        "parameters": parameters,
    }


def builtin_invoker(builtin: BuiltinName, *, fixed_target: str | None) -> ToolInvoker:
    """`invoke(args, context)` for a built-in tool."""

    async def end_call(args: Mapping[str, Any], context: ToolContext) -> Any:
        context.control.end_after_turn(str(args.get("reason") or "agent_ended_call"))
        instruction = "Say a brief goodbye now; the call ends when you finish speaking."
        return ToolResult({"status": "ending", "instruction": instruction}, message=instruction)

    async def transfer_call(args: Mapping[str, Any], context: ToolContext) -> Any:
        name = fixed_target or str(args.get("target", ""))
        target = context.transfer_targets.get(name)
        if target is None:
            known = ", ".join(context.transfer_targets) or "none"
            raise ToolError(
                f"unknown transfer target {name!r}; the targets are: {known}",
                status=ToolStatus.INVALID_ARGUMENT,
            )
        if not context.control.can_transfer():
            raise ToolError(
                "transfers are not available right now; apologise and offer to help "
                "another way or take a message",
                status=ToolStatus.UNAVAILABLE,
                retryable=False,
            )
        context.control.transfer_after_turn(name, target)
        instruction = "Tell the caller in one short sentence that you are connecting them."
        return ToolResult(
            {"status": "transferring", "target": name, "instruction": instruction},
            message=instruction,
        )

    async def send_dtmf(args: Mapping[str, Any], context: ToolContext) -> Any:
        digits = str(args.get("digits", "")).upper()
        if not digits or any(d not in DTMF_DIGITS for d in digits):
            raise ToolError(
                f"not DTMF digits: {digits!r}; use only 0-9, *, # and A-D",
                status=ToolStatus.INVALID_ARGUMENT,
            )
        context.control.play_dtmf(digits)
        return ToolResult(
            {"status": "sent", "digits": digits},
            message=f"The keys {digits} were pressed; their tones are playing in the call.",
        )

    invokers: dict[BuiltinName, ToolInvoker] = {
        "end_call": end_call,
        "transfer_call": transfer_call,
        "send_dtmf": send_dtmf,
    }
    return invokers[builtin]
