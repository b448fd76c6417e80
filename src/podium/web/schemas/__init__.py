"""Request and answer models of the JSON API (msgspec: typed structs decoded and validated in one
pass in C, JSON Schema for the document, one small dependency), and the 400 a mismatch gets, naming
the field and what it must be. Limits that are settings are marked with `setting(...)`: the document
and the code that enforces them read the same setting."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec

from podium.errors import InvalidInput

# A moment in answers: RFC 3339, UTC (msgspec writes no `format` for datetimes by itself).
Time = Annotated[datetime, msgspec.Meta(extra_json_schema={"format": "date-time"})]
Url = Annotated[str, msgspec.Meta(extra_json_schema={"format": "uri-reference"})]

# The marker the document replaces with a setting's value: [JSON Schema keyword, setting name].
SETTING_KEY = "x-podium-setting"

T = TypeVar("T")


def setting(keyword: str, name: str) -> msgspec.Meta:
    """A limit that is a setting (`maxLength` from `max_title_chars`): shown in the document."""
    return msgspec.Meta(extra_json_schema={SETTING_KEY: [keyword, name]})


class Model(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=False):
    """A request body: unknown fields are refused, so a typo is an error rather than ignored."""


class Shape(msgspec.Struct, kw_only=True):
    """An answer: built by the handler, encoded as it is, held to the document by the tests."""


class Error(Shape):
    """Every refusal: what went wrong, written for a person."""

    error: str


_KINDS = {
    "bool": "true or false",
    "str": "a string",
    "int": "a whole number",
    "float": "a number",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


def _field(path: str) -> str:
    """`$.title` → `title`, `$.items[0].name` → `items[0].name`."""
    return path.removeprefix("$.").removeprefix("$") or "the body"


def explain(error: msgspec.ValidationError, model: type[Any]) -> str:
    """A person's words for what msgspec found wrong with a body."""
    text = str(error)
    if found := re.match(r"Object contains unknown field `(?P<name>[^`]*)`(?: - at `(?P<at>[^`]*)`)?", text):
        expected = ", ".join(f.encode_name for f in msgspec.structs.fields(model)) if found["at"] in (None, "$") else ""
        hint = f"; expected {expected}" if expected else ""
        return f"unknown field: {found['name']}{hint}"
    if found := re.match(r"Object missing required field `(?P<name>[^`]*)`(?: - at `(?P<at>[^`]*)`)?", text):
        prefix = "" if found["at"] in (None, "$") else _field(found["at"]) + "."
        return f"{prefix}{found['name']} is required"
    if re.match(r"Expected `object`, got `[^`]*`$", text):
        return "the body must be a JSON object"
    if found := re.match(r"Number out of range - at `(?P<at>[^`]*)`", text):
        return f"{_field(found['at'])} is too large"
    if found := re.match(r"Expected `(?P<want>[^`]*)`, got `(?P<got>[^`]*)` - at `(?P<at>[^`]*)`", text):
        wants = [_KINDS.get(part.strip(), part.strip()) for part in found["want"].split("|")]
        return f"{_field(found['at'])} must be {' or '.join(wants)}"
    if found := re.match(r"Expected `[^`]*` of length (?P<rule>[<>]=) (?P<n>\d+) - at `(?P<at>[^`]*)`", text):
        bound = "at most" if found["rule"] == "<=" else "at least"
        return f"{_field(found['at'])} must be {bound} {found['n']} long"
    if found := re.match(r"Expected `[^`]*` (?P<rule>[<>]=?) (?P<n>[-\d.]+) - at `(?P<at>[^`]*)`", text):
        words = {"<=": "at most", ">=": "at least", "<": "less than", ">": "more than"}
        return f"{_field(found['at'])} must be {words[found['rule']]} {found['n']}"
    if found := re.match(r"Invalid enum value (?P<value>.*) - at `(?P<at>[^`]*)`", text):
        return f"{_field(found['at'])}: {found['value']} is not one of the values allowed"
    return f"the body does not fit: {text}"


def convert(value: Any, model: type[T]) -> T:
    """A decoded JSON value as `model`, or InvalidInput saying what is wrong."""
    try:
        return msgspec.convert(value, model)
    except msgspec.ValidationError as error:
        raise InvalidInput(explain(error, model)) from None
