"""What an agent's YAML says about tools, transfer targets and webhooks (validated, no behaviour).

These pydantic models are fields of `gateway.agents.config.AgentConfig`; `gateway.tools.registry`
turns them into callable tools. Field-level mistakes are caught here so that `gateway agents
check` names the file, the line and the field.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.live.models import ToolBehavior, ToolScheduling
from gateway.tools.schema import SchemaError, check_parameters_schema

__all__ = [
    "BUILTIN_TOOLS",
    "E164",
    "TOOL_NAME",
    "BuiltinName",
    "HttpToolConfig",
    "ToolSpec",
    "TransferTarget",
    "WebhookConfig",
]

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
"""Live function names: letters, digits, '_' or '-', at most 64, not starting with a digit."""
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
PYTHON_REF = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CONTEXT_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_CONTEXT_ENTRIES = 32
MAX_CONTEXT_VALUE_CHARS = 2000
_BRACED = re.compile(r"\{\{")

BuiltinName = Literal["end_call", "transfer_call", "send_dtmf"]
BUILTIN_TOOLS: tuple[BuiltinName, ...] = ("end_call", "transfer_call", "send_dtmf")

MAX_TOOL_TIMEOUT_S = 300.0


def _check_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or len(value) < 10:
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


def _check_env_name(value: str | None) -> str | None:
    if value is not None and not ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


class _SignedPost(BaseModel):
    """A URL the gateway POSTs JSON to, optionally signed with an HMAC from the environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    hmac_secret_env: str | None = None
    """Name of the environment variable holding the HMAC-SHA256 signing secret."""
    hmac_header: str = "X-Gateway-Signature"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("hmac_secret_env")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        return _check_env_name(value)


class HttpToolConfig(_SignedPost):
    """An HTTP tool: the arguments are POSTed as JSON, the JSON reply goes back to the model.

    `url` (path and query only) and header values may hold call variables (`{{name}}`),
    filled per call; never the scheme, host or port, so a variable cannot send the request
    (and its headers, its signature) to another site.
    """

    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _no_variable_host(cls, value: str) -> str:
        _, _, rest = value.partition("://")
        authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
        if _BRACED.search(authority):
            raise ValueError(
                "call variables ({{name}}) may only appear in the URL's path or query, "
                "not in its host"
            )
        return value

    @field_validator("headers", "hmac_header")
    @classmethod
    def _check_headers(cls, value: Any) -> Any:
        names = [value] if isinstance(value, str) else list(value)
        for name in names:
            if not HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid HTTP header name")
        return value


class WebhookConfig(_SignedPost):
    """Where the post-call summary goes; a plain URL string is accepted as shorthand."""

    timeout_s: float = Field(default=10.0, gt=0, le=MAX_TOOL_TIMEOUT_S)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"url": data} if isinstance(data, str) else data


class TransferTarget(BaseModel):
    """A phone number (E.164) or SIP URI calls can be transferred to; a string is shorthand."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: str
    description: str | None = None
    caller_id: str | None = None
    """The number the transferred-to party sees (E.164); Twilio's default when unset."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"number": data} if isinstance(data, str) else data

    @field_validator("number")
    @classmethod
    def _check_number(cls, value: str) -> str:
        if not (E164.match(value) or value.startswith("sip:")):
            raise ValueError(f"{value!r} is not an E.164 number (+15551230000) or a sip: URI")
        return value

    @field_validator("caller_id")
    @classmethod
    def _check_caller_id(cls, value: str | None) -> str | None:
        if value is not None and not E164.match(value):
            raise ValueError(f"{value!r} is not an E.164 number like +15551230000")
        return value


class ToolSpec(BaseModel):
    """One tool of an agent: exactly one of `python`, `http` or `builtin` says what runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    python: str | None = None
    """`module:function` in the agent's folder (`tools:lookup_order` → tools.py)."""
    http: HttpToolConfig | None = None
    builtin: BuiltinName | None = None
    target: str | None = None
    """transfer_call only: always transfer to this target (else the model picks one)."""
    timeout_s: float = Field(default=10.0, gt=0, le=MAX_TOOL_TIMEOUT_S)
    behavior: ToolBehavior | None = None
    """blocking: the model waits for the answer; non_blocking: it keeps talking meanwhile.
    Unset: the model's default (gateway.live.models)."""
    scheduling: ToolScheduling | None = None
    """non_blocking only: when the model speaks the answer (interrupt, when_idle, silent)."""
    context: dict[str, str] = Field(default_factory=dict)
    """Fixed values given to every call of this tool, never chosen by the model — a python
    tool reads them as `context.values`, an http tool gets them as the `X-Gateway-Context`
    header. They may hold call variables (`{{customer_id}}`), filled per call."""

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        if value is not None and not TOOL_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a valid tool name (letters, digits, '_' or '-', "
                "at most 64, not starting with a digit)"
            )
        return value

    @field_validator("python")
    @classmethod
    def _check_python(cls, value: str | None) -> str | None:
        if value is not None and not PYTHON_REF.match(value):
            raise ValueError(f"{value!r} is not of the form module:function")
        return value

    @field_validator("parameters")
    @classmethod
    def _check_parameters(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            return check_parameters_schema(value)
        except SchemaError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("context")
    @classmethod
    def _check_context(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_CONTEXT_ENTRIES:
            raise ValueError(f"at most {MAX_CONTEXT_ENTRIES} entries")
        for key, text in value.items():
            if not CONTEXT_KEY.match(key):
                raise ValueError(
                    f"{key!r} is not a context name (letters, digits and '_', at most 64, "
                    "not starting with a digit)"
                )
            if len(text) > MAX_CONTEXT_VALUE_CHARS:
                raise ValueError(f"{key}: at most {MAX_CONTEXT_VALUE_CHARS} characters")
        return value

    @model_validator(mode="after")
    def _check_kind(self) -> Self:
        kinds = [k for k in ("python", "http", "builtin") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("set exactly one of python, http or builtin")
        if self.builtin is None:
            if self.name is None:
                raise ValueError("a python or http tool needs a name")
            if not self.description:
                raise ValueError(f"tool {self.name!r} needs a description (the model reads it)")
        else:
            if self.parameters is not None:
                raise ValueError(f"builtin {self.builtin} has fixed parameters; remove them")
        if self.context and self.builtin is not None:
            raise ValueError("context is only for python and http tools")
        if self.target is not None and self.builtin != "transfer_call":
            raise ValueError("target is only for builtin: transfer_call")
        return self

    @property
    def tool_name(self) -> str:
        """The name the model calls: `name`, or the builtin's own name."""
        name = self.name or self.builtin
        assert name is not None
        return name

    @property
    def kind(self) -> str:
        return "python" if self.python else "http" if self.http else "builtin"
