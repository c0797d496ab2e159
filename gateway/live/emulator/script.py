"""What the Live emulator says, turn by turn: a small validated YAML script.

```yaml
greeting: "Thanks for calling Acme."        # optional; overrides the greeting text
turns:                                       # applied in order to caller turns
  - say: "Let me look that up."              # optional speech before a tool call
    tool_call: {name: lookup_order, args: {order_id: A1001}}
    after_tool: "Your order A1001 has shipped."   # may use {response} = JSON of the response
  - say: "Anything else?"
on_words:                                    # optional: heard words trigger a turn (needs the
  - when_heard: [order, "{id}"]              #   emulator-asr extra: pocketsphinx)
    say: "Let me look that up."
    tool_call: {name: lookup_order, args: {order_id: "{id}"}}
    after_tool: "Your order {id} is {response}."
```
Caller turns beyond the script get the emulator's default reply. How a `tool_call` plays out
depends on the function's behaviour on the impersonated model (its `behavior` in the setup,
else the model's default): BLOCKING — `say`, the call, then `after_tool` once the response is
in, all one turn; NON_BLOCKING — the call, then `say` (or a default filler) ends the turn, and
`after_tool` is a later turn, spoken as the response's `scheduling` says.

`on_words` triggers are matched against what a keyword recogniser hears in each caller
utterance (gateway.live.emulator.hearing), before `turns`: a trigger's `when_heard` is a word
sequence found anywhere in the utterance, where a `{name}` slot takes spoken letters then
digits ("b two three four" -> "B234") and is substituted into `say`, the call's string args and
`after_tool`. A matched trigger answers that utterance and does not use up a scripted turn.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "EmulatorScript",
    "EmulatorScriptError",
    "ScriptToolCall",
    "ScriptTurn",
    "WordTrigger",
]

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_SLOT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class EmulatorScriptError(ValueError):
    """The script is not valid YAML or not a valid script; the message names where."""


class ScriptToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class ScriptTurn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    say: str | None = None
    tool_call: ScriptToolCall | None = None
    after_tool: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.say is None and self.tool_call is None:
            raise ValueError("a turn needs `say`, `tool_call` or both")
        if self.after_tool is not None and self.tool_call is None:
            raise ValueError("`after_tool` needs a `tool_call`")
        return self


class WordTrigger(ScriptTurn):
    """A turn spoken when the caller is heard saying `when_heard` (words and `{slot}`s)."""

    when_heard: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_words(self) -> Self:
        for item in self.when_heard:
            slot = _SLOT.fullmatch(item)
            if slot is None and not _WORD.fullmatch(item):
                raise ValueError(
                    f"`when_heard` items are lowercase words or {{slot}}s, got {item!r}"
                )
        if not self.words:
            raise ValueError("`when_heard` needs at least one word besides slots")
        return self

    @property
    def words(self) -> tuple[str, ...]:
        """The literal words to listen for."""
        return tuple(item for item in self.when_heard if _SLOT.fullmatch(item) is None)

    def slot_of(self, item: str) -> str | None:
        match = _SLOT.fullmatch(item)
        return match.group(1) if match else None


class EmulatorScript(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    greeting: str | None = None
    turns: tuple[ScriptTurn, ...] = ()
    on_words: tuple[WordTrigger, ...] = ()

    @classmethod
    def from_yaml(cls, source: str | Path) -> EmulatorScript:
        """Load from a file path (str or Path) or from YAML text."""
        name = "<script>"
        text: str
        if isinstance(source, Path):
            name, text = str(source), _read(source)
        elif "\n" not in source and _is_file(source):
            name, text = source, _read(Path(source))
        else:
            text = source
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise EmulatorScriptError(f"{name}: invalid YAML: {exc}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise EmulatorScriptError(f"{name}: expected a mapping with `turns`, got {data!r}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: "
                f"{err['msg'].removeprefix('Value error, ')}"
                for err in exc.errors()
            )
            raise EmulatorScriptError(f"{name}: {problems}") from None


def _is_file(candidate: str) -> bool:
    try:
        return Path(candidate).is_file()
    except (OSError, ValueError):
        return False


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EmulatorScriptError(f"{path}: cannot read: {exc}") from None
