"""Install artefacts (chart, kustomize base, CRDs): rendered offline, and applied to a real API server."""

from support.cluster.fixtures import admin_kubeconfig, audit_log, control_plane, real_api  # noqa: F401
