"""Reading carriers' JSON frames field by field, sans-IO: every carrier module's checks say
which field broke which rule (TelephonyProtocolError), and never echo a whole payload."""

from __future__ import annotations

from typing import Any, Final

from gateway.telephony.base import TelephonyProtocolError

__all__ = ["MAX_REPR_CHARS", "decimal_int", "json_object", "opt_str", "show", "type_name"]

MAX_REPR_CHARS: Final = 60
"""An error message quotes at most this much of a bad value."""


def show(value: object) -> str:
    """repr() cut short, so an error message never carries a whole payload."""
    text = repr(value)
    return text if len(text) <= MAX_REPR_CHARS else text[: MAX_REPR_CHARS - 3] + "..."


def type_name(value: object) -> str:
    """JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def json_object(parent: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    """`parent[key]`, which must be a JSON object (`path` names it in errors)."""
    value = parent.get(key)
    if value is None:
        raise TelephonyProtocolError(f"missing field {path}")
    if type(value) is not dict:
        raise TelephonyProtocolError(f"{path} must be an object, got {type_name(value)}")
    return value


def opt_str(parent: dict[str, Any], key: str, path: str, *, max_chars: int) -> str | None:
    """`parent[key]` if present: a string of at most `max_chars`."""
    value = parent.get(key)
    if value is None:
        return None
    if type(value) is not str:
        raise TelephonyProtocolError(f"{path} must be a string, got {type_name(value)}")
    if len(value) > max_chars:
        raise TelephonyProtocolError(f"{path} is {len(value)} chars, over the limit of {max_chars}")
    return value


def decimal_int(parent: dict[str, Any], key: str, path: str, *, max_digits: int) -> int | None:
    """`parent[key]` if present: a non-negative integer below 10**max_digits, sent as a JSON
    number or a decimal string (carriers do both)."""
    value = parent.get(key)
    if value is None:
        return None
    if type(value) is int and 0 <= value < 10**max_digits:
        return value
    if (
        type(value) is str
        and 0 < len(value) <= max_digits
        and value.isascii()
        and value.isdigit()
    ):
        return int(value)
    raise TelephonyProtocolError(
        f"{path} must be a non-negative integer or decimal string, got {show(value)}"
    )
