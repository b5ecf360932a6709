"""The objects of one emulated API server: reads, commits and removals under one lock.

:class:`ObjectStore` is assembled from the write paths (``writes``, ``binding``, ``deletion``);
this module keeps what they share: the buckets of objects, the uid index, the event log, and the
one place an object is stored (``_commit``) or removed for good (``_remove``).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable

from agent_sessions.dev.object_store.binding import PodBinding
from agent_sessions.dev.object_store.deletion import Deletion
from agent_sessions.dev.object_store.errors import bad_request, not_found
from agent_sessions.dev.object_store.events import EventLog, WatchEvent
from agent_sessions.dev.object_store.kinds import CRD_GROUP_RESOURCE, INITIAL_NAMESPACES
from agent_sessions.dev.object_store.writes import Writes
from agent_sessions.dev.resources import ResourceCatalogue, ResourceType, version_priority
from agent_sessions.dev.selection import FieldSelector, LabelSelector, SelectorError


class ObjectStore(Writes, PodBinding, Deletion):
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

    # --- internals: storing ----------------------------------------------------------

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
        if group_resource == CRD_GROUP_RESOURCE:
            self.catalogue.unregister_crd(meta["name"])
        for hook in self.removal_hooks:
            hook(group_resource, final)
        self._gc_queue.append(final)
        return final
