"""Python tools: `module:function` from the agent's own folder, sync or async.

The module is imported from the agent's folder by file path (`tools:lookup_order` →
`<agent dir>/tools.py`, `pkg.mod:f` → `<agent dir>/pkg/mod.py`) under a name private to the
agent, so two agents may both have a `tools.py`. Every (re)load of the agent set imports it
afresh: calls already running keep the functions they started with. A reload imports in a
worker thread (`gateway.agents.store`), one reload at a time, so a slow import never stalls the
event loop and two imports of one module never race over its `sys.modules` entry.

A function receives the validated arguments as keyword arguments, plus `context`
(`ToolContext`) if it has a parameter of that name. Sync functions run in a worker thread so a
slow database query never stalls other calls' audio.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import re
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from gateway.tools.context import ToolContext

__all__ = ["PythonToolError", "load_python_function", "python_invoker"]

ToolInvoker = Callable[[Mapping[str, Any], ToolContext], Awaitable[Any]]

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


class PythonToolError(ValueError):
    """The `module:function` cannot be loaded or does not fit its declared parameters."""


def _module_name(agent_dir: Path, module: str) -> str:
    folder = _UNSAFE.sub("_", str(agent_dir.resolve()))
    return f"gateway_agent_tools_{folder}__{_UNSAFE.sub('_', module)}"


def _import(agent_dir: Path, module: str) -> ModuleType:
    path = agent_dir.joinpath(*module.split(".")).with_suffix(".py")
    if not path.is_file():
        raise PythonToolError(f"module {module!r} not found: {path} does not exist")
    name = _module_name(agent_dir, module)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PythonToolError(f"cannot import {path}")
    loaded = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(name)
    sys.modules[name] = loaded  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(loaded)
    except (Exception, SystemExit) as exc:  # sys.exit() at import breaks the agent, not us
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous
        where = ""
        if isinstance(exc, SyntaxError) and exc.lineno:
            where = f" (line {exc.lineno})"
        raise PythonToolError(
            f"importing {path} failed{where}: {type(exc).__name__}: {exc}"
        ) from None
    return loaded


def load_python_function(
    agent_dir: Path, reference: str, parameter_names: tuple[str, ...] = ()
) -> Callable[..., Any]:
    """Import `module:function` from `agent_dir` and check it accepts `parameter_names`."""
    module_name, _, function_name = reference.partition(":")
    module = _import(agent_dir, module_name)
    function: Callable[..., Any] | None = getattr(module, function_name, None)
    if function is None:
        raise PythonToolError(f"module {module_name!r} has no function {function_name!r}")
    if not callable(function):
        raise PythonToolError(f"{reference} is not a function")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return function  # builtins and C functions: trust them
    params = signature.parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for name in parameter_names:
        if name not in params and not takes_any:
            raise PythonToolError(f"{reference} has no parameter {name!r} (declared in parameters)")
    for name, param in params.items():
        if param.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise PythonToolError(f"{reference}: parameter {name!r} must not be positional-only")
        if name == "context" or name in parameter_names:
            continue
        if param.default is inspect.Parameter.empty:
            raise PythonToolError(
                f"{reference}: parameter {name!r} is not declared in parameters and has no default"
            )
    return function


def python_invoker(function: Callable[..., Any]) -> ToolInvoker:
    """Wrap `function` as `invoke(args, context)`; sync functions go to a worker thread."""
    try:
        wants_context = "context" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        wants_context = False
    is_async = inspect.iscoroutinefunction(function)

    async def invoke(args: Mapping[str, Any], context: ToolContext) -> Any:
        kwargs = dict(args)
        context.data_dir.mkdir(parents=True, exist_ok=True)
        if wants_context:
            kwargs["context"] = context
        if is_async:
            return await function(**kwargs)
        result = await asyncio.to_thread(function, **kwargs)
        if inspect.isawaitable(result):
            return await result
        return result

    return invoke
