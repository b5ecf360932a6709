"""The workspace claim of a session: kept across stop and resume, deleted with the session.

Stopping a session deletes only its pod; the claim stays, and the next pod mounts it again. The
claim is owned by the AgentSession (not by the pod), so deleting the session garbage-collects it
— also when the operator is not running to do it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..base import SessionRef
from .constants import DEFAULT_ACCESS_MODES
from .names import pvc_name
from .pod_spec import session_labels
from .validation import block


def build_pvc(session: SessionRef, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The PersistentVolumeClaim of `session`'s workspace; None when `workspace.size` is unset."""
    workspace = block(config, "workspace")
    size = workspace.get("size")
    if size is None:
        return None
    spec: dict[str, Any] = {
        "accessModes": list(workspace.get("accessModes") or DEFAULT_ACCESS_MODES),
        "resources": {"requests": {"storage": str(size)}},
    }
    if workspace.get("storageClassName"):
        spec["storageClassName"] = workspace["storageClassName"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": pvc_name(session.namespace, session.name, session.uid),
            "namespace": session.namespace,
            "labels": session_labels(session),
            "ownerReferences": [session.owner_reference()],
        },
        "spec": spec,
    }
