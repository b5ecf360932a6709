"""Scale figures on a real kube-apiserver (issue 11), in one run with their baseline (not a timed test).

    KUBE_ASSETS=<dir with kube-apiserver, kube-controller-manager, kube-scheduler> \\
        .venv/bin/python tests/bench/bench_real_scale.py [--burst 1000] [--small 100] [--rss 1000 5000 10000]

One control plane (etcd + kube-apiserver + controller-manager + scheduler on loopback) and a
simulated node in fake mode (pods are bound by the real scheduler and reported Running and Ready
by the node; no process runs, so no runtime answers). The operator runs as its own process
(`agent-sessions run`, the chart's ClusterRole), so its RSS is its own. Prints:

1. bare pods: `--small` then `--burst` pods created at once by the bench → Running and Ready
   (watched): rate and create→Ready p50/p99 — the baseline;
2. sessions: the same bursts of AgentSessions → `Ready=True`: rate (and its ratio to the bare-pod
   rate), create→Ready p50/p99 and the overhead over the bare pods' percentiles;
3. operator RSS with `--rss` N converged sessions (sessions are added up to each N);
4. an operator restart over the largest N: time until it is quiet again (resync), its writes
   (must be 0) and reads, from the audit log.

Creation uses `--clients` concurrent connections for both pods and sessions (the same for both:
the ratio compares the operator's path with the bare pod's).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

import support.cluster.node as node_module  # noqa: E402
from support.backends import RealCluster, grant_operator_role  # noqa: E402
from support.cluster.audit import offset, read_since, verb_table  # noqa: E402
from support.cluster.control_plane import ControlPlane, missing_assets  # noqa: E402
from support.cluster.fault_proxy import FaultProxy  # noqa: E402
from support.cluster.node import SimulatedNode  # noqa: E402

from agent_sessions.api import constants as c  # noqa: E402

NAMESPACE = "default"
IMAGE = "example.invalid/agent:1"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def pod_body(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"containers": [{"name": "c", "image": IMAGE}], "terminationGracePeriodSeconds": 0}}


def session_body(name: str) -> dict:
    return {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND, "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"agent": {"image": IMAGE, "command": ["agent"]}}}


def pod_ready(obj: dict) -> bool:
    status = obj.get("status") or {}
    return status.get("phase") == "Running" and any(
        cond.get("type") == "Ready" and cond.get("status") == "True" for cond in status.get("conditions") or ())


def session_ready(obj: dict) -> bool:
    return any(cond.get("type") == "Ready" and cond.get("status") == "True"
               for cond in (obj.get("status") or {}).get("conditions") or ())


class Kube:
    """The few calls the bench makes, on kubernetes_asyncio with one connection pool."""

    def __init__(self, kubeconfig: Path, clients: int) -> None:
        self.kubeconfig = kubeconfig
        self.clients = clients

    async def __aenter__(self) -> Kube:
        from kubernetes_asyncio import client, config  # noqa: PLC0415

        configuration = client.Configuration()
        await config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=configuration)
        configuration.connection_pool_maxsize = self.clients + 4
        self.api = client.ApiClient(configuration)
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.api.close()

    async def create(self, kind: str, body: dict) -> None:
        if kind == "pods":
            await self.core.create_namespaced_pod(NAMESPACE, body)
        else:
            await self.custom.create_namespaced_custom_object(c.GROUP, c.VERSION, NAMESPACE, c.SESSION_PLURAL, body)

    async def watch(self, kind: str, ready: Any, names: set[str], seen: dict[str, float], done: asyncio.Event) -> None:
        """Record when each of `names` is first seen ready, until all are."""
        from kubernetes_asyncio import watch  # noqa: PLC0415

        method = self.core.list_namespaced_pod if kind == "pods" else self.custom.list_namespaced_custom_object
        args: tuple = (NAMESPACE,) if kind == "pods" else (c.GROUP, c.VERSION, NAMESPACE, c.SESSION_PLURAL)
        while not done.is_set():
            stream = watch.Watch()
            try:
                async for event in stream.stream(method, *args, timeout_seconds=60, _request_timeout=70):
                    obj = event["object"]
                    obj = obj if isinstance(obj, dict) else self.api.sanitize_for_serialization(obj)
                    name = obj["metadata"]["name"]
                    if name in names and name not in seen and ready(obj):
                        seen[name] = time.monotonic()
                        if len(seen) == len(names):
                            done.set()
                            return
            finally:
                stream.stop()


async def burst(kube: Kube, kind: str, names: list[str], ready: Any, timeout: float) -> tuple[float, list[float]]:
    """Create `names` at once (`kube.clients` at a time); (rate per second, create→ready seconds each)."""
    seen: dict[str, float] = {}
    done = asyncio.Event()
    watcher = asyncio.create_task(kube.watch(kind, ready, set(names), seen, done))
    await asyncio.sleep(0.5)  # the watch is established
    sent: dict[str, float] = {}
    queue = list(names)
    body = pod_body if kind == "pods" else session_body

    async def client() -> None:
        while queue:
            name = queue.pop(0)
            sent[name] = time.monotonic()
            await kube.create(kind, body(name))

    began = time.monotonic()
    await asyncio.gather(*(client() for _ in range(kube.clients)))
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        watcher.cancel()
    took = max(seen.values()) - began
    return len(names) / took, [seen[n] - sent[n] for n in names]


def describe(title: str, rate: float, latencies: list[float]) -> str:
    return (f"{title}: {rate:7.1f}/s, create→Ready p50 {statistics.median(latencies) * 1000:7.0f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1000:7.0f} ms")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_operator(kubeconfig: Path, log: Path, metrics_port: int) -> subprocess.Popen:
    command = [str(ROOT / ".venv" / "bin" / "agent-sessions"), "run", "--standalone", "--kubeconfig", str(kubeconfig),
               "--health-port", "0", "--health-host", "127.0.0.1", "--metrics-port", str(metrics_port)]
    return subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def sessions_known(metrics_port: int) -> int:
    """The sum of the operator's `agent_sessions` gauge: sessions it has reconciled at least once."""
    import urllib.request  # noqa: PLC0415

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("agent_sessions{")))


def stop_operator(process: subprocess.Popen, how: int = signal.SIGTERM) -> None:
    process.send_signal(how)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def resynced(metrics_port: int, count: int, started: float, timeout: float = 600.0) -> float:
    """Seconds from `started` until the operator has reconciled `count` sessions (its gauge)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sessions_known(metrics_port) >= count:
            return time.monotonic() - started
        time.sleep(0.1)
    raise TimeoutError("the operator never reconciled every session")


async def run(args: argparse.Namespace, plane: ControlPlane, work: Path) -> None:
    admin_config = plane.kubeconfig(work / "admin.kubeconfig", "admin")
    operator_config = plane.kubeconfig(work / "operator.kubeconfig", "operator")
    operator_user = plane.users["operator"].name
    async with Kube(admin_config, args.clients) as kube:
        print(f"\n1./2. Bursts ({args.clients} concurrent creators), bare pods vs AgentSessions on the same node:")
        bare: dict[int, tuple[float, list[float]]] = {}
        for size in (args.small, args.burst):
            names = [f"bare-{size}-{i:05d}" for i in range(size)]
            bare[size] = await burst(kube, "pods", names, pod_ready, timeout=600)
            print("   " + describe(f"{size:5d} bare pods      ", *bare[size]))
            subprocess.run([str(ROOT / ".tools" / "bin" / "kubectl"), "--kubeconfig", str(admin_config), "delete",
                            "pods", "--all", "-n", NAMESPACE, "--wait=true", "--timeout=600s"],
                           check=True, capture_output=True)

        log = work / "operator.log"
        metrics_port = free_port()
        operator = start_operator(operator_config, log, metrics_port)
        try:
            await asyncio.sleep(3.0)
            created = 0
            for size in (args.small, args.burst):
                names = [f"s-{size}-{i:05d}" for i in range(size)]
                rate, latencies = await burst(kube, "sessions", names, session_ready, timeout=900)
                created += size
                base_rate, base_latencies = bare[size]
                print("   " + describe(f"{size:5d} AgentSessions  ", rate, latencies)
                      + f"  = {rate / base_rate:.0%} of the bare-pod rate; overhead p50 "
                      f"{(statistics.median(latencies) - statistics.median(base_latencies)) * 1000:.0f} ms, p99 "
                      f"{(percentile(latencies, 0.99) - percentile(base_latencies, 0.99)) * 1000:.0f} ms")
            print("\n3. Operator RSS (its own process, `agent-sessions run`) with N converged sessions:")
            print(f"   {created:6d} sessions: {rss_mib(operator.pid):6.1f} MiB")
            for target in args.rss:
                if target <= created:
                    continue
                names = [f"r-{i:05d}" for i in range(created, target)]
                await burst(kube, "sessions", names, session_ready, timeout=3600)
                created = target
                await asyncio.sleep(5.0)
                print(f"   {created:6d} sessions: {rss_mib(operator.pid):6.1f} MiB")

            print(f"\n4. Operator restart over {created} converged sessions:")
            stop_operator(operator)
            since = offset(plane.audit_log)
            started = time.monotonic()
            operator = start_operator(operator_config, log, metrics_port)
            resync = resynced(metrics_port, created, started)
            time.sleep(5.0)
            # A window, not "until quiet": the fake node runs no bridge, so no session reports an
            # outputMark and each one's log tail is read every log refresh, for good.
            records = [r for r in read_since(plane.audit_log, since) if r.user == operator_user and r.verb != "watch"]
            writes = [r for r in records if r.is_write]
            print(f"   resync {resync:.1f} s (process start → every session reconciled, from its agent_sessions "
                  f"gauge); in that time and 5 s more: writes {len(writes)}, reads {len(records) - len(writes)}; "
                  f"RSS {rss_mib(operator.pid):.1f} MiB")
            print("   " + verb_table(records).replace("\n", "\n   "))
        finally:
            stop_operator(operator)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--rss", type=int, nargs="*", default=[])
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    assets = Path(os.environ.get("KUBE_ASSETS", ""))
    reason = missing_assets(assets if os.environ.get("KUBE_ASSETS") else None)
    if reason:
        print(f"bench_real_scale: {reason}", file=sys.stderr)
        return 2
    node_module.CAPACITY["pods"] = str(max([args.burst, args.small, *args.rss]) * 2 + 100)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(tmp)
        with ControlPlane(assets, work / "plane") as plane:
            grant_operator_role(plane)
            with FaultProxy(plane.url, plane.ca_file) as proxy, SimulatedNode(plane, mode="fake") as node:
                RealCluster(plane, proxy, node).ensure_crds()
                print(f"real control plane at {plane.url} (assets {assets}); {os.cpu_count()} CPUs; "
                      f"{time.strftime('%Y-%m-%d')}")
                asyncio.run(run(args, plane, work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
