"""A simulated node for the real-cluster tier: the kubelet a loopback control plane lacks.

`SimulatedNode(control_plane, mode="fake"|"process", **kubelet_options)` plays the node
``control_plane.node_name`` (``sim-node``) as its own user (``system:node:sim-node``, so Node
authorization and NodeRestriction admission apply to it as to a kubelet):

* registers the Node (Ready, InternalIP 127.0.0.1, the kubelet port in
  ``status.daemonEndpoints``, capacity cpu 8 / memory 32Gi / pods 500), renews its Lease in
  ``kube-node-lease`` every ``lease_interval`` seconds and the Ready heartbeat every
  ``status_interval`` seconds, and waits until the node is schedulable (the
  ``node.kubernetes.io/not-ready`` taint that admission puts on a new Node removed by the
  node-lifecycle controller);
* runs the pods the scheduler binds to it with the embedded harness's kubelets, unchanged, over
  `mirror.MirrorAPI`: ``mode="fake"`` with `FakeKubelet` (status only; ``crash``,
  ``crash_loop``, ``oom_kill``, ``exit``, ``evict``, ``fail_image_pulls``, ``script``,
  ``release`` on demand), ``mode="process"`` with `LocalPodRunner` (each pod's command as a
  local process on its own 127.0.0.x address). ``kubelet_options`` go to their constructors;
  both report status through ``pods/status`` and finish graceful deletion (SIGTERM, grace,
  then DELETE with grace 0 and the pod's uid as precondition);
* serves ``pods/log`` over HTTPS on the kubelet port (the apiserver proxies
  ``GET pods/{name}/log`` to ``/containerLogs/{ns}/{pod}/{container}``) with ``tailLines``,
  ``limitBytes``, ``follow`` and ``previous`` (always empty: no previous container is kept);
  in fake mode tests write the logs with ``set_pod_log``/``append_pod_log``.

``stop()`` stops the kubelet (and every process it started), the watches, the heartbeats and
the server, and deletes the Node and its Lease. Pods still bound to it stay in the API
(delete them, or their namespace, while the node runs).
"""

from __future__ import annotations

import datetime
import http.server
import logging
import shutil
import socket
import ssl
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from agent_sessions.dev.fake_kubelet import FakeKubelet, PodScript
from agent_sessions.dev.pod_runner import LocalPodRunner

from .control_plane import ControlPlane
from .mirror import MirrorAPI
from .rest import ApiError, RestClient

logger = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
CAPACITY = {"cpu": "8", "memory": "32Gi", "pods": "500", "ephemeral-storage": "100Gi"}
UNSCHEDULABLE_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable",
                        "node.kubernetes.io/unschedulable")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SimulatedNode:
    """See the module docstring. ``node.kubelet`` is the `FakeKubelet` or `LocalPodRunner`,
    ``node.api`` the `MirrorAPI` both use, ``node.port`` the kubelet (log) port."""

    def __init__(self, control_plane: ControlPlane, mode: str = "fake", *,
                 lease_interval: float = 10.0, status_interval: float = 60.0,
                 ready_timeout: float = 30.0, **kubelet_options: Any) -> None:
        if mode not in ("fake", "process"):
            raise ValueError(f"mode must be 'fake' or 'process', not {mode!r}")
        self.control_plane = control_plane
        self.mode = mode
        self.name = control_plane.node_name
        self.lease_interval = lease_interval
        self.status_interval = status_interval
        self.ready_timeout = ready_timeout
        self.kubelet_options = kubelet_options
        self.port = 0
        self.api: MirrorAPI | None = None
        self.kubelet: FakeKubelet | LocalPodRunner | None = None
        self._client: RestClient | None = None
        self._admin: RestClient | None = None
        self._server: _LogServer | None = None
        self._server_thread: threading.Thread | None = None
        self._heartbeat: threading.Thread | None = None
        self._stopping = threading.Event()
        self._root: Path | None = None
        self._own_root = False

    # --- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> SimulatedNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> SimulatedNode:
        plane = self.control_plane
        self._stopping.clear()
        try:
            self._client = plane.client("node", user_agent=f"kubelet/sim ({self.name})")
            self._admin = plane.client("admin", user_agent="sim-node/admin")
            self._start_server()
            self.api = MirrorAPI(
                self._client, self.name, token=plane.tokens["node"], ca_file=plane.ca_file,
                config_client=self._admin if self.mode == "process" else None,
                config_token=plane.tokens["admin"]).start()
            self._register()
            self._heartbeat = threading.Thread(target=self._beat, name="sim-node heartbeat",
                                               daemon=True)
            self._heartbeat.start()
            self._wait_schedulable()
            if self.mode == "fake":
                options = {"node_name": self.name, **self.kubelet_options}
                self.kubelet = FakeKubelet(self.api, **options).start()  # type: ignore[arg-type]
            else:
                options = dict(self.kubelet_options)
                root = options.pop("root", None)
                if root is None:
                    root, self._own_root = tempfile.mkdtemp(prefix="sim-node-"), True
                self._root = Path(root)
                self.kubelet = LocalPodRunner(self.api, self._root, **options).start()  # type: ignore[arg-type]
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self.kubelet is not None:
            self.kubelet.stop()
            self.kubelet = None
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
            self._heartbeat = None
        if self.api is not None:
            self.api.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._client is not None:
            self._deregister()
            self._client.close()
            self._client = None
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._own_root and self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._own_root = False

    # --- the Node and its Lease ---------------------------------------------------------

    def _node_status(self) -> dict:
        now = _now()

        def condition(kind: str, status: str, reason: str, message: str) -> dict:
            return {"type": kind, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": now, "lastTransitionTime": self._since}

        return {
            "capacity": dict(CAPACITY), "allocatable": dict(CAPACITY),
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                          "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                          "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID",
                          "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": self.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "nodeInfo": {"machineID": "sim", "systemUUID": "sim", "bootID": "sim",
                         "kernelVersion": "sim", "osImage": "sim-node",
                         "containerRuntimeVersion": f"sim://{self.mode}",
                         "kubeletVersion": "v1.36.2", "kubeProxyVersion": "",
                         "operatingSystem": "linux", "architecture": "amd64"},
        }

    def _register(self) -> None:
        assert self._client is not None and self._admin is not None
        self._since = _now()
        labels = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": "amd64"}
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.name, "labels": labels},
                "spec": {}, "status": self._node_status()}
        try:
            node = self._client.create("nodes", body)
        except ApiError as exc:
            if exc.code != 409:
                raise
            # Left over (a simulator that did not stop): take it over.
            self._client.patch("nodes", None, self.name, {"metadata": {"labels": labels}})
            node = self._client.patch_status("nodes", None, self.name, self._node_status())
        self._node_uid = node["metadata"]["uid"]
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": self.name, "namespace": LEASE_NAMESPACE,
                              "ownerReferences": [{"apiVersion": "v1", "kind": "Node",
                                                   "name": self.name, "uid": self._node_uid}]},
                 "spec": {"holderIdentity": self.name, "leaseDurationSeconds": 40,
                          "renewTime": _micro_now()}}
        try:
            self._client.create("leases", lease, LEASE_NAMESPACE)
        except ApiError as exc:
            if exc.code != 409:
                raise
            self._renew_lease()

    def _renew_lease(self) -> None:
        assert self._client is not None
        self._client.patch("leases", LEASE_NAMESPACE, self.name,
                           {"spec": {"holderIdentity": self.name, "renewTime": _micro_now()}})

    def _beat(self) -> None:
        last_status = time.monotonic()
        while not self._stopping.wait(self.lease_interval):
            try:
                self._renew_lease()
                if time.monotonic() - last_status >= self.status_interval:
                    assert self._client is not None
                    self._client.patch_status("nodes", None, self.name, self._node_status())
                    last_status = time.monotonic()
            except Exception:  # noqa: BLE001 - keep beating; the next try may work
                logger.exception("sim-node heartbeat failed")

    def _schedulable(self) -> bool:
        assert self._client is not None
        node = self._client.get("nodes", None, self.name)
        if node is None or node["spec"].get("unschedulable"):
            return False
        taints = node["spec"].get("taints") or []
        return not any(t.get("key") in UNSCHEDULABLE_TAINTS for t in taints)

    def _wait_schedulable(self) -> None:
        assert self._client is not None
        self._client.wait_for(self._schedulable, timeout=self.ready_timeout, interval=0.05)

    def _deregister(self) -> None:
        assert self._client is not None and self._admin is not None
        for client in (self._client, self._admin):  # the node's own user first, as a kubelet
            try:
                client.delete("leases", LEASE_NAMESPACE, self.name)
            except ApiError as exc:
                if exc.code == 404:
                    break
                continue
            break
        for client in (self._client, self._admin):
            try:
                client.delete("nodes", None, self.name)
            except ApiError as exc:
                if exc.code == 404:
                    break
                continue
            break

    # --- logs ---------------------------------------------------------------------------

    def set_pod_log(self, namespace: str, name: str, text: str, container: str | None = None) -> None:
        """The text the pod's log is (``container`` None = the default), as on the embedded API."""
        self._require_api().set_pod_log(namespace, name, text, container)

    def append_pod_log(self, namespace: str, name: str, text: str, container: str | None = None) -> None:
        self._require_api().append_pod_log(namespace, name, text, container)

    def _require_api(self) -> MirrorAPI:
        if self.api is None:
            raise RuntimeError("start() the node first")
        return self.api

    def _start_server(self) -> None:
        pair = self.control_plane.issue_certificate(
            "sim-node-kubelet", f"system:node:{self.name}", hosts=("127.0.0.1", "localhost", self.name))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(pair.cert_file), str(pair.key_file))
        self._server = _LogServer(("127.0.0.1", 0), _LogHandler, node=self, context=context)
        self.port = self._server.server_address[1]
        self._server_thread = threading.Thread(target=self._server.serve_forever,
                                               kwargs={"poll_interval": 0.1},
                                               name="sim-node kubelet server", daemon=True)
        self._server_thread.start()

    # --- the fake kubelet's faults, on demand (fake mode) -------------------------------

    def reset(self) -> None:
        """Forgets the scripts given to the fake kubelet (between tests sharing the node)."""
        if isinstance(self.kubelet, FakeKubelet):
            with self.kubelet._lock:
                self.kubelet.scripts = []
                self.kubelet._rescan = True

    def _fake(self) -> FakeKubelet:
        if not isinstance(self.kubelet, FakeKubelet):
            raise RuntimeError("only a node in fake mode scripts pods")
        return self.kubelet

    def crash(self, namespace: str, name: str, exit_code: int = 1, reason: str = "Error") -> None:
        self._fake().crash(namespace, name, exit_code, reason)

    def crash_loop(self, namespace: str, name: str, exit_code: int = 1, reason: str = "Error") -> None:
        self._fake().crash_loop(namespace, name, exit_code, reason)

    def oom_kill(self, namespace: str, name: str) -> None:
        self._fake().oom_kill(namespace, name)

    def exit(self, namespace: str, name: str, exit_code: int = 0) -> None:
        self._fake().exit(namespace, name, exit_code)

    def evict(self, namespace: str, name: str, message: str = "The node was low on resource: memory.") -> None:
        self._fake().evict(namespace, name, message)

    def fail_image_pulls(self, image: str, reason: str = "ImagePullBackOff") -> None:
        self._fake().fail_image_pulls(image, reason)

    def script(self, match: Any, script: PodScript) -> None:
        self._fake().script(match, script)

    def release(self, namespace: str, name: str) -> None:
        self._fake().release(namespace, name)


class _LogServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, *, node: SimulatedNode,
                 context: ssl.SSLContext) -> None:
        self.node = node
        self.context = context
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        return self.context.wrap_socket(sock, server_side=True), address


class _LogHandler(http.server.BaseHTTPRequestHandler):
    """``GET /containerLogs/{namespace}/{pod}/{container}``, as the kubelet serves it."""

    protocol_version = "HTTP/1.1"
    server: _LogServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        logger.debug("kubelet server: " + format, *args)

    def _error(self, code: int, text: str) -> None:
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
        if len(parts) != 4 or parts[0] != "containerLogs":
            self._error(404, "404 page not found")
            return
        _, namespace, name, container = parts
        query = dict(urllib.parse.parse_qsl(url.query))
        api = self.server.node.api
        if api is None or api.store.get(("", "pods"), namespace, name) is None:
            self._error(404, f'pod "{name}" in namespace "{namespace}" not found')
            return
        try:
            tail = int(query["tailLines"]) if query.get("tailLines") else None
            limit = int(query["limitBytes"]) if query.get("limitBytes") else 0
        except ValueError:
            self._error(400, "invalid tailLines or limitBytes")
            return
        previous = query.get("previous", "").lower() in ("true", "1")
        text = "" if previous else api.pod_log(namespace, name, container)
        if tail is not None:
            text = "".join(text.splitlines(keepends=True)[-tail:]) if tail > 0 else ""
        data = text.encode()
        if limit > 0:
            data = data[:limit]
        if previous or query.get("follow", "").lower() not in ("true", "1"):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self._follow(api, namespace, name, container, data, limit)

    def _follow(self, api: MirrorAPI, namespace: str, name: str, container: str,
                first: bytes, limit: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent_total = 0

        def send(chunk: bytes) -> bool:
            nonlocal sent_total
            if limit > 0:
                chunk = chunk[:max(0, limit - sent_total)]
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
                sent_total += len(chunk)
            return not (limit > 0 and sent_total >= limit)

        try:
            going = send(first)
            sent = len(api.pod_log(namespace, name, container).encode())
            node = self.server.node
            while going and not node._stopping.is_set():
                full = api.pod_log(namespace, name, container).encode()
                if len(full) < sent:
                    sent = 0  # rewritten (e.g. truncated): carry on from its start
                if len(full) > sent:
                    going = send(full[sent:])
                    sent = len(full)
                if api.store.get(("", "pods"), namespace, name) is None:
                    break
                api.wait_log_change(0.5)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass
        self.close_connection = True
