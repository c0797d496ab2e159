"""Tool parameter schemas: what Live accepts is checked at load; arguments are checked per call."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.tools.schema import SchemaError, check_parameters_schema, validate_args

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
