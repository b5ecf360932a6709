"""Label and field selectors, parsed and matched the way the Kubernetes API server does.

Why this exists: kmock's emulator ignores ``labelSelector`` and ``fieldSelector``, so an
operator that narrows its watches (kopf's ``labels=``/``field=`` filters, a pod runner
watching ``spec.nodeName=``) would see every object and pass tests it fails on a cluster.

Label selectors follow ``k8s.io/apimachinery/pkg/labels.Parse``: comma-separated
requirements (``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``,
``a>1``, ``a<1``), all of which must hold.  ``!=`` and ``notin`` also match objects
without the label, as on the server.

Field selectors follow ``fields.ParseSelector``: ``key=value``, ``key==value`` and
``key!=value`` terms with backslash escapes.  A field the server does not index for the
resource is refused (``field label not supported``) instead of silently matching nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_QUALIFIED_KEY = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")

# Field labels the API server indexes, per (group, plural); metadata.name and
# metadata.namespace work everywhere.  From the registry strategies' *ToSelectableFields.
_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
_RESOURCE_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "pods"): ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                   "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                   "status.podIP", "status.nominatedNodeName"),
    ("", "events"): ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                     "involvedObject.uid", "involvedObject.apiVersion",
                     "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                     "reportingComponent", "source", "type"),
    ("events.k8s.io", "events"): ("regarding.kind", "regarding.namespace", "regarding.name",
                                  "regarding.uid", "regarding.apiVersion", "reason",
                                  "reportingController", "type"),
    ("", "secrets"): ("type",),
    ("", "namespaces"): ("status.phase",),
    ("", "nodes"): ("spec.unschedulable",),
    ("", "replicationcontrollers"): ("status.replicas",),
    ("apps", "replicasets"): ("status.replicas",),
    ("batch", "jobs"): ("status.successful",),
}
_FIELD_ALIASES = {("", "events", "source"): "source.component"}


class SelectorError(ValueError):
    """A selector the server would refuse with 400 BadRequest; the text is the server's."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator in ("=", "in"):
            return present and value in self.values
        if self.operator in ("!=", "notin"):
            return not present or value not in self.values
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        try:
            number, limit = int(value or ""), int(self.values[0])
        except ValueError:
            return False
        return number > limit if self.operator == "gt" else number < limit


@dataclass(frozen=True)
class LabelSelector:
    """A parsed ``labelSelector``: every requirement must match (an empty one matches all)."""

    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        return cls(tuple(_parse_label_requirements(text or "")))

    @classmethod
    def from_match_labels(cls, labels: Mapping[str, str]) -> LabelSelector:
        return cls(tuple(Requirement(k, "=", (v,)) for k, v in labels.items()))

    def matches(self, obj: Mapping[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(requirement.matches(labels) for requirement in self.requirements)


def _tokens(text: str) -> list[str]:
    """Identifiers, operators and punctuation of a label selector, whitespace dropped."""
    pattern = re.compile(r"\s*(==|!=|=|!|\(|\)|,|<|>|[^\s=!(),<>]+)")
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = pattern.match(text, position)
        if match is None:  # pragma: no cover - the pattern accepts every non-space char
            raise SelectorError(f"unable to parse requirement: {text[position:]!r}")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def _check_key(key: str) -> str:
    if not _QUALIFIED_KEY.fullmatch(key) or len(key.rpartition("/")[2]) > 63:
        raise SelectorError(f"unable to parse requirement: invalid label key \"{key}\": "
                            "name part must consist of alphanumeric characters, '-', '_' or '.', "
                            "and must start and end with an alphanumeric character")
    return key


def _check_value(value: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        raise SelectorError(f"unable to parse requirement: invalid label value: \"{value}\": "
                            "a valid label must be an empty string or consist of alphanumeric "
                            "characters, '-', '_' or '.'")
    return value


def _parse_label_requirements(text: str) -> Iterable[Requirement]:
    tokens = _tokens(text)
    index = 0

    def take() -> str:
        nonlocal index
        if index >= len(tokens):
            raise SelectorError(f"unable to parse requirement: found '', expected: identifier "
                                f"in {text!r}")
        index += 1
        return tokens[index - 1]

    def peek() -> str | None:
        return tokens[index] if index < len(tokens) else None

    while index < len(tokens):
        token = take()
        if token == "!":
            yield Requirement(_check_key(take()), "!")
        else:
            key = _check_key(token)
            following = peek()
            if following in (None, ","):
                yield Requirement(key, "exists")
            elif following in ("=", "==", "!="):
                take()
                value = "" if peek() in (None, ",") else take()
                yield Requirement(key, "!=" if following == "!=" else "=", (_check_value(value),))
            elif following in ("in", "notin"):
                take()
                if take() != "(":
                    raise SelectorError(f"unable to parse requirement: expected '(' after "
                                        f"'{following}' in {text!r}")
                values: list[str] = []
                while (item := take()) != ")":
                    if item != ",":
                        values.append(_check_value(item))
                yield Requirement(key, following, tuple(values))
            elif following in ("<", ">"):
                take()
                limit = take()
                if not re.fullmatch(r"-?\d+", limit):
                    raise SelectorError(f"unable to parse requirement: for 'Gt', 'Lt' operators, "
                                        f"the value must be an integer: {limit!r}")
                yield Requirement(key, "gt" if following == ">" else "lt", (limit,))
            else:
                raise SelectorError(f"unable to parse requirement: found '{following}', expected: "
                                    "'=', '!=', '==', 'in', notin'")
        if index < len(tokens) and take() != ",":
            raise SelectorError(f"unable to parse requirement: found '{tokens[index - 1]}', "
                                f"expected: ',' in {text!r}")


@dataclass(frozen=True)
class FieldTerm:
    field: str
    negated: bool
    value: str


@dataclass(frozen=True)
class FieldSelector:
    """A parsed ``fieldSelector``: every ``field=value`` / ``field!=value`` term must hold."""

    terms: tuple[FieldTerm, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> FieldSelector:
        terms = []
        for part in _split_unescaped(text or "", ","):
            if not part.strip():
                continue
            for operator in ("!=", "==", "="):
                head, found, tail = _partition_unescaped(part, operator)
                if found:
                    terms.append(FieldTerm(head.strip(), operator == "!=", _unescape(tail)))
                    break
            else:
                raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        return cls(tuple(terms))

    def check_supported(self, group: str, plural: str, extra: Iterable[str] = ()) -> None:
        """Refuses fields the server cannot select on for this resource, like the server."""
        allowed = set(_COMMON_FIELDS) | set(_RESOURCE_FIELDS.get((group, plural), ())) | set(extra)
        for term in self.terms:
            if term.field not in allowed:
                raise SelectorError(f'field label not supported: {term.field}')

    def matches(self, obj: Mapping[str, Any], group: str = "", plural: str = "") -> bool:
        for term in self.terms:
            path = _FIELD_ALIASES.get((group, plural, term.field), term.field)
            actual = field_value(obj, path)
            if (actual == term.value) == term.negated:
                return False
        return True


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """A dotted field of ``obj`` as the string the server compares; missing reads as ""."""
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts, current, escaped = [], "", False
    for char in text:
        if escaped:
            current += "\\" + char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current + ("\\" if escaped else ""))
    return parts


def _partition_unescaped(text: str, operator: str) -> tuple[str, str, str]:
    index = 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text.startswith(operator, index):
            return text[:index], operator, text[index + len(operator):]
        index += 1
    return text, "", ""


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)
