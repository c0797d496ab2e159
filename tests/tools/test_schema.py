"""Tool parameter schemas: what Live accepts is checked at load; arguments are checked per call."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.tools.schema import (
    MAX_ARGS_JSON_BYTES,
    MAX_STRING_CHARS,
    SchemaError,
    check_parameters_schema,
    validate_args,
)

ORDER = {
    "type": "OBJECT",
    "properties": {
        "order_id": {"type": "string", "pattern": "^[A-Z][0-9]{4}$"},
        "quantity": {"type": "integer", "minimum": 1, "maximum": 10},
        "gift": {"type": "boolean", "nullable": True},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "maxItems": 2},
    },
    "required": ["order_id"],
}


def test_a_good_schema_is_returned_with_lower_case_types() -> None:
    checked = check_parameters_schema(ORDER)
    assert checked["type"] == "object"
    assert checked["properties"]["tags"]["items"] == {"type": "string", "enum": ["a", "b"]}


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ([], "must be a mapping"),
        ({"type": "string"}, "top-level schema must have `type: object`"),
        ({"type": "object", "additionalProperties": False}, "additionalProperties: unsupported"),
        ({"type": "thing"}, "type: must be one of array, boolean"),
        ({"type": "object", "properties": {"a": {}}}, "properties.a: needs a `type`"),
        ({"type": "object", "properties": {"a": "string"}}, "properties.a: must be a schema"),
        ({"type": "object", "required": ["a"]}, "'a' is not one of the properties"),
        ({"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}},
         "properties.a.pattern: not a valid regular expression"),
        ({"type": "object", "minProperties": -1}, "minProperties: must be a whole number"),
        ({"type": "object", "properties": {"a": {"type": "string", "enum": []}}},
         "enum: must be a non-empty list"),
    ],
)  # fmt: skip
def test_bad_schemas_name_the_keyword(schema: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=message.replace("(", r"\(").replace("`", ".")):
        check_parameters_schema(schema)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "order_id: required argument is missing"),
        ({"order_id": 1001}, "order_id: expected string, got number 1001"),
        ({"order_id": "a1001"}, "order_id: 'a1001' does not match"),
        ({"order_id": "A1001", "quantity": 11}, "quantity: must be <= 10, not 11"),
        ({"order_id": "A1001", "quantity": 1.5}, "quantity: expected integer"),
        ({"order_id": "A1001", "gift": "yes"}, "gift: expected boolean"),
        ({"order_id": "A1001", "tags": ["c"]}, r"tags\[0\]: must be one of \['a', 'b'\]"),
        ({"order_id": "A1001", "tags": ["a", "b", "a"]}, "tags: allows at most 2 items"),
        ({"order_id": "A1001", "colour": "red"}, "colour: unknown argument"),
    ],
)
def test_bad_arguments_name_the_argument(args: dict[str, Any], message: str) -> None:
    schema = check_parameters_schema(ORDER)
    with pytest.raises(SchemaError, match=message):
        validate_args(schema, args)


def test_good_arguments_pass() -> None:
    schema = check_parameters_schema(ORDER)
    validate_args(schema, {"order_id": "A1001", "quantity": 2.0, "gift": None, "tags": ["a"]})
    validate_args(check_parameters_schema({"type": "object"}), {})


def test_any_of() -> None:
    either = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    schema = check_parameters_schema({"type": "object", "properties": {"v": either}})
    validate_args(schema, {"v": "x"})
    validate_args(schema, {"v": 3})
    with pytest.raises(SchemaError, match="v: matches none of the allowed forms"):
        validate_args(schema, {"v": [1]})


# --------------------------------------------------------------------------- limits


NOTE = check_parameters_schema(
    {
        "type": "object",
        "properties": {
            "text": {"type": "string"},
            "short": {"type": "string", "maxLength": 5},
            "long": {"type": "string", "maxLength": 10_000},
            "n": {"type": "integer"},
            "capped": {"type": "integer", "maximum": 10},
            "x": {"type": "number"},
            "items": {"type": "array"},
        },
    }
)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"text": "a" * (MAX_STRING_CHARS + 1)},
         f"text: allows at most {MAX_STRING_CHARS} characters, has {MAX_STRING_CHARS + 1}"),
        ({"short": "abcdef"}, "short: allows at most 5 characters, has 6"),
        ({"long": "a" * 9_000, "text": "b" * 9_000},
         f"arguments: 18021 bytes of JSON, at most {MAX_ARGS_JSON_BYTES} are accepted"),
        ({"items": list(range(10_000))}, "arguments: 48901 bytes of JSON, at most"),
        ({"n": 2**63}, "n: 9223372036854775808 is out of range for a whole number"),
        ({"n": -(2**63) - 1}, "n: -9223372036854775809 is out of range"),
        ({"n": 10**400}, r"n: 1000000000.*… \(401 chars\) is out of range for a whole number"),
        ({"n": 1e300}, r"n: 1e\+300 is out of range for a whole number"),
        ({"x": 10**300}, "x: 1000000000.* is out of range for a whole number"),
        ({"capped": 11}, "capped: must be <= 10, not 11"),
        ({"capped": 10**30}, "capped: 1000000000000000000000000000000 is out of range"),
        ({"n": "9" * 500}, r"n: expected integer, got string '99999.*… \(502 chars\)$"),
        ({"z" * 1000: 1}, r"^zzzz.*… \(1000 chars\): unknown argument$"),
    ],
)  # fmt: skip
def test_oversized_arguments_are_refused_before_the_tool_sees_them(
    args: dict[str, Any], message: str
) -> None:
    with pytest.raises(SchemaError, match=message) as caught:
        validate_args(NOTE, args)
    assert len(str(caught.value)) < 200  # what the model (and the log) is told stays short


def test_arguments_at_the_limits_pass() -> None:
    validate_args(NOTE, {"text": "a" * MAX_STRING_CHARS, "long": "b" * 10_000})
    validate_args(NOTE, {"n": 2**63 - 1, "capped": -(2**63), "x": 1.5e300})
    validate_args(NOTE, {"n": 3.0})  # a whole float is still an integer


def test_a_huge_bound_in_a_schema_is_accepted_not_a_crash() -> None:
    schema = check_parameters_schema(
        {"type": "object", "properties": {"n": {"type": "integer", "maximum": 10**400}}}
    )
    validate_args(schema, {"n": 5})
