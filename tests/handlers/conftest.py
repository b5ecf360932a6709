"""The real operator (kopf in its own thread) against both backends: the strict embedded API with
its fake kubelet, and a real kube-apiserver with a simulated node (`support.backends`)."""

from support.backends import api, kubelet, real_cluster  # noqa: F401 (fixtures, parametrised by backend)
from support.cluster.fixtures import control_plane  # noqa: F401
from support.embedded import kubeconfig  # noqa: F401
from support.operators import operator, operators, start_operator  # noqa: F401
