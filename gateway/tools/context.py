"""What a tool sees of the call it runs in: `ToolContext`, and `CallControl` for the built-ins."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog

from gateway.tools.spec import TransferTarget

__all__ = [
    "RETRYABLE_STATUSES",
    "CallControl",
    "NoCallControl",
    "ToolContext",
    "ToolError",
    "ToolResult",
    "ToolStatus",
]


class ToolStatus:
    """The `status` of every tool answer the model gets (see gateway.tools.runner).

    Tools may use other strings too; these are the ones the gateway itself gives, and the ones
    an HTTP tool's reply is recognised by.
    """

    OK = "ok"
    NO_RESULTS = "no_results"
    """The tool worked and found nothing (an empty result)."""
    NOT_FOUND = "not_found"
    """The thing asked about does not exist (no such order, account, …)."""
    INVALID_ARGUMENT = "invalid_argument"
    PERMISSION_DENIED = "permission_denied"
    UNKNOWN_TOOL = "unknown_tool"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    """A service the tool needs cannot be reached right now (worth one more try)."""
    ERROR = "error"
    CANCELLED = "cancelled"
    """Observers only: a cancelled call's answer is never sent to the model."""

    ALL: tuple[str, ...] = (
        OK,
        NO_RESULTS,
        NOT_FOUND,
        INVALID_ARGUMENT,
        PERMISSION_DENIED,
        UNKNOWN_TOOL,
        TIMEOUT,
        UNAVAILABLE,
        ERROR,
        CANCELLED,
    )


RETRYABLE_STATUSES = frozenset({ToolStatus.TIMEOUT, ToolStatus.UNAVAILABLE})
"""Statuses whose answer is `retryable` unless the tool says otherwise."""


class ToolError(Exception):
    """Raise it from a tool to tell the model what went wrong: the message goes to the model.

    Write the message for the model, which relays it to the caller: say what happened and what
    to do (`ToolError("There is no order A9999; ask the caller to check the number",
    status="not_found")`). `status` is one of `ToolStatus` (default "error"); `retryable` says
    whether calling again with the same arguments may work (default: true for "timeout" and
    "unavailable", false otherwise).

    Any other exception is logged with its traceback and the model only hears that the tool
    failed (internals stay out of the conversation).
    """

    def __init__(
        self, message: str = "", *, status: str = ToolStatus.ERROR, retryable: bool | None = None
    ) -> None:
        super().__init__(message)
        self.status = status or ToolStatus.ERROR
        self.retryable = self.status in RETRYABLE_STATUSES if retryable is None else retryable


@dataclass(frozen=True)
class ToolResult:
    """Return it from a tool to give the model a message (and status) with the result.

    A plain return value is wrapped as `ToolResult(value)`: status "ok", or "no_results" when
    the value is empty (None, "", [], {}), with the gateway's own message.
    """

    result: Any = None
    message: str | None = None
    """What the model should make of the result, in plain language (else the gateway's)."""
    status: str | None = None
    """None: "ok", or "no_results" for an empty result."""


class CallControl(Protocol):
    """What built-in tools may do to the call they run in (implemented by the call)."""

    def end_after_turn(self, reason: str) -> None:
        """Hang up once the agent's current turn (its goodbye) has played to the caller."""
        ...

    def can_transfer(self) -> bool:
        """Whether `transfer_after_turn` can work (carrier REST credentials are configured)."""
        ...

    def transfer_after_turn(self, target_name: str, target: TransferTarget) -> None:
        """Transfer the call to `target` once the agent's current turn has played."""
        ...

    def play_dtmf(self, digits: str) -> None:
        """Play DTMF tones for `digits` into the call (e.g. to drive a phone menu)."""
        ...


class NoCallControl:
    """For tools run outside a call (tests, scripts): nothing ends, nothing transfers."""

    def end_after_turn(self, reason: str) -> None:
        pass

    def can_transfer(self) -> bool:
        return False

    def transfer_after_turn(self, target_name: str, target: TransferTarget) -> None:
        raise ToolError("transfers are not available outside a call")

    def play_dtmf(self, digits: str) -> None:
        pass


@dataclass(frozen=True)
class ToolContext:
    """The call a tool runs for. `data_dir` is a writable folder owned by this agent.

    Numbers are E.164 strings as the carrier gave them ("" when unknown).
    """

    call_sid: str
    agent: str
    from_number: str = ""
    to_number: str = ""
    stream_sid: str = ""
    agent_dir: Path = Path(".")
    data_dir: Path = Path("data")
    transfer_targets: dict[str, TransferTarget] = field(default_factory=dict)
    control: CallControl = field(default_factory=NoCallControl)
    log: Any = field(default_factory=lambda: structlog.get_logger("gateway.tools"))
    values: Mapping[str, str] = field(default_factory=dict)
    """The tool's own `context:` values from the agent YAML, call variables filled in (set
    per tool by the runner; never from the model)."""

    def as_dict(self) -> dict[str, str]:
        """The call's identity as plain strings (what HTTP tools receive as headers)."""
        return {
            "call_sid": self.call_sid,
            "agent": self.agent,
            "from": self.from_number,
            "to": self.to_number,
        }
