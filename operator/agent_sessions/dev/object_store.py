"""The object store of the emulated API server: what a write does, not how it arrives.

Why this exists: an operator is correct only relative to the API server's rules, and the
rules an operator leans on are the ones kmock's emulator leaves out: optimistic
concurrency (``resourceVersion`` and 409 Conflict), ``generation`` moving only with
``spec``, the status subresource splitting who may write what, finalizers holding a
deleted object, owner references cascading deletes, and watches that resume from a
resource version.  Every HTTP verb and every in-process call of
:class:`~agent_sessions.dev.strict_api.StrictKubernetesAPI` goes through this class, so
tests that bypass HTTP still get the same semantics and the same watch events.

How a write works (all under one re-entrant lock, so other threads may call in):

1. decode: ``apiVersion``/``kind``/namespace/name checked against the request (400);
2. merge with the stored object: system fields (``uid``, ``creationTimestamp``, ...) are
   the server's; a ``/status`` write keeps everything but ``.status``, a main write keeps
   ``.status`` when the resource has a status subresource;
3. preconditions: a ``metadata.resourceVersion`` in the written object must be current
   (409); no new finalizers on an object being deleted (422);
4. admission: :class:`~agent_sessions.dev.admission.CRDValidator` (422 Invalid with
   causes), unknown fields pruned (``Warn``/``Ignore``) or refused (``Strict``, 400);
5. ``generation`` + 1 when anything outside metadata (and status) changed;
6. a write that changes nothing is not stored: no new resourceVersion, no watch event —
   exactly like the server, which compares the encoded object before writing;
7. commit: the global resourceVersion counter + 1, one watch event in the history.

Deletion sets ``deletionTimestamp`` (and, as on the server, bumps ``generation``) while
finalizers remain; the last finalizer removed deletes the object (MODIFIED, then DELETED).

Pods are deleted gracefully, as the server's pod strategy does (``CheckGracefulDelete`` and
``rest.BeforeDelete``): a pod bound to a node (``spec.nodeName``) and not Succeeded/Failed
gets ``deletionTimestamp`` (now + the grace period) and ``deletionGracePeriodSeconds`` (from
``DeleteOptions.gracePeriodSeconds``, else ``spec.terminationGracePeriodSeconds``, else 30:
the server's default) and stays until its kubelet, having stopped the containers, deletes it
again with grace 0.  A later DELETE may only shorten the period; grace 0 removes it (once no
finalizers remain).  An unbound or terminated pod is deleted with grace 0: one MODIFIED with
``deletionTimestamp`` set, then DELETED, as the server writes it.  Garbage collection and
namespace termination delete pods the same way.  Pods are bound by ``POST pods/{name}/binding``
(:meth:`ObjectStore.bind`), as the scheduler does.  Garbage collection of owner references,
namespace termination and CRD cleanup run synchronously right after the write that
triggered them (the server's controllers do it moments later); see ``_settle``.
"""

from __future__ import annotations

import copy
import datetime
import json
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from agent_sessions.dev.admission import UNKNOWN_FIELD, FieldError
from agent_sessions.dev.patches import (
    APPLY_PATCH,
    STRATEGIC_MERGE_PATCH,
    MalformedPatch,
    PatchError,
    apply_patch,
)
from agent_sessions.dev.resources import (
    ResourceCatalogue,
    ResourceType,
    crd_names_errors,
    version_priority,
)
from agent_sessions.dev.selection import FieldSelector, LabelSelector, SelectorError

FOREGROUND_FINALIZER = "foregroundDeletion"
CRD_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
NAMESPACE_FINALIZER = "kubernetes"
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
FIELD_VALIDATION_MODES = ("Ignore", "Warn", "Strict")
_SYSTEM_FIELDS = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "generation", "resourceVersion", "selfLink", "managedFields")
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the server's generateName alphabet
_CAUSE_REASONS = {
    "Invalid value": "FieldValueInvalid", "Required value": "FieldValueRequired",
    "Unsupported value": "FieldValueNotSupported", "Too long": "FieldValueTooLong",
    "Too many": "FieldValueTooMany", "Duplicate value": "FieldValueDuplicate",
    "Forbidden": "FieldValueForbidden", "Unknown field": "FieldValueTypeInvalid",
    "Invalid type": "FieldValueTypeInvalid",
}
_CRD_GROUP_RESOURCE = ("apiextensions.k8s.io", "customresourcedefinitions")
_NAMESPACES = ("", "namespaces")
_PODS = ("", "pods")
DEFAULT_TERMINATION_GRACE_PERIOD = 30
"""The server's default for a pod's ``spec.terminationGracePeriodSeconds``."""
_TERMINAL_POD_PHASES = ("Succeeded", "Failed")
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class ApiError(Exception):
    """A failure the API server reports as a ``Status`` object with an HTTP code."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict:
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            status["details"] = self.details
        return status


def _details(rtype: ResourceType, name: str, kind: str | None = None) -> dict:
    details = {"name": name, "kind": kind or rtype.plural}
    if rtype.group:
        details["group"] = rtype.group
    return details


def not_found(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rtype.qualified_plural} "{name}" not found',
                    _details(rtype, name))


def already_exists(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{rtype.qualified_plural} "{name}" already exists',
                    _details(rtype, name))


def conflict(rtype: ResourceType, name: str, why: str | None = None) -> ApiError:
    why = why or ("the object has been modified; please apply your changes to the latest "
                  "version and try again")
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on '
                                     f'{rtype.qualified_plural} "{name}": {why}',
                    _details(rtype, name))


def invalid(rtype: ResourceType, name: str, errors: list[FieldError]) -> ApiError:
    shown = [str(error) for error in errors]
    summary = shown[0] if len(shown) == 1 else f"[{', '.join(shown)}]"
    details = _details(rtype, name, kind=rtype.kind)
    details["causes"] = [{"reason": _CAUSE_REASONS.get(error.type, "FieldValueInvalid"),
                          "message": error.message, "field": error.path or "<nil>"} for error in errors]
    return ApiError(422, "Invalid", f'{rtype.qualified_kind} "{name}" is invalid: {summary}',
                    details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def expired(requested: int, oldest: int) -> ApiError:
    return ApiError(410, "Expired", f"too old resource version: {requested} ({oldest})")


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime(_TIMESTAMP_FORMAT)


def _later(timestamp: str | None, seconds: int) -> str:
    """``timestamp`` (None: now) moved by ``seconds``, in the server's format."""
    if timestamp is None:
        when = datetime.datetime.now(datetime.UTC)
    else:
        when = datetime.datetime.strptime(timestamp, _TIMESTAMP_FORMAT).replace(tzinfo=datetime.UTC)
    return (when + datetime.timedelta(seconds=seconds)).strftime(_TIMESTAMP_FORMAT)


def grace_period_option(value: Any) -> int | None:
    """``DeleteOptions.gracePeriodSeconds`` as the server reads it: None when absent, an integer
    otherwise, a negative one counting as 1 (400 for anything but an integer)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise bad_request(f"gracePeriodSeconds: Invalid value: {json.dumps(value)}: must be an integer")
    try:
        seconds = int(value)
    except ValueError:
        raise bad_request(f'gracePeriodSeconds: Invalid value: "{value}": must be an integer') from None
    return 1 if seconds < 0 else seconds


def pod_deletion_grace_period(pod: dict, requested: int | None) -> int:
    """The grace period a first DELETE gives ``pod`` (the pod strategy's ``CheckGracefulDelete``):
    the requested one, else the pod's ``terminationGracePeriodSeconds`` (30 when unset); 0 for a
    pod no kubelet runs (unbound) or that has ended (Succeeded/Failed)."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    period = requested
    if period is None:
        configured = spec.get("terminationGracePeriodSeconds")
        period = DEFAULT_TERMINATION_GRACE_PERIOD if configured is None else int(configured)
    if not spec.get("nodeName") or status.get("phase") in _TERMINAL_POD_PHASES:
        period = 0
    return 1 if period < 0 else period


@dataclass(frozen=True)
class WatchEvent:
    """One committed change; ``old`` (the previous state) lets watchers with selectors turn
    a MODIFIED into ADDED/DELETED when an object enters or leaves their selection."""

    resource_version: int
    group_resource: tuple[str, str]
    type: str  # ADDED | MODIFIED | DELETED
    object: dict
    old: dict | None


class EventLog:
    """A store's committed changes, in order and bounded, and the listeners each one wakes.

    Why: watches replay from it (410 Expired once the oldest events are compacted away), and
    in-process components (the fake kubelet, the pod runner) follow it instead of polling. The
    embedded store and the node simulator's mirror of a real API server both keep one. Not
    thread-safe by itself: its owner's lock guards it.
    """

    def __init__(self, size: int = 10_000) -> None:
        self.resource_version = 0
        self.listeners: set[Callable[[], None]] = set()
        """Called after every append, under the owner's lock: they must only schedule work."""
        self._events: deque[WatchEvent] = deque()
        self._size = size
        self._compacted = 0  # every event after this resourceVersion is still here

    def next_version(self) -> int:
        self.resource_version += 1
        return self.resource_version

    def append(self, event: WatchEvent) -> None:
        self._events.append(event)
        while len(self._events) > self._size:
            self._compacted = self._events.popleft().resource_version
        for listener in list(self.listeners):
            listener()

    def after(self, resource_version: int) -> list[WatchEvent]:
        """Events newer than ``resource_version``; 410 Expired if some are gone."""
        if resource_version < self._compacted:
            raise expired(resource_version, self._compacted + 1)
        newer: list[WatchEvent] = []
        for event in reversed(self._events):
            if event.resource_version <= resource_version:
                break
            newer.append(event)
        return newer[::-1]


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


class ObjectStore:
    """All objects of one emulated API server, their history, and the rules for writing them."""

    def __init__(self, catalogue: ResourceCatalogue, *, history_size: int = 10_000) -> None:
        self.catalogue = catalogue
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str], dict[tuple[str, str], dict]] = {}
        self._uids: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {}
        self._log = EventLog(history_size)
        self._gc_queue: list[dict] = []
        self.removal_hooks: list[Callable[[tuple[str, str], dict], None]] = []
        namespaces = self.catalogue.resolve("v1/namespaces")
        for name in INITIAL_NAMESPACES:
            self.create(namespaces, None, {"metadata": {"name": name}})

    # --- reading ----------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._log.resource_version

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict:
        with self._lock:
            return self._present(rtype, self._require(rtype, namespace, name))

    def list(self, rtype: ResourceType, namespace: str | None = None,
             labels: LabelSelector | None = None,
             fields: FieldSelector | None = None) -> tuple[list[dict], int]:
        """Matching objects sorted by namespace and name, and the collection's resourceVersion."""
        if fields is not None:
            try:
                fields.check_supported(rtype.group, rtype.plural, rtype.selectable_fields)
            except SelectorError as exc:
                raise bad_request(str(exc)) from None
        with self._lock:
            bucket = self._objects.get(rtype.group_resource, {})
            items = [self._present(rtype, obj) for key, obj in sorted(bucket.items())
                     if self.selects(rtype, obj, namespace, labels, fields)]
            return items, self._log.resource_version

    @staticmethod
    def selects(rtype: ResourceType, obj: dict, namespace: str | None,
                labels: LabelSelector | None, fields: FieldSelector | None) -> bool:
        if namespace is not None and rtype.namespaced and obj["metadata"].get("namespace") != namespace:
            return False
        if labels is not None and not labels.matches(obj):
            return False
        return fields is None or fields.matches(obj, rtype.group, rtype.plural)

    def events_after(self, resource_version: int) -> list[WatchEvent]:
        """Committed events newer than ``resource_version``; 410 Expired if some are gone."""
        with self._lock:
            return self._log.after(resource_version)

    def subscribe(self, listener: Callable[[], None]) -> None:
        """``listener()`` is called (under the store lock, from the writing thread) after
        every commit; it must only schedule work, e.g. ``loop.call_soon_threadsafe``."""
        with self._lock:
            self._log.listeners.add(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._log.listeners.discard(listener)

    def present(self, rtype: ResourceType, obj: dict) -> dict:
        return self._present(rtype, obj)

    # --- writing ----------------------------------------------------------------------

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
        for key in _SYSTEM_FIELDS:
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
            if rtype.group_resource == _CRD_GROUP_RESOURCE:
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
                               _details(rtype, name, kind=rtype.kind)) from None
            if _meta(new).get("name") != name:
                raise bad_request(f"the name of the object ({_meta(new).get('name')}) does not "
                                  f"match the name on the URL ({name})")
            expected = _meta(new).get("resourceVersion")
            return self._update(rtype, old, new, subresource, expected, field_validation, dry_run)

    def delete(self, rtype: ResourceType, namespace: str | None, name: str, *,
               propagation_policy: str | None = None, preconditions: dict | None = None,
               grace_period_seconds: int | None = None, dry_run: bool = False) -> dict:
        """DELETE: the object as it is afterwards (deletionTimestamp set) or as it was last.

        ``grace_period_seconds`` (``DeleteOptions.gracePeriodSeconds``) matters for pods only:
        see the module docstring."""
        grace_period_seconds = grace_period_option(grace_period_seconds)
        if propagation_policy not in (None, "Background", "Foreground", "Orphan"):
            raise bad_request(f'Unsupported value: "{propagation_policy}": supported values: '
                              '"Foreground", "Background", "Orphan"')
        with self._lock:
            obj = self._require(rtype, namespace, name)
            meta = obj["metadata"]
            for key in ("uid", "resourceVersion"):
                wanted = (preconditions or {}).get(key)
                if wanted and wanted != meta.get(key):
                    field = "UID" if key == "uid" else "ResourceVersion"
                    raise conflict(rtype, name, f"Precondition failed: {field} in precondition: "
                                                f"{wanted}, {field} in object meta: {meta.get(key)}")
            if dry_run:
                return self._present(rtype, obj)
            result = self._delete_object(rtype, obj, propagation_policy or "Background",
                                         grace_period_seconds)
            self._settle()
            return self._present(rtype, result)

    def delete_collection(self, rtype: ResourceType, namespace: str | None,
                          labels: LabelSelector | None = None, fields: FieldSelector | None = None,
                          *, propagation_policy: str | None = None,
                          grace_period_seconds: int | None = None) -> list[dict]:
        with self._lock:
            items, _ = self.list(rtype, namespace, labels, fields)
            return [self.delete(rtype, item["metadata"].get("namespace"), item["metadata"]["name"],
                                propagation_policy=propagation_policy,
                                grace_period_seconds=grace_period_seconds) for item in items]

    def bind(self, rtype: ResourceType, namespace: str | None, name: str, binding: Any, *,
             dry_run: bool = False) -> dict:
        """``POST pods/{name}/binding`` (what the scheduler does): sets the pod's
        ``spec.nodeName`` to ``binding.target.name``, adds the binding's annotations and the
        PodScheduled condition; answers a success ``Status`` (201).  400 for a name that is
        not the URL's, 422 without a target node, 409 when the uid in the binding's metadata
        is not the pod's or the pod is bound already, 500 when it is being deleted — the
        server's answers."""
        if rtype.group_resource != _PODS:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not isinstance(binding, dict):
            raise bad_request("the body of the request must be a Binding object")
        if binding.get("kind") not in (None, "Binding") or binding.get("apiVersion") not in (None, "v1"):
            raise bad_request(f"the kind in the data ({binding.get('kind')}) does not match the "
                              "expected kind (Binding)")
        bmeta = binding.get("metadata") or {}
        if bmeta.get("name") != name:
            raise bad_request(f"the name of the object ({bmeta.get('name') or ''}) does not match "
                              f"the name on the URL ({name})")
        target = binding.get("target") or {}
        problems = []
        if not target.get("name"):
            problems.append(FieldError("target.name", "Required value", "Required value"))
        if target.get("kind") not in (None, "", "Node"):
            problems.append(FieldError("target.kind", "Invalid value",
                                       f'Invalid value: "{target.get("kind")}": must be empty or '
                                       "'Node'"))
        if problems:
            details = {"name": name, "kind": "Binding"}
            raise ApiError(422, "Invalid", f'Binding "{name}" is invalid: '
                                           + ", ".join(str(p) for p in problems),
                           details)
        with self._lock:
            pod = self._require(rtype, namespace, name)
            meta = pod["metadata"]
            if bmeta.get("uid") and bmeta["uid"] != meta["uid"]:
                raise conflict(rtype, name, f"Precondition failed: UID in precondition: "
                                            f"{bmeta['uid']}, UID in object meta: {meta['uid']}")
            if meta.get("deletionTimestamp"):
                raise ApiError(500, "InternalError", f"Internal error occurred: pod {name} is "
                                                     "being deleted, cannot be assigned to a host")
            bound = (pod.get("spec") or {}).get("nodeName")
            if bound:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on binding '
                                                f'"{name}": pod {name} is already assigned to '
                                                f'node "{bound}"',
                               {"name": name, "kind": "binding"})
            success = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                       "status": "Success", "code": 201}
            if dry_run:
                return success
            updated = copy.deepcopy(pod)
            updated.setdefault("spec", {})["nodeName"] = target["name"]
            if bmeta.get("annotations"):
                updated["metadata"].setdefault("annotations", {}).update(bmeta["annotations"])
            status = updated.setdefault("status", {})
            others = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            status["conditions"] = [*others, {"type": "PodScheduled", "status": "True",
                                              "lastProbeTime": None,
                                              "lastTransitionTime": now_rfc3339()}]
            self._commit(rtype, updated, pod)
            return success

    # --- internals: reading -----------------------------------------------------------

    def _find(self, group_resource: tuple[str, str], namespace: str | None, name: str) -> dict | None:
        return self._objects.get(group_resource, {}).get((namespace or "", name))

    def _require(self, rtype: ResourceType, namespace: str | None, name: str) -> dict:
        obj = self._find(rtype.group_resource, namespace if rtype.namespaced else None, name)
        if obj is None:
            raise not_found(rtype, name)
        return obj

    def _present(self, rtype: ResourceType, obj: dict) -> dict:
        shown = {"apiVersion": rtype.api_version, "kind": rtype.kind}
        shown.update((k, copy.deepcopy(v)) for k, v in obj.items() if k not in shown)
        return shown

    def _type_of(self, group_resource: tuple[str, str]) -> ResourceType:
        """The preferred served version of a stored resource (for internal writes)."""
        candidates = [t for t in self.catalogue if t.group_resource == group_resource]
        if not candidates:
            raise KeyError(group_resource)
        return min(candidates, key=lambda t: version_priority(t.version))

    def _dependents(self, owner_uid: str) -> Iterable[tuple[tuple[str, str], dict]]:
        for group_resource, bucket in list(self._objects.items()):
            for obj in list(bucket.values()):
                refs = obj["metadata"].get("ownerReferences") or []
                if any(ref.get("uid") == owner_uid for ref in refs):
                    yield group_resource, obj

    # --- internals: writing -----------------------------------------------------------

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
        ns = self._find(_NAMESPACES, None, namespace)
        if ns is None:
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found',
                           {"name": namespace, "kind": "namespaces"})
        if ns["metadata"].get("deletionTimestamp"):
            message = (f"unable to create new content in namespace {namespace} because it is "
                       "being terminated")
            details = _details(rtype, name)
            details["causes"] = [{"reason": "NamespaceTerminating", "message": message,
                                  "field": "metadata.namespace"}]
            raise ApiError(403, "Forbidden", f'{rtype.qualified_plural} "{name}" is forbidden: '
                                             f'{message}', details)

    def _apply_kind_defaults(self, rtype: ResourceType, obj: dict) -> None:
        if rtype.group_resource == _NAMESPACES:
            meta = obj["metadata"]
            if isinstance(meta.get("name"), str):
                meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            obj["spec"] = {"finalizers": [NAMESPACE_FINALIZER]}
            obj["status"] = {"phase": "Active"}
        elif rtype.group_resource == _CRD_GROUP_RESOURCE:
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
            for key in _SYSTEM_FIELDS:
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
            if rtype.group_resource == _NAMESPACES:
                candidate["spec"] = copy.deepcopy(old.get("spec", {}))
            if old_meta.get("deletionTimestamp"):
                added = [f for f in meta.get("finalizers") or [] if f not in
                         (old_meta.get("finalizers") or [])]
                if added:
                    raise invalid(rtype, name, [FieldError(
                        "metadata.finalizers", "Forbidden",
                        "Forbidden: no new finalizers can be added if the object is being "
                        f"deleted, found new finalizers {json.dumps(added)}")])
            if rtype.group_resource == _CRD_GROUP_RESOURCE:
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
        elif rtype.group_resource == _CRD_GROUP_RESOURCE and not meta.get("deletionTimestamp"):
            self.catalogue.register_crd(stored)
        self._settle()
        return self._present(rtype, stored), warnings

    def _commit(self, rtype: ResourceType, obj: dict, old: dict | None) -> dict:
        """Stores ``obj`` (never mutated afterwards) with a new resourceVersion; one event."""
        version = self._log.next_version()
        obj["metadata"]["resourceVersion"] = str(version)
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        self._objects.setdefault(rtype.group_resource, {})[key] = obj
        self._uids[obj["metadata"]["uid"]] = (rtype.group_resource, key)
        self._log.append(WatchEvent(version, rtype.group_resource, "ADDED" if old is None else "MODIFIED", obj, old))
        return obj

    def _remove(self, group_resource: tuple[str, str], obj: dict) -> dict:
        """Deletes the stored object for good: a DELETED event; dependents queued for GC."""
        meta = obj["metadata"]
        self._objects[group_resource].pop((meta.get("namespace", ""), meta["name"]), None)
        self._uids.pop(meta["uid"], None)
        version = self._log.next_version()
        final = copy.deepcopy(obj)
        final["metadata"]["resourceVersion"] = str(version)
        self._log.append(WatchEvent(version, group_resource, "DELETED", final, obj))
        if group_resource == _CRD_GROUP_RESOURCE:
            self.catalogue.unregister_crd(meta["name"])
        for hook in self.removal_hooks:
            hook(group_resource, final)
        self._gc_queue.append(final)
        return final

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

    @staticmethod
    def _deletable(obj: dict) -> bool:
        """Whether a stored object being deleted is due to go: no finalizers left and no
        grace period running (the server's ``ShouldDeleteDuringUpdate``)."""
        meta = obj["metadata"]
        return bool(meta.get("deletionTimestamp")) and not meta.get("finalizers") \
            and not meta.get("deletionGracePeriodSeconds")

    def _delete_object(self, rtype: ResourceType, obj: dict, policy: str,
                       grace: int | None = None) -> dict:
        meta = obj["metadata"]
        graceful = rtype.group_resource == _PODS
        if meta.get("deletionTimestamp"):
            return self._delete_again(rtype, obj, grace) if graceful else obj
        if policy == "Orphan":
            self._orphan_dependents(meta["uid"])
        finalizers = list(meta.get("finalizers") or [])
        if policy == "Foreground" and FOREGROUND_FINALIZER not in finalizers:
            finalizers.append(FOREGROUND_FINALIZER)
        terminates = rtype.group_resource == _NAMESPACES
        if not finalizers and not terminates and not graceful:
            return self._remove(rtype.group_resource, obj)
        period = pod_deletion_grace_period(obj, grace) if graceful else 0
        deleting = copy.deepcopy(obj)
        deleting["metadata"].update(deletionTimestamp=_later(None, period),
                                    deletionGracePeriodSeconds=period)
        if finalizers:
            deleting["metadata"]["finalizers"] = finalizers
        if "generation" in meta:
            deleting["metadata"]["generation"] = int(meta["generation"]) + 1
        if terminates:
            deleting["status"] = {"phase": "Terminating"}
        stored = self._commit(rtype, deleting, obj)
        if graceful and self._deletable(stored):  # grace 0: written once, then gone
            return self._remove(rtype.group_resource, stored)
        if policy == "Foreground":
            for group_resource, dependent in list(self._dependents(meta["uid"])):
                self._delete_object(self._type_of(group_resource), dependent, "Foreground")
        if terminates:
            for group_resource, bucket in list(self._objects.items()):
                for (namespace, _), item in list(bucket.items()):
                    if namespace == meta["name"]:
                        self._delete_object(self._type_of(group_resource), item, "Background")
        if rtype.group_resource == _CRD_GROUP_RESOURCE:
            served = (stored["spec"]["group"], stored["spec"]["names"]["plural"])
            for item in list(self._objects.get(served, {}).values()):
                self._delete_object(self._type_of(served), item, "Background")
        return stored

    def _delete_again(self, rtype: ResourceType, obj: dict, grace: int | None) -> dict:
        """DELETE of a pod already being deleted (``rest.BeforeDelete``): a running grace
        period may only be shortened; one of 0 (or none) removes the pod once no finalizers
        remain."""
        meta = obj["metadata"]
        current = meta.get("deletionGracePeriodSeconds")
        if current:
            if grace is None or grace >= current:
                return obj  # graceful deletion pending: nothing changes
            shorter = copy.deepcopy(obj)
            shorter["metadata"].update(
                deletionTimestamp=_later(meta["deletionTimestamp"], grace - int(current)),
                deletionGracePeriodSeconds=grace)
            obj = self._commit(rtype, shorter, obj)
        if self._deletable(obj):
            return self._remove(rtype.group_resource, obj)
        return obj

    def _orphan_dependents(self, owner_uid: str) -> None:
        for group_resource, dependent in list(self._dependents(owner_uid)):
            self._drop_owner_reference(group_resource, dependent, owner_uid)

    def _drop_owner_reference(self, group_resource: tuple[str, str], obj: dict, uid: str) -> None:
        updated = copy.deepcopy(obj)
        refs = [r for r in updated["metadata"].get("ownerReferences", []) if r.get("uid") != uid]
        if refs:
            updated["metadata"]["ownerReferences"] = refs
        else:
            updated["metadata"].pop("ownerReferences", None)
        self._commit(self._type_of(group_resource), updated, obj)

    def _release_finalizer(self, group_resource: tuple[str, str], obj: dict, finalizer: str) -> None:
        updated = copy.deepcopy(obj)
        remaining = [f for f in updated["metadata"].get("finalizers", []) if f != finalizer]
        updated["metadata"]["finalizers"] = remaining
        if not remaining:
            updated["metadata"].pop("finalizers")
        stored = self._commit(self._type_of(group_resource), updated, obj)
        if self._deletable(stored):
            self._remove(group_resource, stored)

    def _settle(self) -> None:
        """Runs the controllers the server runs beside the store until nothing changes:
        garbage collection of owner references, foreground deletion, namespace
        termination and CRD cleanup."""
        while True:
            if self._gc_queue:
                self._collect_dependents_of(self._gc_queue.pop(0))
            elif not self._finish_one_deletion():
                return

    def _collect_dependents_of(self, owner: dict) -> None:
        uid = owner["metadata"]["uid"]
        for group_resource, dependent in list(self._dependents(uid)):
            refs = dependent["metadata"].get("ownerReferences") or []
            if any(ref.get("uid") != uid and ref.get("uid") in self._uids for ref in refs):
                self._drop_owner_reference(group_resource, dependent, uid)
            else:
                self._delete_object(self._type_of(group_resource), dependent, "Background")

    def _finish_one_deletion(self) -> bool:
        for group_resource, bucket in list(self._objects.items()):
            for obj in list(bucket.values()):
                meta = obj["metadata"]
                if not meta.get("deletionTimestamp"):
                    continue
                finalizers = meta.get("finalizers") or []
                if FOREGROUND_FINALIZER in finalizers and not any(
                        ref.get("uid") == meta["uid"] and ref.get("blockOwnerDeletion")
                        for _, dependent in self._dependents(meta["uid"])
                        for ref in dependent["metadata"].get("ownerReferences", [])):
                    self._release_finalizer(group_resource, obj, FOREGROUND_FINALIZER)
                    return True
                if group_resource == _NAMESPACES and not any(
                        key[0] == meta["name"] for bucket_ in self._objects.values()
                        for key in bucket_):
                    if not finalizers:
                        self._remove(group_resource, obj)
                        return True
                if group_resource == _CRD_GROUP_RESOURCE and CRD_CLEANUP_FINALIZER in finalizers:
                    served = (obj["spec"]["group"], obj["spec"]["names"]["plural"])
                    if not self._objects.get(served):
                        self._release_finalizer(group_resource, obj, CRD_CLEANUP_FINALIZER)
                        return True
        return False
