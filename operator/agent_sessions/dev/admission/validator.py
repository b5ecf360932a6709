"""The entry point of admission: :class:`CRDValidator` for one version of a CRD (validate, then
prune), and :func:`validate_object` for a manifest checked without a server."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from agent_sessions.dev.admission.field_errors import (
    BLOCKING,
    INVALID,
    MISSING,
    SKIPPED_RULES,
    FieldError,
    invalid_value,
    required_value,
)
from agent_sessions.dev.admission.values import json_type
from agent_sessions.dev.admission.walk import SchemaWalk


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
            return [invalid_value("", json_type(obj), 'body must be of type object: '
                                                  f'"{json_type(obj)}"')]
        errors = list(self._identity_errors(obj))
        old_value = MISSING if old is None else old
        # As the server does (apiextensions' hasBlockingErr): a wrong type, an unsupported
        # value, a missing required field or a too long/too many value keeps the CEL rules from
        # running, and a note says so; other schema errors are reported beside the rules'.
        schema_only = SchemaWalk(check=True, rules=False)
        schema_only.visit(obj, self.schema, "", old_value, root=True)
        if any(e.type in BLOCKING for e in schema_only.errors):
            skipped = [FieldError("", INVALID, f"{INVALID}: null: {SKIPPED_RULES}")] if self.has_rules else []
            return errors + schema_only.errors + skipped
        walk = SchemaWalk(check=True)
        walk.visit(obj, self.schema, "", old_value, root=True)
        return errors + walk.errors

    def prune(self, obj: dict) -> tuple[dict, list[str]]:
        """A deep copy without the unknown fields a server would drop, and their paths."""
        walk = SchemaWalk(check=False)
        pruned = walk.visit(copy.deepcopy(obj), self.schema, "", MISSING, root=True)
        return pruned, walk.pruned

    def _identity_errors(self, obj: dict) -> Iterator[FieldError]:
        for field, expected, noun in (("apiVersion", self.api_version, "API version"),
                                      ("kind", self.kind, "kind")):
            actual = obj.get(field)
            if not actual:
                yield required_value(field)
            elif actual != expected:
                yield invalid_value(field, actual, f"the {noun} in the data ({actual}) does not match "
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
