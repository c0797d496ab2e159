"""Tool parameters: the JSON-schema subset Gemini Live accepts, checked once, enforced per call.

An agent declares each tool's parameters as a JSON schema (`type: object`, `properties`,
`required`, …). `check_parameters_schema` rejects what the Live API would reject, naming the
keyword path, so the mistake shows up in `gateway agents check` rather than mid-call.
`validate_args` checks the model's arguments against the same schema before a tool runs: a
model can (rarely) send a wrong type or forget a required argument, and the tool should never
see that. Arguments are bounded before anything looks at them: at most `MAX_ARGS_JSON_BYTES`
of JSON, strings at most `maxLength` (else `MAX_STRING_CHARS`), whole numbers within int64
(so a 400-digit "integer" is an argument error, not an OverflowError in a tool).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_ARGS_JSON_BYTES",
    "MAX_STRING_CHARS",
    "SCHEMA_KEYWORDS",
    "SCHEMA_TYPES",
    "SchemaError",
    "check_parameters_schema",
    "validate_args",
]

SCHEMA_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object"})
"""JSON-schema type names (upper-case spellings are accepted too and mean the same)."""

SCHEMA_KEYWORDS = frozenset(
    {
        "type", "description", "title", "format", "nullable", "enum", "default", "example",
        "properties", "required", "propertyOrdering", "minProperties", "maxProperties",
        "items", "minItems", "maxItems", "minimum", "maximum", "minLength", "maxLength",
        "pattern", "anyOf",
    }
)  # fmt: skip
"""The keywords of the OpenAPI schema subset Gemini's function declarations understand."""

MAX_ARGS_JSON_BYTES = 16 * 1024
"""A tool call's arguments, as compact JSON, may be this long: a tool gets words, not files."""
MAX_STRING_CHARS = 4096
"""The longest string argument when its schema sets no `maxLength`."""
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""Whole-number arguments must fit here (what databases and most services take)."""
_SHOWN_CHARS = 60
"""How much of a bad value an error message repeats (it goes to the model and the log)."""

_NUMBER_KEYWORDS = ("minimum", "maximum")
_COUNT_KEYWORDS = (
    "minProperties", "maxProperties", "minItems", "maxItems", "minLength", "maxLength",
)  # fmt: skip


class SchemaError(ValueError):
    """A parameters schema, or a value checked against one, is wrong; the message says where."""


def check_parameters_schema(schema: Any) -> dict[str, Any]:
    """A checked copy of a tool's `parameters` schema (types lower-cased), or `SchemaError`."""
    if not isinstance(schema, Mapping):
        raise SchemaError(f"must be a mapping (a JSON schema), not {_kind(schema)}")
    checked = _check(schema, "")
    if checked.get("type") != "object":
        raise SchemaError("the top-level schema must have `type: object`")
    return checked


def _check(schema: Mapping[str, Any], path: str) -> dict[str, Any]:
    where = path or "parameters"
    out: dict[str, Any] = {}
    for key, value in schema.items():
        here = f"{path}.{key}" if path else str(key)
        if key not in SCHEMA_KEYWORDS:
            raise SchemaError(f"{here}: unsupported schema keyword {key!r}")
        if key == "type":
            if not isinstance(value, str) or value.lower() not in SCHEMA_TYPES:
                raise SchemaError(
                    f"{here}: must be one of {', '.join(sorted(SCHEMA_TYPES))}, not {value!r}"
                )
            out[key] = value.lower()
        elif key == "properties":
            if not isinstance(value, Mapping):
                raise SchemaError(f"{here}: must be a mapping of parameter name to schema")
            out[key] = {
                str(name): _check(_mapping(sub, f"{here}.{name}"), f"{here}.{name}")
                for name, sub in value.items()
            }
        elif key == "items":
            out[key] = _check(_mapping(value, here), here)
        elif key == "anyOf":
            if not isinstance(value, list) or not value:
                raise SchemaError(f"{here}: must be a non-empty list of schemas")
            out[key] = [
                _check(_mapping(sub, f"{here}.{i}"), f"{here}.{i}") for i, sub in enumerate(value)
            ]
        elif key in ("required", "propertyOrdering"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SchemaError(f"{here}: must be a list of parameter names")
            out[key] = list(value)
        elif key == "enum":
            if not isinstance(value, list) or not value:
                raise SchemaError(f"{here}: must be a non-empty list")
            out[key] = list(value)
        elif key in _NUMBER_KEYWORDS:
            if not _is_number(value):
                raise SchemaError(f"{here}: must be a number, not {value!r}")
            out[key] = value
        elif key in _COUNT_KEYWORDS:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise SchemaError(f"{here}: must be a whole number >= 0, not {value!r}")
            out[key] = value
        elif key == "pattern":
            try:
                re.compile(str(value))
            except re.error as exc:
                raise SchemaError(f"{here}: not a valid regular expression: {exc}") from None
            out[key] = str(value)
        elif key == "nullable":
            if not isinstance(value, bool):
                raise SchemaError(f"{here}: must be true or false")
            out[key] = value
        elif key in ("description", "title", "format"):
            if not isinstance(value, str):
                raise SchemaError(f"{here}: must be text")
            out[key] = value
        else:  # default, example: any JSON value
            out[key] = value
    if "type" not in out and "anyOf" not in out:
        raise SchemaError(f"{where}: needs a `type`")
    required = out.get("required", [])
    properties = out.get("properties", {})
    for name in required:
        if name not in properties:
            raise SchemaError(f"{where}.required: {name!r} is not one of the properties")
    return out


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SchemaError(f"{where}: must be a schema (a mapping), not {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _is_number(value: Any) -> bool:
    """A JSON number: any int (exact, never converted to float) or a finite float."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


# --------------------------------------------------------------------------- arguments


def validate_args(schema: Mapping[str, Any], args: Any) -> None:
    """Raise `SchemaError` (naming the argument) unless `args` fits a checked schema.

    Unknown arguments are rejected too: a tool is called with exactly what it declared. Their
    size is checked first (`MAX_ARGS_JSON_BYTES`), so nothing walks an oversized value.
    """
    _check_size(args)
    _validate(schema, args, "")


def _check_size(args: Any) -> None:
    try:
        size = len(json.dumps(args, separators=(",", ":"), allow_nan=False).encode())
    except (TypeError, ValueError, RecursionError):
        raise SchemaError("arguments: not plain JSON (or nested too deeply)") from None
    if size > MAX_ARGS_JSON_BYTES:
        raise SchemaError(
            f"arguments: {size} bytes of JSON, at most {MAX_ARGS_JSON_BYTES} are accepted"
        )


def _clip(text: str) -> str:
    """`text`, clipped: a bad value may be long and is repeated to the model and the log."""
    return text if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS]}… ({len(text)} chars)"


def _show(value: Any) -> str:
    return _clip(repr(value))


def _validate(schema: Mapping[str, Any], value: Any, path: str) -> None:
    where = path or "arguments"
    if value is None and schema.get("nullable"):
        return
    variants = schema.get("anyOf")
    if variants is not None:
        problems = []
        for variant in variants:
            try:
                _validate(variant, value, path)
                break
            except SchemaError as exc:
                problems.append(str(exc))
        else:
            raise SchemaError(f"{where}: matches none of the allowed forms ({'; '.join(problems)})")
    kind = schema.get("type")
    if kind is not None and not _has_type(value, kind):
        raise SchemaError(f"{where}: expected {kind}, got {_json_kind(value)} {_show(value)}")
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        raise SchemaError(f"{where}: must be one of {enum!r}, not {_show(value)}")
    if isinstance(value, str):
        _check_bounds(len(value), schema, "minLength", "maxLength", where, "characters")
        if "maxLength" not in schema and len(value) > MAX_STRING_CHARS:
            raise SchemaError(
                f"{where}: allows at most {MAX_STRING_CHARS} characters, has {len(value)}"
            )
        pattern = schema.get("pattern")
        if pattern is not None and re.search(pattern, value) is None:
            raise SchemaError(f"{where}: {_show(value)} does not match {pattern!r}")
    elif _is_number(value):
        if isinstance(value, int) or kind == "integer":
            if not INT64_MIN <= value <= INT64_MAX:
                raise SchemaError(
                    f"{where}: {_show(value)} is out of range for a whole number "
                    f"({INT64_MIN} to {INT64_MAX})"
                )
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and value < low:
            raise SchemaError(f"{where}: must be >= {low}, not {value}")
        if high is not None and value > high:
            raise SchemaError(f"{where}: must be <= {high}, not {value}")
    elif isinstance(value, list):
        _check_bounds(len(value), schema, "minItems", "maxItems", where, "items")
        items = schema.get("items")
        if items is not None:
            for i, item in enumerate(value):
                _validate(items, item, f"{where}[{i}]")
    elif isinstance(value, dict):
        _check_bounds(len(value), schema, "minProperties", "maxProperties", where, "properties")
        properties: Mapping[str, Any] = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                raise SchemaError(f"{_join(path, name)}: required argument is missing")
        for name, item in value.items():
            sub = properties.get(name)
            if sub is None:
                raise SchemaError(f"{_join(path, _clip(str(name)))}: unknown argument")
            _validate(sub, item, _join(path, name))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _check_bounds(
    size: int, schema: Mapping[str, Any], low_key: str, high_key: str, where: str, unit: str
) -> None:
    low, high = schema.get(low_key), schema.get(high_key)
    if low is not None and size < low:
        raise SchemaError(f"{where}: needs at least {low} {unit}, has {size}")
    if high is not None and size > high:
        raise SchemaError(f"{where}: allows at most {high} {unit}, has {size}")


def _has_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        if isinstance(value, float):
            return value.is_integer()  # False for inf and nan
        return _is_number(value)
    if kind == "number":
        return _is_number(value)
    if kind == "array":
        return isinstance(value, list)
    return isinstance(value, dict)  # object


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
