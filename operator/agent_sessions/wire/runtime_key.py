"""The runtime key Secret (`wire.credentials`): the operator creates it, the operator and gateway read it.

The Secret lives in the install namespace (`<release>-runtime-key` in the chart), type `Opaque`,
data `key` = 32 random bytes. The operator calls `ensure_runtime_key` on start: it reads the
Secret, and creates it with a fresh key when it is missing (two replicas racing both end with the
one that was created first: a 409 is answered by reading again). The gateway calls
`read_runtime_key` and retries while the Secret does not exist yet. Neither ever logs the key.

Rotating: delete the Secret and restart the operator, then the gateway; running sessions keep
their old token until their pod is recreated (their token Secret is rewritten on the next
reconcile, and the pod is restarted by its provider) — documented in docs/security.md.
"""

from __future__ import annotations

import base64
import logging

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from .credentials import SECRET_KEY_FIELD, check_key, generate_key

logger = logging.getLogger(__name__)

MANAGED_BY = {"app.kubernetes.io/managed-by": "agent-session-operator",
              "app.kubernetes.io/component": "runtime-key"}


class RuntimeKeyMissing(RuntimeError):
    """The runtime key Secret does not exist (yet) or holds no usable key."""


def _decode(secret: client.V1Secret | dict, where: str) -> bytes:
    data = (secret.data if not isinstance(secret, dict) else secret.get("data")) or {}
    raw = data.get(SECRET_KEY_FIELD)
    if not raw:
        raise RuntimeKeyMissing(f"Secret {where} has no '{SECRET_KEY_FIELD}' entry")
    try:
        return check_key(base64.b64decode(raw, validate=True))
    except ValueError as exc:
        raise RuntimeKeyMissing(f"Secret {where} does not hold a usable runtime key: {exc}") from None


async def read_runtime_key(api: client.ApiClient, namespace: str, name: str) -> bytes:
    try:
        secret = await client.CoreV1Api(api).read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            raise RuntimeKeyMissing(f"Secret {namespace}/{name} does not exist (the operator creates it)") from None
        raise
    return _decode(secret, f"{namespace}/{name}")


async def ensure_runtime_key(api: client.ApiClient, namespace: str, name: str) -> bytes:
    """The key in Secret `namespace/name`, created with a fresh key if the Secret is missing."""
    try:
        return await read_runtime_key(api, namespace, name)
    except RuntimeKeyMissing:
        pass
    body = {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "data": {SECRET_KEY_FIELD: base64.b64encode(generate_key()).decode("ascii")},
    }
    try:
        created = await client.CoreV1Api(api).create_namespaced_secret(namespace, body)
        logger.info("created the runtime key Secret %s/%s", namespace, name)
        return _decode(created, f"{namespace}/{name}")
    except ApiException as exc:
        if exc.status == 409:
            return await read_runtime_key(api, namespace, name)
        raise
