"""A fixture that sets the pod security label of namespace `default` (DESIGN §11)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agent_sessions.providers.pod.policy import ENFORCE_LABEL


@pytest.fixture
def label_default(api: Any) -> Iterator[Any]:
    """Label namespace `default` (the real cluster's is shared: the label is taken off after)."""

    def label(level: str) -> None:
        api.patch("namespaces", None, "default", {"metadata": {"labels": {ENFORCE_LABEL: level}}})

    yield label
    api.patch("namespaces", None, "default", {"metadata": {"labels": {ENFORCE_LABEL: None}}})


def root_refused_by_restricted_label(pod_security_context: str) -> list[str]:
    """The problems of a pod running as root (`pod_security_context`: the field path of its pod
    securityContext) in namespace `default` labelled `restricted`."""
    by_label = (f"not allowed by the restricted pod security level (label {ENFORCE_LABEL}=restricted of namespace"
                " default)")
    return [
        f"{pod_security_context}.runAsNonRoot: {by_label}: containers must run as non-root (true)",
        f"{pod_security_context}.runAsUser: {by_label}: running as uid 0 (root) is forbidden",
    ]
