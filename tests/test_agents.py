"""Agent YAML: loading, validation errors that name file/field, routing by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.agents.config import (
    AgentConfig,
    AgentConfigError,
    AgentSet,
    load_agent_file,
    load_agents,
)

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


def test_every_problem_of_a_file_is_reported_in_one_run(tmp_path: Path) -> None:
    text = (
        "name: a\nlangauge: en-US\nsystem_instruction_file: missing.md\n"
        "tools:\n"
        "  - name: lookup\n    description: d\n    python: nowhere:lookup\n"
        "  - builtin: end_call\n    descripton: x\n"
    )
    with pytest.raises(AgentConfigError) as caught:
        load_agent_file(write(tmp_path, "a.yaml", text))
    assert str(caught.value).splitlines() == [
        f"{tmp_path / 'a.yaml'}:2: langauge: unknown field; did you mean language?",
        f"{tmp_path / 'a.yaml'}:3: system_instruction_file: {tmp_path / 'missing.md'} "
        "does not exist",
        f"{tmp_path / 'a.yaml'}:7: tools.0.python: module 'nowhere' not found: "
        f"{tmp_path / 'nowhere.py'} does not exist",
        f"{tmp_path / 'a.yaml'}:9: tools.1.descripton: unknown field; did you mean description?",
    ]


def test_a_valid_agent_reports_its_instruction_file_and_tool_problems_together(
    tmp_path: Path,
) -> None:
    text = (
        "name: a\nsystem_instruction_file: missing.md\n"
        "tools:\n  - name: lookup\n    description: d\n    python: nowhere:lookup\n"
    )
    with pytest.raises(AgentConfigError) as caught:
        load_agent_file(write(tmp_path, "a.yaml", text))
    lines = str(caught.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "system_instruction_file", "tools.0.python",
    ]


def test_unknown_field_names_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "name: a\nvoice: Puck\ngreting: hi\n")
    with pytest.raises(AgentConfigError, match=r"a\.yaml:3: greting: unknown field"):
        load_agent_file(path)


def test_an_unknown_field_suggests_the_nearest_one_at_its_level(tmp_path: Path) -> None:
    text = (
        "name: a\nlangauge: en-US\nzzzqqq: 1\n"
        "tools:\n  - builtin: end_call\n    descripton: x\nvad:\n  silense_duration_ms: 300\n"
    )
    with pytest.raises(AgentConfigError) as caught:
        load_agent_file(write(tmp_path, "a.yaml", text))
    assert str(caught.value).splitlines() == [
        f"{tmp_path / 'a.yaml'}:2: langauge: unknown field; did you mean language?",
        f"{tmp_path / 'a.yaml'}:3: zzzqqq: unknown field",
        f"{tmp_path / 'a.yaml'}:6: tools.0.descripton: unknown field; did you mean description?",
        f"{tmp_path / 'a.yaml'}:8: vad.silense_duration_ms: unknown field; "
        "did you mean silence_duration_ms?",
    ]


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


# --------------------------------------------------------------------------- the full schema

FULL = """\
name: full
lines: ["+15550001111", "+15550001112"]
model: gemini-live-2.5-flash-native-audio
voice: kore
language: en-GB
greeting: "Hi!"
system_instruction: Be kind.
vad: {start_sensitivity: low, end_sensitivity: high, prefix_padding_ms: 20,
      silence_duration_ms: 700}
max_call_duration_s: 600
idle_timeout_s: 20
idle_reminder: Still there?
end_call_phrases: ["goodbye for now"]
transcription: {input: false}
transfer:
  human: {number: "+15550100199", description: a person, caller_id: "+15550001111"}
  pbx: "sip:desk@pbx.example.com"
tools:
  - builtin: end_call
  - {name: to_human, builtin: transfer_call, target: human}
recording: false
post_call_webhook: https://hooks.example.com/calls
"""


def test_every_field_loads(tmp_path: Path) -> None:
    agent = load_agent_file(write(tmp_path, "full.yaml", FULL))
    assert agent.voice == "Kore"  # voices are matched case-insensitively
    assert agent.vad.silence_duration_ms == 700 and agent.vad.start_sensitivity == "low"
    assert agent.transcription.input is False and agent.transcription.output is True
    assert agent.transfer["pbx"].number == "sip:desk@pbx.example.com"
    assert agent.transfer["human"].caller_id == "+15550001111"
    assert agent.idle_reminder == "Still there?" and agent.idle_goodbye  # default goodbye
    assert agent.recording is False
    assert agent.post_call_webhook is not None
    assert agent.post_call_webhook.url == "https://hooks.example.com/calls"
    assert agent.post_call_webhook.timeout_s == 10.0
    assert [d["name"] for d in agent.toolset.declarations] == ["end_call", "to_human"]


def test_defaults() -> None:
    agent = AgentConfig(name="a")
    assert agent.recording is True
    assert agent.transcription.input and agent.transcription.output
    assert agent.max_call_duration_s is None and agent.idle_timeout_s is None
    assert agent.tools == () and len(agent.toolset) == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: a\nmax_call_duration_s: soon\n",
         r"a\.yaml:2: max_call_duration_s: Input should be a valid number"),
        ("name: a\nidle_timeout_s: -5\n",
         r"a\.yaml:2: idle_timeout_s: Input should be greater than 0"),
        ("name: a\nvoice: Pook\n", r"a\.yaml:2: voice: unknown voice 'Pook'; one of: Zephyr"),
        ("name: a\nlanguage: english\n", r"a\.yaml:2: language: 'english' is not a BCP-47"),
        ("name: A B\n", r"a\.yaml:1: name: must be lower-case letters"),
        ("name: a\nvad:\n  silence_ms: 300\n", r"a\.yaml:3: vad\.silence_ms: unknown field"),
        ("name: a\nvad: {start_sensitivity: medium}\n",
         r"a\.yaml:2: vad\.start_sensitivity: Input should be 'high' or 'low'"),
        ("name: a\ntranscription: {input: maybe}\n",
         r"a\.yaml:2: transcription\.input: Input should be a valid boolean"),
        ("name: a\nlines: ['+15550001111', '+15550001111']\n",
         r"a\.yaml:2: lines: \+15550001111 is listed twice"),
        ("name: a\ncarriers: [Twilio]\n", r"a\.yaml:2: carriers: 'Twilio' is not a carrier name"),
        ("name: a\ncarriers: [plivo, plivo]\n", r"a\.yaml:2: carriers: a carrier is listed twice"),
        ("name: a\nend_call_phrases: ['bye', ' ']\n",
         r"a\.yaml:2: end_call_phrases: phrases must not be empty"),
        ("name: a\ntransfer:\n  human: '555'\n",
         r"a\.yaml:3: transfer\.human\.number: '555' is not an E\.164 number"),
        ("name: a\ntransfer:\n  Human Desk: '+15550100199'\n",
         r"a\.yaml:2: transfer: target name 'Human Desk'"),
        ("name: a\npost_call_webhook: ftp://hooks\n",
         r"a\.yaml:2: post_call_webhook\.url: 'ftp://hooks' is not an http"),
        ("name: a\npost_call_webhook: {url: 'https://h.example/x', hmac_secret_env: NOT_SET_X}\n",
         r"a\.yaml:2: post_call_webhook\.hmac_secret_env: environment variable NOT_SET_X is not"),
        ("name: a\nrecording: sometimes\n", r"a\.yaml:2: recording: Input should be a valid bool"),
        ("name: a\nsystem_instruction: x\nsystem_instruction_file: p.md\n",
         r"a\.yaml: \(top\): set only one of system_instruction and system_instruction_file"),
        ("name: a\ntools:\n  - builtin: end_call\n  - {name: x, description: d}\n",
         r"a\.yaml:4: tools\.1: set exactly one of python, http or builtin"),
        ("name: a\ntools:\n  - name: x\n    description: d\n    python: tools:x\n"
         "    parameters: {type: object, additionalProperties: false}\n",
         r"a\.yaml:6: tools\.0\.parameters: additionalProperties: unsupported schema keyword"),
        ("name: a\ntools:\n  - builtin: end_call\n  - name: x\n    description: d\n"
         "    python: tools:x\n",
         r"a\.yaml:6: tools\.1\.python: module 'tools' not found"),
        ("name: a\ntransfer: {human: '+15550100199'}\ntools:\n  - builtin: transfer_call\n"
         "    target: sales\n",
         r"a\.yaml:5: tools\.0\.target: 'sales' is not a transfer target \(human\)"),
        ("name: a\ntools:\n  - builtin: end_call\n  - builtin: end_call\n",
         r"a\.yaml:4: tools\.1\.builtin: tool 'end_call' is defined twice"),
        ("- name: a\n", r"a\.yaml: expected a mapping of agent fields"),
    ],
)  # fmt: skip
def test_each_kind_of_error_names_file_line_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, "a.yaml", text)
    with pytest.raises(AgentConfigError, match=expected):
        load_agent_file(path)


def test_a_missing_function_names_the_tool(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "tools.py").write_text("def lookup(order_id):\n    return {}\n")
    (folder / "agent.yaml").write_text(
        "tools:\n"
        "  - name: lookup\n    description: d\n    python: tools:lookup\n"
        "    parameters: {type: object, properties: {order_id: {type: string}}}\n"
        "  - name: refund\n    description: d\n    python: tools:refund\n"
    )
    with pytest.raises(AgentConfigError, match=r"agent\.yaml:8: tools\.1\.python: module "
                       r"'tools' has no function 'refund'"):  # fmt: skip
        load_agents(tmp_path)


def test_agents_with_their_own_folder_are_named_after_it(tmp_path: Path) -> None:
    write(tmp_path, "default.yaml", "voice: Puck\n")
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "prompt.md").write_text("Sell things.")
    (folder / "agent.yaml").write_text(
        "lines: ['+15550003333']\nsystem_instruction_file: prompt.md\n"
    )
    agents = load_agents(tmp_path)
    assert sorted(agents.agents) == ["default", "shop"]
    shop = agents.for_call(None, "+15550003333")
    assert shop.name == "shop" and shop.instructions == "Sell things."
    assert shop.agent_dir == folder


def test_an_agent_set_built_in_code_resolves_tools_too() -> None:
    broken = AgentConfig(name="b", tools=[{"name": "x", "description": "d", "python": "no:f"}])
    with pytest.raises(AgentConfigError, match=r"b: tools\.0\.python: module 'no' not found"):
        AgentSet.from_agents([AgentConfig(name="default"), broken])


def test_all_broken_files_are_reported_together(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "voise: Puck\n")
    write(tmp_path, "b.yaml", "lines: nope\n")
    with pytest.raises(AgentConfigError) as caught:
        load_agents(tmp_path)
    assert "a.yaml:1: voise: unknown field" in str(caught.value)
    assert "b.yaml:1: lines" in str(caught.value)


def test_an_agent_restricted_to_carriers_answers_only_their_calls() -> None:
    agents = AgentSet.from_agents(
        [
            AgentConfig(name="default"),
            AgentConfig(name="pbx", lines=("+15550001111",), carriers=("asterisk", "plivo")),
            AgentConfig(name="twilio-only", carriers=("twilio",)),
        ]
    )
    plivo = agents.for_carrier("plivo")
    assert plivo is not None and sorted(plivo.agents) == ["default", "pbx"]
    assert plivo.for_call(None, "+15550001111").name == "pbx"  # its line, on its carrier
    twilio = agents.for_carrier("twilio")
    assert twilio is not None and sorted(twilio.agents) == ["default", "twilio-only"]
    assert twilio.for_call(None, "+15550001111").name == "default"  # not on this carrier
    assert twilio.for_call("pbx", None).name == "default"  # nor by name
    unrestricted = AgentSet.from_agents([AgentConfig(name="default")])
    assert unrestricted.for_carrier("telnyx") is unrestricted
    only_pbx = AgentSet.from_agents([AgentConfig(name="pbx", carriers=("asterisk",))])
    assert only_pbx.for_carrier("twilio") is None
