"""One value against its schema: JSON types, formats, string, number and size bounds, enums
and the uniqueness of list items (``x-kubernetes-list-map-keys``, ``set``)."""

from __future__ import annotations

import base64
import datetime
import functools
import ipaddress
import json
import re
from collections.abc import Iterator
from typing import Any

from agent_sessions.dev.admission.field_errors import (
    DUPLICATE,
    INVALID,
    TOO_LONG,
    TOO_MANY,
    TYPE_INVALID,
    UNSUPPORTED,
    FieldError,
    invalid_value,
    render_value,
)

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = rf"{DNS1123_LABEL}(\.{DNS1123_LABEL})*"
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_DURATION = re.compile(r"[-+]?(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w))+)")
_UUID = re.compile(r"[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                       (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _has_type(value: Any, expected: str) -> bool:
    actual = json_type(value)
    if expected == "integer":
        return actual == "integer" or (actual == "number" and float(value).is_integer())
    if expected == "number":
        return actual in ("integer", "number")
    return actual == expected


def type_mismatch(value: Any, expected: str, path: str) -> FieldError:
    actual = json_type(value)
    return FieldError(path, TYPE_INVALID, f'{INVALID}: {render_value(actual)}: {path} in body must be of type '
                                          f'{expected}: "{actual}"')


def type_error(value: Any, schema: dict, path: str) -> FieldError | None:
    """The type mismatch of ``value``, if any; ``int-or-string`` reads as two types."""
    if schema.get("x-kubernetes-int-or-string"):
        expected = ["integer", "string"]
    elif schema.get("type"):
        expected = [schema["type"]]
    else:
        return None
    if value is None and schema.get("nullable"):
        return None
    if any(_has_type(value, name) for name in expected):
        return None
    return type_mismatch(value, ",".join(expected), path)


def _same(left: Any, right: Any) -> bool:
    """JSON equality: ``1`` and ``true`` differ, ``1`` and ``1.0`` do not."""
    return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True) or (
        json_type(left) in ("integer", "number") and json_type(right) in ("integer", "number")
        and left == right)


def _format_ok(text: str, fmt: str) -> bool:
    """The kube-openapi string formats we know; unknown formats pass like on the server."""
    try:
        if fmt in ("date-time", "datetime"):
            return bool(_RFC3339.fullmatch(text)) and bool(
                datetime.datetime.fromisoformat(text.upper().replace(" ", "T")))
        if fmt == "date":
            return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", text)) and bool(
                datetime.date.fromisoformat(text))
        if fmt == "byte":
            return bool(base64.b64decode(text, validate=True) is not None)
        if fmt in ("ipv4", "ipv6"):
            return ipaddress.ip_address(text).version == int(fmt[-1])
        if fmt == "cidr":
            return bool(ipaddress.ip_network(text, strict=False))
    except ValueError:
        return False
    patterns = {"duration": _DURATION, "uuid": _UUID, "email": _EMAIL,
                "hostname": re.compile(DNS1123_SUBDOMAIN, re.IGNORECASE)}
    return fmt not in patterns or bool(patterns[fmt].fullmatch(text))


@functools.lru_cache(maxsize=None)
def _regex(pattern: str) -> Any:
    """The server's regexp engine is RE2 (Go's `regexp`): `$` matches only at the very end and
    `\\s` only ASCII whitespace, where Python's `re` lets `^x$` match `"x\\n"`. A pattern meant
    to refuse a trailing newline must refuse it here too, so RE2 it is (cel-python's own)."""
    try:
        import re2
    except ImportError:  # pragma: no cover - cel-python depends on it
        return re.compile(pattern)
    return re2.compile(pattern)


def _string_errors(text: str, schema: dict, path: str) -> Iterator[FieldError]:
    if "maxLength" in schema and len(text) > schema["maxLength"]:
        yield FieldError(path, TOO_LONG, f"{TOO_LONG}: may not be more than {schema['maxLength']} bytes")
    if "minLength" in schema and len(text) < schema["minLength"]:
        yield invalid_value(path, text,
                       f"{path} in body should be at least {schema['minLength']} chars long")
    if "pattern" in schema:
        try:
            matched = _regex(schema["pattern"]).search(text) is not None
        except Exception as exc:  # noqa: BLE001 - re.error or re2's error
            yield invalid_value(path, text, f"{path} has an invalid pattern {schema['pattern']!r}: {exc}")
        else:
            if not matched:
                yield invalid_value(path, text, f"{path} in body should match '{schema['pattern']}'")
    fmt = schema.get("format")
    if fmt and not _format_ok(text, fmt):
        yield invalid_value(path, text, f'{path} in body must be of type {fmt}: {render_value(text)}')


def _number_errors(number: float, schema: dict, path: str) -> Iterator[FieldError]:
    bounds = (("maximum", "exclusiveMaximum", "less than", lambda a, b: a > b, lambda a, b: a >= b),
              ("minimum", "exclusiveMinimum", "greater than", lambda a, b: a < b, lambda a, b: a <= b))
    for key, exclusive, words, fails, fails_exclusive in bounds:
        if key not in schema:
            continue
        limit = schema[key]
        if schema.get(exclusive) and fails_exclusive(number, limit):
            yield invalid_value(path, number, f"{path} in body should be {words} {render_value(limit)}")
        elif not schema.get(exclusive) and fails(number, limit):
            yield invalid_value(path, number, f"{path} in body should be {words} or equal to {render_value(limit)}")
    factor = schema.get("multipleOf")
    exact = isinstance(number, int) and isinstance(factor, int)
    if factor and (number % factor != 0 if exact else not (number / factor).is_integer()):
        yield invalid_value(path, number, f"{path} in body should be a multiple of {render_value(factor)}")
    low, high = _INT_RANGES.get(schema.get("format", ""), (None, None))
    if low is not None and not low <= number <= high:
        yield invalid_value(path, number, f"{path} in body must be of type {schema['format']}: {render_value(number)}")


def _size_errors(size: int, schema: dict, path: str, noun: str) -> Iterator[FieldError]:
    most, least = ("maxItems", "minItems") if noun == "items" else ("maxProperties", "minProperties")
    if most in schema and size > schema[most]:
        yield FieldError(path, TOO_MANY, f"{TOO_MANY}: {size}: must have at most {schema[most]} items")
    if least in schema and size < schema[least]:
        yield invalid_value(path, size, f"{path} in body should have at least {schema[least]} {noun}")


def value_errors(value: Any, schema: dict, path: str) -> Iterator[FieldError]:
    """Checks on a value of the right type that need no descent: enum, bounds, formats."""
    enum = schema.get("enum")
    if enum is not None and not any(_same(value, allowed) for allowed in enum):
        supported = ", ".join(render_value(allowed) for allowed in enum)
        yield FieldError(path, UNSUPPORTED,
                         f"{UNSUPPORTED}: {render_value(value)}: supported values: {supported}")
    if isinstance(value, str):
        yield from _string_errors(value, schema, path)
    elif json_type(value) in ("integer", "number"):
        yield from _number_errors(value, schema, path)
    elif isinstance(value, list):
        yield from _size_errors(len(value), schema, path, "items")
    elif isinstance(value, dict):
        yield from _size_errors(len(value), schema, path, "properties")


def list_key(item: Any, keys: list[str]) -> str:
    if isinstance(item, dict) and keys:
        return json.dumps({key: item.get(key) for key in keys}, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(item, sort_keys=True, ensure_ascii=False)


def duplicate_errors(items: list, schema: dict, path: str) -> Iterator[FieldError]:
    list_type = schema.get("x-kubernetes-list-type")
    if list_type not in ("set", "map"):
        return
    keys = schema.get("x-kubernetes-list-map-keys", []) if list_type == "map" else []
    seen: set[str] = set()
    for index, item in enumerate(items):
        key = list_key(item, keys)
        if key in seen:
            shown = key if keys else render_value(item)
            yield FieldError(f"{path}[{index}]", DUPLICATE, f"{DUPLICATE}: {shown}")
        seen.add(key)
