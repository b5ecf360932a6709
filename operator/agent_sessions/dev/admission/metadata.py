"""The ObjectMeta rules the server checks on every object: name, generateName and namespace
syntax, label and annotation keys and values."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from agent_sessions.dev.admission.field_errors import FieldError, child_path, invalid_value, required_value
from agent_sessions.dev.admission.values import DNS1123_LABEL, DNS1123_SUBDOMAIN, type_mismatch

OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields",
})
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = rf"({_QUALIFIED_NAME})?"
_SUBDOMAIN_HELP = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or"
    " '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex"
    f" used for validation is '{DNS1123_SUBDOMAIN}')")
_LABEL_HELP = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and"
    " must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex"
    f" used for validation is '{DNS1123_LABEL}')")
_NAME_PART_HELP = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end"
    " with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used"
    f" for validation is '{_QUALIFIED_NAME}')")
_LABEL_VALUE_HELP = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or"
    " '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or"
    f" 'my_value',  or '12345', regex used for validation is '{_LABEL_VALUE}')")


def _qualified_name_errors(key: str) -> list[str]:
    prefix, _, name = key.rpartition("/")
    problems = []
    if "/" in prefix:
        problems.append(f"a qualified name must have at most one '/': {_NAME_PART_HELP}")
    elif "/" in key and not re.fullmatch(DNS1123_SUBDOMAIN, prefix):
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
        yield type_mismatch(value, "object", path)
        return
    for key, item in value.items():
        for problem in _qualified_name_errors(key):
            yield invalid_value(path, key, problem)
        if not isinstance(item, str):
            yield type_mismatch(item, "string", child_path(path, key))
        elif check_value and len(item) > 63:
            yield invalid_value(path, item, "must be no more than 63 characters")
        elif check_value and not re.fullmatch(_LABEL_VALUE, item):
            yield invalid_value(path, item, _LABEL_VALUE_HELP)


def metadata_errors(meta: dict) -> Iterator[FieldError]:
    """ObjectMeta rules for create/update: names, namespace, labels, annotations."""
    name, generate = meta.get("name"), meta.get("generateName")
    if not name and not generate:
        yield required_value("metadata.name", "name or generateName is required")
    for path, text in (("metadata.name", name), ("metadata.generateName", generate)):
        if text is None:
            continue
        if not isinstance(text, str):
            yield type_mismatch(text, "string", path)
            continue
        candidate = text.rstrip("-") if path.endswith("generateName") else text
        if len(candidate) > 253:
            yield invalid_value(path, text, "must be no more than 253 characters")
        if candidate and not re.fullmatch(DNS1123_SUBDOMAIN, candidate):
            yield invalid_value(path, text, _SUBDOMAIN_HELP)
    namespace = meta.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or len(namespace) > 63
                                  or not re.fullmatch(DNS1123_LABEL, namespace)):
        yield invalid_value("metadata.namespace", namespace, _LABEL_HELP)
    if "labels" in meta:
        yield from _string_map_errors(meta["labels"], "metadata.labels", check_value=True)
    if "annotations" in meta:
        yield from _string_map_errors(meta["annotations"], "metadata.annotations", check_value=False)
