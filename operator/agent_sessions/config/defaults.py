"""Built-in defaults: what a field means when no layer sets it.

They are the lowest layer of every resolved configuration, below the operator's Helm values.
Unlike every other layer they cannot be removed by an explicit `null`: a `null` removes what an
operator default or a template *set*, and the field then falls back to its built-in default —
exactly as the Kubernetes API server defaults a field that is `null` or absent. So the resolved
configuration always holds a value for every field below, and no consumer needs a fallback of
its own (which would be a second, hidden copy of these defaults).

Deliberately absent: `lifecycle.idleTimeout` and `lifecycle.maxDuration` (sessions are not
stopped unless someone asks), `workspace.size` (no volume unless asked), `agent.image` (there is
no sensible default agent).
"""

from __future__ import annotations

from typing import Any, Final

from agent_sessions.api import constants as c

BUILTIN_DEFAULTS: Final[dict[str, Any]] = {
    "provider": c.PROVIDER_POD,
    "agent": {
        "protocol": c.PROTOCOL_ACP,
    },
    "workspace": {
        # Only meaningful once a layer sets `size`: without a size no claim is created.
        "accessModes": ["ReadWriteOnce"],
    },
    "lifecycle": {
        "restartPolicy": c.RESTART_ON_FAILURE,
        "backoffLimit": 3,
        "startTimeout": "10m",
        "wakeOnMessage": True,
    },
    "http": {
        "timeoutSeconds": 30,
        "maxRetries": 5,
    },
    "tmux": {
        "socketName": "agent-sessions",
        "shell": "/bin/sh",
    },
}
"""Built-in defaults, in the wire shape of a template's config blocks (camelCase)."""
