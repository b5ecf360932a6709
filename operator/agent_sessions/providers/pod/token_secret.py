"""A session's runtime token as the pod provider hands it over: a Secret in the session's
namespace, mounted read-only into the agent container (pure builders).

The token is `wire.credentials.session_token(runtime key, session uid)`: the operator and the
gateway compute it whenever they call the runtime, so it is stored only here, for the pod. The
Secret is owned by the AgentSession (garbage-collected with it, also when the operator is down)
and labelled like the session's other objects. The pod mounts it as a `secret` volume (allowed
by the restricted Pod Security Standard) at `TOKEN_DIRECTORY`, mode `TOKEN_FILE_MODE`, and the
bridge learns the file from `AGENT_SESSION_TOKEN_FILE` (reserved: a session may not set it). The
value is never in the pod spec, in status or in an Event: whoever may read Secrets in the
namespace can read it, as they can read every other Secret the session's pod uses.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from agent_sessions.wire.credentials import ENV_TOKEN_FILE, TOKEN_FILE_NAME

from ..base import SessionRef
from .constants import TOKEN_DIRECTORY, TOKEN_FILE_MODE, TOKEN_VOLUME
from .names import token_secret_name

TOKEN_COMPONENT = "runtime-token"
"""`app.kubernetes.io/component` of a session's token Secret."""


def build_token_secret(session: SessionRef, token: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """The Secret holding `session`'s runtime token (`data.token`)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": token_secret_name(session.namespace, session.name, session.uid),
            "namespace": session.namespace,
            "labels": {**labels, "app.kubernetes.io/component": TOKEN_COMPONENT},
            "ownerReferences": [session.owner_reference()],
        },
        "data": {TOKEN_FILE_NAME: encoded(token)},
    }


def encoded(token: str) -> str:
    return base64.b64encode(token.encode("utf-8")).decode("ascii")


def holds(secret: Mapping[str, Any], token: str) -> bool:
    """Whether the Secret (as the API returned it) holds exactly `token` and nothing else."""
    return dict(secret.get("data") or {}) == {TOKEN_FILE_NAME: encoded(token)}


def token_volume(session: SessionRef) -> dict[str, Any]:
    return {
        "name": TOKEN_VOLUME,
        "secret": {
            "secretName": token_secret_name(session.namespace, session.name, session.uid),
            "defaultMode": TOKEN_FILE_MODE,
            "items": [{"key": TOKEN_FILE_NAME, "path": TOKEN_FILE_NAME}],
        },
    }


def token_mount() -> dict[str, Any]:
    return {"name": TOKEN_VOLUME, "mountPath": TOKEN_DIRECTORY, "readOnly": True}


def token_env() -> dict[str, str]:
    return {"name": ENV_TOKEN_FILE, "value": f"{TOKEN_DIRECTORY}/{TOKEN_FILE_NAME}"}
