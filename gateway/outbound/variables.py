"""Call variables: `{{name}}` placeholders in an agent's text, filled per outbound call.

An outbound call carries variables (`{"first_name": "Ana", "appointment": "Friday 10:00"}`)
that personalise the agent's instructions, greeting, voicemail message and tool context.
This is deliberately *not* a template language: a placeholder is `{{name}}` (spaces allowed
inside the braces, `{{ name }}`), nothing else is special, nothing is evaluated, and values
are inserted verbatim in one pass — a value that itself contains `{{x}}` stays literal, so a
variable can never pull in another one (or anything else).

Values come from whoever places the call (the API, a campaign file), so they are checked
(`check_variables`): text only, one line, bounded, with errors that name the variable.
Sans-IO: no imports beyond the standard library, nothing here touches a call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Final

__all__ = [
    "MAX_NAME_CHARS",
    "MAX_VALUE_CHARS",
    "MAX_VARIABLES",
    "PLACEHOLDER",
    "VARIABLE_NAME",
    "InvalidVariables",
    "MissingVariables",
    "check_variables",
    "fill",
    "malformed_placeholders",
    "placeholders",
]

MAX_VARIABLES: Final = 64
"""Variables per call: far more than any prompt uses; bounds what one request can carry."""
MAX_NAME_CHARS: Final = 64
MAX_VALUE_CHARS: Final = 1000
"""A value is a name, a date, an amount, a short note — never a document."""

VARIABLE_NAME: Final = re.compile(rf"[A-Za-z_][A-Za-z0-9_]{{0,{MAX_NAME_CHARS - 1}}}")
"""What a variable may be called (match with `fullmatch`): an identifier, ≤ 64 characters."""
PLACEHOLDER: Final = re.compile(r"\{\{[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*\}\}")
"""`{{name}}` or `{{ name }}`; group 1 is the name."""
_BRACES: Final = re.compile(r"\{\{[^{}\n]*\}\}")
"""Anything in double braces: placeholders, and typos of them (`{{first name}}`)."""
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


class MissingVariables(ValueError):
    """Text uses placeholders the call has no variables for; `names` lists them, sorted."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names: tuple[str, ...] = tuple(sorted(set(names)))
        super().__init__("missing variables: " + ", ".join(self.names))


class InvalidVariables(ValueError):
    """The variables of a call break the rules; `problems` has one message per variable."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("; ".join(self.problems))


def placeholders(text: str | None) -> set[str]:
    """The variable names `text` uses (empty for None)."""
    if not text:
        return set()
    return {match.group(1) for match in PLACEHOLDER.finditer(text)}


def malformed_placeholders(text: str | None) -> list[str]:
    """Double-brace spans that are not placeholders (`{{first name}}`, `{{}}`), in order:
    almost always a typo that would otherwise be spoken as is."""
    if not text:
        return []
    return [m.group(0) for m in _BRACES.finditer(text) if not PLACEHOLDER.fullmatch(m.group(0))]


def fill(
    text: str, variables: Mapping[str, str], *, quote: Callable[[str], str] | None = None
) -> str:
    """`text` with every placeholder replaced by its variable's value, verbatim (or through
    `quote`, e.g. URL-encoding for a URL); raises `MissingVariables` naming every one absent.

    One pass over `text`: inserted values are never looked at again.
    """
    missing = placeholders(text) - variables.keys()
    if missing:
        raise MissingVariables(missing)

    def value(match: re.Match[str]) -> str:
        found = variables[match.group(1)]
        return quote(found) if quote is not None else found

    return PLACEHOLDER.sub(value, text)


def check_variables(variables: object) -> dict[str, str]:
    """The variables as a plain `dict[str, str]`, or `InvalidVariables` naming each bad one.

    Values must be strings — numbers and booleans are refused rather than converted, so that
    `0.10` or `true` reach the caller exactly as the sender wrote them ("send it as text").
    A value is one non-empty line of at most `MAX_VALUE_CHARS` characters (no control
    characters: values also go into tool URLs and headers).
    """
    if not isinstance(variables, Mapping):
        raise InvalidVariables(["variables must be an object of names to text values"])
    problems: list[str] = []
    if len(variables) > MAX_VARIABLES:
        problems.append(f"at most {MAX_VARIABLES} variables (got {len(variables)})")
    checked: dict[str, str] = {}
    for name, value in variables.items():
        if not isinstance(name, str) or not VARIABLE_NAME.fullmatch(name):
            problems.append(
                f"variable {str(name)[:80]!r}: a name is letters, digits and '_', not starting "
                f"with a digit, at most {MAX_NAME_CHARS} characters"
            )
            continue
        if not isinstance(value, str):
            kind = "null" if value is None else type(value).__name__
            problems.append(
                f"variable {name!r}: must be a string, got {kind} (send numbers and dates as "
                'text, e.g. "42")'
            )
            continue
        if not value.strip():
            problems.append(f"variable {name!r}: must not be empty")
        elif len(value) > MAX_VALUE_CHARS:
            problems.append(
                f"variable {name!r}: at most {MAX_VALUE_CHARS} characters (got {len(value)})"
            )
        elif _CONTROL.search(value):
            problems.append(
                f"variable {name!r}: must be one line of text (no line breaks or control "
                "characters)"
            )
        else:
            checked[name] = value
    if problems:
        raise InvalidVariables(problems)
    return checked
