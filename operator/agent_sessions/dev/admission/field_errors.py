"""Field errors as the API server words them: the error types, :class:`FieldError`, and the
constructors the checks use (paths printed like ``field.Path``)."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

INVALID = "Invalid value"
REQUIRED = "Required value"
UNSUPPORTED = "Unsupported value"
TOO_LONG = "Too long"
TOO_MANY = "Too many"
DUPLICATE = "Duplicate value"
FORBIDDEN = "Forbidden"
UNKNOWN_FIELD = "Unknown field"
TYPE_INVALID = "Invalid type"
"""A value of the wrong JSON type (printed as ``Invalid value``, as the server does)."""
BLOCKING = frozenset({TYPE_INVALID, UNSUPPORTED, REQUIRED, TOO_LONG, TOO_MANY})
SKIPPED_RULES = ("some validation rules were not checked because the object was invalid; "
                 "correct the existing errors to complete validation")
"""What the server adds when schema errors kept it from evaluating the CEL rules."""
MISSING: Any = object()  # "no correlated old value": transition rules are skipped
_SIMPLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class FieldError:
    """One field error as the API server reports it in a 422 ``Invalid`` status.

    ``message`` starts with the type wording (``Required value``, ``Invalid value: "x":
    ...``); ``str()`` prefixes the field path like ``field.Error.Error()`` does, printing
    the document root as ``<nil>``.  Unknown fields read ``unknown field "spec.foo"``.
    """

    path: str
    type: str
    message: str

    def __str__(self) -> str:
        if self.type == UNKNOWN_FIELD:
            return self.message
        return f"{self.path or '<nil>'}: {self.message}"


def render_value(value: Any) -> str:
    """A value the way field errors print it: strings as Go's `%q`, containers as JSON."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return go_quote(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
               '"': '\\"', "\\": "\\\\"}


def go_quote(text: str) -> str:
    """`strconv.Quote`: printable characters kept, the rest escaped (`\\n`, `\\x00`, `\\u00a0`)."""
    out = []
    for char in text:
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char == " " or unicodedata.category(char)[0] in "LMNPS":
            out.append(char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def invalid_value(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(path, INVALID, f"{INVALID}: {render_value(value)}: {detail}")


def required_value(path: str, detail: str = "") -> FieldError:
    return FieldError(path, REQUIRED, f"{REQUIRED}: {detail}" if detail else REQUIRED)


def unknown_field(path: str) -> FieldError:
    return FieldError(path, UNKNOWN_FIELD, f'unknown field "{path}"')


def child_path(path: str, key: str) -> str:
    if _SIMPLE_KEY.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{key}]"
