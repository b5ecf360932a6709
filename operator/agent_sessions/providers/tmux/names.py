"""Names of a session's tmux session and workspace: pure functions of the session's identity.

`ensure()` never searches: the name is computed from the session and created, and tmux refuses a
duplicate. So the name must be stable across reconciles and operator restarts (adoption finds a
session again by it), distinct for every session — across namespaces (the namespace is in it) and
for a session deleted and re-created under the same name (a hash of the uid is in it) — and
something tmux accepts as a target: tmux treats `.` and `:` as separators and `=`, `$`, `@`, `%`
and `#` specially, so only letters, digits, `_` and `-` are kept. Long names are cut to keep
`tmux ls` readable; the hash keeps them distinct.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from ..names import PREFIX, uid_hash

MAX_NAMESPACE_PART: Final = 24
MAX_SESSION_NAME_LENGTH: Final = 80

_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_-]+")
_PATH_UNSAFE: Final = re.compile(r"[^a-z0-9.-]+")


def tmux_session_name(namespace: str, name: str, uid: str) -> str:
    """`ags-<namespace>-<name>-<uid8>`, tmux-safe, at most 80 characters."""
    digest = uid_hash(namespace, name, uid)
    ns = _UNSAFE.sub("-", namespace).strip("-")[:MAX_NAMESPACE_PART].strip("-")
    fixed = len(PREFIX) + len(ns) + len(digest) + 3  # three `-`
    readable = _UNSAFE.sub("-", name).strip("-")[: max(0, MAX_SESSION_NAME_LENGTH - fixed)].strip("-")
    return "-".join(part for part in (PREFIX, ns, readable, digest) if part)


def is_provider_session(tmux_name: str) -> bool:
    """Whether a tmux session's name is one this provider would make."""
    return tmux_name.startswith(f"{PREFIX}-")


def workspace_path(root: Path, namespace: str, name: str, uid: str) -> Path:
    """`<root>/<namespace>/<name>-<uid8>`: one directory per session, kept across stop/resume."""
    ns = _PATH_UNSAFE.sub("-", namespace.lower()).strip(".-") or "-"
    base = _PATH_UNSAFE.sub("-", name.lower()).strip(".-")
    leaf = f"{base}-{uid_hash(namespace, name, uid)}" if base else uid_hash(namespace, name, uid)
    return root / ns / leaf
