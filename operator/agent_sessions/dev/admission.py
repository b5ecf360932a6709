"""Admission of custom resources against a CRD schema, as the Kubernetes API server does it.

Why this exists: the embedded Kubernetes API (``agent-sessions dev``) has to reject bad
creates and updates with the same 422 a real cluster would return, and the manifest
corpus tests have to prove that every invalid manifest is refused by our generated CRDs
without starting a cluster.  Both need one checker that follows the API server
(apiextensions-apiserver + kube-openapi + the CEL validator) closely: the same structural
schema semantics, the same field paths and the same error wording, e.g.::

    spec.provider: Unsupported value: "docker": supported values: "pod", "http", "tmux"

Deliberate differences from a real API server, all on the strict side:

* ``null`` for a field without ``nullable: true`` is an error (``must be of type
  string: "null"``).  A real server silently prunes such nulls before defaulting; we
  prefer to flag them because a null in our manifests is always a templating mistake.
* Unknown fields are reported (type ``Unknown field``) as with server-side field
  validation ``Strict`` / ``kubectl apply --validate=strict``.  ``prune`` shows what a
  server with the default field validation would silently drop.
* Defaults are not applied, validation ratcheting (1.30+) is not emulated, and
  ``metadata`` is checked only for the rules listed in ``_metadata_errors``.

CEL rules (``x-kubernetes-validations``) run with cel-python, which is imported lazily so
that plain schema checks work without it.  Each rule sees ``self`` with unknown fields
pruned and typed by the schema (``number`` as double, ``date-time`` as timestamp, ...).
"""

from __future__ import annotations

import base64
import copy
import datetime
import functools
import ipaddress
import json
import re
from collections.abc import Iterator
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
_BLOCKING = frozenset({TYPE_INVALID, UNSUPPORTED, REQUIRED, TOO_LONG, TOO_MANY})
SKIPPED_RULES = ("some validation rules were not checked because the object was invalid; "
                 "correct the existing errors to complete validation")
"""What the server adds when schema errors kept it from evaluating the CEL rules."""

_MISSING: Any = object()  # "no correlated old value": transition rules are skipped
_IMPLICIT_FIELDS = frozenset({"apiVersion", "kind", "metadata"})
_OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields",
})
_SIMPLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*"
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = rf"({_QUALIFIED_NAME})?"
_SUBDOMAIN_HELP = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or"
    " '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex"
    f" used for validation is '{_DNS1123_SUBDOMAIN}')")
_LABEL_HELP = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and"
    " must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex"
    f" used for validation is '{_DNS1123_LABEL}')")
_NAME_PART_HELP = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end"
    " with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used"
    f" for validation is '{_QUALIFIED_NAME}')")
_LABEL_VALUE_HELP = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or"
    " '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or"
    f" 'my_value',  or '12345', regex used for validation is '{_LABEL_VALUE}')")
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_DURATION = re.compile(r"[-+]?(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w))+)")
_UUID = re.compile(r"[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_CEL_RESERVED = frozenset({
    "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
    "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
    "void", "while",
})


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


def _render(value: Any) -> str:
    """A value the way field errors print it: strings quoted, containers as JSON."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(path, INVALID, f"{INVALID}: {_render(value)}: {detail}")


def _required(path: str, detail: str = "") -> FieldError:
    return FieldError(path, REQUIRED, f"{REQUIRED}: {detail}" if detail else REQUIRED)


def _unknown(path: str) -> FieldError:
    return FieldError(path, UNKNOWN_FIELD, f'unknown field "{path}"')


def _child(path: str, key: str) -> str:
    if _SIMPLE_KEY.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{key}]"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                       (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _has_type(value: Any, expected: str) -> bool:
    actual = _json_type(value)
    if expected == "integer":
        return actual == "integer" or (actual == "number" and float(value).is_integer())
    if expected == "number":
        return actual in ("integer", "number")
    return actual == expected


def _type_mismatch(value: Any, expected: str, path: str) -> FieldError:
    actual = _json_type(value)
    return FieldError(path, TYPE_INVALID, f'{INVALID}: {_render(actual)}: {path} in body must be of type '
                                          f'{expected}: "{actual}"')


def _type_error(value: Any, schema: dict, path: str) -> FieldError | None:
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
    return _type_mismatch(value, ",".join(expected), path)


def _same(left: Any, right: Any) -> bool:
    """JSON equality: ``1`` and ``true`` differ, ``1`` and ``1.0`` do not."""
    return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True) or (
        _json_type(left) in ("integer", "number") and _json_type(right) in ("integer", "number")
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
                "hostname": re.compile(_DNS1123_SUBDOMAIN, re.IGNORECASE)}
    return fmt not in patterns or bool(patterns[fmt].fullmatch(text))


@functools.lru_cache(maxsize=None)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _string_errors(text: str, schema: dict, path: str) -> Iterator[FieldError]:
    if "maxLength" in schema and len(text) > schema["maxLength"]:
        yield FieldError(path, TOO_LONG, f"{TOO_LONG}: may not be more than {schema['maxLength']} bytes")
    if "minLength" in schema and len(text) < schema["minLength"]:
        yield _invalid(path, text,
                       f"{path} in body should be at least {schema['minLength']} chars long")
    if "pattern" in schema:
        try:
            matched = _regex(schema["pattern"]).search(text) is not None
        except re.error as exc:
            yield _invalid(path, text, f"{path} has an invalid pattern {schema['pattern']!r}: {exc}")
        else:
            if not matched:
                yield _invalid(path, text, f"{path} in body should match '{schema['pattern']}'")
    fmt = schema.get("format")
    if fmt and not _format_ok(text, fmt):
        yield _invalid(path, text, f'{path} in body must be of type {fmt}: {_render(text)}')


def _number_errors(number: float, schema: dict, path: str) -> Iterator[FieldError]:
    bounds = (("maximum", "exclusiveMaximum", "less than", lambda a, b: a > b, lambda a, b: a >= b),
              ("minimum", "exclusiveMinimum", "greater than", lambda a, b: a < b, lambda a, b: a <= b))
    for key, exclusive, words, fails, fails_exclusive in bounds:
        if key not in schema:
            continue
        limit = schema[key]
        if schema.get(exclusive) and fails_exclusive(number, limit):
            yield _invalid(path, number, f"{path} in body should be {words} {_render(limit)}")
        elif not schema.get(exclusive) and fails(number, limit):
            yield _invalid(path, number, f"{path} in body should be {words} or equal to {_render(limit)}")
    factor = schema.get("multipleOf")
    exact = isinstance(number, int) and isinstance(factor, int)
    if factor and (number % factor != 0 if exact else not (number / factor).is_integer()):
        yield _invalid(path, number, f"{path} in body should be a multiple of {_render(factor)}")
    low, high = _INT_RANGES.get(schema.get("format", ""), (None, None))
    if low is not None and not low <= number <= high:
        yield _invalid(path, number, f"{path} in body must be of type {schema['format']}: {_render(number)}")


def _size_errors(size: int, schema: dict, path: str, noun: str) -> Iterator[FieldError]:
    most, least = ("maxItems", "minItems") if noun == "items" else ("maxProperties", "minProperties")
    if most in schema and size > schema[most]:
        yield FieldError(path, TOO_MANY, f"{TOO_MANY}: {size}: must have at most {schema[most]} items")
    if least in schema and size < schema[least]:
        yield _invalid(path, size, f"{path} in body should have at least {schema[least]} {noun}")


def _value_errors(value: Any, schema: dict, path: str) -> Iterator[FieldError]:
    """Checks on a value of the right type that need no descent: enum, bounds, formats."""
    enum = schema.get("enum")
    if enum is not None and not any(_same(value, allowed) for allowed in enum):
        supported = ", ".join(_render(allowed) for allowed in enum)
        yield FieldError(path, UNSUPPORTED,
                         f"{UNSUPPORTED}: {_render(value)}: supported values: {supported}")
    if isinstance(value, str):
        yield from _string_errors(value, schema, path)
    elif _json_type(value) in ("integer", "number"):
        yield from _number_errors(value, schema, path)
    elif isinstance(value, list):
        yield from _size_errors(len(value), schema, path, "items")
    elif isinstance(value, dict):
        yield from _size_errors(len(value), schema, path, "properties")


def _list_key(item: Any, keys: list[str]) -> str:
    if isinstance(item, dict) and keys:
        return json.dumps({key: item.get(key) for key in keys}, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(item, sort_keys=True, ensure_ascii=False)


def _duplicate_errors(items: list, schema: dict, path: str) -> Iterator[FieldError]:
    list_type = schema.get("x-kubernetes-list-type")
    if list_type not in ("set", "map"):
        return
    keys = schema.get("x-kubernetes-list-map-keys", []) if list_type == "map" else []
    seen: set[str] = set()
    for index, item in enumerate(items):
        key = _list_key(item, keys)
        if key in seen:
            shown = key if keys else _render(item)
            yield FieldError(f"{path}[{index}]", DUPLICATE, f"{DUPLICATE}: {shown}")
        seen.add(key)


def _qualified_name_errors(key: str) -> list[str]:
    prefix, _, name = key.rpartition("/")
    problems = []
    if "/" in prefix:
        problems.append(f"a qualified name must have at most one '/': {_NAME_PART_HELP}")
    elif "/" in key and not re.fullmatch(_DNS1123_SUBDOMAIN, prefix):
        problems.append(f"prefix part {_SUBDOMAIN_HELP}")
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    elif not re.fullmatch(_QUALIFIED_NAME, name):
        problems.append(_NAME_PART_HELP)
    return problems


def _string_map_errors(value: Any, path: str, check_value: bool) -> Iterator[FieldError]:
    """Labels and annotations: qualified-name keys, string values (label values too)."""
    if not isinstance(value, dict):
        yield _type_mismatch(value, "object", path)
        return
    for key, item in value.items():
        for problem in _qualified_name_errors(key):
            yield _invalid(path, key, problem)
        if not isinstance(item, str):
            yield _type_mismatch(item, "string", _child(path, key))
        elif check_value and len(item) > 63:
            yield _invalid(path, item, "must be no more than 63 characters")
        elif check_value and not re.fullmatch(_LABEL_VALUE, item):
            yield _invalid(path, item, _LABEL_VALUE_HELP)


def _metadata_errors(meta: dict) -> Iterator[FieldError]:
    """ObjectMeta rules for create/update: names, namespace, labels, annotations."""
    name, generate = meta.get("name"), meta.get("generateName")
    if not name and not generate:
        yield _required("metadata.name", "name or generateName is required")
    for path, text in (("metadata.name", name), ("metadata.generateName", generate)):
        if text is None:
            continue
        if not isinstance(text, str):
            yield _type_mismatch(text, "string", path)
            continue
        candidate = text.rstrip("-") if path.endswith("generateName") else text
        if len(candidate) > 253:
            yield _invalid(path, text, "must be no more than 253 characters")
        if candidate and not re.fullmatch(_DNS1123_SUBDOMAIN, candidate):
            yield _invalid(path, text, _SUBDOMAIN_HELP)
    namespace = meta.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or len(namespace) > 63
                                  or not re.fullmatch(_DNS1123_LABEL, namespace)):
        yield _invalid("metadata.namespace", namespace, _LABEL_HELP)
    if "labels" in meta:
        yield from _string_map_errors(meta["labels"], "metadata.labels", check_value=True)
    if "annotations" in meta:
        yield from _string_map_errors(meta["annotations"], "metadata.annotations", check_value=False)


class _Walk:
    """One pass over an object: prunes unknown fields and, if ``check``, collects errors.

    ``structural`` is off inside ``allOf``/``anyOf``/``oneOf``/``not``: there unknown
    keys are simply ignored and no CEL runs, as on the server.
    """

    def __init__(self, check: bool, structural: bool = True, rules: bool = True) -> None:
        self.check = check
        self.structural = structural
        self.rules = rules
        self.errors: list[FieldError] = []
        self.pruned: list[str] = []

    def visit(self, value: Any, schema: dict, path: str, old: Any, root: bool = False) -> Any:
        mismatch = _type_error(value, schema, path)
        if mismatch is not None or value is None:
            if mismatch is not None and self.check:
                self.errors.append(mismatch)
                if "anyOf" in schema:  # the server checks the combinators of a mistyped value too
                    self.errors.extend(self._combinator_errors(value, schema, path))
            return value
        if isinstance(value, dict):
            value = self._object(value, schema, path, old, root)
        elif isinstance(value, list):
            value = self._array(value, schema, path, old)
        if self.check:
            self.errors.extend(_value_errors(value, schema, path))
            self.errors.extend(self._combinator_errors(value, schema, path))
            if self.structural and self.rules:
                self.errors.extend(_rule_errors(value, schema, path, old))
        return value

    def _object(self, value: dict, schema: dict, path: str, old: Any, root: bool) -> dict:
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields") is True or extra is True
        embedded = schema.get("x-kubernetes-embedded-resource") is True
        if self.check:
            if root and "metadata" not in value:
                self.errors.append(_required("metadata.name", "name or generateName is required"))
            self.errors.extend(_required(_child(path, name))
                               for name in schema.get("required", []) if name not in value)
        result = {}
        for key, item in value.items():
            at = _child(path, key)
            old_item = old.get(key, _MISSING) if isinstance(old, dict) else _MISSING
            if root and key == "metadata":
                result[key] = self._metadata(item, properties.get(key) or {})
            elif embedded and key in _IMPLICIT_FIELDS:
                result[key] = item  # embedded apiVersion/kind/metadata are kept as they are
            elif key in properties:
                result[key] = self.visit(item, properties[key], at, old_item)
            elif isinstance(extra, dict):
                result[key] = self.visit(item, extra, at, old_item)
            elif keep_unknown or (root and key in _IMPLICIT_FIELDS) or not self.structural:
                result[key] = item
            else:
                self.pruned.append(at)
                if self.check:
                    self.errors.append(_unknown(at))
        return result

    def _array(self, value: list, schema: dict, path: str, old: Any) -> list:
        items = schema.get("items")
        keys = schema.get("x-kubernetes-list-map-keys", [])
        correlated = (schema.get("x-kubernetes-list-type") == "map" and isinstance(old, list))
        old_items = {_list_key(item, keys): item for item in old} if correlated else {}
        result = []
        for index, item in enumerate(value):
            old_item = old_items.get(_list_key(item, keys), _MISSING)
            result.append(self.visit(item, items, f"{path}[{index}]", old_item)
                          if isinstance(items, dict) else item)
        if self.check:
            self.errors.extend(_duplicate_errors(result, schema, path))
        return result

    def _metadata(self, meta: Any, schema: dict) -> Any:
        if not isinstance(meta, dict):
            if self.check:
                self.errors.append(_type_mismatch(meta, "object", "metadata"))
            return meta
        unknown = [key for key in meta if key not in _OBJECT_META_FIELDS]
        self.pruned.extend(_child("metadata", key) for key in unknown)
        if self.check:
            self.errors.extend(_metadata_errors(meta))
            self.errors.extend(_unknown(_child("metadata", key)) for key in unknown)
            for key in ("name", "generateName"):  # the only metadata a CRD schema may restrict
                if isinstance(meta.get(key), str) and key in schema.get("properties", {}):
                    self.errors.extend(_value_errors(meta[key], schema["properties"][key],
                                                     f"metadata.{key}"))
        return {key: item for key, item in meta.items() if key in _OBJECT_META_FIELDS}

    def _combinator_errors(self, value: Any, schema: dict, path: str) -> Iterator[FieldError]:
        def failures(sub: dict) -> list[FieldError]:
            walk = _Walk(check=True, structural=False)
            walk.visit(value, sub, path, _MISSING)
            return walk.errors

        for sub in schema.get("allOf", []):
            yield from failures(sub)
        if "anyOf" in schema:
            branches = [failures(sub) for sub in schema["anyOf"]]
            if all(branches):
                # As kube-openapi words it: no field, an empty value, then the errors of the
                # branch that came closest (the first of the fewest).
                yield FieldError("", INVALID, f'{INVALID}: "": "{path}" must validate at least one schema (anyOf)')
                yield from min(branches, key=len)
        if "oneOf" in schema and sum(not failures(sub) for sub in schema["oneOf"]) != 1:
            yield _invalid(path, value, f"{path} in body must validate one and only one schema (oneOf)")
        if "not" in schema and not failures(schema["not"]):
            yield _invalid(path, value, f"{path} in body must not validate the schema (not)")


# --- CEL (x-kubernetes-validations) ---------------------------------------------------


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
    """The common Kubernetes string and list library functions cel-python lacks."""
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
        path = _child(path, name) if name else f"{path}[{key or index}]"
    return path


def _rule_errors(value: Any, schema: dict, path: str, old: Any) -> Iterator[FieldError]:
    rules = schema.get("x-kubernetes-validations") or []
    if not rules:
        return
    from celpy.celtypes import BoolType

    type_name = schema.get("type") or _json_type(value)
    activation = {"self": _to_cel(value, schema)}
    for rule in rules:
        expression = rule["rule"]
        if re.search(r"\boldSelf\b", expression):
            if old is _MISSING or old is None:
                continue  # transition rules only run on updates with a correlated old value
            activation["oldSelf"] = _to_cel(old, schema)
        result, error = _evaluate(expression, activation)
        if error is not None:
            yield _invalid(path, type_name, error)
        elif not isinstance(result, BoolType):
            yield _invalid(path, type_name, f"rule must evaluate to a bool, got {result!r}: {expression}")
        elif not result:
            yield _rule_failure(rule, _rule_path(path, rule.get("fieldPath")), type_name, activation)


def _rule_failure(rule: dict, path: str, type_name: str, activation: dict[str, Any]) -> FieldError:
    detail = rule.get("message") or f"failed rule: {rule['rule'].strip()}"
    if rule.get("messageExpression"):
        custom, error = _evaluate(rule["messageExpression"], activation)
        if error is None and isinstance(custom, str) and custom.strip():
            detail = str(custom)
    reason = rule.get("reason")
    if reason == "FieldValueForbidden":
        return FieldError(path, FORBIDDEN, f"{FORBIDDEN}: {detail}")
    if reason == "FieldValueRequired":
        return _required(path, detail)
    if reason == "FieldValueDuplicate":
        return FieldError(path, DUPLICATE, f"{DUPLICATE}: {_render(detail)}")
    # The server (1.36) names no value for a failed rule: "Invalid value: <message>".
    return FieldError(path, INVALID, f"{INVALID}: {detail}")


# --- public API -----------------------------------------------------------------------


class CRDValidator:
    """Validates and prunes objects of one version of an apiextensions.k8s.io/v1 CRD."""

    def __init__(self, crd: dict, version: str | None = None) -> None:
        spec = crd["spec"]
        versions = spec["versions"]
        chosen = [v for v in versions if (v["name"] == version if version else v.get("storage"))]
        if not chosen and version is None and len(versions) == 1:
            chosen = versions
        if not chosen:
            raise ValueError(f"CRD {crd.get('metadata', {}).get('name')!r} has no version "
                             f"{version or '(storage)'}")
        self.version: str = chosen[0]["name"]
        self.api_version = f"{spec['group']}/{self.version}"
        self.kind: str = spec["names"]["kind"]
        self.schema: dict = (chosen[0].get("schema") or {}).get("openAPIV3Schema") or {}
        self.has_rules = _has_rules(self.schema)

    def validate(self, obj: dict, old: dict | None = None) -> list[FieldError]:
        """All errors a strict create (``old`` is None) or update would get, in document order."""
        if not isinstance(obj, dict):
            return [_invalid("", _json_type(obj), 'body must be of type object: '
                                                  f'"{_json_type(obj)}"')]
        errors = list(self._identity_errors(obj))
        old_value = _MISSING if old is None else old
        # As the server does (apiextensions' hasBlockingErr): a wrong type, an unsupported
        # value, a missing required field or a too long/too many value keeps the CEL rules from
        # running, and a note says so; other schema errors are reported beside the rules'.
        schema_only = _Walk(check=True, rules=False)
        schema_only.visit(obj, self.schema, "", old_value, root=True)
        if any(e.type in _BLOCKING for e in schema_only.errors):
            skipped = [FieldError("", INVALID, f"{INVALID}: null: {SKIPPED_RULES}")] if self.has_rules else []
            return errors + schema_only.errors + skipped
        walk = _Walk(check=True)
        walk.visit(obj, self.schema, "", old_value, root=True)
        return errors + walk.errors

    def prune(self, obj: dict) -> tuple[dict, list[str]]:
        """A deep copy without the unknown fields a server would drop, and their paths."""
        walk = _Walk(check=False)
        pruned = walk.visit(copy.deepcopy(obj), self.schema, "", _MISSING, root=True)
        return pruned, walk.pruned

    def _identity_errors(self, obj: dict) -> Iterator[FieldError]:
        for field, expected, noun in (("apiVersion", self.api_version, "API version"),
                                      ("kind", self.kind, "kind")):
            actual = obj.get(field)
            if not actual:
                yield _required(field)
            elif actual != expected:
                yield _invalid(field, actual, f"the {noun} in the data ({actual}) does not match "
                                              f"the expected {noun} ({expected})")


def _has_rules(schema: Any) -> bool:
    if isinstance(schema, dict):
        return bool(schema.get("x-kubernetes-validations")) or any(_has_rules(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_has_rules(v) for v in schema)
    return False


def validate_object(crd: dict, obj: dict) -> list[FieldError]:
    """Validates ``obj`` against the CRD version its apiVersion names (else the storage one)."""
    wanted = str(obj.get("apiVersion", "")).rpartition("/")[2] if isinstance(obj, dict) else ""
    served = {v["name"] for v in crd["spec"]["versions"] if v.get("served", True)}
    return CRDValidator(crd, wanted if wanted in served else None).validate(obj)
