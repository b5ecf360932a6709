"""A real Kubernetes control plane on loopback for the real-cluster test tier (DESIGN.md §10).

`ControlPlane` runs etcd, kube-apiserver, kube-controller-manager and kube-scheduler from
`KUBE_ASSETS`; `rest.RestClient` talks to it with the same calls the tests use on the embedded
API; `audit` reads the server's audit log, which is how writes are counted on a real server.
"""

from .control_plane import ControlPlane, ControlPlaneError, USERS

__all__ = ["ControlPlane", "ControlPlaneError", "USERS"]
