"""What the pod provider must know to redact a pod's log: the Secrets the pod was given.

Pattern redaction catches credentials that look like credentials; a database password or an
internal token looks like anything. The pod's own spec says which Secrets it can see — through
`env[].valueFrom.secretKeyRef` (one key), `envFrom[].secretRef` and secret volumes (every key) —
so the provider reads those and redacts their values exactly. Reading them needs `get secrets`;
where RBAC forbids it (a deliberate choice some platforms make), the provider falls back to the
patterns alone rather than failing the log.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SecretReference:
    """A Secret the pod can read; `key` None means every key."""

    name: str
    key: str | None = None


def secret_references(pod: Mapping[str, Any]) -> list[SecretReference]:
    """The Secrets `pod` (Pod JSON) exposes to its containers, in order, without duplicates."""
    spec = pod.get("spec") or {}
    found: list[SecretReference] = []
    for container in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]:
        for entry in container.get("env") or ():
            ref = ((entry or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
            if ref.get("name"):
                found.append(SecretReference(ref["name"], ref.get("key")))
        for entry in container.get("envFrom") or ():
            ref = (entry or {}).get("secretRef") or {}
            if ref.get("name"):
                found.append(SecretReference(ref["name"]))
    for volume in spec.get("volumes") or ():
        name = ((volume or {}).get("secret") or {}).get("secretName")
        if name:
            found.append(SecretReference(name))
        for source in ((volume or {}).get("projected") or {}).get("sources") or ():
            name = ((source or {}).get("secret") or {}).get("name")
            if name:
                found.append(SecretReference(name))
    return list(dict.fromkeys(found))


def secret_values(secret: Mapping[str, Any], key: str | None = None) -> list[str]:
    """The values of `secret` (Secret JSON: base64 `data`, plain `stringData`), or of one key."""
    values: list[str] = []
    for name, encoded in (secret.get("data") or {}).items():
        if key is None or name == key:
            values += _decoded(encoded)
    for name, plain in (secret.get("stringData") or {}).items():
        if (key is None or name == key) and isinstance(plain, str):
            values.append(plain)
    return values


def _decoded(encoded: Any) -> Iterable[str]:
    if isinstance(encoded, bytes):
        raw = encoded
    elif isinstance(encoded, str):
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return [encoded]
    else:
        return []
    return [raw.decode("utf-8", errors="replace")]
