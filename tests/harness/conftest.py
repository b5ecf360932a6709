"""Tests of the test harness itself (`tests/support`): the real-cluster tier's gate and node simulator."""

from support.cluster.fixtures import admin_kubeconfig, audit_log, control_plane, real_api  # noqa: F401
