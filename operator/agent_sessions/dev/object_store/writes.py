"""How a create, a PUT or a PATCH becomes a stored object (steps 1-7 of the package docstring):
decoding, merging with the stored object, preconditions, admission, ``generation``, no-op
detection, and what the CRD controllers do after a CRD is created."""

from __future__ import annotations

import copy
import json
import secrets
import uuid
from typing import Any

from agent_sessions.dev.admission import UNKNOWN_FIELD, FieldError
from agent_sessions.dev.object_store.clock import now_rfc3339
from agent_sessions.dev.object_store.errors import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    details_for,
    invalid,
)
from agent_sessions.dev.object_store.kinds import (
    CRD_CLEANUP_FINALIZER,
    CRD_GROUP_RESOURCE,
    FIELD_VALIDATION_MODES,
    NAMESPACE_FINALIZER,
    NAMESPACES,
    SYSTEM_FIELDS,
)
from agent_sessions.dev.patches import (
    APPLY_PATCH,
    STRATEGIC_MERGE_PATCH,
    MalformedPatch,
    PatchError,
    apply_patch,
)
from agent_sessions.dev.resources import ResourceType, crd_names_errors

_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the server's generateName alphabet


def _meta(obj: dict) -> dict:
    return obj.setdefault("metadata", {})


def _comparable(obj: dict, *, drop_status: bool) -> dict:
    """The part of an object whose change bumps ``generation``."""
    return {k: v for k, v in obj.items()
            if k not in ("metadata", "apiVersion", "kind") and not (drop_status and k == "status")}


def _same(left: dict, right: dict) -> bool:
    def canonical(obj: dict) -> str:
        return json.dumps({k: v for k, v in obj.items() if k != "apiVersion"}, sort_keys=True)
    return canonical(left) == canonical(right)


class Writes:
    """POST, PUT and PATCH of :class:`~agent_sessions.dev.object_store.store.ObjectStore`
    (a mixin: it uses the store's lock, lookups, ``_commit``, ``_remove`` and ``_settle``)."""

    def create(self, rtype: ResourceType, namespace: str | None, body: Any, *,
               field_validation: str = "Warn", dry_run: bool = False) -> tuple[dict, list[str]]:
        """POST: the created object (201) and warnings; 409 AlreadyExists, 422 Invalid, ..."""
        obj = self._decode(rtype, body)
        meta = _meta(obj)
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if rtype.namespaced:
            namespace = namespace or meta.get("namespace")
            if not namespace:
                raise bad_request("the namespace of the object is required")
            if meta.get("namespace") not in (None, "", namespace):
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        for key in SYSTEM_FIELDS:
            meta.pop(key, None)
        if rtype.has_status:
            obj.pop("status", None)
            if rtype.group_resource == ("", "pods"):
                obj["status"] = {"phase": "Pending"}
        with self._lock:
            if rtype.namespaced:
                self._check_namespace_open(rtype, namespace, meta.get("name") or "")
            bucket = self._objects.get(rtype.group_resource, {})
            if not meta.get("name") and isinstance(meta.get("generateName"), str):
                for _ in range(16):
                    candidate = meta["generateName"] + "".join(
                        secrets.choice(_NAME_ALPHABET) for _ in range(5))
                    if (namespace or "", candidate) not in bucket:
                        break
                meta["name"] = candidate
            self._apply_kind_defaults(rtype, obj)
            obj, warnings = self._admit(rtype, obj, None, field_validation)
            meta = obj["metadata"]
            if (meta.get("namespace", ""), meta["name"]) in bucket:
                raise already_exists(rtype, meta["name"])
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            if rtype.tracks_generation:
                meta["generation"] = 1
            if dry_run:
                return self._present(rtype, obj), warnings
            created = self._commit(rtype, obj, None)
            if rtype.group_resource == CRD_GROUP_RESOURCE:
                self._establish_crd(rtype, created)
            return self._present(rtype, created), warnings

    def replace(self, rtype: ResourceType, namespace: str | None, name: str, body: Any, *,
                subresource: str | None = None, field_validation: str = "Warn",
                dry_run: bool = False) -> tuple[dict, list[str]]:
        """PUT of the object or its ``status``: the stored result and warnings."""
        new = self._decode(rtype, body)
        meta = _meta(new)
        if meta.get("name") not in (None, name):
            raise bad_request(f"the name of the object ({meta.get('name')}) does not match the "
                              f"name on the URL ({name})")
        with self._lock:
            old = self._require(rtype, namespace, name)
            expected = meta.get("resourceVersion")
            if not expected and rtype.custom:
                raise invalid(rtype, name, [FieldError(
                    "metadata.resourceVersion", "Invalid value",
                    "Invalid value: 0x0: must be specified for an update")])
            return self._update(rtype, old, new, subresource, expected, field_validation, dry_run)

    def patch(self, rtype: ResourceType, namespace: str | None, name: str, content_type: str,
              patch: Any, *, subresource: str | None = None, field_validation: str = "Warn",
              dry_run: bool = False) -> tuple[dict, list[str]]:
        """PATCH of the object or its ``status`` with one of the patch content types."""
        if content_type == APPLY_PATCH or (content_type == STRATEGIC_MERGE_PATCH and rtype.custom):
            accepted = "application/json-patch+json, application/merge-patch+json"
            if not rtype.custom:
                accepted += ", application/strategic-merge-patch+json"
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted media "
                           f"types include: {accepted}")
        with self._lock:
            old = self._require(rtype, namespace, name)
            try:
                new = apply_patch(content_type, self._present(rtype, old), patch)
            except MalformedPatch as exc:
                raise bad_request(str(exc)) from None
            except PatchError as exc:
                raise ApiError(422, "Invalid", str(exc),
                               details_for(rtype, name, kind=rtype.kind)) from None
            if _meta(new).get("name") != name:
                raise bad_request(f"the name of the object ({_meta(new).get('name')}) does not "
                                  f"match the name on the URL ({name})")
            expected = _meta(new).get("resourceVersion")
            return self._update(rtype, old, new, subresource, expected, field_validation, dry_run)

    # --- internals ------------------------------------------------------------------

    def _decode(self, rtype: ResourceType, body: Any) -> dict:
        if not isinstance(body, dict):
            raise bad_request(f"the body of the request must be a {rtype.kind} object")
        obj = copy.deepcopy(body)
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, (str, type(None))) or not isinstance(kind, (str, type(None))):
            raise bad_request("apiVersion and kind must be strings")
        group = api_version.rpartition("/")[0] if isinstance(api_version, str) else rtype.group
        if api_version and (group != rtype.group or api_version.rpartition("/")[2] not in
                            self.catalogue.versions_of(rtype.group) + ([rtype.version])):
            raise bad_request(f"the API version in the data ({api_version}) does not match the "
                              f"expected API version ({rtype.api_version})")
        if kind and kind != rtype.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind "
                              f"({rtype.kind})")
        obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
        return obj

    def _check_namespace_open(self, rtype: ResourceType, namespace: str, name: str) -> None:
        ns = self._find(NAMESPACES, None, namespace)
        if ns is None:
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found',
                           {"name": namespace, "kind": "namespaces"})
        if ns["metadata"].get("deletionTimestamp"):
            message = (f"unable to create new content in namespace {namespace} because it is "
                       "being terminated")
            details = details_for(rtype, name)
            details["causes"] = [{"reason": "NamespaceTerminating", "message": message,
                                  "field": "metadata.namespace"}]
            raise ApiError(403, "Forbidden", f'{rtype.qualified_plural} "{name}" is forbidden: '
                                             f'{message}', details)

    def _apply_kind_defaults(self, rtype: ResourceType, obj: dict) -> None:
        if rtype.group_resource == NAMESPACES:
            meta = obj["metadata"]
            if isinstance(meta.get("name"), str):
                meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            obj["spec"] = {"finalizers": [NAMESPACE_FINALIZER]}
            obj["status"] = {"phase": "Active"}
        elif rtype.group_resource == CRD_GROUP_RESOURCE:
            problems = crd_names_errors(obj)
            if problems:
                raise invalid(rtype, str(obj["metadata"].get("name") or ""), problems)

    def _admit(self, rtype: ResourceType, obj: dict, old: dict | None,
               mode: str) -> tuple[dict, list[str]]:
        if mode not in FIELD_VALIDATION_MODES:
            raise bad_request(f'fieldValidation must be one of "Ignore", "Warn", "Strict", '
                              f'got "{mode}"')
        errors = rtype.validator.validate(obj, old)
        unknown = [e for e in errors if e.type == UNKNOWN_FIELD]
        others = [e for e in errors if e.type != UNKNOWN_FIELD]
        if mode == "Strict" and unknown:
            raise bad_request(f'{rtype.kind} in version "{rtype.version}" cannot be handled as a '
                              f'{rtype.kind}: strict decoding error: '
                              + ", ".join(e.message for e in unknown))
        if others:
            raise invalid(rtype, str(obj["metadata"].get("name") or ""), others)
        pruned, paths = rtype.validator.prune(obj)
        return pruned, [f'unknown field "{p}"' for p in paths] if mode == "Warn" else []

    def _update(self, rtype: ResourceType, old: dict, new: dict, subresource: str | None,
                expected_rv: Any, mode: str, dry_run: bool) -> tuple[dict, list[str]]:
        name = old["metadata"]["name"]
        if expected_rv and str(expected_rv) != old["metadata"]["resourceVersion"]:
            raise conflict(rtype, name)
        uid = (new.get("metadata") or {}).get("uid")
        if uid and uid != old["metadata"]["uid"]:
            raise conflict(rtype, name, f"Precondition failed: UID in precondition: {uid}, UID in "
                                        f"object meta: {old['metadata']['uid']}")
        if subresource == "status":
            candidate = copy.deepcopy(old)
            if "status" in new:
                candidate["status"] = new["status"]
            else:
                candidate.pop("status", None)
        elif subresource is not None:
            raise ApiError(405, "MethodNotAllowed", f"{subresource} cannot be written")
        else:
            candidate = new
            meta, old_meta = _meta(candidate), old["metadata"]
            if not isinstance(meta, dict):
                raise bad_request("metadata must be an object")
            for key in SYSTEM_FIELDS:
                meta.pop(key, None)
                if key in old_meta:
                    meta[key] = old_meta[key]
            meta["name"] = name
            if "namespace" in old_meta:
                meta["namespace"] = old_meta["namespace"]
            if rtype.has_status:
                if "status" in old:
                    candidate["status"] = copy.deepcopy(old["status"])
                else:
                    candidate.pop("status", None)
            if rtype.group_resource == NAMESPACES:
                candidate["spec"] = copy.deepcopy(old.get("spec", {}))
            if old_meta.get("deletionTimestamp"):
                added = [f for f in meta.get("finalizers") or [] if f not in
                         (old_meta.get("finalizers") or [])]
                if added:
                    raise invalid(rtype, name, [FieldError(
                        "metadata.finalizers", "Forbidden",
                        "Forbidden: no new finalizers can be added if the object is being "
                        f"deleted, found new finalizers {json.dumps(added)}")])
            if rtype.group_resource == CRD_GROUP_RESOURCE:
                self._apply_kind_defaults(rtype, candidate)
        candidate["apiVersion"], candidate["kind"] = rtype.api_version, rtype.kind
        candidate, warnings = self._admit(rtype, candidate, old, mode)
        meta = candidate["metadata"]
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        if rtype.tracks_generation:
            drop = rtype.has_status
            if _comparable(candidate, drop_status=drop) != _comparable(old, drop_status=drop):
                meta["generation"] = int(old["metadata"].get("generation") or 0) + 1
        if _same(candidate, old):
            return self._present(rtype, old), warnings
        if dry_run:
            return self._present(rtype, candidate), warnings
        stored = self._commit(rtype, candidate, old)
        if self._deletable(stored):
            stored = self._remove(rtype.group_resource, stored)
        elif rtype.group_resource == CRD_GROUP_RESOURCE and not meta.get("deletionTimestamp"):
            self.catalogue.register_crd(stored)
        self._settle()
        return self._present(rtype, stored), warnings

    def _establish_crd(self, rtype: ResourceType, crd: dict) -> None:
        """What the CRD controllers do after a create: serve it, finalizer, Established."""
        self.catalogue.register_crd(crd)
        updated = copy.deepcopy(crd)
        names = updated["spec"]["names"]
        updated["metadata"]["finalizers"] = [CRD_CLEANUP_FINALIZER]
        when = now_rfc3339()
        updated["status"] = {
            "acceptedNames": copy.deepcopy(names),
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": when},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": when},
            ],
            "storedVersions": [v["name"] for v in updated["spec"]["versions"] if v.get("storage")],
        }
        self._commit(rtype, updated, crd)
