"""A control plane of its own: the operator suites' package-scoped cluster keeps a fake-mode node
registered as `sim-node`, and this package's process-mode node must be the only kubelet there is."""

from support.cluster.fixtures import control_plane  # noqa: F401 (package scope: this package's own)
