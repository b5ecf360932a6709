"""The real API server behind the calls the integration tests make on the embedded one.

The operator's integration scenarios are written against `StrictKubernetesAPI`'s test-facing
methods (`create`, `get`, `list`, `patch`, `delete`, `wait_for`, `requests`, `fail_next`,
`drop_watches`, `write_kubeconfig`, pod logs). `RealAPI` offers the same methods on the real
control plane, so one parametrised fixture runs each scenario on both backends:

* reads and writes go through an admin REST client;
* `requests` are the operator's requests as the apiserver's audit log recorded them (the
  operator authenticates as its own user, so nobody else's requests are counted);
* faults and dropped watches come from the `FaultProxy` the operator's kubeconfig points at
  (requests it answered itself are listed among `requests`, in time order);
* pod logs are the node simulator's (it serves `pods/log`, as a kubelet does).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .audit import AuditLog, AuditRecord
from .control_plane import ControlPlane
from .fault_proxy import FaultProxy, InjectedResponse
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
    authorized = property(lambda self: self.record.decision == "allow")
    authorization_reason = property(lambda self: self.record.authorization_reason)
    body = property(lambda self: "")  # the audit policy records metadata only
    path = property(lambda self: self.record.path.split("?", 1)[0])
    watch = property(lambda self: self.record.verb == "watch")


@dataclass(frozen=True)
class Refused:
    """A request the fault proxy answered itself: it never reached the apiserver's audit log."""

    injected: InjectedResponse
    user: str

    method = property(lambda self: self.injected.method)
    path = property(lambda self: self.injected.path)
    status = property(lambda self: self.injected.status)
    user_agent = property(lambda self: self.injected.user_agent)
    authorized = property(lambda self: False)
    authorization_reason = property(lambda self: "")
    body = property(lambda self: f"injected by the fault proxy: {self.injected.status}")

    @property
    def is_write(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE") and self.resource is not None

    @property
    def _parts(self) -> tuple[str | None, str | None, str | None, str | None]:
        """(namespace, resource, name, subresource) of a resource path."""
        parts = self.path.strip("/").split("/")
        parts = parts[2:] if parts[0] == "api" else parts[3:]  # /api/v1/… or /apis/group/version/…
        namespace = None
        if len(parts) >= 2 and parts[0] == "namespaces" and len(parts) != 2:
            namespace, parts = parts[1], parts[2:]
        padded = [*parts, None, None, None][:3]
        return namespace, padded[0], padded[1], padded[2]

    namespace = property(lambda self: self._parts[0])
    resource = property(lambda self: self._parts[1])
    name = property(lambda self: self._parts[2])
    subresource = property(lambda self: self._parts[3])


class RealAPI:
    """The test-facing API of the embedded server, on a real one."""

    def __init__(self, plane: ControlPlane, proxy: FaultProxy, node: Any, *, user: str = "operator",
                 identity: tuple[str, str] | None = None) -> None:
        """The operator is `user` (a key of the control plane's users), or `identity`:
        (user name, token), e.g. a ServiceAccount's."""
        self.plane = plane
        self.proxy = proxy
        self.node = node
        self.client: RestClient = plane.client("admin")
        self.operator_user, self._operator_token = identity or (plane.users[user].name, plane.tokens[user])
        self.audit = AuditLog(plane.audit_log)
        self.audit.reset()
        self._since = time.time()

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
    def requests(self) -> list[Request | Refused]:
        """The operator's requests, oldest first: as audited, and those the fault proxy refused."""
        audited: list[tuple[float, Request | Refused]] = [
            (r.received, Request(r)) for r in self.audit.records(user=self.operator_user)]
        refused = [(i.received, Refused(i, self.operator_user)) for i in self.proxy.injected if i.received >= self._since]
        return [r for _, r in sorted(audited + refused, key=lambda pair: pair[0])]

    def reset_requests(self) -> None:
        self.audit.reset()
        self._since = time.time()

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
