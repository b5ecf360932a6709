"""``POST pods/{name}/binding``: what the scheduler does to a pod, with the server's answers."""

from __future__ import annotations

import copy
from typing import Any

from agent_sessions.dev.admission import FieldError
from agent_sessions.dev.object_store.clock import now_rfc3339
from agent_sessions.dev.object_store.errors import ApiError, bad_request, conflict
from agent_sessions.dev.object_store.kinds import PODS
from agent_sessions.dev.resources import ResourceType


class PodBinding:
    """The binding subresource of :class:`~agent_sessions.dev.object_store.store.ObjectStore`
    (a mixin: it uses the store's lock, ``_require`` and ``_commit``)."""

    def bind(self, rtype: ResourceType, namespace: str | None, name: str, binding: Any, *,
             dry_run: bool = False) -> dict:
        """``POST pods/{name}/binding`` (what the scheduler does): sets the pod's
        ``spec.nodeName`` to ``binding.target.name``, adds the binding's annotations and the
        PodScheduled condition; answers a success ``Status`` (201).  400 for a name that is
        not the URL's, 422 without a target node, 409 when the uid in the binding's metadata
        is not the pod's or the pod is bound already, 500 when it is being deleted — the
        server's answers."""
        if rtype.group_resource != PODS:
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
