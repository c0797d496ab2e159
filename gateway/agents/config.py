"""Agents: one YAML file per phone line's agent, validated into `AgentConfig`, routed by line.

Config is data: a business edits YAML, never code. Validation errors name the file, the line
and the field so the person editing it can fix it without reading Python. Every field is
documented in `agents/README.md`.

An agent is `AGENTS_DIR/<name>.yaml`, or `AGENTS_DIR/<name>/agent.yaml` when it brings its own
files (prompt, python tools, seed data); relative paths in the YAML are relative to its folder.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import typing
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.live.models import (
    DEFAULT_MODEL,
    THINKING_LEVELS,
    SetupFeatures,
    ToolBehavior,
    profile_for,
    refusals,
)
from gateway.live.protocol import PREBUILT_VOICES
from gateway.outbound.variables import (
    MissingVariables,
    check_variables,
    fill,
    malformed_placeholders,
    placeholders,
)
from gateway.tools.registry import ToolSet, ToolSetError, build_toolset
from gateway.tools.spec import E164, ToolSpec, TransferTarget, WebhookConfig

DEFAULT_AGENT_NAME = "default"
MAX_VOCABULARY = 500
AGENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
AGENT_FOLDER_FILES = ("agent.yaml", "agent.yml")
"""An agent with its own folder: `AGENTS_DIR/<name>/agent.yaml`."""
_VOICES = {voice.lower(): voice for voice in PREBUILT_VOICES}

DEFAULT_IDLE_REMINDER = (
    "The caller has said nothing for a while. Briefly ask whether they are still there."
)
DEFAULT_IDLE_GOODBYE = (
    "The caller is still silent. Say a short, polite goodbye; the call ends after that."
)

CallKind = Literal["inbound", "outbound"]
_BOTH: Final[frozenset[CallKind]] = frozenset({"inbound", "outbound"})
_INBOUND: Final[frozenset[CallKind]] = frozenset({"inbound"})
_OUTBOUND: Final[frozenset[CallKind]] = frozenset({"outbound"})
_NEITHER: Final[frozenset[CallKind]] = frozenset()

__all__ = [
    "AGENT_FOLDER_FILES",
    "DEFAULT_AGENT_NAME",
    "E164",
    "AgentConfig",
    "AgentConfigError",
    "AgentSet",
    "TranscriptionSettings",
    "VadSettings",
    "agent_files",
    "agent_summary",
    "load_agent_file",
    "load_agents",
]


class AgentConfigError(ValueError):
    """An agent file is broken; the message names the file, the field and what was expected."""


class VadSettings(BaseModel):
    """Live's voice activity detection: how eagerly it decides the caller started / stopped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_sensitivity: Literal["high", "low"] | None = None
    end_sensitivity: Literal["high", "low"] | None = None
    prefix_padding_ms: int | None = Field(default=None, ge=0, le=10_000)
    silence_duration_ms: int | None = Field(default=None, ge=0, le=10_000)


class TranscriptionSettings(BaseModel):
    """Whether Live transcribes the caller (`input`) and the agent (`output`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: bool = True
    output: bool = True


class AgentConfig(BaseModel):
    """One agent: what the model is told, how it sounds, which lines it answers, its tools."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    lines: tuple[str, ...] = ()
    carriers: tuple[str, ...] = ()
    """Carriers whose calls this agent answers (`twilio`, `telnyx`, …); empty: every one."""
    model: str | None = Field(default=None, min_length=1)
    """Live model id; unset: LIVE_MODEL (default gemini-3.8-live)."""
    thinking: int | str | None = None
    """A thinking level (minimal, low, medium, high) or a thinking budget in tokens (0 off,
    -1 dynamic), whichever the model takes."""
    proactive_audio: bool | None = None
    """The model may stay silent when it is not addressed (and speak up unprompted)."""
    affective_dialog: bool | None = None
    """The model adapts its tone to the caller's (2.5 native audio only)."""
    vocabulary: tuple[str, ...] = ()
    """Words and names the caller's speech transcription should recognise (product names…)."""
    voice: str | None = None
    language: str | None = None
    system_instruction: str | None = None
    system_instruction_file: str | None = None
    greeting: str | None = None
    outbound_greeting: str | None = None
    """An outbound call's first words, instead of `greeting` (unset: `greeting`)."""
    outbound_instructions: str | None = None
    """What the model is told on an outbound call, instead of the system instruction."""
    voicemail_message: str | None = None
    """voicemail: leave_message — what the agent says after the beep, then it hangs up."""
    voicemail: Literal["hang_up", "leave_message"] = "hang_up"
    """An outbound call that reaches an answering machine: hang up, or leave a message.
    (Declared after voicemail_message: its check reads that field.)"""
    vad: VadSettings = VadSettings()
    max_call_duration_s: float | None = Field(default=None, gt=0)
    idle_timeout_s: float | None = Field(default=None, gt=0)
    idle_reminder: str = Field(default=DEFAULT_IDLE_REMINDER, min_length=1)
    idle_goodbye: str = Field(default=DEFAULT_IDLE_GOODBYE, min_length=1)
    end_call_phrases: tuple[str, ...] = ()
    transcription: TranscriptionSettings = TranscriptionSettings()
    tools: tuple[ToolSpec, ...] = ()
    transfer: dict[str, TransferTarget] = Field(default_factory=dict)
    recording: bool = True
    """Record this agent's calls (RECORD_CALLS=agent, the default, obeys it)."""
    post_call_webhook: WebhookConfig | None = None
    source_path: Path | None = Field(default=None, exclude=True)

    _toolset: ToolSet | None = PrivateAttr(default=None)
    _instruction_text: str | None = PrivateAttr(default=None)
    """`system_instruction_file`'s text, read once when the agent loads (never mid-call)."""

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not AGENT_NAME.match(value):
            raise ValueError("must be lower-case letters, digits, '-' or '_'")
        return value

    @field_validator("lines")
    @classmethod
    def _check_lines(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for number in value:
            if not E164.match(number):
                raise ValueError(f"{number!r} is not an E.164 number like +15551230000")
            if number in seen:
                raise ValueError(f"{number} is listed twice")
            seen.add(number)
        return value

    @field_validator("carriers")
    @classmethod
    def _check_carriers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not _CARRIER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a carrier name (lower case, like twilio)")
        if len(set(value)) != len(value):
            raise ValueError("a carrier is listed twice")
        return value

    def answers_on(self, carrier: str) -> bool:
        """Whether calls from `carrier` may reach this agent."""
        return not self.carriers or carrier in self.carriers

    @field_validator("voice")
    @classmethod
    def _check_voice(cls, value: str | None) -> str | None:
        if value is None:
            return None
        voice = _VOICES.get(value.lower())
        if voice is None:
            raise ValueError(f"unknown voice {value!r}; one of: {', '.join(PREBUILT_VOICES)}")
        return voice

    @field_validator("language")
    @classmethod
    def _check_language(cls, value: str | None) -> str | None:
        if value is not None and not LANGUAGE.match(value):
            raise ValueError(f"{value!r} is not a BCP-47 language code like en-US")
        return value

    @field_validator("thinking", mode="before")
    @classmethod
    def _check_thinking(cls, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            if isinstance(value, bool):
                raise ValueError("use a thinking level (e.g. low) or a budget in tokens")
            return value
        if isinstance(value, int):
            if value < -1:
                raise ValueError("a thinking budget is a token count >= 0, or -1 for dynamic")
            return value
        if isinstance(value, str):
            level = value.strip().lower()
            if level not in THINKING_LEVELS:
                raise ValueError(
                    f"{value!r} is not a thinking level ({', '.join(THINKING_LEVELS)}) "
                    "or a budget in tokens"
                )
            return level
        raise ValueError("use a thinking level (e.g. low) or a budget in tokens")

    @field_validator("vocabulary")
    @classmethod
    def _check_vocabulary(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not word.strip() for word in value):
            raise ValueError("entries must not be empty")
        if len(value) > MAX_VOCABULARY:
            raise ValueError(f"at most {MAX_VOCABULARY} entries")
        return tuple(word.strip() for word in value)

    @field_validator("end_call_phrases")
    @classmethod
    def _check_phrases(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not phrase.strip() for phrase in value):
            raise ValueError("phrases must not be empty")
        return value

    @field_validator("transfer")
    @classmethod
    def _check_transfer_names(cls, value: dict[str, TransferTarget]) -> dict[str, TransferTarget]:
        for key in value:
            if not AGENT_NAME.match(key):
                raise ValueError(f"target name {key!r}: use lower-case letters, digits, '-' or '_'")
        return value

    @field_validator("outbound_greeting", "outbound_instructions", "voicemail_message")
    @classmethod
    def _check_outbound_text(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty (leave the field out instead)")
        return value

    @field_validator("voicemail")
    @classmethod
    def _check_voicemail(cls, value: str, info: ValidationInfo) -> str:
        # voicemail_message is absent from info.data when it failed its own validation:
        # that error is reported already.
        if value == "leave_message" and info.data.get("voicemail_message", "") is None:
            raise ValueError(
                "leave_message needs voicemail_message (what the agent says after the beep)"
            )
        return value

    @model_validator(mode="after")
    def _check_instruction_source(self) -> Self:
        if self.system_instruction and self.system_instruction_file:
            raise ValueError("set only one of system_instruction and system_instruction_file")
        return self

    def __hash__(self) -> int:
        # Field-wise hashing would fail on the mappings (transfer, tool schemas); equal agents
        # have equal names and sources, so this stays consistent with ==.
        return hash((self.name, self.source_path))

    def model_id(self, default_model: str) -> str:
        """The Live model this agent talks to."""
        return self.model or default_model

    @property
    def thinking_level(self) -> str | None:
        return self.thinking if isinstance(self.thinking, str) else None

    @property
    def thinking_budget(self) -> int | None:
        return self.thinking if isinstance(self.thinking, int) else None

    @property
    def tool_behaviors(self) -> tuple[tuple[str, ToolBehavior], ...]:
        """(tool name, behaviour) for the tools that ask for one."""
        return tuple(
            (spec.tool_name, spec.behavior) for spec in self.tools if spec.behavior is not None
        )

    def model_problems(self, default_model: str) -> list[tuple[tuple[str | int, ...], str]]:
        """What this agent asks of its model that the model refuses: (field path, message)."""
        model = self.model_id(default_model)
        profile = profile_for(model)
        features = SetupFeatures(
            thinking_level=self.thinking_level,
            thinking_budget=self.thinking_budget,
            proactive_audio=self.proactive_audio,
            affective_dialog=self.affective_dialog,
            vocabulary=bool(self.vocabulary),
        )
        problems: list[tuple[tuple[str | int, ...], str]] = [
            ((refusal.field,), refusal.message)
            for refusal in refusals(profile, features, model=model)
        ]
        if self.vocabulary and not self.transcription.input:
            problems.append((("vocabulary",), "needs transcription.input (it biases it)"))
        for index, spec in enumerate(self.tools):
            loc: tuple[str | int, ...] = ("tools", index)
            tool = SetupFeatures(
                tool_behaviors=(spec.behavior,) if spec.behavior is not None else (),
                scheduling=spec.scheduling is not None,
            )
            found = refusals(profile, tool, model=model)
            problems.extend(((*loc, r.field), r.message) for r in found)
            if found or spec.scheduling is None:
                continue
            if profile.tool_behavior(spec.behavior) is ToolBehavior.BLOCKING:
                problems.append(
                    (
                        (*loc, "scheduling"),
                        f"only non_blocking tools have a scheduling; {spec.tool_name} is "
                        f"blocking on {model}",
                    )
                )
        return problems

    @property
    def agent_dir(self) -> Path:
        """The folder relative paths (prompt file, python tools) are resolved against."""
        return self.source_path.parent if self.source_path is not None else Path(".")

    @property
    def instructions(self) -> str | None:
        """The system instruction text, inline or from `system_instruction_file`."""
        if self.system_instruction is not None:
            return self.system_instruction
        if self._instruction_text is not None:
            return self._instruction_text
        if self.system_instruction_file:
            path = self.agent_dir / self.system_instruction_file
            self._instruction_text = path.read_text(encoding="utf-8")
            return self._instruction_text
        return None

    @property
    def toolset(self) -> ToolSet:
        """The agent's tools, resolved (python modules imported) once and cached."""
        if self._toolset is None:
            try:
                self._toolset = build_toolset(
                    self.tools, agent_dir=self.agent_dir, transfer=self.transfer
                )
            except ToolSetError as exc:
                where = str(self.source_path) if self.source_path else self.name
                raise AgentConfigError(
                    "\n".join(f"{where}: {_dotted(p.loc)}: {p.message}" for p in exc.problems)
                ) from None
        return self._toolset

    @property
    def answers_inbound(self) -> bool:
        """Whether inbound calls (which bring no variables) are routed here by default: the
        agent has `lines` or is the `default` agent."""
        return bool(self.lines) or self.name == DEFAULT_AGENT_NAME

    def _texts(self) -> Iterator[tuple[tuple[str | int, ...], str, frozenset[CallKind]]]:
        """(field path, text, the calls that use it) of every text that may hold `{{name}}`."""
        if self.system_instruction is not None or self.system_instruction_file:
            where = (
                "system_instruction"
                if self.system_instruction is not None
                else "system_instruction_file"
            )
            try:
                text = self.instructions or ""
            except (OSError, UnicodeDecodeError):
                text = ""  # an unreadable file: reported as such by load_agent_file
            yield (where,), text, _INBOUND if self.outbound_instructions else _BOTH
        if self.outbound_instructions is not None:
            yield ("outbound_instructions",), self.outbound_instructions, _OUTBOUND
        if self.greeting is not None:
            yield ("greeting",), self.greeting, _INBOUND if self.outbound_greeting else _BOTH
        if self.outbound_greeting is not None:
            yield ("outbound_greeting",), self.outbound_greeting, _OUTBOUND
        if self.voicemail_message is not None:
            uses = _OUTBOUND if self.voicemail == "leave_message" else _NEITHER
            yield ("voicemail_message",), self.voicemail_message, uses
        yield ("idle_reminder",), self.idle_reminder, _BOTH
        yield ("idle_goodbye",), self.idle_goodbye, _BOTH
        for index, phrase in enumerate(self.end_call_phrases):
            yield ("end_call_phrases", index), phrase, _BOTH
        for index, spec in enumerate(self.tools):
            for key, value in spec.context.items():
                yield ("tools", index, "context", key), value, _BOTH
            if spec.http is not None:
                yield ("tools", index, "http", "url"), spec.http.url, _BOTH
                for key, value in spec.http.headers.items():
                    yield ("tools", index, "http", "headers", key), value, _BOTH

    def required_variables(self, *, outbound: bool | None = None) -> set[str]:
        """The call variables (`{{name}}`) this agent's text uses.

        None: every placeholder anywhere (instructions and their file, greetings, the
        voicemail message, idle prompts, end phrases, tool context, http tool URL/headers);
        True: what an outbound call needs — all it may use, the voicemail message included
        when `voicemail: leave_message` (whether a machine answers is known only later);
        False: what an inbound call needs.
        """
        kinds = _BOTH if outbound is None else _OUTBOUND if outbound else _INBOUND
        return {
            name
            for _, text, uses in self._texts()
            if outbound is None or uses & kinds
            for name in placeholders(text)
        }

    def missing_variables(
        self, variables: Mapping[str, str], *, outbound: bool = True
    ) -> list[str]:
        """The variables an outbound (or inbound) call of this agent needs and lacks, sorted:
        what the API checks before it places a call."""
        return sorted(self.required_variables(outbound=outbound) - variables.keys())

    def variable_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """(field path, message) for placeholders that cannot work: typos like
        `{{first name}}`, placeholders in text inbound calls use when this agent answers
        inbound calls (they bring no variables), and a voicemail message never used."""
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for loc, text, uses in self._texts():
            for bad in dict.fromkeys(malformed_placeholders(text)):
                message = f"{bad} is not a placeholder: write {{{{name}}}} (letters, digits, _)"
                problems.append((loc, message))
            names = placeholders(text)
            if names and "inbound" in uses and self.answers_inbound:
                listed = ", ".join(f"{{{{{name}}}}}" for name in sorted(names))
                why = f"answers {', '.join(self.lines)}" if self.lines else "is the default agent"
                problems.append(
                    (
                        loc,
                        f"uses {listed}, but inbound calls bring no variables and this agent "
                        f"{why}: put it in the outbound_* fields, or fill it in",
                    )
                )
        if self.voicemail_message is not None and self.voicemail != "leave_message":
            message = "is only used with voicemail: leave_message"
            problems.append((("voicemail_message",), message))
        return problems

    def for_call_variables(
        self, variables: Mapping[str, str], *, outbound: bool, voicemail: bool = False
    ) -> AgentConfig:
        """A copy of this agent for one call, its placeholders filled from `variables`.

        The loaded agent is shared by every call, so it is never changed. For an outbound call
        `outbound_instructions` / `outbound_greeting` (when set) become the copy's system
        instruction and greeting; with `voicemail` (a machine answered) the greeting is the
        `voicemail_message`, which the bridge must end the call after. The copy's `instructions`
        and `greeting` are what to use; its outbound_* fields are cleared (applied). Its tools
        are this agent's, with context and http URL/headers filled (URL values URL-encoded);
        python modules are not imported again. Raises `MissingVariables` naming every
        variable the call needs and lacks, `InvalidVariables` for bad ones (both ValueError).
        """
        if voicemail and not outbound:
            raise ValueError("voicemail is for outbound calls")
        if voicemail and self.voicemail != "leave_message":
            raise ValueError(f"agent {self.name!r} hangs up on voicemail (voicemail: hang_up)")
        values = check_variables(variables)
        missing = self.required_variables(outbound=outbound) - values.keys()
        if missing:
            raise MissingVariables(missing)
        text = functools.partial(fill, variables=values)
        url = functools.partial(fill, variables=values, quote=_quote_url_value)

        instructions = self.instructions
        greeting = self.greeting
        if outbound:
            instructions = self.outbound_instructions or instructions
            greeting = self.outbound_greeting or greeting
        if voicemail:
            greeting = self.voicemail_message
        tools = tuple(_filled_spec(spec, text, url) for spec in self.tools)
        copy = self.model_copy(
            update={
                "system_instruction": text(instructions) if instructions is not None else None,
                "system_instruction_file": None,
                "greeting": text(greeting) if greeting is not None else None,
                "outbound_instructions": None,
                "outbound_greeting": None,
                "voicemail_message": (
                    text(self.voicemail_message)
                    if outbound and self.voicemail == "leave_message" and self.voicemail_message
                    else self.voicemail_message
                ),
                "idle_reminder": text(self.idle_reminder),
                "idle_goodbye": text(self.idle_goodbye),
                "end_call_phrases": tuple(text(p) for p in self.end_call_phrases),
                "tools": tools,
            }
        )
        copy._instruction_text = None
        copy._toolset = self.toolset.with_text(text, url)
        return copy


def _quote_url_value(value: str) -> str:
    """A variable's value inside a URL path or query: every reserved character encoded, so a
    value (`a/../b`, `x?y=1`) can never change where the request goes."""
    return urllib.parse.quote(value, safe="")


def _filled_spec(spec: ToolSpec, text: Callable[[str], str], url: Callable[[str], str]) -> ToolSpec:
    """`spec` with its context and http URL/headers filled (the same spec if it has none)."""
    update: dict[str, Any] = {}
    if spec.context:
        update["context"] = {key: text(value) for key, value in spec.context.items()}
    if spec.http is not None:
        update["http"] = spec.http.model_copy(
            update={
                "url": url(spec.http.url),
                "headers": {key: text(value) for key, value in spec.http.headers.items()},
            }
        )
    return spec.model_copy(update=update) if update else spec


def _did_you_mean(loc: tuple[str | int, ...]) -> str:
    """`; did you mean language?` for an unknown field at `loc` close to a real one there."""
    fields = _fields_at(loc[:-1])
    name = loc[-1] if loc else None
    if not isinstance(name, str) or not fields:
        return ""
    nearest = difflib.get_close_matches(name, sorted(fields), n=1, cutoff=0.7)
    return f"; did you mean {nearest[0]}?" if nearest else ""


def _fields_at(loc: tuple[str | int, ...]) -> set[str]:
    """The field names the agent schema allows at `loc` (list indexes skipped; every model
    of a union counts)."""
    models: list[type[BaseModel]] = [AgentConfig]
    for part in loc:
        if isinstance(part, int):
            continue
        found: list[type[BaseModel]] = []
        for model in models:
            info = model.model_fields.get(part)
            if info is not None:
                found.extend(_models_in(info.annotation))
        models = found
    return {name for model in models for name in model.model_fields}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


def _dotted(loc: Iterable[str | int]) -> str:
    return ".".join(str(part) for part in loc)


def _yaml_line_of(text: str, loc: tuple[str | int, ...]) -> int | None:
    """Best-effort 1-based line of the YAML node at `loc` (keys and list indexes)."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        node = None
    line: int | None = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _where(path: Path, text: str, loc: tuple[str | int, ...]) -> str:
    line = _yaml_line_of(text, loc) if loc else None
    return f"{path}:{line}" if line else str(path)


def load_agent_file(path: Path, *, default_model: str = DEFAULT_MODEL) -> AgentConfig:
    """Parse and validate one agent YAML file, or raise `AgentConfigError` naming what is wrong.

    Tools are resolved too (python modules imported, secrets looked up), so a missing
    implementation is an error here rather than mid-call. What the agent asks of its model
    (`model`, else `default_model`) is checked against that model's profile.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AgentConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise AgentConfigError(f"{path}{where}: invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise AgentConfigError(f"{path}: expected a mapping of agent fields at the top level")
    default_name = path.parent.name if path.name in AGENT_FOLDER_FILES else path.stem
    data.setdefault("name", default_name)
    # Every problem of the file in one run: field errors, the instruction file, tools' imports.
    problems: list[tuple[int, str]] = []

    def report(loc: tuple[str | int, ...], message: str) -> None:
        line = _yaml_line_of(text, loc) if loc else None
        where = f"{path}:{line}" if line else str(path)
        problems.append((line or 0, f"{where}: {_dotted(loc) or '(top)'}: {message}"))

    agent: AgentConfig | None = None
    try:
        agent = AgentConfig.model_validate({**data, "source_path": path})
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(part for part in error["loc"] if isinstance(part, str | int))
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown field" + _did_you_mean(loc)
            report(loc, message)
    instruction_file = (
        agent.system_instruction_file if agent else data.get("system_instruction_file")
    )
    instruction_text = _read_instruction_file(path.parent, instruction_file, report)
    toolset: ToolSet | None = None
    if agent is not None:
        for loc, message in agent.model_problems(default_model):
            report(loc, message)
        agent._instruction_text = instruction_text
        for loc, message in agent.variable_problems():
            report(loc, message)
        try:
            toolset = build_toolset(agent.tools, agent_dir=agent.agent_dir, transfer=agent.transfer)
        except ToolSetError as exc:
            for tool_problem in exc.problems:
                report(tool_problem.loc, tool_problem.message)
        hook = agent.post_call_webhook
        if hook is not None and hook.hmac_secret_env and not os.environ.get(hook.hmac_secret_env):
            report(
                ("post_call_webhook", "hmac_secret_env"),
                f"environment variable {hook.hmac_secret_env} is not set",
            )
    else:
        _check_tools_of_invalid_agent(data, path.parent, report)
    if problems or agent is None:
        raise AgentConfigError("\n".join(line for _, line in sorted(problems)))
    agent._instruction_text = instruction_text
    agent._toolset = toolset
    return agent


def _read_instruction_file(
    agent_dir: Path,
    name: object,
    problem: Callable[[tuple[str | int, ...], str], None],
) -> str | None:
    """The text of `system_instruction_file` (None when unset or unreadable: a problem)."""
    if not isinstance(name, str) or not name:
        return None
    target = agent_dir / name
    if not target.is_file():
        problem(("system_instruction_file",), f"{target} does not exist")
        return None
    try:
        return target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem(("system_instruction_file",), f"cannot read {target}: {exc}")
        return None


def _check_tools_of_invalid_agent(
    data: Mapping[str, Any],
    agent_dir: Path,
    problem: Callable[[tuple[str | int, ...], str], None],
) -> None:
    """Resolve the tools that are valid on their own when other fields of the agent are not,
    so a missing python module shows in the same run as a misspelt field."""
    specs = data.get("tools")
    if not isinstance(specs, list):
        return
    try:
        transfer = _TRANSFER_TARGETS.validate_python(data.get("transfer") or {})
    except ValidationError:
        transfer = {}
    for index, raw in enumerate(specs):
        try:
            spec = ToolSpec.model_validate(raw)
        except ValidationError:
            continue  # already reported by the agent's own validation
        try:
            build_toolset([spec], agent_dir=agent_dir, transfer=transfer)
        except ToolSetError as exc:
            for tool_problem in exc.problems:
                problem(("tools", index, *tool_problem.loc[2:]), tool_problem.message)


_TRANSFER_TARGETS: TypeAdapter[dict[str, TransferTarget]] = TypeAdapter(dict[str, TransferTarget])


_CARRIER_NAME: Final = re.compile(r"[a-z][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class AgentSet:
    """All agents of a gateway, and which one answers which called number."""

    agents: Mapping[str, AgentConfig]
    by_line: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str) -> AgentConfig | None:
        return self.agents.get(name)

    def for_call(self, agent_name: str | None, to_number: str | None) -> AgentConfig:
        """The `agent` stream parameter wins, then the called line, then the default agent."""
        if agent_name and agent_name in self.agents:
            return self.agents[agent_name]
        if to_number and to_number in self.by_line:
            return self.agents[self.by_line[to_number]]
        return self.default

    def for_carrier(self, carrier: str) -> AgentSet | None:
        """The agents that answer calls from `carrier` (all of them unless some are restricted
        with `carriers`); None when none does. Lines match the called number on any carrier."""
        if all(agent.answers_on(carrier) for agent in self.agents.values()):
            return self
        agents = {n: a for n, a in self.agents.items() if a.answers_on(carrier)}
        if not agents:
            return None
        by_line = {line: name for line, name in self.by_line.items() if name in agents}
        return AgentSet(agents=agents, by_line=by_line)

    @property
    def default(self) -> AgentConfig:
        if DEFAULT_AGENT_NAME in self.agents:
            return self.agents[DEFAULT_AGENT_NAME]
        return next(iter(self.agents.values()))

    @classmethod
    def from_agents(cls, agents: Iterable[AgentConfig]) -> AgentSet:
        """Index agents by name and line; duplicates and unresolvable tools are errors."""
        by_name: dict[str, AgentConfig] = {}
        by_line: dict[str, str] = {}
        errors: list[str] = []
        for agent in agents:
            where = str(agent.source_path) if agent.source_path else agent.name
            if agent.name in by_name:
                errors.append(f"{where}: name: agent {agent.name!r} is defined twice")
                continue
            by_name[agent.name] = agent
            for number in agent.lines:
                if number in by_line:
                    errors.append(
                        f"{where}: lines: {number} is already answered by agent "
                        f"{by_line[number]!r}"
                    )
                by_line[number] = agent.name
            try:
                agent.toolset  # noqa: B018 - resolves (and caches) the tools, or raises
            except AgentConfigError as exc:
                errors.append(str(exc))
        if errors:
            raise AgentConfigError("\n".join(errors))
        if not by_name:
            raise AgentConfigError("no agents defined")
        return cls(agents=by_name, by_line=by_line)


def agent_files(directory: Path) -> list[Path]:
    """`*.yaml`/`*.yml` in `directory`, then `*/agent.yaml` (agents with their own folder)."""
    top = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    folders = sorted(
        path
        for name in AGENT_FOLDER_FILES
        for path in directory.glob(f"*/{name}")
        if not path.parent.name.startswith(".")
    )
    return [*top, *folders]


def load_agents(directory: Path, *, default_model: str = DEFAULT_MODEL) -> AgentSet:
    """Load every agent file in `directory`; all errors are reported together.

    `default_model` is the model of agents that name none (the LIVE_MODEL setting).
    """
    if not directory.is_dir():
        raise AgentConfigError(f"{directory}: agents directory does not exist")
    agents: list[AgentConfig] = []
    errors: list[str] = []
    for path in agent_files(directory):
        try:
            agents.append(load_agent_file(path, default_model=default_model))
        except AgentConfigError as exc:
            errors.append(str(exc))
    if errors:
        raise AgentConfigError("\n".join(errors))
    if not agents:
        raise AgentConfigError(f"{directory}: no agent files (*.yaml) found")
    return AgentSet.from_agents(agents)


def agent_summary(agent: AgentConfig) -> dict[str, Any]:
    """A loggable description of an agent (no instructions, which may be long)."""
    return {
        "agent": agent.name,
        "lines": list(agent.lines),
        "voice": agent.voice,
        "model": agent.model,
        "tools": [spec.tool_name for spec in agent.tools],
    }
