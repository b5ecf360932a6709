"""The resources, finalizers and system fields the store treats specially, as the server's
registry strategies and controllers do."""

from __future__ import annotations

FOREGROUND_FINALIZER = "foregroundDeletion"
CRD_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
NAMESPACE_FINALIZER = "kubernetes"
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
FIELD_VALIDATION_MODES = ("Ignore", "Warn", "Strict")
SYSTEM_FIELDS = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                 "generation", "resourceVersion", "selfLink", "managedFields")

CRD_GROUP_RESOURCE = ("apiextensions.k8s.io", "customresourcedefinitions")
NAMESPACES = ("", "namespaces")
PODS = ("", "pods")
DEFAULT_TERMINATION_GRACE_PERIOD = 30
"""The server's default for a pod's ``spec.terminationGracePeriodSeconds``."""
TERMINAL_POD_PHASES = ("Succeeded", "Failed")
