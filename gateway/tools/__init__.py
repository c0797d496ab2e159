"""Tools the model can call mid-call: python functions, HTTP webhooks and built-ins.

* `spec`        — what an agent's YAML says (`ToolSpec`, `TransferTarget`, `WebhookConfig`);
* `schema`      — the JSON-schema subset for parameters, checked at load, enforced per call;
* `registry`    — `build_toolset`: specs → `ToolSet` of callable `Tool`s (imports python tools);
* `python_tool`, `http_tool`, `builtin` — the three kinds;
* `runner`      — `ToolRunner`: one call's tool calls, each its own task with a timeout;
* `context`     — `ToolContext` (what a tool knows of its call), `ToolError`, `ToolResult`,
                  `ToolStatus` (the answer contract: gateway.tools.runner), `CallControl`.
"""

from gateway.tools.context import (
    CallControl,
    NoCallControl,
    ToolContext,
    ToolError,
    ToolResult,
    ToolStatus,
)
from gateway.tools.registry import Tool, ToolSet, ToolSetError, build_toolset
from gateway.tools.runner import Outcome, ToolRunner
from gateway.tools.spec import HttpToolConfig, ToolSpec, TransferTarget, WebhookConfig

__all__ = [
    "CallControl",
    "HttpToolConfig",
    "NoCallControl",
    "Outcome",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolResult",
    "ToolRunner",
    "ToolSet",
    "ToolSetError",
    "ToolSpec",
    "ToolStatus",
    "TransferTarget",
    "WebhookConfig",
    "build_toolset",
]
