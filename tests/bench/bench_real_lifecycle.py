"""Operator writes on a real kube-apiserver, counted from its audit log (not a timed unit test).

    KUBE_ASSETS=<dir with kube-apiserver, kube-controller-manager, kube-scheduler> \
        .venv/bin/python tests/bench/bench_real_lifecycle.py [--sessions 50]

One run, one control plane (etcd + kube-apiserver + controller-manager + scheduler on loopback,
a simulated node), the operator as its own user with exactly the chart's ClusterRole. Prints:

1. the baseline: what a bare pod costs its creator (create + delete), from the same audit log;
2. one lifecycle create → Running → Stopped → Running → delete: the operator's requests by verb,
   resource and response code (Events listed apart), writes in all, and responses 409;
3. an operator restart over N converged sessions: its writes (must be 0) and its reads;
4. a session with a prompt, create → Running with the prompt Delivered (a stand-in runtime that
   takes the prompt at once: the fake-mode node runs none): its status patches, which must be
   those of a session without a prompt (Creating, Running);
5. N converged sessions left alone for a minute (a stand-in runtime whose bridge writes nothing:
   its outputMark stays): the operator's requests in that minute, by verb and resource (issue 11:
   0 per session; what remains is per namespace).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from support.sessions import AcceptingRuntime, converged, run_one_lifecycle, session  # noqa: E402
from support.waits import ready, wait_session, wait_until  # noqa: E402
from support.backends import RealCluster, grant_operator_role  # noqa: E402
from support.cluster.audit import AuditRecord, verb_table  # noqa: E402
from support.cluster.control_plane import ControlPlane, missing_assets  # noqa: E402
from support.cluster.fault_proxy import FaultProxy  # noqa: E402
from support.cluster.node import SimulatedNode  # noqa: E402
from support.cluster.real_api import RealAPI  # noqa: E402

from agent_sessions.api import constants as c  # noqa: E402
from agent_sessions.handlers.operator import OperatorThread  # noqa: E402
from agent_sessions.handlers.settings import OperatorOptions  # noqa: E402
from agent_sessions.wire.runtime_info import RuntimeInfo  # noqa: E402


def records(api: RealAPI, user: str | None = None) -> list[AuditRecord]:
    return [r for r in api.audit.records(user=user) if r.verb != "watch"]


def settle(api: RealAPI, user: str, quiet: float = 1.0) -> None:
    """Wait until the audit log has no new request of `user` for `quiet` seconds."""
    last, since = -1, time.monotonic()
    while time.monotonic() - since < quiet:
        count = len(records(api, user))
        if count != last:
            last, since = count, time.monotonic()
        time.sleep(0.1)


def print_table(title: str, rows: list[AuditRecord]) -> None:
    print(f"\n{title}")
    print("   " + verb_table(rows).replace("\n", "\n   "))


def bare_pod_baseline(api: RealAPI) -> None:
    api.reset_requests()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "baseline", "namespace": "default"},
           "spec": {"containers": [{"name": "c", "image": "example.invalid/agent:1"}]}}
    api.create("pods", pod)
    api.wait_for(lambda: ((api.get("pods", "default", "baseline") or {}).get("status") or {}).get("phase") == "Running",
                 timeout=30)
    api.delete("pods", "default", "baseline")
    api.wait_for(lambda: api.get("pods", "default", "baseline") is None, timeout=30)
    mine = [r for r in records(api, "admin") if r.name == "baseline" and r.is_write]
    print_table("1. Baseline: a bare pod's creator (create → Running → delete), writes:", mine)


def one_lifecycle(api: RealAPI, kubeconfig: Path) -> None:
    with OperatorThread(OperatorOptions(), kubeconfig=str(kubeconfig)) as operator:
        wait_until(lambda: operator.runtime and operator.runtime.scheduler)
        settle(api, api.operator_user)
        api.reset_requests()
        run_one_lifecycle(api, "bench", timeout=30)
        settle(api, api.operator_user)
    ours = records(api, api.operator_user)
    writes = [r for r in ours if r.is_write and r.resource != "events"]
    events = [r for r in ours if r.is_write and r.resource == "events"]
    print_table("2. One lifecycle create → Running → Stopped → Running → delete, the operator's requests "
                "(watches excluded):", ours)
    print(f"   writes excluding Events: {len(writes)} (budget 13); Events: {len(events)}; "
          f"responses 409: {sum(1 for r in ours if r.code == 409)}")
    phases = Counter(r.subresource for r in writes if r.resource == c.SESSION_PLURAL)
    print(f"   status patches: {phases.get('status', 0)}; finalizer patches: {phases.get(None, 0)}")


def restart_over_converged(api: RealAPI, kubeconfig: Path, count: int) -> None:
    names = [f"s{i:03d}" for i in range(count)]
    with OperatorThread(OperatorOptions(), kubeconfig=str(kubeconfig)):
        started = time.monotonic()
        for name in names:
            api.create(c.SESSION_PLURAL, session(name))
        for name in names:
            wait_session(api, name, ready, timeout=120)
        took = time.monotonic() - started
    api.reset_requests()
    with OperatorThread(OperatorOptions(), kubeconfig=str(kubeconfig)) as second:
        began = time.monotonic()
        wait_until(lambda: converged(second, [("default", n) for n in names]), timeout=120)
        resync = time.monotonic() - began
        settle(api, api.operator_user)
    ours = records(api, api.operator_user)
    writes = [r for r in ours if r.is_write]
    print(f"\n3. {count} sessions Ready in {took:.1f} s; operator restarted over them: converged in {resync:.2f} s, "
          f"writes {len(writes)}, reads {len(ours) - len(writes)}")
    if writes:
        print("   " + verb_table(writes).replace("\n", "\n   "))


def prompted_session(api: RealAPI, kubeconfig: Path) -> None:
    runtime = AcceptingRuntime()
    with OperatorThread(OperatorOptions(), kubeconfig=str(kubeconfig), runtime_client_factory=lambda: runtime) as operator:
        wait_until(lambda: operator.runtime and operator.runtime.scheduler)
        settle(api, api.operator_user)
        api.reset_requests()
        api.create(c.SESSION_PLURAL, session("prompted", prompt="Summarise the repository."))
        wait_session(api, "prompted", lambda o: ready(o) and (o["status"].get("prompt") or {}).get("state") == "Delivered",
                     timeout=30)
        settle(api, api.operator_user)
        ours = records(api, api.operator_user)
        api.delete(c.SESSION_PLURAL, "default", "prompted")
        api.wait_for(lambda: api.get(c.SESSION_PLURAL, "default", "prompted") is None, timeout=30)
    patches = [r for r in ours if r.is_write and r.resource == c.SESSION_PLURAL and r.subresource == "status"
               and r.name == "prompted"]
    print(f"\n4. A session with a prompt, create → Running with the prompt Delivered: status patches {len(patches)} "
          f"(without a prompt: 2); prompts sent {len(runtime.delivered)}")


class QuietRuntime(AcceptingRuntime):
    """A bridge that is idle and writes nothing to its log: the same outputMark every time."""

    async def info(self, endpoint: str, session: Any = None) -> RuntimeInfo:
        return RuntimeInfo(output_mark="quiet:0")


def converged_minute(api: RealAPI, kubeconfig: Path, count: int, seconds: float) -> None:
    names = [f"q{i:03d}" for i in range(count)]
    runtime = QuietRuntime()
    with OperatorThread(OperatorOptions(), kubeconfig=str(kubeconfig), runtime_client_factory=lambda: runtime):
        for name in names:
            api.create(c.SESSION_PLURAL, session(name))
        for name in names:
            wait_session(api, name, lambda o: ready(o) and (o["status"].get("logs") is not None), timeout=120)
        settle(api, api.operator_user, quiet=2.0)
        api.reset_requests()
        time.sleep(seconds)
        ours = records(api, api.operator_user)
        for name in names:
            api.delete(c.SESSION_PLURAL, "default", name)
        api.wait_for(lambda: not [o for o in api.list(c.SESSION_PLURAL, "default") if o["metadata"]["name"] in names],
                     timeout=120)
    per_minute = len(ours) * 60.0 / seconds
    print(f"\n5. {count} converged sessions left alone for {seconds:.0f} s: operator requests {len(ours)} "
          f"({per_minute:.1f}/min in all, {per_minute / count:.3f}/min per session; watches excluded)")
    if ours:
        print("   " + verb_table(ours).replace("\n", "\n   "))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--quiet-seconds", type=float, default=60.0, help="how long section 5 leaves the sessions alone")
    args = parser.parse_args()
    import os  # noqa: PLC0415

    assets = Path(os.environ.get("KUBE_ASSETS", ""))
    reason = missing_assets(assets if os.environ.get("KUBE_ASSETS") else None)
    if reason:
        print(f"bench_real_lifecycle: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-real-") as work:
        with ControlPlane(assets, Path(work) / "plane") as plane:
            grant_operator_role(plane)
            with FaultProxy(plane.url, plane.ca_file) as proxy, SimulatedNode(plane, mode="fake") as node:
                cluster = RealCluster(plane, proxy, node)
                cluster.ensure_crds()
                api = RealAPI(plane, proxy, node)
                # Straight to the apiserver (the fault proxy is for the resilience tests).
                kubeconfig = plane.kubeconfig(Path(work) / "operator.kubeconfig", "operator")
                print(f"real control plane at {plane.url} (assets {assets}); operator user {api.operator_user}")
                bare_pod_baseline(api)
                one_lifecycle(api, kubeconfig)
                restart_over_converged(api, kubeconfig, args.sessions)
                prompted_session(api, kubeconfig)
                converged_minute(api, kubeconfig, args.sessions, args.quiet_seconds)
                api.reset_namespace("default", timeout=120)
                api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
