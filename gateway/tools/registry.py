"""An agent's tools, resolved: what the model is told (`declarations`) and what runs (`Tool`).

`build_toolset` turns the YAML `ToolSpec`s into callables once, when the agent set is loaded,
so a missing module, function, secret or transfer target is a load error that names the tool
(index and field), never a surprise mid-call.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.live.models import ToolBehavior, ToolScheduling
from gateway.tools.builtin import builtin_declaration, builtin_invoker
from gateway.tools.http_tool import http_invoker
from gateway.tools.python_tool import (
    PythonToolError,
    ToolInvoker,
    load_python_function,
    python_invoker,
)
from gateway.tools.spec import HttpToolConfig, ToolSpec, TransferTarget

__all__ = [
    "EMPTY_PARAMETERS",
    "Tool",
    "ToolConfigError",
    "ToolSet",
    "ToolSetError",
    "build_toolset",
]

EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
BUILTIN_SCHEDULING: dict[str, ToolScheduling] = {
    "end_call": ToolScheduling.INTERRUPT,
    "transfer_call": ToolScheduling.INTERRUPT,
}
"""When a non-blocking call ending the call is answered: at once ("say goodbye now"), so the
goodbye is unambiguously the model's next turn and is not said twice (after a filler)."""


@dataclass(frozen=True)
class ToolConfigError:
    """One problem with one tool: `index` in the agent's `tools` list and the field at fault."""

    index: int
    field: str
    message: str

    @property
    def loc(self) -> tuple[str | int, ...]:
        fields = self.field.split(".") if self.field else []
        return ("tools", self.index, *fields)


class ToolSetError(ValueError):
    """Some tools of an agent cannot be built; `problems` says which and why."""

    def __init__(self, problems: Sequence[ToolConfigError]) -> None:
        super().__init__("; ".join(f"tools.{p.index}.{p.field}: {p.message}" for p in problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class Tool:
    """One callable tool: `invoke(args, context)` after `parameters` accepted the args."""

    name: str
    kind: str
    """python | http | builtin"""
    declaration: dict[str, Any]
    parameters: dict[str, Any]
    timeout_s: float
    invoke: ToolInvoker
    behavior: ToolBehavior | None = None
    """What the agent asked for; None: the model's default (`ModelProfile.tool_behavior`)."""
    scheduling: ToolScheduling | None = None
    """When a NON_BLOCKING call's answer is spoken; None: WHEN_IDLE."""
    context: Mapping[str, str] = field(default_factory=dict)
    """The spec's `context:` values, given to every call (`ToolContext.values`)."""
    http: HttpToolConfig | None = None
    """An http tool's URL and headers (what `with_text` fills)."""
    bind_http: Callable[[HttpToolConfig], ToolInvoker] | None = field(
        default=None, repr=False, compare=False
    )
    """A new invoker for other URL/headers, keeping the tool's signing secret (never shown)."""

    def with_text(self, text: Callable[[str], str], url: Callable[[str], str]) -> Tool:
        """This tool with `text` applied to its context values and header values and `url`
        to its URL (placeholders filled per call); the python function is not imported
        again."""
        changes: dict[str, Any] = {}
        if self.context:
            changes["context"] = {key: text(value) for key, value in self.context.items()}
        if self.http is not None and self.bind_http is not None:
            http = self.http.model_copy(
                update={
                    "url": url(self.http.url),
                    "headers": {k: text(v) for k, v in self.http.headers.items()},
                }
            )
            if http != self.http:
                changes["http"] = http
                changes["invoke"] = self.bind_http(http)
        return dataclasses.replace(self, **changes) if changes else self


@dataclass(frozen=True)
class ToolSet:
    """The tools of one agent, by name."""

    tools: Mapping[str, Tool] = field(default_factory=dict)

    def get(self, name: str) -> Tool | None:
        return self.tools.get(name)

    def __len__(self) -> int:
        return len(self.tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self.tools.values())

    def with_text(self, text: Callable[[str], str], url: Callable[[str], str]) -> ToolSet:
        """Every tool's `with_text` (see `Tool.with_text`): a new set, this one unchanged."""
        return ToolSet({name: tool.with_text(text, url) for name, tool in self.tools.items()})

    @property
    def declarations(self) -> tuple[dict[str, Any], ...]:
        """Live `functionDeclarations`, in the order the agent lists its tools."""
        return tuple(tool.declaration for tool in self.tools.values())


def build_toolset(
    specs: Sequence[ToolSpec],
    *,
    agent_dir: Path,
    transfer: Mapping[str, TransferTarget],
    environ: Mapping[str, str] | None = None,
) -> ToolSet:
    """Resolve every spec (imports python modules); raise `ToolSetError` listing all problems."""
    env = os.environ if environ is None else environ
    tools: dict[str, Tool] = {}
    problems: list[ToolConfigError] = []
    for index, spec in enumerate(specs):
        name = spec.tool_name
        if name in tools:
            field_name = "name" if spec.name else "builtin"
            problems.append(ToolConfigError(index, field_name, f"tool {name!r} is defined twice"))
            continue
        try:
            tool = _build(spec, agent_dir, transfer, env)
        except _Problem as problem:
            problems.append(ToolConfigError(index, problem.field, problem.message))
            continue
        tools[name] = tool
    if problems:
        raise ToolSetError(problems)
    return ToolSet(tools)


def _http_binder(name: str, secret: str | None) -> Callable[[HttpToolConfig], ToolInvoker]:
    def bind(config: HttpToolConfig) -> ToolInvoker:
        return http_invoker(name, config, secret)

    return bind


class _Problem(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _build(
    spec: ToolSpec, agent_dir: Path, transfer: Mapping[str, TransferTarget], env: Mapping[str, str]
) -> Tool:
    name = spec.tool_name
    if spec.builtin is not None:
        if spec.builtin == "transfer_call":
            if not transfer:
                raise _Problem("builtin", "transfer_call needs at least one `transfer` target")
            if spec.target is not None and spec.target not in transfer:
                known = ", ".join(sorted(transfer))
                raise _Problem("target", f"{spec.target!r} is not a transfer target ({known})")
        builtin = builtin_declaration(
            spec.builtin, name, spec.description, targets=transfer, fixed_target=spec.target
        )
        return Tool(
            name=name,
            kind="builtin",
            declaration=builtin,
            parameters=builtin["parameters"],
            timeout_s=spec.timeout_s,
            invoke=builtin_invoker(spec.builtin, fixed_target=spec.target),
            behavior=spec.behavior,
            scheduling=spec.scheduling or BUILTIN_SCHEDULING.get(spec.builtin),
        )
    parameters = spec.parameters or EMPTY_PARAMETERS
    declaration: dict[str, Any] = {"name": name, "description": spec.description or ""}
    if spec.parameters is not None:
        declaration["parameters"] = spec.parameters
    invoke: ToolInvoker
    if spec.python is not None:
        names = tuple(parameters.get("properties", {}))
        try:
            function = load_python_function(agent_dir, spec.python, names)
        except PythonToolError as exc:
            raise _Problem("python", str(exc)) from None
        invoke = python_invoker(function)
    else:
        assert spec.http is not None
        secret = None
        if spec.http.hmac_secret_env is not None:
            secret = env.get(spec.http.hmac_secret_env)
            if not secret:
                raise _Problem(
                    "http.hmac_secret_env",
                    f"environment variable {spec.http.hmac_secret_env} is not set",
                )
        invoke = http_invoker(name, spec.http, secret)
    return Tool(
        name=name,
        kind=spec.kind,
        declaration=declaration,
        parameters=parameters,
        timeout_s=spec.timeout_s,
        invoke=invoke,
        behavior=spec.behavior,
        scheduling=spec.scheduling,
        context=dict(spec.context),
        http=spec.http,
        bind_http=_http_binder(name, secret) if spec.http is not None else None,
    )
