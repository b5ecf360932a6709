"""The real-cluster tier: a session-scoped loopback control plane (tests/support/cluster)."""

from support.cluster.fixtures import admin_kubeconfig, audit_log, control_plane, real_api  # noqa: F401
