"""The CLI against the operator on both backends (`support.backends`), as a user runs it."""

from support.backends import api, kubelet, real_cluster  # noqa: F401 (fixtures, parametrised by backend)
from support.cluster.fixtures import control_plane  # noqa: F401
from support.embedded import kubeconfig  # noqa: F401
from support.operators import operator, operators, start_operator  # noqa: F401
