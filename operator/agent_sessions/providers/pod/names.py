"""Names of a session's Kubernetes objects: deterministic, so `ensure()` needs no lookup.

The pod provider never searches for a session's pod: it computes its name from the session and
creates it, treating "already exists" as success. That only works if the name is a pure function
of the session's identity — stable across reconciles and operator restarts, distinct for a
session deleted and re-created under the same name (hence a hash of the uid), and always a valid
DNS-1123 label (≤ 63 characters, lowercase alphanumerics and `-`), whatever the session's own
name (which may be up to 253 characters and contain dots).
"""

from __future__ import annotations

import re
from typing import Final

from ..names import PREFIX, uid_hash

MAX_NAME_LENGTH: Final = 63
"""DNS-1123 label limit (pod hostnames; we hold PVC names to it too)."""

_INVALID: Final = re.compile(r"[^a-z0-9-]+")
_LABEL_VALUE_INVALID: Final = re.compile(r"[^A-Za-z0-9_.-]+")


def pod_name(namespace: str, name: str, uid: str) -> str:
    """`ags-<name>-<hash8>`, the name truncated to fit 63 characters."""
    return _compose(name, "", uid_hash(namespace, name, uid))


def pvc_name(namespace: str, name: str, uid: str) -> str:
    """`ags-<name>-workspace-<hash8>`, the name truncated to fit 63 characters."""
    return _compose(name, "workspace", uid_hash(namespace, name, uid))


def token_secret_name(namespace: str, name: str, uid: str) -> str:
    """`ags-<name>-token-<hash8>`: the Secret holding the session's runtime token."""
    return _compose(name, "token", uid_hash(namespace, name, uid))


def label_value(value: str) -> str:
    """`value` as a valid label value (≤ 63, alphanumeric at both ends): session names longer
    than a label allows are cut. Selecting by it is a convenience; the uid label is exact."""
    cleaned = _LABEL_VALUE_INVALID.sub("-", value)[:MAX_NAME_LENGTH]
    return cleaned.strip("-_.")


def _compose(name: str, kind: str, digest: str) -> str:
    fixed = [PREFIX, *([kind] if kind else []), digest]
    budget = MAX_NAME_LENGTH - sum(len(part) for part in fixed) - len(fixed)  # one `-` per part
    readable = _INVALID.sub("-", name.lower()).strip("-")[:budget].strip("-")
    parts = [PREFIX, *([readable] if readable else []), *([kind] if kind else []), digest]
    return "-".join(parts)
