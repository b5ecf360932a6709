"""The three PATCH formats of the Kubernetes API, applied to plain JSON objects.

Why this exists: kmock's emulator deep-merges every PATCH body, whatever its content type.
kopf, however, removes finalizers with a JSON patch guarded by a ``test`` op on
``metadata.resourceVersion`` and relies on the server's 422 when that test fails; clients
send merge patches where ``null`` deletes a key.  Getting these wrong hides real bugs.

* ``application/merge-patch+json`` — RFC 7386: objects merge, ``null`` deletes, anything
  else (lists included) replaces.
* ``application/json-patch+json`` — RFC 6902: ``add``, ``remove``, ``replace``, ``move``,
  ``copy`` and ``test`` on RFC 6901 pointers.
* ``application/strategic-merge-patch+json`` — an approximation: a merge patch in which
  the list fields listed in ``_MERGE_KEYS`` merge their items by key (``containers`` by
  ``name`` ...), ``finalizers`` merge as a set, and the ``$patch``, ``$retainKeys``,
  ``$deleteFromPrimitiveList/`` and ``$setElementOrder/`` directives are honoured
  (element order is not).  The server derives merge keys from Go struct tags per kind; we
  use the field name alone, which is right for the core kinds an operator touches.
"""

from __future__ import annotations

import copy
import json
from typing import Any

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

# Field name -> merge key of its items, from the core/v1 and meta/v1 struct tags.
_MERGE_KEYS: dict[str, str] = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "volumes": "name", "env": "name", "imagePullSecrets": "name", "resourceClaims": "name",
    "volumeMounts": "mountPath", "volumeDevices": "devicePath", "conditions": "type",
    "ownerReferences": "uid", "hostAliases": "ip", "topologySpreadConstraints": "topologyKey",
    "ports": "containerPort",  # service ports (key "port") are recognised by their items
}
_SET_LISTS = frozenset({"finalizers"})


class PatchError(ValueError):
    """A patch that cannot be applied to the object (the server's 422)."""


class MalformedPatch(ValueError):
    """A body that is not a patch of its declared type at all (the server's 400)."""


def apply_patch(content_type: str, target: dict, patch: Any) -> dict:
    """The patched deep copy of ``target``; ``content_type`` is one of the constants above."""
    if content_type == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise MalformedPatch("merge patch must be a JSON object")
        return merge_patch(target, patch)
    if content_type == JSON_PATCH:
        return json_patch(target, patch)
    if content_type == STRATEGIC_MERGE_PATCH:
        if not isinstance(patch, dict):
            raise MalformedPatch("strategic merge patch must be a JSON object")
        return strategic_merge_patch(target, patch)
    raise ValueError(f"unsupported patch type {content_type!r}")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch; returns a new value and leaves both inputs intact."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- RFC 6902 ---------------------------------------------------------------------------


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise MalformedPatch(f"invalid JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]


def _index(container: list, token: str, path: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r} in {path}")
    index = int(token)
    if index > len(container) or (index == len(container) and not allow_end):
        raise PatchError(f"array index out of bounds: {index} in {path}")
    return index


def _parent(document: Any, tokens: list[str], path: str) -> Any:
    node = document
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, path, allow_end=False)]
        else:
            raise PatchError(f"doc is missing path: {path!r}")
    return node


def _get(document: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return document
    parent, last = _parent(document, tokens, path), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, path, allow_end=False)]
    raise PatchError(f"doc is missing path: {path!r}")


def _remove(document: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the document root")
    parent, last = _parent(document, tokens, path), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, path, allow_end=False))
    raise PatchError(f"unable to remove nonexistent key: {last}: missing value")


def _add(document: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent, last = _parent(document, tokens, path), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, allow_end=True), value)
    else:
        raise PatchError(f"doc is missing path: {path!r}")
    return document


def _equal(left: Any, right: Any) -> bool:
    return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)


def json_patch(target: dict, operations: Any) -> dict:
    """RFC 6902 JSON patch; a failed ``test`` raises PatchError like any other failed op."""
    if not isinstance(operations, list):
        raise MalformedPatch("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    document: Any = copy.deepcopy(target)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation:
            raise MalformedPatch(f"invalid JSON patch operation: {operation!r}")
        op, path = operation["op"], operation.get("path")
        if op in ("add", "replace", "test") and "value" not in operation:
            raise MalformedPatch(f"missing value in {op} operation")
        if op == "add":
            document = _add(document, path, copy.deepcopy(operation["value"]))
        elif op == "remove":
            _remove(document, path)
        elif op == "replace":
            _get(document, path)  # the target must exist
            if _pointer(path):
                _remove(document, path)
            document = _add(document, path, copy.deepcopy(operation["value"]))
        elif op == "move":
            value = _remove(document, operation.get("from"))
            document = _add(document, path, value)
        elif op == "copy":
            document = _add(document, path, copy.deepcopy(_get(document, operation.get("from"))))
        elif op == "test":
            actual = _get(document, path)
            if not _equal(actual, operation["value"]):
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise MalformedPatch(f"unexpected kind of JSON patch operation: {op!r}")
    if not isinstance(document, dict):
        raise PatchError("the patched document is not an object")
    return document


# --- strategic merge patch (approximation) ---------------------------------------------


def strategic_merge_patch(target: Any, patch: dict) -> Any:
    """A strategic merge patch with field-name merge keys; see the module docstring."""
    return _smp_object(copy.deepcopy(target) if isinstance(target, dict) else {}, patch)


def _smp_object(result: dict, patch: dict) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    body = {k: v for k, v in patch.items() if k != "$patch"}
    if directive == "replace":
        return {k: v for k, v in body.items() if not k.startswith("$")}
    retain = body.pop("$retainKeys", None)
    for key, value in body.items():
        if key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [item for item in result[field] if item not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = _smp_object(result[key] if isinstance(result.get(key), dict) else {}, value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _smp_list(key, result[key], value)
        else:
            result[key] = _strip_directives(copy.deepcopy(value))
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_key(field: str, items: list) -> str | None:
    key = _MERGE_KEYS.get(field)
    if key == "containerPort" and items and all("containerPort" not in i for i in items
                                                if isinstance(i, dict)):
        key = "port"
    return key


def _smp_list(field: str, current: list, patch: list) -> list:
    if field in _SET_LISTS:
        return current + [item for item in patch if item not in current]
    key = _merge_key(field, patch + current)
    if key is None or not all(isinstance(item, dict) for item in patch + current):
        return [_strip_directives(copy.deepcopy(item)) for item in patch
                if not (isinstance(item, dict) and item.get("$patch") == "delete")]
    if any(item.get("$patch") == "replace" for item in patch):
        return [_strip_directives(copy.deepcopy(item)) for item in patch
                if item.get("$patch") != "replace"]
    result = list(current)
    for item in patch:
        matches = [i for i, existing in enumerate(result) if existing.get(key) == item.get(key)]
        if item.get("$patch") == "delete":
            result = [existing for i, existing in enumerate(result) if i not in matches]
        elif matches:
            merged = _smp_object(result[matches[0]], item)
            result[matches[0]] = merged
        else:
            result.append(_strip_directives(copy.deepcopy(item)))
    return result


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(item) for item in value]
    return value
