"""Python tools: `module:function` from the agent's folder, checked at load, sync or async."""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import pytest

from gateway.tools import ToolContext
from gateway.tools.python_tool import PythonToolError, load_python_function, python_invoker


def module(folder: Path, text: str, name: str = "tools.py") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return folder


def test_loads_a_function_from_a_nested_module(tmp_path: Path) -> None:
    module(tmp_path, "def f(x):\n    return x * 2\n", "pkg/calc.py")
    assert load_python_function(tmp_path, "pkg.calc:f", ("x",))(x=4) == 8


@pytest.mark.parametrize(
    ("source", "reference", "params", "message"),
    [
        ("", "missing:f", (), r"module 'missing' not found: .*missing\.py does not exist"),
        ("def g(): pass\n", "tools:f", (), "module 'tools' has no function 'f'"),
        ("f = 3\n", "tools:f", (), "tools:f is not a function"),
        ("def f(: pass\n", "tools:f", (), r"importing .*tools\.py failed \(line 1\): SyntaxError"),
        ("import nowhere_to_be_found\n", "tools:f", (), "ModuleNotFoundError"),
        ("def f(a): pass\n", "tools:f", ("a", "b"), "tools:f has no parameter 'b'"),
        ("def f(a, extra): pass\n", "tools:f", ("a",),
         "parameter 'extra' is not declared in parameters and has no default"),
        ("def f(a, /): pass\n", "tools:f", ("a",), "must not be positional-only"),
    ],
)  # fmt: skip
def test_load_errors_say_what_is_wrong(
    tmp_path: Path, source: str, reference: str, params: tuple[str, ...], message: str
) -> None:
    module(tmp_path, source)
    with pytest.raises(PythonToolError, match=message):
        load_python_function(tmp_path, reference, params)


def test_two_agents_may_both_have_a_tools_module(tmp_path: Path) -> None:
    a = module(tmp_path / "a", "def f():\n    return 'a'\n")
    b = module(tmp_path / "b", "def f():\n    return 'b'\n")
    assert load_python_function(a, "tools:f")() == "a"
    assert load_python_function(b, "tools:f")() == "b"


def test_loading_again_sees_the_edited_module(tmp_path: Path) -> None:
    module(tmp_path, "def f():\n    return 1\n")
    first = load_python_function(tmp_path, "tools:f")
    module(tmp_path, "def f():\n    return 22\n")
    assert load_python_function(tmp_path, "tools:f")() == 22
    assert first() == 1  # a call already holding the old function keeps it


async def test_sync_tools_run_in_a_worker_thread_with_their_context(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    def lookup(order_id: str, context: ToolContext) -> str:
        seen["thread"] = threading.current_thread() is threading.main_thread()
        return f"{order_id} for {context.call_sid}"

    data_dir = tmp_path / "data" / "agent"
    invoke = python_invoker(lookup)
    context = ToolContext(call_sid="CA1", agent="a", data_dir=data_dir)
    result = await invoke({"order_id": "A1"}, context)
    assert result == "A1 for CA1"
    assert seen["thread"] is False
    assert data_dir.is_dir()  # the agent's data folder exists before its tool runs


async def test_async_tools_are_awaited_without_a_context_when_they_take_none(
    tmp_path: Path,
) -> None:
    async def hello(name: str) -> str:
        return f"Hello, {name}"

    context = ToolContext(call_sid="CA1", agent="a", data_dir=tmp_path)
    assert await python_invoker(hello)({"name": "Ada"}, context) == "Hello, Ada"
