"""Scale figures on a real kube-apiserver (issue 11), in one run with their baseline (not a timed test).

    KUBE_ASSETS=<dir with kube-apiserver, kube-controller-manager, kube-scheduler> \\
        .venv/bin/python tests/bench/bench_real_scale.py [--burst 1000] [--small 100] [--rss 1000 5000 10000] \\
            [--quiet-seconds 60] [--churn-minutes 30] [--shards-burst 1000]

One control plane (etcd + kube-apiserver + controller-manager + scheduler on loopback) and a
simulated node in fake mode (pods are bound by the real scheduler and reported Running and Ready
by the node; no process runs, so no runtime answers). The operator runs as its own process
(`agent-sessions run`, the chart's ClusterRole), so its RSS is its own. Prints:

1. bare pods: `--small` then `--burst` pods created at once by the bench → Running and Ready
   (watched): rate and create→Ready p50/p99 — the baseline;
2. sessions: the same bursts of AgentSessions → `Ready=True`: rate (and its ratio to the bare-pod
   rate), create→Ready p50/p99 and the overhead over the bare pods' percentiles; for bare pods and
   sessions alike, the start path (audit log: when each step happened after the create);
3. operator RSS with `--rss` N converged sessions (sessions are added up to each N);
4. an operator restart over the largest N: time until it is quiet again (resync), its writes
   (must be 0) and reads, from the audit log;
5. the converged sessions left alone for `--quiet-seconds`: the operator's reads and writes per
   minute (audit log; watches aside);
6. `--churn-minutes` M: every minute 100 sessions created, 100 stopped and 100 deleted, and the
   operator's RSS at the end of each minute (flat or not);
7. `--shards-burst` N: the single operator replaced by 3 replicas with `--shards 2` (two hold a
   shard each, the third stands by, as the chart's `replicas: shards + 1`); a burst of N sessions
   (rate), which replica wrote each (audit log user agents: exactly one each, the split), then a
   shard holder killed (SIGKILL): how long until the standby holds its shard, and a session of
   that shard created after the kill reaching `Ready=True`.

Every session's runtime is answered by `runtime_standin.py` on port 8080 of every loopback address
(the fake node's pod IPs): an idle bridge whose log never changes, as in a real installation
(`--no-standin`: no runtime answers, and every log tail is read at every refresh).

Creation uses `--clients` concurrent connections for both pods and sessions (the same for both:
the ratio compares the operator's path with the bare pod's).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

import support.cluster.node as node_module  # noqa: E402
from support.backends import RealCluster, grant_operator_role  # noqa: E402
from support.cluster.audit import WRITE_VERBS, offset, read_since, verb_table  # noqa: E402
from support.cluster.control_plane import ControlPlane, missing_assets  # noqa: E402
from support.cluster.fault_proxy import FaultProxy  # noqa: E402
from support.cluster.node import SimulatedNode  # noqa: E402

from agent_sessions.api import constants as c  # noqa: E402

NAMESPACE = "default"
IMAGE = "example.invalid/agent:1"
RUNTIME_PORT = 8080
"""The pod provider's runtime port (`providers.pod.constants.RUNTIME_PORT`)."""
SHARD_PREFIX = "agent-session-operator"
"""The chart's Lease prefix for its release name: the Role it renders for the shards names these Leases."""
CHURN_PER_MINUTE = 100


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

    async def stop(self, name: str) -> None:
        await self.custom.patch_namespaced_custom_object(c.GROUP, c.VERSION, NAMESPACE, c.SESSION_PLURAL, name,
                                                         {"spec": {"state": c.STATE_STOPPED}},
                                                         _content_type="application/merge-patch+json")

    async def delete(self, name: str) -> None:
        await self.custom.delete_namespaced_custom_object(c.GROUP, c.VERSION, NAMESPACE, c.SESSION_PLURAL, name)

    async def lease_holders(self, prefix: str) -> dict[str, str]:
        """Shard Lease name → its holder (the replica identity), for the Leases named `prefix`…."""
        from kubernetes_asyncio import client  # noqa: PLC0415

        leases = await client.CoordinationV1Api(self.api).list_namespaced_lease(NAMESPACE)
        return {lease.metadata.name: lease.spec.holder_identity or "" for lease in leases.items
                if lease.metadata.name.startswith(prefix)}

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
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 — e.g. a client timeout while 10,000 objects are listed
                print(f"   (the bench's watch failed: {type(error).__name__}: {error}; watching again)", flush=True)
                await asyncio.sleep(1.0)
            finally:
                stream.stop()
                await stream.close()  # its own ApiClient, else "Unclosed client session" at every burst


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Where a burst's CPU went: seconds per process of the run (control plane, operator, the
    bench itself with its simulated node and proxy, the runtime stand-in), and the machine's."""

    def __init__(self, processes: dict[str, int]) -> None:
        self.processes = processes

    def __enter__(self) -> CpuMeter:
        self.began = (time.monotonic(), {name: cpu_seconds(pid) for name, pid in self.processes.items()})
        return self

    def __exit__(self, *exc: object) -> None:
        wall, before = self.began
        self.wall = time.monotonic() - wall
        self.used = {name: cpu_seconds(pid) - before[name] for name, pid in self.processes.items()}

    def describe(self) -> str:
        total = sum(self.used.values())
        parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in sorted(self.used.items(), key=lambda i: -i[1]))
        return (f"CPU seconds over {self.wall:.1f} s: {parts} — {total / self.wall:.2f} of "
                f"{os.cpu_count()} cores busy")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sockets(pid: int) -> int:
    """How many sockets `pid` holds open (connections to runtimes and the API server, listeners)."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:
            pass  # closed meanwhile
    return count


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_operator(kubeconfig: Path, log: Path, metrics_port: int, *extra: str) -> subprocess.Popen:
    command = [str(ROOT / ".venv" / "bin" / "agent-sessions"), "run", "--kubeconfig", str(kubeconfig),
               "--health-port", "0", "--health-host", "127.0.0.1", "--metrics-port", str(metrics_port),
               *(extra or ("--standalone",)), *OPERATOR_ARGS]
    return subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def start_standin(log: Path) -> subprocess.Popen:
    """`runtime_standin.py` on port 8080 of every address; fails with the reason when it cannot."""
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("runtime_standin.py")), str(RUNTIME_PORT)],
                               stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the runtime stand-in exited (port {RUNTIME_PORT} in use on some address?): see {log} "
                             f"(or run with --no-standin)")
        if "runtime stand-in on" in log.read_text(errors="replace"):
            return process
        time.sleep(0.1)
    raise SystemExit(f"the runtime stand-in did not start: see {log}")


def metric_sum(metrics_port: int, prefix: str) -> float:
    """The sum of the operator's samples whose line starts with `prefix` (0 while it does not answer)."""
    import urllib.request  # noqa: PLC0415

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def reconciles_by_cause(metrics_port: int) -> Counter:
    """The operator's `agent_session_reconciles_total` by its `cause` label."""
    import urllib.request  # noqa: PLC0415

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return Counter()
    found = (re.match(r'agent_session_reconciles_total\{cause="([^"]+)"\} (\S+)$', line) for line in text.splitlines())
    return Counter({match[1]: float(match[2]) for match in found if match})


def sessions_known(metrics_port: int) -> int:
    """The sum of the operator's `agent_sessions` gauge: sessions it has reconciled at least once."""
    return int(metric_sum(metrics_port, "agent_sessions{"))


def per_session(records: list, size: int) -> str:
    """The operator's requests over a burst, per session: writes by kind, and reads."""
    def by_kind(writing: bool) -> tuple[float, str]:
        kinds = Counter(f"{r.verb} {r.resource}{'/' + r.subresource if r.subresource else ''}"
                        for r in records if (r.verb in WRITE_VERBS) == writing and r.verb != "watch")
        return (sum(kinds.values()) / size,
                ", ".join(f"{kind} {count / size:.2f}" for kind, count in sorted(kinds.items())))

    (writes, written), (reads, read) = by_kind(True), by_kind(False)
    return f"{writes:.2f} writes a session ({written}); {reads:.2f} reads ({read})"


_CHILD = re.compile(r"^ags-(?P<session>.+?)(?:-token)?-[0-9a-f]{8}$")
START_STEPS = (  # (label, verb, target, which occurrence: 0 first, -1 last)
    ("finalizer", "patch", "agentsessions", 0), ("Event", "create", "events", 0),
    ("Secret", "create", "secrets", 0), ("pod", "create", "pods", 0), ("bound", "create", "pods/binding", 0),
    ("pod Ready", "patch", "pods/status", -1), ("Creating", "patch", "agentsessions/status", 0),
    ("Running", "patch", "agentsessions/status", 1),
)


def start_path(records: list, names: list[str]) -> str:
    """Where a burst's starts went (audit log): for each step, milliseconds after the object's
    create reached the API server (a session's, or a bare pod's): p10, median and p90."""
    wanted, created = set(names), {}
    seen: dict[tuple[str, str, str], list[float]] = {}
    for record in sorted(records, key=lambda r: r.received):
        name = record.name or ""
        if record.resource in ("pods", "secrets") and name not in wanted:
            match = _CHILD.match(name)
            name = match.group("session") if match else name
        elif record.resource == "events":
            name = name.rsplit(".", 1)[0]
        if name not in wanted or record.code >= 400:
            continue
        if record.verb == "create" and record.target in ("agentsessions", "pods") and name not in created:
            created[name] = record.received
        seen.setdefault((name, record.verb, record.target), []).append(record.received)
    steps = []
    for label, verb, target, which in START_STEPS:
        offsets = []
        for name, began in created.items():
            stamps = seen.get((name, verb, target)) or []
            if len(stamps) > max(which, -1 - which):
                offsets.append((stamps[which] - began) * 1000)
        if offsets:
            steps.append(f"{label} +{percentile(offsets, 0.1):.0f}/{statistics.median(offsets):.0f}/"
                         f"{percentile(offsets, 0.9):.0f}")
    return (f"start path, ms after the create (p10/p50/p90 of {len(created)}): " + ", ".join(steps))


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


def plane_processes(plane: ControlPlane) -> dict[str, int]:
    """The control plane's processes by name, and this bench's own (creators, node, proxy)."""
    processes = {process.name: process.popen.pid for process in plane._processes}
    processes["bench+node"] = os.getpid()
    if STANDIN_PID:
        processes["standin"] = STANDIN_PID[0]
    return processes


STANDIN_PID: list[int] = []
OPERATOR_ARGS: list[str] = []
"""`--operator-arg`s: added to every operator's command line (e.g. `--concurrency=64`)."""
RECONCILES = "agent_session_reconcile_seconds_count"


async def run(args: argparse.Namespace, plane: ControlPlane, work: Path) -> None:
    admin_config = plane.kubeconfig(work / "admin.kubeconfig", "admin")
    operator_config = plane.kubeconfig(work / "operator.kubeconfig", "operator")
    operator_user = plane.users["operator"].name
    async with Kube(admin_config, args.clients) as kube:
        print(f"\n1./2. Bursts ({args.clients} concurrent creators), bare pods vs AgentSessions on the same node:")
        bare: dict[int, tuple[float, list[float]]] = {}
        for size in (args.small, args.burst):
            if not size:
                continue
            names = [f"bare-{size}-{i:05d}" for i in range(size)]
            since = offset(plane.audit_log)
            with CpuMeter(plane_processes(plane)) as cpu:
                bare[size] = await burst(kube, "pods", names, pod_ready, timeout=600)
            await asyncio.sleep(1.0)  # the audit log's last records
            print("   " + describe(f"{size:5d} bare pods      ", *bare[size]))
            print("     " + cpu.describe())
            print("     " + start_path(read_since(plane.audit_log, since), names))
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
                if not size:
                    continue
                names = [f"s-{size}-{i:05d}" for i in range(size)]
                since, reconciles = offset(plane.audit_log), metric_sum(metrics_port, RECONCILES)
                causes = reconciles_by_cause(metrics_port)
                with CpuMeter({**plane_processes(plane), "operator": operator.pid}) as cpu:
                    rate, latencies = await burst(kube, "sessions", names, session_ready, timeout=900)
                reconciles = metric_sum(metrics_port, RECONCILES) - reconciles
                causes = reconciles_by_cause(metrics_port) - causes
                await asyncio.sleep(1.0)  # the audit log's last records
                burst_records = read_since(plane.audit_log, since)
                burst_requests = [r for r in burst_records if r.user == operator_user]
                created += size
                base_rate, base_latencies = bare[size]
                print("   " + describe(f"{size:5d} AgentSessions  ", rate, latencies)
                      + f"  = {rate / base_rate:.0%} of the bare-pod rate; overhead p50 "
                      f"{(statistics.median(latencies) - statistics.median(base_latencies)) * 1000:.0f} ms, p99 "
                      f"{(percentile(latencies, 0.99) - percentile(base_latencies, 0.99)) * 1000:.0f} ms")
                print("     " + cpu.describe())
                print(f"     operator until the last was Ready: {reconciles / size:.2f} reconciles ("
                      + ", ".join(f"{cause} {count / size:.2f}" for cause, count in causes.most_common())
                      + ") and " + per_session(burst_requests, size))
                print("     " + start_path(burst_records, names))
            print("\n3. Operator RSS (its own process, `agent-sessions run`) with N converged sessions:")
            print(f"   {created:6d} sessions: {rss_mib(operator.pid):6.1f} MiB")
            for target in args.rss:
                if target <= created:
                    continue
                names = [f"r-{i:05d}" for i in range(created, target)]
                await burst(kube, "sessions", names, session_ready, timeout=3600)
                created = target
                await asyncio.sleep(5.0)
                after_burst, held = rss_mib(operator.pid), sockets(operator.pid)
                await asyncio.sleep(60.0)  # the operator hands freed memory back every minute
                print(f"   {created:6d} sessions: {after_burst:6.1f} MiB ({held} sockets) 5 s after the burst, "
                      f"{rss_mib(operator.pid):6.1f} MiB ({sockets(operator.pid)} sockets) a minute later")

            print(f"\n4. Operator restart over {created} converged sessions:")
            stop_operator(operator)
            since = offset(plane.audit_log)
            started = time.monotonic()
            operator = start_operator(operator_config, log, metrics_port)
            resync = resynced(metrics_port, created, started)
            time.sleep(5.0)
            records = operator_requests(plane, since, operator_user)
            writes = [r for r in records if r.is_write]
            print(f"   resync {resync:.1f} s (process start → every session reconciled, from its agent_sessions "
                  f"gauge); in that time and 5 s more: writes {len(writes)}, reads {len(records) - len(writes)}; "
                  f"RSS {rss_mib(operator.pid):.1f} MiB, {sockets(operator.pid)} sockets")
            print("   " + verb_table(records).replace("\n", "\n   "))

            if args.quiet_seconds:
                await quiet_window(plane, operator_user, created, args.quiet_seconds, operator.pid, metrics_port)
            if args.churn_minutes:
                created = await churn(kube, operator, created, args.churn_minutes)
        finally:
            stop_operator(operator)
        if args.shards_burst:
            await two_shards(kube, plane, work, operator_config, operator_user, args.shards_burst)


def operator_requests(plane: ControlPlane, since: int, user: str) -> list:
    """The operator's requests in the audit log since `since`, watches aside."""
    return [r for r in read_since(plane.audit_log, since) if r.user == user and r.verb != "watch"]


async def quiet_window(plane: ControlPlane, user: str, sessions: int, seconds: float, pid: int,
                       metrics_port: int) -> None:
    print(f"\n5. {sessions} converged sessions left alone for {seconds:.0f} s:")
    since, causes = offset(plane.audit_log), reconciles_by_cause(metrics_port)
    with CpuMeter({"operator": pid}) as cpu:
        await asyncio.sleep(seconds)
    causes = reconciles_by_cause(metrics_port) - causes
    print(f"   the operator: {cpu.used['operator']:.1f} CPU-s ({cpu.used['operator'] / cpu.wall:.1%} of a core), "
          f"{sum(causes.values()) / sessions * 60 / seconds:.2f} reconciles a session a minute ("
          + ", ".join(f"{cause} {count:.0f}" for cause, count in causes.most_common())
          + "; requeue: the periodic look at its runtime, which costs no API request)")
    records = [r for r in operator_requests(plane, since, user) if r.resource != "leases"]
    writes = sum(1 for r in records if r.is_write)
    per_minute = 60.0 / seconds
    print(f"   the operator's requests: {(len(records) - writes) * per_minute:.1f} reads and {writes * per_minute:.1f} "
          f"writes per minute ({len(records)} in the window; peering keep-alives aside)")
    if records:
        print("   " + verb_table(records).replace("\n", "\n   "))


async def churn(kube: Kube, operator: subprocess.Popen, created: int, minutes: int) -> int:
    """Every minute: CHURN_PER_MINUTE sessions created, as many stopped and as many (stopped the
    minute before) deleted; the operator's RSS at the end of each minute."""
    print(f"\n6. Churn for {minutes} min ({CHURN_PER_MINUTE} created, stopped and deleted a minute), operator RSS:")
    running: list[str] = []
    stopped: list[str] = []
    samples = [rss_mib(operator.pid)]
    serial = 0
    for minute in range(minutes):
        began = time.monotonic()
        names = [f"churn-{serial + i:06d}" for i in range(CHURN_PER_MINUTE)]
        serial += CHURN_PER_MINUTE
        await batched(kube, [kube.create("sessions", session_body(n)) for n in names])
        to_stop, running = running[:CHURN_PER_MINUTE], running[CHURN_PER_MINUTE:] + names
        await batched(kube, [kube.delete(n) for n in stopped])
        await batched(kube, [kube.stop(n) for n in to_stop])
        stopped = to_stop
        await asyncio.sleep(max(0.0, 60.0 - (time.monotonic() - began)))
        samples.append(rss_mib(operator.pid))
        print(f"   minute {minute + 1:3d}: {samples[-1]:6.1f} MiB, {sockets(operator.pid)} sockets "
              f"({len(running) + len(stopped)} churn sessions live)")
    half = len(samples) // 2
    print(f"   RSS first {samples[0]:.1f}, last {samples[-1]:.1f}, max {max(samples):.1f} MiB; "
          f"second half vs first: {statistics.mean(samples[half:]) - statistics.mean(samples[:half]):+.1f} MiB")
    return created + len(running) + len(stopped)


async def batched(kube: Kube, calls: list) -> None:
    """Run `calls` (coroutines) `kube.clients` at a time."""
    gate = asyncio.Semaphore(kube.clients)

    async def one(call: Any) -> None:
        async with gate:
            await call

    await asyncio.gather(*(one(call) for call in calls))


async def two_shards(kube: Kube, plane: ControlPlane, work: Path, kubeconfig: Path, user: str, size: int) -> None:
    from agent_sessions.handlers.sharding import shard_of  # noqa: PLC0415

    print(f"\n7. Three replicas with --shards 2 (one standing by): a burst of {size} sessions, then a shard holder "
          f"killed:")
    grant_shard_role(plane)
    replicas = {}
    for index in range(3):
        port = free_port()
        replicas[f"r{index}"] = (start_operator(kubeconfig, work / f"shard-r{index}.log", port, "--shards", "2",
                                                "--shard-lease-prefix", SHARD_PREFIX, "--shard-lease-namespace",
                                                NAMESPACE, "--shard-lease-duration", "15"), port)
    try:
        deadline = time.monotonic() + 60
        while len(set((await kube.lease_holders(SHARD_PREFIX)).values()) - {""}) < 2:
            if time.monotonic() > deadline:
                raise TimeoutError("two replicas never held a shard each")
            await asyncio.sleep(0.5)
        since = offset(plane.audit_log)
        names = [f"sh-{i:05d}" for i in range(size)]
        rate, latencies = await burst(kube, "sessions", names, session_ready, timeout=900)
        print("   " + describe(f"{size:5d} AgentSessions  ", rate, latencies))
        writers: dict[str, set[str]] = {name: set() for name in names}
        for record in operator_requests(plane, since, user):
            if record.is_write and record.resource == c.SESSION_PLURAL and record.name in writers:
                writers[record.name].add(record.user_agent)
        split = {agent: sum(1 for w in writers.values() if w == {agent}) for agent in set().union(*writers.values())}
        shared = [name for name, w in writers.items() if len(w) > 1]
        unwritten = [name for name, w in writers.items() if not w]
        print(f"   written by exactly one replica: {sum(split.values())} of {size}; by both: {len(shared)}; by none: "
              f"{len(unwritten)}; split: " + ", ".join(f"{n}" for n in sorted(split.values())))
        holders = await kube.lease_holders(SHARD_PREFIX)
        victim_identity = holders[f"{SHARD_PREFIX}-shard-0"]
        victim = next(name for name, (process, _) in replicas.items() if victim_identity.endswith(f"-{process.pid}"))
        process, _ = replicas[victim]
        killed = time.monotonic()
        process.send_signal(signal.SIGKILL)
        process.wait()
        orphan = next(f"after-kill-{i}" for i in range(1000) if shard_of(NAMESPACE, f"after-kill-{i}", 2) == 0)
        await kube.create("sessions", session_body(orphan))
        while (await kube.lease_holders(SHARD_PREFIX))[f"{SHARD_PREFIX}-shard-0"] in ("", victim_identity):
            await asyncio.sleep(0.2)
        moved = time.monotonic() - killed
        print(f"   replica {victim} killed: its shard held by the standby after {moved:.1f} s (Lease duration 15 s)")
        # The standby reconciles every session of the shard it took (each is checked once): a session
        # created after the kill waits its turn among them.
        ready_seen = await wait_ready(kube, orphan, timeout=900)
        print(f"   a session of that shard created after the kill: Ready {ready_seen - killed:.1f} s after the kill")
    finally:
        for process, _ in replicas.values():
            if process.poll() is None:
                stop_operator(process)


def grant_shard_role(plane: ControlPlane) -> None:
    """The Role and RoleBinding the chart renders for the shard Leases, bound to the operator's user."""
    import yaml  # noqa: PLC0415

    rendered = subprocess.run(
        [str(ROOT / ".tools" / "bin" / "helm"), "template", SHARD_PREFIX, str(ROOT / "charts" / "agent-session-operator"),
         "--namespace", NAMESPACE, "--set", "shards=2", "--set", "replicas=2"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    admin = plane.client("admin")
    try:
        for obj in yaml.safe_load_all(rendered):
            if obj and obj["kind"] in ("Role", "RoleBinding") and obj["metadata"]["name"].endswith("-shards"):
                if obj["kind"] == "RoleBinding":
                    obj["subjects"] = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                        "name": plane.users["operator"].name}]
                admin.create("roles" if obj["kind"] == "Role" else "rolebindings", obj)
    finally:
        admin.close()


async def wait_ready(kube: Kube, name: str, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        obj = await kube.custom.get_namespaced_custom_object(c.GROUP, c.VERSION, NAMESPACE, c.SESSION_PLURAL, name)
        if session_ready(obj):
            return time.monotonic()
        await asyncio.sleep(0.2)
    raise TimeoutError(f"session {name} never became Ready")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--rss", type=int, nargs="*", default=[])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--quiet-seconds", type=float, default=60.0)
    parser.add_argument("--churn-minutes", type=int, default=0)
    parser.add_argument("--shards-burst", type=int, default=0)
    parser.add_argument("--no-standin", action="store_true", help="no runtime answers (every log tail read)")
    parser.add_argument("--operator-arg", action="append", default=[], metavar="ARG",
                        help="add ARG to the operator's command line (repeatable; e.g. --operator-arg=--concurrency=64)")
    args = parser.parse_args()
    assets = Path(os.environ.get("KUBE_ASSETS", ""))
    reason = missing_assets(assets if os.environ.get("KUBE_ASSETS") else None)
    if reason:
        print(f"bench_real_scale: {reason}", file=sys.stderr)
        return 2
    # Room for every pod alive at once: a burst's (bare pods, then sessions), the sessions kept for
    # RSS, churn's 200, the two shards' burst and the session created after the kill.
    node_module.CAPACITY["pods"] = str(max([args.burst, args.small, *args.rss]) * 2 + args.shards_burst + 400)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(tmp)
        with ControlPlane(assets, work / "plane") as plane:
            grant_operator_role(plane)
            with FaultProxy(plane.url, plane.ca_file) as proxy, SimulatedNode(plane, mode="fake") as node:
                RealCluster(plane, proxy, node).ensure_crds()
                print(f"real control plane at {plane.url} (assets {assets}); {os.cpu_count()} CPUs; "
                      f"{time.strftime('%Y-%m-%d')}")
                standin = None if args.no_standin else start_standin(work / "standin.log")
                STANDIN_PID[:] = [standin.pid] if standin is not None else []
                OPERATOR_ARGS[:] = args.operator_arg
                try:
                    asyncio.run(run(args, plane, work))
                finally:
                    if standin is not None:
                        stop_operator(standin)
                        print("   " + (work / "standin.log").read_text().strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
