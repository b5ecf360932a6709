"""The structural walk of an object along its schema: it collects field errors (types, values,
unknown fields, combinators, CEL rules) and returns the object with unknown fields pruned,
as the server does before storing it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agent_sessions.dev.admission.cel import rule_errors
from agent_sessions.dev.admission.field_errors import (
    INVALID,
    MISSING,
    FieldError,
    child_path,
    invalid_value,
    required_value,
    unknown_field,
)
from agent_sessions.dev.admission.metadata import OBJECT_META_FIELDS, metadata_errors
from agent_sessions.dev.admission.values import (
    duplicate_errors,
    list_key,
    type_error,
    type_mismatch,
    value_errors,
)

IMPLICIT_FIELDS = frozenset({"apiVersion", "kind", "metadata"})


class SchemaWalk:
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

    def visit(self, value: Any, schema: dict, path: str, old: Any, root: bool = False,
              rule_path: str | None = None) -> Any:
        """``rule_path``: where the CEL rules of ``value`` report, when not ``path``. The CEL
        validator names a map entry ``limits[cpu]`` where the schema validator says ``limits.cpu``."""
        rule_path = path if rule_path is None else rule_path
        mismatch = type_error(value, schema, path)
        if mismatch is not None or value is None:
            if mismatch is not None and self.check:
                self.errors.append(mismatch)
                if "anyOf" in schema:  # the server checks the combinators of a mistyped value too
                    self.errors.extend(self._combinator_errors(value, schema, path))
            return value
        if isinstance(value, dict):
            value = self._object(value, schema, path, old, root, rule_path)
        elif isinstance(value, list):
            value = self._array(value, schema, path, old, rule_path)
        if self.check:
            self.errors.extend(value_errors(value, schema, path))
            self.errors.extend(self._combinator_errors(value, schema, path))
            if self.structural and self.rules:
                self.errors.extend(rule_errors(value, schema, rule_path, old))
        return value

    def _object(self, value: dict, schema: dict, path: str, old: Any, root: bool, rule_path: str) -> dict:
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields") is True or extra is True
        embedded = schema.get("x-kubernetes-embedded-resource") is True
        if self.check:
            if root and "metadata" not in value:
                self.errors.append(required_value("metadata.name", "name or generateName is required"))
            self.errors.extend(required_value(child_path(path, name))
                               for name in schema.get("required", []) if name not in value)
        result = {}
        for key, item in value.items():
            at = child_path(path, key)
            old_item = old.get(key, MISSING) if isinstance(old, dict) else MISSING
            if root and key == "metadata":
                result[key] = self._metadata(item, properties.get(key) or {})
            elif embedded and key in IMPLICIT_FIELDS:
                result[key] = item  # embedded apiVersion/kind/metadata are kept as they are
            elif key in properties:
                result[key] = self.visit(item, properties[key], at, old_item,
                                         rule_path=child_path(rule_path, key))
            elif isinstance(extra, dict):
                result[key] = self.visit(item, extra, at, old_item, rule_path=f"{rule_path}[{key}]")
            elif keep_unknown or (root and key in IMPLICIT_FIELDS) or not self.structural:
                result[key] = item
            else:
                self.pruned.append(at)
                if self.check:
                    self.errors.append(unknown_field(at))
        return result

    def _array(self, value: list, schema: dict, path: str, old: Any, rule_path: str) -> list:
        items = schema.get("items")
        keys = schema.get("x-kubernetes-list-map-keys", [])
        correlated = (schema.get("x-kubernetes-list-type") == "map" and isinstance(old, list))
        old_items = {list_key(item, keys): item for item in old} if correlated else {}
        result = []
        for index, item in enumerate(value):
            old_item = old_items.get(list_key(item, keys), MISSING)
            result.append(self.visit(item, items, f"{path}[{index}]", old_item, rule_path=f"{rule_path}[{index}]")
                          if isinstance(items, dict) else item)
        if self.check:
            self.errors.extend(duplicate_errors(result, schema, path))
        return result

    def _metadata(self, meta: Any, schema: dict) -> Any:
        if not isinstance(meta, dict):
            if self.check:
                self.errors.append(type_mismatch(meta, "object", "metadata"))
            return meta
        unknown = [key for key in meta if key not in OBJECT_META_FIELDS]
        self.pruned.extend(child_path("metadata", key) for key in unknown)
        if self.check:
            self.errors.extend(metadata_errors(meta))
            self.errors.extend(unknown_field(child_path("metadata", key)) for key in unknown)
            for key in ("name", "generateName"):  # the only metadata a CRD schema may restrict
                if isinstance(meta.get(key), str) and key in schema.get("properties", {}):
                    self.errors.extend(value_errors(meta[key], schema["properties"][key],
                                                     f"metadata.{key}"))
        return {key: item for key, item in meta.items() if key in OBJECT_META_FIELDS}

    def _combinator_errors(self, value: Any, schema: dict, path: str) -> Iterator[FieldError]:
        def failures(sub: dict) -> list[FieldError]:
            walk = SchemaWalk(check=True, structural=False)
            walk.visit(value, sub, path, MISSING)
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
            yield invalid_value(path, value, f"{path} in body must validate one and only one schema (oneOf)")
        if "not" in schema and not failures(schema["not"]):
            yield invalid_value(path, value, f"{path} in body must not validate the schema (not)")


# --- CEL (x-kubernetes-validations) ---------------------------------------------------
