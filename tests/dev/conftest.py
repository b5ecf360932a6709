"""The embedded cluster; `test_backends_agree` runs one scenario on it and on a real API server."""

from support.backends import real_cluster  # noqa: F401
from support.cluster.fixtures import control_plane  # noqa: F401
