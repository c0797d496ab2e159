"""Agents: one YAML file per phone line's agent, validated into `AgentConfig`, routed by line.

Config is data: a business edits YAML, never code. Validation errors name the file and the
field so the person editing it can fix it without reading Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_AGENT_NAME = "default"
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
AGENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class AgentConfigError(ValueError):
    """An agent file is broken; the message names the file, the field and what was expected."""


class AgentConfig(BaseModel):
    """One agent: what the model is told, how it sounds, which lines it answers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    lines: tuple[str, ...] = ()
    model: str | None = None
    voice: str | None = None
    language: str | None = None
    system_instruction: str | None = None
    system_instruction_file: str | None = None
    greeting: str | None = None
    source_path: Path | None = Field(default=None, exclude=True)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not AGENT_NAME.match(value):
            raise ValueError("must be lower-case letters, digits, '-' or '_'")
        return value

    @field_validator("lines")
    @classmethod
    def _check_lines(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for number in value:
            if not E164.match(number):
                raise ValueError(f"{number!r} is not an E.164 number like +15551230000")
        return value

    @property
    def instructions(self) -> str | None:
        """The system instruction text, inline or from `system_instruction_file`."""
        if self.system_instruction is not None:
            return self.system_instruction
        if self.system_instruction_file and self.source_path is not None:
            path = self.source_path.parent / self.system_instruction_file
            return path.read_text(encoding="utf-8")
        return None


def _yaml_line_of(text: str, key: str) -> int | None:
    """Best-effort 1-based line of a top-level key, for error messages."""
    pattern = re.compile(rf"^{re.escape(key)}\s*:", re.MULTILINE)
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def load_agent_file(path: Path) -> AgentConfig:
    """Parse and validate one agent YAML file, or raise `AgentConfigError` naming what is wrong."""
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
    data.setdefault("name", path.stem)
    try:
        agent = AgentConfig.model_validate({**data, "source_path": path})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = ".".join(str(part) for part in error["loc"])
            top = str(error["loc"][0]) if error["loc"] else ""
            line = _yaml_line_of(text, top) if top else None
            where = f"{path}:{line}" if line else str(path)
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown field"
            problems.append(f"{where}: {loc}: {message}")
        raise AgentConfigError("\n".join(problems)) from None
    if agent.system_instruction and agent.system_instruction_file:
        raise AgentConfigError(
            f"{path}: set only one of system_instruction and system_instruction_file"
        )
    if agent.system_instruction_file:
        target = path.parent / agent.system_instruction_file
        if not target.is_file():
            raise AgentConfigError(
                f"{path}: system_instruction_file: {target} does not exist"
            )
    return agent


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

    @property
    def default(self) -> AgentConfig:
        if DEFAULT_AGENT_NAME in self.agents:
            return self.agents[DEFAULT_AGENT_NAME]
        return next(iter(self.agents.values()))

    @classmethod
    def from_agents(cls, agents: Iterable[AgentConfig]) -> AgentSet:
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
        if errors:
            raise AgentConfigError("\n".join(errors))
        if not by_name:
            raise AgentConfigError("no agents defined")
        return cls(agents=by_name, by_line=by_line)


def load_agents(directory: Path) -> AgentSet:
    """Load every `*.yaml`/`*.yml` in `directory`; all errors are reported together."""
    if not directory.is_dir():
        raise AgentConfigError(f"{directory}: agents directory does not exist")
    agents: list[AgentConfig] = []
    errors: list[str] = []
    paths = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    for path in paths:
        try:
            agents.append(load_agent_file(path))
        except AgentConfigError as exc:
            errors.append(str(exc))
    if errors:
        raise AgentConfigError("\n".join(errors))
    if not agents:
        raise AgentConfigError(f"{directory}: no agent files (*.yaml) found")
    return AgentSet.from_agents(agents)


def agent_summary(agent: AgentConfig) -> dict[str, Any]:
    """A loggable description of an agent (no instructions, which may be long)."""
    return {"agent": agent.name, "lines": list(agent.lines), "voice": agent.voice}
