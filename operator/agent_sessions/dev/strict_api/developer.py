"""The developer of ``agent-sessions dev``: a user with a bearer token and RBAC, so that the
gateway can be tried locally.

Why this exists: the gateway serves only callers a TokenReview authenticates and a
SubjectAccessReview authorizes (§11), and kubectl sends no token over plain HTTP, so the
kubeconfig ``dev`` writes has none.  The dev API therefore serves token-less requests as the
admin (``tokenless_admin``: kubectl, the operator and the gateway itself use them) and knows one
token, the developer's, which is authenticated and authorized like any user's: TokenReview says
who it is, SubjectAccessReview answers from :func:`developer_rbac`.  What the developer may do is
what a session user is granted on a cluster (see the chart's README) and a little more: every
verb on the ``agentsession.dev`` resources and their subresources (``agentsessions/messages``
to send, ``agentsessions/cancel`` to cancel any turn), and reading the pods, logs, events and
ConfigMaps sessions make — not Secrets, whose session tokens would bypass the gateway.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any

from agent_sessions.dev.authorization import RBAC_API_VERSION, RBACAuthorizer

DEVELOPER = "developer"
"""The developer's user name (TokenReview's ``status.user.username``)."""
DEVELOPER_GROUP = "agent-sessions:developers"
DEVELOPER_ROLE = "agent-sessions:developer"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,}$")


def developer_rbac() -> list[dict]:
    """The developer's ClusterRole and its ClusterRoleBinding (cluster-wide: every namespace)."""
    reader = ["get", "list", "watch"]
    role = {"apiVersion": RBAC_API_VERSION, "kind": "ClusterRole", "metadata": {"name": DEVELOPER_ROLE},
            "rules": [
                {"apiGroups": ["agentsession.dev"], "resources": ["*"], "verbs": ["*"]},
                {"apiGroups": [""], "resources": ["pods", "pods/log", "events", "configmaps", "namespaces"],
                 "verbs": reader},
                {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": reader},
            ]}
    binding = {"apiVersion": RBAC_API_VERSION, "kind": "ClusterRoleBinding", "metadata": {"name": DEVELOPER_ROLE},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": DEVELOPER_ROLE},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": DEVELOPER}]}
    return [role, binding]


def developer_access(token: str) -> dict[str, Any]:
    """The :class:`~agent_sessions.dev.strict_api.StrictKubernetesAPI` options for ``dev``:
    token-less requests served as the admin, ``token`` as the developer with its RBAC."""
    return {"tokens": {token: (DEVELOPER, [DEVELOPER_GROUP])},
            "authorizer": RBACAuthorizer.from_manifests(developer_rbac()),
            "tokenless_admin": True}


def developer_token(path: Path) -> str:
    """The token kept in ``path`` (0600), made on first use: the same across ``dev`` runs, so
    a script or a shell variable holding it keeps working after a restart."""
    try:
        kept = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        kept = ""
    if _TOKEN.match(kept):
        return kept
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file that was there keeps its mode through os.open
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token
