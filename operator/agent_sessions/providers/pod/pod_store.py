"""The session pods as the operator's pod watch last delivered them (issue 11: observation from the
watch, not from GETs).

The operator watches pods with the `agentsession.dev/session` label anyway (their events trigger
their sessions' reconciles); `PodStore.seen` keeps each one, trimmed to what `observe_pod` and the
log redaction read, and the provider observes a session from here instead of reading its pod.
A converged session so costs no request.

Only a `watched` store answers `get`: the operator sets it when it feeds the store from its pod
watch (`handlers.registration`); a provider used without one (a test, a tool) reads every time.

Freshness. The store is never older than what the provider itself did: `put` takes the API's
answer to our own create or read, `forget` drops a pod we just deleted (the next observe reads
it). A watch event older than what is held (a smaller resourceVersion) is ignored. An event
updates the store before it triggers the session's reconcile (`handlers.registration`), so the
reconcile a change causes sees the change. A pod the store does not hold is read (and put here):
the watch may not have delivered it yet.

A pod the watch saw deleted is remembered as gone (`GONE`, at most `MAX_GONE` names, oldest
first): the reconcile its DELETED event triggers, and the stopped session's next ones, need no
read to learn that it is gone. Pod names carry the session's uid, so a name is never reused by
another session; a new pod of the name (a resume) replaces the mark.

A watch can miss a deletion (kopf re-lists after a long disconnect and does not report what
vanished meanwhile): `forget` drops what is held for a pod, and the reconciler calls it through
the provider's `invalidate` when the runtime of a session the store says is ready does not answer.

Memory: one small dict per session pod (metadata names and times, the Secrets its containers are
given, its status), and a key per pod seen deleted (bounded).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent_sessions.api.json_shape import copy_json, pack_json, unpack_json

Key = tuple[str, str]

MAX_GONE = 10_000
"""Deleted pods remembered as gone; beyond this the oldest are forgotten (and read if asked about)."""


class _Gone:
    def __repr__(self) -> str:
        return "GONE"


GONE: Any = _Gone()
"""`PodStore.get` for a pod the watch saw deleted."""

_METADATA_KEPT = ("name", "namespace", "uid", "resourceVersion", "deletionTimestamp", "ownerReferences", "labels")


_STATUS_KEPT = ("phase", "reason", "message", "podIP")
_CONDITION_KEPT = ("type", "status", "reason", "message")
_CONTAINER_STATUS_KEPT = ("name", "ready", "restartCount", "state", "lastState")


def trim_pod(pod: Mapping[str, Any]) -> dict[str, Any]:
    """`pod` (Pod JSON) cut to what the pod provider reads: `observe_pod` (metadata; of the status
    the phase, reason, message, IP, conditions and container states), `secret_references` (the
    containers' secret env and envFrom, secret volumes), ownership. A copy, sharing its keys and
    short strings with every other held pod (`copy_json(shared=True)`): nothing of the decoded
    watch event is kept alive by it."""
    return copy_json(_trimmed(pod), shared=True)


def _trimmed(pod: Mapping[str, Any]) -> dict[str, Any]:
    """`trim_pod` without the copy (its parts are the pod's own): for packing at once."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    kept_status = _picked(status, _STATUS_KEPT)
    if isinstance(status.get("conditions"), list):
        kept_status["conditions"] = [_picked(condition, _CONDITION_KEPT) for condition in status["conditions"]
                                     if isinstance(condition, Mapping)]
    if isinstance(status.get("containerStatuses"), list):
        kept_status["containerStatuses"] = [_picked(container, _CONTAINER_STATUS_KEPT)
                                            for container in status["containerStatuses"]
                                            if isinstance(container, Mapping)]
    return {
        "metadata": {key: meta[key] for key in _METADATA_KEPT if meta.get(key) is not None},
        "spec": {
            kind: [_secret_parts_of_container(container) for container in spec.get(kind) or ()]
            for kind in ("initContainers", "containers") if spec.get(kind)
        } | ({"volumes": volumes} if (volumes := _secret_volumes(spec.get("volumes"))) else {}),
        "status": kept_status,
    }


def _picked(mapping: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: mapping[key] for key in keys if mapping.get(key) is not None}


def _secret_parts_of_container(container: Mapping[str, Any]) -> dict[str, Any]:
    env = [entry for entry in container.get("env") or () if ((entry or {}).get("valueFrom") or {}).get("secretKeyRef")]
    env_from = [entry for entry in container.get("envFrom") or () if (entry or {}).get("secretRef")]
    return {"name": container.get("name"), "env": env, "envFrom": env_from}


def _secret_volumes(volumes: Any) -> list[dict[str, Any]]:
    return [volume for volume in volumes or () if isinstance(volume, Mapping)
            and (volume.get("secret") or volume.get("projected"))]


def _newer_or_unknown(candidate: Any, held: Any) -> bool:
    """Whether `candidate` (a resourceVersion) is not older than `held`. resourceVersions are
    opaque to clients; the API server's are integers, and where either is not, the candidate
    wins (the watch delivers events in order)."""
    try:
        return int(candidate) >= int(held)
    except (TypeError, ValueError):
        return True


class PodStore:
    """Owned pods by (namespace, name), as last seen (see the module doc)."""

    def __init__(self, *, watched: bool = False) -> None:
        self._pods: dict[Key, tuple[str, str, Any]] = {}
        """key → (uid, resourceVersion, the trimmed pod packed by `pack_json`)."""
        self._gone: dict[Key, str | None] = {}
        """Pods seen deleted: key → the deleted pod's uid."""
        self.watched = watched
        """Whether a pod watch feeds `seen` (else `get` always answers None: read the pod)."""

    def seen(self, event_type: str | None, pod: Mapping[str, Any]) -> bool:
        """A watch event (`None`: the initial listing). False when it told nothing new: the pod as
        held already (e.g. the ADDED of a pod whose create's answer was kept first), or older."""
        meta = pod.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        if event_type == "DELETED":
            held = self._pods.get(key)
            if held is None or held[0] == (meta.get("uid") or ""):
                self._pods.pop(key, None)
                self._gone.pop(key, None)
                self._gone[key] = meta.get("uid")
                while len(self._gone) > MAX_GONE:
                    self._gone.pop(next(iter(self._gone)))
            return True
        held = self._pods.get(key)
        version = meta.get("resourceVersion")
        if version and held is not None and (held[0], held[1]) == (meta.get("uid") or "", version):
            return False
        return self.put(pod)

    def put(self, pod: Mapping[str, Any]) -> bool:
        """Keep `pod` unless what is held is newer, or it is a pod the watch saw deleted (a read
        answered before the deletion, processed after it). Whether it was kept."""
        meta = pod.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        if key in self._gone and self._gone[key] == meta.get("uid"):
            return False
        held = self._pods.get(key)
        if held is not None and held[0] == (meta.get("uid") or "") \
                and not _newer_or_unknown(meta.get("resourceVersion"), held[1]):
            return False
        self._gone.pop(key, None)
        self._pods[key] = (meta.get("uid") or "", meta.get("resourceVersion") or "", pack_json(_trimmed(pod)))
        return True

    def forget(self, namespace: str, name: str) -> None:
        """Whatever is known of the pod: the next `get` says None (read it)."""
        self._pods.pop((namespace, name), None)
        self._gone.pop((namespace, name), None)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The pod as last seen, `GONE` when the watch saw it deleted, or None when the store knows
        nothing of it or no watch feeds it (read it)."""
        if not self.watched:
            return None
        key = (namespace, name)
        if key in self._gone:
            return GONE
        held = self._pods.get(key)
        return None if held is None else unpack_json(held[2])

    def __len__(self) -> int:
        return len(self._pods)
