"""Deletion as the server and its controllers do it: preconditions, finalizers and
``deletionTimestamp``, graceful deletion of pods bound to a node, owner-reference garbage
collection (Background, Foreground, Orphan), namespace termination and CRD cleanup, all run
synchronously after the write that triggers them (``_settle``)."""

from __future__ import annotations

import copy
import json
from typing import Any

from agent_sessions.dev.object_store.clock import later
from agent_sessions.dev.object_store.errors import bad_request, conflict
from agent_sessions.dev.object_store.kinds import (
    CRD_CLEANUP_FINALIZER,
    CRD_GROUP_RESOURCE,
    DEFAULT_TERMINATION_GRACE_PERIOD,
    FOREGROUND_FINALIZER,
    NAMESPACES,
    PODS,
    TERMINAL_POD_PHASES,
)
from agent_sessions.dev.resources import ResourceType
from agent_sessions.dev.selection import FieldSelector, LabelSelector


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
    if not spec.get("nodeName") or status.get("phase") in TERMINAL_POD_PHASES:
        period = 0
    return 1 if period < 0 else period


class Deletion:
    """DELETE and the controllers behind it, for
    :class:`~agent_sessions.dev.object_store.store.ObjectStore` (a mixin: it uses the store's
    lock, lookups, ``_commit`` and ``_remove``)."""

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

    # --- internals ------------------------------------------------------------------

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
        graceful = rtype.group_resource == PODS
        if meta.get("deletionTimestamp"):
            return self._delete_again(rtype, obj, grace) if graceful else obj
        if policy == "Orphan":
            self._orphan_dependents(meta["uid"])
        finalizers = list(meta.get("finalizers") or [])
        if policy == "Foreground" and FOREGROUND_FINALIZER not in finalizers:
            finalizers.append(FOREGROUND_FINALIZER)
        terminates = rtype.group_resource == NAMESPACES
        if not finalizers and not terminates and not graceful:
            return self._remove(rtype.group_resource, obj)
        period = pod_deletion_grace_period(obj, grace) if graceful else 0
        deleting = copy.deepcopy(obj)
        deleting["metadata"].update(deletionTimestamp=later(None, period),
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
        if rtype.group_resource == CRD_GROUP_RESOURCE:
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
                deletionTimestamp=later(meta["deletionTimestamp"], grace - int(current)),
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
                if group_resource == NAMESPACES and not any(
                        key[0] == meta["name"] for bucket_ in self._objects.values()
                        for key in bucket_):
                    if not finalizers:
                        self._remove(group_resource, obj)
                        return True
                if group_resource == CRD_GROUP_RESOURCE and CRD_CLEANUP_FINALIZER in finalizers:
                    served = (obj["spec"]["group"], obj["spec"]["names"]["plural"])
                    if not self._objects.get(served):
                        self._release_finalizer(group_resource, obj, CRD_CLEANUP_FINALIZER)
                        return True
        return False
