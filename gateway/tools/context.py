"""What a tool sees of the call it runs in: `ToolContext`, and `CallControl` for the built-ins."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog

from gateway.tools.spec import TransferTarget

__all__ = ["CallControl", "NoCallControl", "ToolContext", "ToolError"]


class ToolError(Exception):
    """Raise it from a tool to tell the model what went wrong: the message goes to the model.

    Any other exception is logged with its traceback and the model only hears that the tool
    failed (internals stay out of the conversation).
    """


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

    def as_dict(self) -> dict[str, str]:
        """The call's identity as plain strings (what HTTP tools receive as headers)."""
        return {
            "call_sid": self.call_sid,
            "agent": self.agent,
            "from": self.from_number,
            "to": self.to_number,
        }
