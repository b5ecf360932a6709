"""A short, stable fingerprint of a resolved configuration.

The operator records the hash a session was started with (`status.resolved.hash`) and reports
`UpToDate=False` when a template edit changes it. It must therefore depend on the values only —
never on key order, which differs between the API server, YAML files and dict merges.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def canonical_json(config: Mapping[str, Any]) -> str:
    """JSON with sorted keys and no insignificant whitespace."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def config_hash(config: Mapping[str, Any]) -> str:
    """First 16 hex digits of the SHA-256 of the canonical JSON."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]
