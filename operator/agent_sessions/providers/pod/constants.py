"""Names and numbers of the pod provider's objects: part of the contract with the runtime
bridge (port, paths) and with users (env vars, container name, volume names they must not reuse).

`ANNOTATION_CONFIG_HASH` and the `AGENT_SESSION_*` variable names are cluster-visible; they
belong with the other names in `agent_sessions.api.constants` and should move there.
"""

from __future__ import annotations

from typing import Final

from agent_sessions.api import constants as c
from agent_sessions.wire.session_ref import ENV_SESSION_NAME, ENV_SESSION_NAMESPACE, ENV_SESSION_UID  # noqa: F401 (the runtime bridge reads them)

CONTAINER_NAME: Final = "agent"
RUNTIME_PORT: Final = 8080
RUNTIME_PORT_NAME: Final = "runtime"
RUNTIME_EXECUTABLE: Final = "agent-sessions"

WORKSPACE_PATH: Final = "/workspace"
WORKSPACE_VOLUME: Final = "ags-workspace"
TMP_PATH: Final = "/tmp"
TMP_VOLUME: Final = "ags-tmp"
TOKEN_VOLUME: Final = "ags-runtime-token"
TOKEN_DIRECTORY: Final = "/var/run/agent-session"
"""Where the session's runtime token Secret is mounted (read-only); the file is `token`."""
TOKEN_FILE_MODE: Final = 0o440
"""Owner root and the pod's fsGroup may read the token, nobody else. (The kubelet makes secret
files root-owned with the fsGroup as group, and adds group read anyway when there is one; the
agent runs with the fsGroup as a supplementary group, so it can read its own token — it is the
session's own credential, which gives it nothing it did not have.)"""
RESERVED_VOLUMES: Final = (WORKSPACE_VOLUME, TMP_VOLUME, TOKEN_VOLUME)

NON_ROOT_ID: Final = 65532
"""The conventional unprivileged uid/gid of distroless `nonroot` images."""

ANNOTATION_CONFIG_HASH: Final = f"{c.PREFIX}config-hash"
"""Hash of the resolved configuration the pod was created with."""


DEFAULT_ACCESS_MODES: Final = ("ReadWriteOnce",)
