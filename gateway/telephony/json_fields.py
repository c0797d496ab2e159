"""Reading carriers' JSON frames field by field, sans-IO: every carrier module's checks say
which field broke which rule (TelephonyProtocolError), and never echo a whole payload."""

from __future__ import annotations

from typing import Any, Final

from gateway.telephony.base import TelephonyProtocolError

__all__ = ["MAX_REPR_CHARS", "json_object", "show", "type_name"]

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
