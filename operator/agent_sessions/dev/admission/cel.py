"""CEL rules (``x-kubernetes-validations``) evaluated with cel-python, imported lazily: ``self``
(and ``oldSelf`` for transition rules) typed by the schema, the server's error wording,
``fieldPath`` and ``reason``."""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterator
from typing import Any

from agent_sessions.dev.admission.field_errors import (
    DUPLICATE,
    FORBIDDEN,
    INVALID,
    MISSING,
    FieldError,
    child_path,
    invalid_value,
    render_value,
    required_value,
)
from agent_sessions.dev.admission.quantity import quantity_functions
from agent_sessions.dev.admission.values import json_type


_CEL_RESERVED = frozenset({
    "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
    "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
    "void", "while",
})


def _cel_property(name: str) -> str:
    """Kubernetes' escaping of property names that are not plain CEL identifiers."""
    if name in _CEL_RESERVED:
        return f"__{name}__"
    for raw, escaped in (("__", "__underscores__"), (".", "__dot__"), ("-", "__dash__"),
                         ("/", "__slash__")):
        name = name.replace(raw, escaped)
    return name


def _to_cel(value: Any, schema: dict) -> Any:
    """A JSON value as the CEL type the API server derives from its schema."""
    from celpy import celtypes

    if value is None:
        return None
    if isinstance(value, dict):
        properties, extra = schema.get("properties") or {}, schema.get("additionalProperties")
        if isinstance(extra, dict):
            return celtypes.MapType({celtypes.StringType(k): _to_cel(v, extra) for k, v in value.items()})
        return celtypes.MapType({celtypes.StringType(_cel_property(k)): _to_cel(v, properties.get(k) or {})
                                 for k, v in value.items()})
    if isinstance(value, list):
        return celtypes.ListType([_to_cel(item, schema.get("items") or {}) for item in value])
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, (int, float)):
        if schema.get("type") == "integer" or (isinstance(value, int) and schema.get("type") != "number"):
            return celtypes.IntType(int(value))
        return celtypes.DoubleType(value)
    typed = {"date-time": celtypes.TimestampType, "date": celtypes.TimestampType,
             "duration": celtypes.DurationType,
             "byte": lambda text: celtypes.BytesType(base64.b64decode(text))}
    try:
        return typed[schema.get("format", "")](value)
    except (KeyError, ValueError, TypeError):
        return celtypes.StringType(value)


def _cel_extensions() -> dict[str, Any]:
    """The Kubernetes string, list and quantity library functions cel-python lacks."""
    from celpy import celtypes

    text, boolean, integer = celtypes.StringType, celtypes.BoolType, celtypes.IntType
    return {
        "lowerAscii": lambda s: text(s.lower()),
        "upperAscii": lambda s: text(s.upper()),
        "trim": lambda s: text(s.strip()),
        "replace": lambda s, old, new: text(s.replace(old, new)),
        "split": lambda s, sep: celtypes.ListType([text(part) for part in s.split(sep)]),
        "join": lambda items, sep="": text(sep.join(items)),
        "substring": lambda s, start, end=None: text(s[int(start):None if end is None else int(end)]),
        "indexOf": lambda target, item: integer(
            target.find(item) if isinstance(target, str) else
            list(target).index(item) if item in target else -1),
        "isSorted": lambda items: boolean(list(items) == sorted(items)),
        **quantity_functions(),
    }


@functools.lru_cache(maxsize=None)
def _compiled(expression: str) -> tuple[Any, str | None]:
    """(program, None) or (None, compile error) for one CEL expression, cached."""
    import celpy

    env = celpy.Environment()
    try:
        return env.program(env.compile(expression), functions=_cel_extensions()), None
    except celpy.CELParseError as exc:
        where = f"{getattr(exc, 'line', '?')}:{getattr(exc, 'column', '?')}"
        return None, f"ERROR: <input>:{where}: Syntax error in {expression.strip()!r}"


def _cel_error_text(exc: Exception) -> str:
    """cel-python's error wording mapped onto cel-go's, as the API server prints it."""
    message = str(exc.args[0]) if exc.args else str(exc)
    cause = exc.args[1] if len(exc.args) > 1 else None
    message = re.sub(r"\s*\(in activation .*", "", message, flags=re.DOTALL)
    if missing := re.match(r"no such member in mapping: '(.*)'", message):
        return f"no such key: {missing[1]}"
    if cause is IndexError:
        return "index out of bounds"
    if cause is ZeroDivisionError:
        return "division by zero"
    if "no matching overload" in message:
        return "no such overload"
    return message


def _evaluate(expression: str, activation: dict[str, Any]) -> tuple[Any, str | None]:
    program, error = _compiled(expression)
    if error is not None:
        return None, f"rule compile error: {error}"
    try:
        result = program.evaluate(activation)
        if isinstance(result, Exception):  # cel-python may return errors as values
            raise result
    except Exception as exc:  # noqa: BLE001 - every evaluator failure is a rule error
        return None, f"{_cel_error_text(exc)} evaluating rule: {expression.strip()}"
    return result, None


def _rule_path(path: str, field_path: str | None) -> str:
    """``fieldPath`` (``.http``, ``['a.b']``, ``[0]``) appended to the rule's own path."""
    for name, key, index in re.findall(r"\.([^.\[]+)|\['([^']*)'\]|\[(\d+)\]", field_path or ""):
        path = child_path(path, name) if name else f"{path}[{key or index}]"
    return path


def rule_errors(value: Any, schema: dict, path: str, old: Any) -> Iterator[FieldError]:
    rules = schema.get("x-kubernetes-validations") or []
    if not rules:
        return
    from celpy.celtypes import BoolType

    type_name = schema.get("type") or json_type(value)
    activation = {"self": _to_cel(value, schema)}
    for rule in rules:
        expression = rule["rule"]
        if re.search(r"\boldSelf\b", expression):
            if old is MISSING or old is None:
                continue  # transition rules only run on updates with a correlated old value
            activation["oldSelf"] = _to_cel(old, schema)
        result, error = _evaluate(expression, activation)
        if error is not None:
            yield invalid_value(path, type_name, error)
        elif not isinstance(result, BoolType):
            yield invalid_value(path, type_name, f"rule must evaluate to a bool, got {result!r}: {expression}")
        elif not result:
            yield _rule_failure(rule, _rule_path(path, rule.get("fieldPath")), value, activation)


def _rule_failure(rule: dict, path: str, value: Any, activation: dict[str, Any]) -> FieldError:
    detail = rule.get("message") or f"failed rule: {rule['rule'].strip()}"
    if rule.get("messageExpression"):
        custom, error = _evaluate(rule["messageExpression"], activation)
        if error is None and isinstance(custom, str) and custom.strip():
            detail = str(custom)
    reason = rule.get("reason")
    if reason == "FieldValueForbidden":
        return FieldError(path, FORBIDDEN, f"{FORBIDDEN}: {detail}")
    if reason == "FieldValueRequired":
        return required_value(path, detail)
    if reason == "FieldValueDuplicate":
        return FieldError(path, DUPLICATE, f"{DUPLICATE}: {render_value(detail)}")
    # The server (1.36) names the value of a failed rule on a scalar (`Invalid value: "-1Gi":
    # <message>`), and none on an object or a list (`Invalid value: <message>`).
    if isinstance(value, (dict, list)) or rule.get("fieldPath"):
        return FieldError(path, INVALID, f"{INVALID}: {detail}")
    return invalid_value(path, value, detail)


# --- public API -----------------------------------------------------------------------
