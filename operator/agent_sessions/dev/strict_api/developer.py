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

A second token, the viewer's (``.dev/viewer-token``), is what a read-only user looks like: it
may ``get``, ``list`` and ``watch`` AgentSessions and nothing else — no ``patch`` (stop, start,
restart), no ``agentsessions/messages`` — so that the console can be tried as someone who sees
sessions but may not touch them (:func:`viewer_rbac`).
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
VIEWER = "viewer"
"""The viewer's user name: read-only on AgentSessions."""
VIEWER_GROUP = "agent-sessions:viewers"
VIEWER_ROLE = "agent-sessions:viewer"
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


def viewer_rbac() -> list[dict]:
    """The viewer's ClusterRole (get, list, watch AgentSessions; nothing else) and its
    ClusterRoleBinding to the group ``agent-sessions:viewers``."""
    role = {"apiVersion": RBAC_API_VERSION, "kind": "ClusterRole", "metadata": {"name": VIEWER_ROLE},
            "rules": [{"apiGroups": ["agentsession.dev"], "resources": ["agentsessions"],
                       "verbs": ["get", "list", "watch"]}]}
    binding = {"apiVersion": RBAC_API_VERSION, "kind": "ClusterRoleBinding", "metadata": {"name": VIEWER_ROLE},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": VIEWER_ROLE},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": VIEWER_GROUP}]}
    return [role, binding]


def developer_access(token: str, viewer_token: str | None = None) -> dict[str, Any]:
    """The :class:`~agent_sessions.dev.strict_api.StrictKubernetesAPI` options for ``dev``:
    token-less requests served as the admin, ``token`` as the developer with its RBAC and
    ``viewer_token`` (when given) as the read-only viewer."""
    tokens = {token: (DEVELOPER, [DEVELOPER_GROUP])}
    if viewer_token is not None:
        if viewer_token == token:
            raise ValueError("the viewer's token must differ from the developer's")
        tokens[viewer_token] = (VIEWER, [VIEWER_GROUP])
    return {"tokens": tokens,
            "authorizer": RBACAuthorizer.from_manifests([*developer_rbac(), *viewer_rbac()]),
            "tokenless_admin": True}


def developer_token(path: Path) -> str:
    """The token kept in ``path`` (0600), made on first use: the same across ``dev`` runs, so
    a script or a shell variable holding it keeps working after a restart. (The viewer's token
    is kept the same way, in a file of its own.)"""
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
