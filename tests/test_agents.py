"""Agent YAML: loading, validation errors that name file/field, routing by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.agents import AgentConfigError, load_agent_file, load_agents

REPO = Path(__file__).parent.parent


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_example_agents_load() -> None:
    agents = load_agents(REPO / "agents")
    assert agents.default.name == "default"
    assert agents.default.greeting


def test_routing_by_parameter_line_and_default(tmp_path: Path) -> None:
    write(tmp_path, "default.yaml", "name: default\n")
    write(tmp_path, "sales.yaml", "name: sales\nlines: ['+15550001111']\n")
    agents = load_agents(tmp_path)
    assert agents.for_call("sales", None).name == "sales"
    assert agents.for_call(None, "+15550001111").name == "sales"
    assert agents.for_call(None, "+15550009999").name == "default"
    assert agents.for_call("missing", None).name == "default"


def test_unknown_field_names_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "name: a\nvoice: Puck\ngreting: hi\n")
    with pytest.raises(AgentConfigError, match=r"a\.yaml:3: greting: unknown field"):
        load_agent_file(path)


def test_bad_line_number(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "name: a\nlines: ['555-1234']\n")
    with pytest.raises(AgentConfigError, match=r"a\.yaml:2: lines: .*not an E\.164 number"):
        load_agent_file(path)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "name: a\nvoice: [unclosed\n")
    with pytest.raises(AgentConfigError, match=r"a\.yaml:\d+: invalid YAML"):
        load_agent_file(path)


def test_duplicate_lines_across_agents(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "name: a\nlines: ['+15550001111']\n")
    write(tmp_path, "b.yaml", "name: b\nlines: ['+15550001111']\n")
    with pytest.raises(AgentConfigError, match=r"b\.yaml: lines: \+15550001111 is already"):
        load_agents(tmp_path)


def test_system_instruction_file(tmp_path: Path) -> None:
    write(tmp_path, "prompt.md", "You are Acme's assistant.")
    path = write(tmp_path, "a.yaml", "name: a\nsystem_instruction_file: prompt.md\n")
    assert load_agent_file(path).instructions == "You are Acme's assistant."
    missing = write(tmp_path, "b.yaml", "name: b\nsystem_instruction_file: nope.md\n")
    with pytest.raises(AgentConfigError, match="does not exist"):
        load_agent_file(missing)


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AgentConfigError, match="no agent files"):
        load_agents(tmp_path)
