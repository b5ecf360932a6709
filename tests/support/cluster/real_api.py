"""The real API server behind the calls the integration tests make on the embedded one.

The operator's integration scenarios are written against `StrictKubernetesAPI`'s test-facing
methods (`create`, `get`, `list`, `patch`, `delete`, `wait_for`, `requests`, `fail_next`,
`drop_watches`, `write_kubeconfig`, pod logs). `RealAPI` offers the same methods on the real
control plane, so one parametrised fixture runs each scenario on both backends:

* reads and writes go through an admin REST client;
* `requests` are the operator's requests as the apiserver's audit log recorded them (the
  operator authenticates as its own user, so nobody else's requests are counted);
* faults and dropped watches come from the `FaultProxy` the operator's kubeconfig points at;
* pod logs are the node simulator's (it serves `pods/log`, as a kubelet does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .audit import AuditLog, AuditRecord
from .control_plane import ControlPlane
from .fault_proxy import FaultProxy
from .rest import RestClient

T = TypeVar("T")


@dataclass(frozen=True)
class Request:
    """One audited request, with the fields the tests read on the embedded API's records."""

    record: AuditRecord

    method = property(lambda self: self.record.method)
    resource = property(lambda self: self.record.resource)
    subresource = property(lambda self: self.record.subresource)
    namespace = property(lambda self: self.record.namespace)
    name = property(lambda self: self.record.name)
    status = property(lambda self: self.record.code)
    user = property(lambda self: self.record.user)
    user_agent = property(lambda self: self.record.user_agent)
    is_write = property(lambda self: self.record.is_write)
    path = property(lambda self: self.record.path.split("?", 1)[0])


class RealAPI:
    """The test-facing API of the embedded server, on a real one."""

    def __init__(self, plane: ControlPlane, proxy: FaultProxy, node: Any, *, user: str = "operator") -> None:
        self.plane = plane
        self.proxy = proxy
        self.node = node
        self.client: RestClient = plane.client("admin")
        self.operator_user = plane.users[user].name
        self._operator_token = plane.tokens[user]
        self.audit = AuditLog(plane.audit_log)
        self.audit.reset()

    def close(self) -> None:
        self.client.close()

    # --- objects ------------------------------------------------------------------------------

    def get(self, resource: str, namespace: str | None, name: str) -> dict | None:
        return self.client.get(resource, namespace, name)

    def list(self, resource: str, namespace: str | None = None, label_selector: str | None = None) -> list[dict]:
        return self.client.list(resource, namespace, label_selector=label_selector)

    def create(self, resource: str, body: dict) -> dict:
        return self.client.create(resource, body)

    def patch(self, resource: str, namespace: str | None, name: str, patch: Any) -> dict:
        return self.client.patch(resource, namespace, name, patch)

    def patch_status(self, resource: str, namespace: str | None, name: str, status: dict) -> dict:
        return self.client.patch_status(resource, namespace, name, status)

    def delete(self, resource: str, namespace: str | None, name: str, **options: Any) -> dict:
        return self.client.delete(resource, namespace, name, **options)

    def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        return self.client.wait_for(predicate, timeout=timeout)

    # --- what the operator did ---------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        return [Request(r) for r in self.audit.records(user=self.operator_user)]

    def reset_requests(self) -> None:
        self.audit.reset()

    def fail_next(self, method: str | None, path: str, status: int = 500, *, count: int = 1,
                  retry_after: float | None = None, message: str | None = None) -> None:
        self.proxy.fail_next(method, path, status, count=count, retry_after=retry_after, message=message)

    def drop_watches(self) -> None:
        self.proxy.drop_watches()

    def write_kubeconfig(self, path: str | Path, namespace: str = "default", token: str | None = None) -> Path:
        """A kubeconfig for the operator: through the fault proxy, as the operator's user."""
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "real",
            "clusters": [{"name": "real", "cluster": {"server": self.proxy.url}}],
            "users": [{"name": "operator", "user": {"token": token or self._operator_token}}],
            "contexts": [{"name": "real", "context": {"cluster": "real", "user": "operator", "namespace": namespace}}],
        }
        path = Path(path)
        path.write_text(yaml.safe_dump(config))
        return path

    # --- pod logs (the node simulator's) --------------------------------------------------------

    def set_pod_log(self, namespace: str, name: str, text: str, container: str | None = None) -> None:
        self.node.set_pod_log(namespace, name, text)

    def append_pod_log(self, namespace: str, name: str, text: str, container: str | None = None) -> None:
        self.node.append_pod_log(namespace, name, text)

    # --- between tests ---------------------------------------------------------------------------

    def reset_namespace(self, namespace: str = "default", timeout: float = 30.0) -> None:
        """Remove what a test left in `namespace`: sessions and templates (finalizers dropped),
        pods (grace 0), claims, Secrets, ConfigMaps and Events, and wait until they are gone."""
        kinds = ("agentsessions", "sessiontemplates", "pods", "persistentvolumeclaims", "secrets", "configmaps",
                 "events")
        for kind in kinds:
            for obj in self.client.list(kind, namespace):
                meta = obj["metadata"]
                if kind == "configmaps" and meta["name"] == "kube-root-ca.crt":
                    continue
                if kind == "secrets" and obj.get("type") == "kubernetes.io/service-account-token":
                    continue
                if meta.get("finalizers"):
                    self._ignore_missing(lambda: self.client.patch(kind, namespace, meta["name"],
                                                                   {"metadata": {"finalizers": None}}))
                options = {"grace_period_seconds": 0} if kind == "pods" else {}
                self._ignore_missing(lambda: self.client.delete(kind, namespace, meta["name"], **options))

        def empty() -> bool:
            for kind in kinds[:4]:
                for obj in self.client.list(kind, namespace):
                    if obj["metadata"].get("finalizers"):  # e.g. a claim's pvc-protection
                        self._ignore_missing(lambda: self.client.patch(
                            kind, namespace, obj["metadata"]["name"], {"metadata": {"finalizers": None}}))
                    return False
            return True

        self.client.wait_for(empty, timeout=timeout, interval=0.05)

    @staticmethod
    def _ignore_missing(call: Callable[[], Any]) -> None:
        try:
            call()
        except Exception as error:  # noqa: BLE001 (only "already gone" is expected here)
            if getattr(error, "code", None) != 404:
                raise
