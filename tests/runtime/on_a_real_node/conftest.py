"""A control plane of its own: the process-mode node here must be the only kubelet there is (the
operator suites' package-scoped cluster keeps a fake-mode node registered)."""

from support.cluster.fixtures import control_plane  # noqa: F401 (package scope: this package's own)
