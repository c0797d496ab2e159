"""An agent's outbound fields and call variables: `agents check` errors (file:line), what a call
needs, and the per-call copy with everything filled (the loaded agent left untouched)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.agents.config import AgentConfig, AgentConfigError, load_agent_file, load_agents
from gateway.call.session_config import session_config_for
from gateway.live.protocol import FunctionCall, FunctionResponse
from gateway.outbound.variables import InvalidVariables, MissingVariables
from gateway.telephony.base import StreamStart
from gateway.tools import ToolContext, ToolRunner

REPO = Path(__file__).parent.parent.parent
START = StreamStart(
    stream_sid="MZ1", call_sid="CA1", account_sid="AC1", tracks=("inbound",),
    custom_parameters={}, encoding="audio/x-mulaw", sample_rate_hz=8000, channels=1,
    sequence_number=1,
)  # fmt: skip

AGENT = """\
name: reminder
system_instruction_file: prompt.md
greeting: "Hello, {{clinic}} here."
outbound_greeting: "Hi {{ first_name }}, this is {{clinic}}."
outbound_instructions: "Remind {{first_name}} of {{time}}."
voicemail: leave_message
voicemail_message: "{{first_name}}, call {{callback}}. Goodbye."
idle_reminder: "Ask whether {{first_name}} is still there."
end_call_phrases: ["Goodbye {{first_name}}"]
tools:
  - name: whoami
    description: The tool's context.
    python: tools:whoami
    context: {patient: "{{patient_id}}", fixed: "clinic-1"}
  - name: answer
    description: Record the answer.
    http:
      url: "https://crm.example.com/patients/{{patient_id}}/answer?time={{time}}"
      headers: {X-Clinic: "{{clinic}}"}
  - builtin: end_call
"""
VARIABLES = {
    "first_name": "Ana",
    "clinic": "Northside Clinic",
    "time": "Friday 10:00",
    "callback": "+15550100100",
    "patient_id": "p/7?x=1",
    "doctor": "Dr {{first_name}}",
}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def reminder(tmp_path: Path) -> AgentConfig:
    write(tmp_path, "prompt.md", "You work for {{clinic}}; the doctor is {{doctor}}.\n")
    write(tmp_path, "tools.py", "def whoami(context):\n    return dict(context.values)\n")
    return load_agent_file(write(tmp_path, "reminder.yaml", AGENT))


def problems(tmp_path: Path, text: str, name: str = "a.yaml") -> list[str]:
    with pytest.raises(AgentConfigError) as caught:
        load_agent_file(write(tmp_path, name, text))
    where = str(tmp_path / name)
    return [line.replace(where, "F") for line in str(caught.value).splitlines()]


# ------------------------------------------------------------------ agents check


def test_leave_message_without_a_message_names_file_line_and_field(tmp_path: Path) -> None:
    assert problems(tmp_path, "name: a\nvoice: Puck\nvoicemail: leave_message\n") == [
        "F:3: voicemail: leave_message needs voicemail_message (what the agent says after "
        "the beep)"
    ]


def test_bad_outbound_fields_name_file_line_and_field(tmp_path: Path) -> None:
    text = (
        "name: a\nvoicemail: record\noutbound_greeting: '  '\n"
        "outbound_instructions: 'Call {{first name}}.'\n"
    )
    found = problems(tmp_path, text)
    assert found[0].startswith("F:2: voicemail: Input should be 'hang_up' or 'leave_message'")
    assert found[1:] == ["F:3: outbound_greeting: must not be empty (leave the field out instead)"]
    assert problems(tmp_path, "name: a\noutbound_instructions: 'Call {{first name}}.'\n") == [
        "F:2: outbound_instructions: {{first name}} is not a placeholder: write {{name}} "
        "(letters, digits, _)"
    ]


def test_a_voicemail_message_that_is_never_said_is_an_error(tmp_path: Path) -> None:
    assert problems(tmp_path, "name: a\nvoicemail_message: Call us.\n") == [
        "F:2: voicemail_message: is only used with voicemail: leave_message"
    ]


def test_inbound_text_of_an_agent_answering_lines_cannot_use_variables(tmp_path: Path) -> None:
    text = (
        "name: a\nlines: ['+15550001111']\ngreeting: 'Hi {{first_name}}'\n"
        "outbound_instructions: 'Call {{first_name}}.'\n"
        "tools:\n  - name: t\n    description: d\n    http:\n"
        "      url: https://crm.example.com/{{id}}\n"
    )
    assert problems(tmp_path, text) == [
        "F:3: greeting: uses {{first_name}}, but inbound calls bring no variables and this "
        "agent answers +15550001111: put it in the outbound_* fields, or fill it in",
        "F:9: tools.0.http.url: uses {{id}}, but inbound calls bring no variables and this "
        "agent answers +15550001111: put it in the outbound_* fields, or fill it in",
    ]


def test_the_default_agent_answers_inbound_calls_too(tmp_path: Path) -> None:
    found = problems(tmp_path, "system_instruction: 'Help {{a}}.'\n", name="default.yaml")
    assert found == [
        "F:1: system_instruction: uses {{a}}, but inbound calls bring no variables and this "
        "agent is the default agent: put it in the outbound_* fields, or fill it in"
    ]
    # With outbound_* set, the inbound text is replaced on outbound calls: no variables in it.
    load_agent_file(
        write(tmp_path, "default.yaml", "system_instruction: Help.\noutbound_greeting: Hi {{a}}\n")
    )


def test_an_agent_without_lines_may_use_variables_everywhere(reminder: AgentConfig) -> None:
    assert reminder.lines == () and not reminder.answers_inbound


def test_a_variable_cannot_choose_the_host_of_an_http_tool(tmp_path: Path) -> None:
    text = (
        "name: a\ntools:\n  - name: t\n    description: d\n    http:\n"
        "      url: https://{{host}}/x\n"
    )
    assert problems(tmp_path, text) == [
        "F:6: tools.0.http.url: call variables ({{name}}) may only appear in the URL's path "
        "or query, not in its host"
    ]


def test_tool_context_is_checked(tmp_path: Path) -> None:
    text = (
        "name: a\ntools:\n  - builtin: end_call\n    context: {a: b}\n"
        "  - name: t\n    description: d\n    python: tools:t\n    context: {'bad key': x}\n"
    )
    write(tmp_path, "tools.py", "def t():\n    return 1\n")
    assert problems(tmp_path, text) == [
        "F:3: tools.0: context is only for python and http tools",
        "F:8: tools.1.context: 'bad key' is not a context name (letters, digits and '_', at "
        "most 64, not starting with a digit)",
    ]


# ------------------------------------------------------------------ what a call needs


def test_required_variables_by_kind_of_call(reminder: AgentConfig) -> None:
    everything = {"clinic", "doctor", "first_name", "time", "callback", "patient_id"}
    assert reminder.required_variables() == everything
    # Outbound: outbound_* replace the prompt file and the greeting; the voicemail counts.
    assert reminder.required_variables(outbound=True) == everything - {"doctor"}
    assert reminder.required_variables(outbound=False) == {
        "clinic", "doctor", "first_name", "time", "patient_id",
    }  # fmt: skip


def test_missing_variables_are_sorted_and_default_to_an_outbound_call(
    reminder: AgentConfig,
) -> None:
    assert reminder.missing_variables({"clinic": "C", "time": "t"}) == [
        "callback", "first_name", "patient_id",
    ]  # fmt: skip
    assert reminder.missing_variables(VARIABLES) == []
    assert reminder.missing_variables({}, outbound=False)[0] == "clinic"


def test_a_hang_up_agent_needs_no_voicemail_variables() -> None:
    agent = AgentConfig(name="a", voicemail_message="{{x}}", outbound_greeting="Hi {{y}}")
    assert agent.required_variables() == {"x", "y"}
    assert agent.required_variables(outbound=True) == {"y"}


# ------------------------------------------------------------------ the per-call copy


def test_an_outbound_copy_is_filled_everywhere_and_the_agent_is_untouched(
    reminder: AgentConfig,
) -> None:
    before = reminder.model_dump()
    instructions, toolset = reminder.instructions, reminder.toolset
    call = reminder.for_call_variables(VARIABLES, outbound=True)
    assert call is not reminder and call.name == "reminder"
    assert call.instructions == "Remind Ana of Friday 10:00."
    assert call.greeting == "Hi Ana, this is Northside Clinic."
    assert call.voicemail_message == "Ana, call +15550100100. Goodbye."
    assert call.idle_reminder == "Ask whether Ana is still there."
    assert call.end_call_phrases == ("Goodbye Ana",)
    assert call.tools[0].context == {"patient": "p/7?x=1", "fixed": "clinic-1"}
    assert call.tools[1].http is not None
    assert call.tools[1].http.url == (
        "https://crm.example.com/patients/p%2F7%3Fx%3D1/answer?time=Friday%2010%3A00"
    )
    assert call.tools[1].http.headers == {"X-Clinic": "Northside Clinic"}
    assert call.required_variables() == set()
    # The loaded agent, shared by every call, is as it was.
    assert reminder.model_dump() == before
    assert reminder.instructions == instructions and reminder.toolset is toolset
    assert reminder.required_variables(outbound=True) == set(VARIABLES) - {"doctor"}


def test_an_inbound_copy_keeps_the_inbound_text(reminder: AgentConfig) -> None:
    call = reminder.for_call_variables(VARIABLES, outbound=False)
    # A value is inserted as it is: {{first_name}} inside `doctor` is not filled.
    assert call.instructions == "You work for Northside Clinic; the doctor is Dr {{first_name}}.\n"
    assert call.greeting == "Hello, Northside Clinic here."
    assert call.outbound_greeting is None and call.outbound_instructions is None


def test_a_voicemail_copy_says_the_message(reminder: AgentConfig) -> None:
    call = reminder.for_call_variables(VARIABLES, outbound=True, voicemail=True)
    assert call.greeting == "Ana, call +15550100100. Goodbye."
    assert call.instructions == "Remind Ana of Friday 10:00."
    with pytest.raises(ValueError, match="voicemail is for outbound calls"):
        reminder.for_call_variables(VARIABLES, outbound=False, voicemail=True)
    hang_up = AgentConfig(name="h")
    with pytest.raises(ValueError, match="hangs up on voicemail"):
        hang_up.for_call_variables({}, outbound=True, voicemail=True)


def test_a_copy_needs_every_variable_the_call_uses(reminder: AgentConfig) -> None:
    with pytest.raises(MissingVariables) as caught:
        reminder.for_call_variables({"clinic": "C", "time": "t"}, outbound=True)
    assert caught.value.names == ("callback", "first_name", "patient_id")
    with pytest.raises(InvalidVariables, match="variable 'time': must be a string"):
        reminder.for_call_variables({**VARIABLES, "time": 10}, outbound=True)  # type: ignore[dict-item]


def test_an_agent_without_variables_copies_as_it_is() -> None:
    agent = AgentConfig(name="plain", system_instruction="Help.", greeting="Hi.")
    call = agent.for_call_variables({}, outbound=False)
    assert (call.instructions, call.greeting) == ("Help.", "Hi.")


def test_the_session_of_a_copy_has_the_filled_instruction(reminder: AgentConfig) -> None:
    call = reminder.for_call_variables(VARIABLES, outbound=True)
    config = session_config_for(call, START, default_model="gemini-3.8-live")
    assert config.system_instruction == "Remind Ana of Friday 10:00."
    assert config.function_declarations == reminder.toolset.declarations
    loaded = session_config_for(reminder, START, default_model="gemini-3.8-live")
    assert loaded.system_instruction == "You work for {{clinic}}; the doctor is {{doctor}}.\n"


async def test_a_python_tool_of_the_copy_gets_its_filled_context(reminder: AgentConfig) -> None:
    call = reminder.for_call_variables(VARIABLES, outbound=True)
    answers: list[FunctionResponse] = []

    async def respond(response: FunctionResponse) -> None:
        answers.append(response)

    runner = ToolRunner(call.toolset, ToolContext(call_sid="CA1", agent="reminder"), respond)
    runner.start(FunctionCall("fc-1", "whoami", {}))
    await runner.wait_idle()
    assert answers[0].response["result"] == {"patient": "p/7?x=1", "fixed": "clinic-1"}
    # The loaded agent's tool still has the placeholders (other calls fill their own).
    whoami = reminder.toolset.get("whoami")
    assert whoami is not None and whoami.context["patient"] == "{{patient_id}}"


@pytest.fixture
async def crm() -> AsyncIterator[tuple[str, list[web.Request]]]:
    """A local (127.0.0.1) HTTP tool service that records what it was sent."""
    seen: list[web.Request] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response({"saved": True})

    app = web.Application()
    app.router.add_post("/patients/{patient}/answer", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    await runner.cleanup()


async def test_an_http_tool_of_the_copy_posts_to_the_filled_url(
    tmp_path: Path, crm: tuple[str, list[web.Request]]
) -> None:
    base, seen = crm
    text = (
        "name: a\ntools:\n  - name: answer\n    description: d\n    http:\n"
        f"      url: '{base}/patients/{{{{patient_id}}}}/answer?t={{{{time}}}}'\n"
        "      headers: {X-Clinic: '{{clinic}}'}\n"
        "    context: {patient: '{{patient_id}}', name: 'Zoë'}\n"
    )
    agent = load_agent_file(write(tmp_path, "a.yaml", text))
    call = agent.for_call_variables(VARIABLES, outbound=True)
    tool = call.toolset.get("answer")
    assert tool is not None
    context = ToolContext(call_sid="CA1", agent="a", values=tool.context)
    assert await tool.invoke({"answer": "confirmed"}, context) == {"saved": True}
    [request] = seen
    assert request.match_info["patient"] == "p/7?x=1"
    assert request.query["t"] == "Friday 10:00"
    assert request.headers["X-Clinic"] == "Northside Clinic"
    sent: dict[str, Any] = json.loads(request.headers["X-Gateway-Context"])
    assert sent == {"patient": "p/7?x=1", "name": "Zoë"}


# ------------------------------------------------------------------ the example


def test_the_appointment_reminder_example_is_an_outbound_agent() -> None:
    agent = load_agents(REPO / "agents").agents["appointment-reminder"]
    assert agent.lines == () and agent.voicemail == "leave_message"
    needed = {"first_name", "clinic_name", "appointment_time", "appointment_id", "callback_number"}
    assert agent.required_variables(outbound=True) == needed
    values = {name: "x" for name in needed}
    call = agent.for_call_variables(values, outbound=True, voicemail=True)
    assert call.greeting is not None and "{{" not in call.greeting
    assert call.instructions is not None and "{{" not in call.instructions


def test_placeholders_in_the_prompt_file_of_an_inbound_agent_name_its_line(
    tmp_path: Path,
) -> None:
    write(tmp_path, "prompt.md", "Help {{name}}.\n")
    text = "name: a\nlines: ['+15550001111']\nsystem_instruction_file: prompt.md\n"
    assert problems(tmp_path, text) == [
        "F:3: system_instruction_file: uses {{name}}, but inbound calls bring no variables and "
        "this agent answers +15550001111: put it in the outbound_* fields, or fill it in"
    ]
