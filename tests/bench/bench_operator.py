"""Operator cost figures, measured against the strict embedded API (not a timed unit test).

    .venv/bin/python tests/bench/bench_operator.py [--sessions 100]

Prints:
1. API requests of one session's whole lifecycle (create → Running → Stopped → deleted), by verb
   and resource, with status writes counted separately;
2. create → Ready=True latency for N sessions created at once (p50/p99, max);
3. writes made by an operator restart over those N converged sessions (must be 0).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from support.embedded import CRDS  # noqa: E402
from support.sessions import converged, session  # noqa: E402
from support.waits import condition, phase_is, ready, wait_session, wait_until  # noqa: E402

from agent_sessions.api import constants as c  # noqa: E402
from agent_sessions.dev.fake_kubelet import FakeKubelet  # noqa: E402
from agent_sessions.dev.strict_api import running_api  # noqa: E402
from agent_sessions.handlers.operator import OperatorThread  # noqa: E402
from agent_sessions.handlers.settings import OperatorOptions  # noqa: E402


def lifecycle_requests(api, kubeconfig: str) -> None:
    with OperatorThread(OperatorOptions(), kubeconfig=kubeconfig) as operator:
        wait_until(lambda: operator.runtime and operator.runtime.scheduler)
        api.reset_requests()
        api.create(c.SESSION_PLURAL, session("bench", workspace={"size": "1Gi"}))
        wait_session(api, "bench", ready)
        api.patch(c.SESSION_PLURAL, "default", "bench", {"spec": {"state": "Stopped"}})
        wait_session(api, "bench", phase_is(c.PHASE_STOPPED))
        api.delete(c.SESSION_PLURAL, "default", "bench")
        api.wait_for(lambda: api.get(c.SESSION_PLURAL, "default", "bench") is None)
        wait_until(lambda: not operator.runtime.scheduler.busy)
        ours = [r for r in api.requests if "bench" in r.path or r.resource in ("pods", "persistentvolumeclaims", "events")]
        ours = [r for r in ours if not r.query.get("watch")]
        by = Counter(
            (r.method, r.resource + (f"/{r.subresource}" if r.subresource else "")) for r in ours if r.resource
        )
        print("\n1. One lifecycle (create → Running → Stopped → deleted), operator + harness requests:")
        print(f"   {'verb':7} {'resource':28} count")
        for (verb, resource), n in sorted(by.items()):
            print(f"   {verb:7} {resource:28} {n}")
        operator_writes = [r for r in ours if r.is_write and r.resource in ("agentsessions", "pods", "persistentvolumeclaims", "events")
                           and not (r.resource == "agentsessions" and r.method in ("POST", "DELETE"))
                           and not (r.resource == "pods" and r.subresource == "status")]
        status_writes = [r for r in operator_writes if r.resource == "agentsessions" and r.subresource == "status"]
        print(f"   operator writes: {len(operator_writes)} (status writes: {len(status_writes)}; "
              f"user's create/patch/delete and the fake kubelet's pod status writes excluded)")


def precise_latency(api, kubeconfig: str, n: int) -> tuple[list[float], list[str]]:
    """Creation and Ready times from the store's own event history: the commit listener only
    notes (time, resourceVersion), so measuring does not slow down the server it measures."""
    names = [f"load-{i:03d}" for i in range(n)]
    commits: list[tuple[float, int]] = []

    def on_commit() -> None:
        commits.append((time.monotonic(), api.store.resource_version))  # RLock: re-entrant

    with OperatorThread(OperatorOptions(), kubeconfig=kubeconfig) as operator:
        wait_until(lambda: operator.runtime and operator.runtime.scheduler)
        start_rv = api.store.resource_version
        api.store.subscribe(on_commit)
        try:
            for name in names:
                api.create(c.SESSION_PLURAL, session(name))
            for name in names:
                wait_session(api, name, ready, timeout=300)
        finally:
            api.store.unsubscribe(on_commit)
        wait_until(lambda: not operator.runtime.scheduler.busy)
    created_rv: dict[str, int] = {}
    ready_rv: dict[str, int] = {}
    for event in api.store.events_after(start_rv):
        if event.group_resource != (c.GROUP, c.SESSION_PLURAL):
            continue
        name = event.object["metadata"]["name"]
        if event.type == "ADDED":
            created_rv.setdefault(name, event.resource_version)
        elif ready(event.object):
            ready_rv.setdefault(name, event.resource_version)
    at = dict((rv, t) for t, rv in commits)
    return [at[ready_rv[x]] - at[created_rv[x]] for x in names], names


def restart_writes(api, kubeconfig: str, names: list[str]) -> int:
    api.reset_requests()
    with OperatorThread(OperatorOptions(), kubeconfig=kubeconfig) as operator:
        wait_until(lambda: converged(operator, [("default", x) for x in names]), timeout=120)
    return sum(1 for r in api.requests if r.is_write)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=100)
    args = parser.parse_args()
    print(f"agent-session-operator bench, {datetime.now().isoformat(timespec='seconds')}, strict embedded API")
    with running_api(crds=CRDS) as api, FakeKubelet(api):
        (ROOT / ".dev").mkdir(exist_ok=True)
        kubeconfig = str(api.write_kubeconfig(ROOT / ".dev" / "bench-kubeconfig"))
        lifecycle_requests(api, kubeconfig)
        latencies, names = precise_latency(api, kubeconfig, args.sessions)
        ordered = sorted(latencies)
        p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
        print(f"\n2. {args.sessions} sessions created at once → Ready=True: "
              f"p50 {p(0.50):.3f}s  p99 {p(0.99):.3f}s  max {ordered[-1]:.3f}s  mean {statistics.mean(ordered):.3f}s")
        writes = restart_writes(api, kubeconfig, names)
        print(f"\n3. Operator restart over {len(names)} converged sessions: {writes} writes")


if __name__ == "__main__":
    main()
