"""Kubernetes Events for session transitions (§9): one per transition, never one per log line.

An Event's message is shown by `kubectl describe` and `kubectl get events` on a reader's
terminal: control characters and escape sequences never get into it (`lifecycle.printable`).
Secrets are redacted by the caller, which knows the session's (`reconciler`)."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Any

from kubernetes_asyncio import client

from agent_sessions.api import constants as c
from agent_sessions.k8s.client import call_json
from agent_sessions.lifecycle.printable import printable_text

COMPONENT = "agent-session-operator"
MAX_MESSAGE = 1024


def build_event(
    involved: dict[str, Any], type_: str, reason: str, message: str, now: datetime, instance: str
) -> dict[str, Any]:
    """A core/v1 Event about `involved` (an AgentSession object)."""
    meta = involved["metadata"]
    stamp = now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta['name']}.{secrets.token_hex(8)}",
            "namespace": meta["namespace"],
            "labels": {c.LABEL_SESSION: meta["name"]} if len(meta["name"]) <= 63 else {},
        },
        "involvedObject": {
            "apiVersion": involved.get("apiVersion", c.API_VERSION),
            "kind": involved.get("kind", c.SESSION_KIND),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": type_,
        "reason": reason,
        "message": printable_text(message)[:MAX_MESSAGE],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "eventTime": now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "action": reason,
        "count": 1,
    }


async def post_event(api: client.ApiClient, event: dict[str, Any]) -> None:
    # The answer is not needed: not turned into the client's model (`call_json`).
    await call_json(client.CoreV1Api(api).create_namespaced_event, event["metadata"]["namespace"], event)
