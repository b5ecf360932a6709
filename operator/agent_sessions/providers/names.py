"""What every provider's names for a session share: the `ags` prefix and the hash of its identity.

A provider never searches for what it made: it computes the name from the session, so the name
must be stable across reconciles and operator restarts and distinct for a session deleted and
re-created under the same name. Each provider shapes the rest of the name to what its backend
accepts (`pod.names`, `tmux.names`).
"""

from __future__ import annotations

import hashlib
from typing import Final

PREFIX: Final = "ags"
"""Every name a provider gives starts `ags-`: what is not named so is not ours."""
HASH_LENGTH: Final = 8


def uid_hash(namespace: str, name: str, uid: str) -> str:
    """Eight hex digits identifying one session (its uid, with its namespace and name)."""
    return hashlib.sha256(f"{namespace}/{name}/{uid}".encode()).hexdigest()[:HASH_LENGTH]
