"""`{{name}}` call variables: finding, filling (verbatim, one pass), checking what a call sends."""

from __future__ import annotations

import pytest

from gateway.outbound.variables import (
    MAX_VALUE_CHARS,
    MAX_VARIABLES,
    InvalidVariables,
    MissingVariables,
    check_variables,
    fill,
    malformed_placeholders,
    placeholders,
)


def test_placeholders_are_names_in_double_braces_with_optional_spaces() -> None:
    text = "Hi {{first_name}}, {{ clinic }} at {{\ttime\t}}; {{first_name}} again. {{_x1}}"
    assert placeholders(text) == {"first_name", "clinic", "time", "_x1"}
    assert placeholders(None) == set() and placeholders("") == set()


@pytest.mark.parametrize(
    "text", ["{first_name}", "{{first name}}", "{{1st}}", "{{}}", "{{a-b}}", "{{a.b}}", "{{{a}"]
)
def test_what_is_not_the_grammar_is_not_a_placeholder(text: str) -> None:
    assert placeholders(text) == set()
    assert fill(text, {}) == text


def test_malformed_placeholders_are_found_for_the_agent_check() -> None:
    text = "{{ok}} {{first name}} {{}} {{2nd}} {single}"
    assert malformed_placeholders(text) == ["{{first name}}", "{{}}", "{{2nd}}"]
    assert malformed_placeholders("{{ fine }}") == []


def test_fill_replaces_every_occurrence() -> None:
    assert fill("{{a}}-{{ a }}-{{b}}", {"a": "1", "b": "2", "unused": "x"}) == "1-1-2"


def test_values_are_inserted_verbatim_and_never_expanded_again() -> None:
    variables = {"a": "{{b}}", "b": "B", "c": "\\1 $x %s {0}"}
    assert fill("{{a}} {{c}}", variables) == "{{b}} \\1 $x %s {0}"


def test_fill_names_every_missing_variable_sorted() -> None:
    with pytest.raises(MissingVariables) as caught:
        fill("{{zeta}} {{alpha}} {{known}} {{alpha}}", {"known": "k"})
    assert caught.value.names == ("alpha", "zeta")
    assert str(caught.value) == "missing variables: alpha, zeta"
    assert isinstance(caught.value, ValueError)


def test_fill_can_quote_values() -> None:
    assert fill("/a/{{id}}", {"id": "x/y"}, quote=lambda v: v.replace("/", "%2F")) == "/a/x%2Fy"


def test_check_variables_accepts_text() -> None:
    assert check_variables({"first_name": "Ana", "_n2": "42"}) == {"first_name": "Ana", "_n2": "42"}


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"amount": 42}, "variable 'amount': must be a string, got int"),
        ({"ok": True}, "variable 'ok': must be a string, got bool"),
        ({"x": None}, "variable 'x': must be a string, got null"),
        ({"first name": "A"}, "variable 'first name': a name is letters"),
        ({"1st": "A"}, "variable '1st': a name is letters"),
        ({"a" * 65: "A"}, "at most 64 characters"),
        ({"empty": " "}, "variable 'empty': must not be empty"),
        ({"long": "x" * (MAX_VALUE_CHARS + 1)}, "variable 'long': at most 1000 characters"),
        ({"two": "a\nb"}, "variable 'two': must be one line of text"),
        ({"nul": "a\x00"}, "variable 'nul': must be one line of text"),
    ],
)
def test_check_variables_names_the_bad_variable(variables: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidVariables, match=message.replace("(", r"\(")):
        check_variables(variables)


def test_check_variables_reports_every_problem_and_bounds_the_count() -> None:
    with pytest.raises(InvalidVariables) as caught:
        check_variables({"a": 1, "b": "", "c": "ok"})
    assert len(caught.value.problems) == 2
    many = {f"v{i}": "x" for i in range(MAX_VARIABLES + 1)}
    with pytest.raises(InvalidVariables, match="at most 64 variables"):
        check_variables(many)
    assert len(check_variables(dict(list(many.items())[:MAX_VARIABLES]))) == MAX_VARIABLES


def test_check_variables_wants_a_mapping() -> None:
    with pytest.raises(InvalidVariables, match="an object"):
        check_variables(["a"])
