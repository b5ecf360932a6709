"""Sharded operators (`--shards 2`) on both backends: three replicas, two holding a shard each
through a Lease and one standing by. Who reconciled a session is read from the API server's own
record of requests (the audit log on the real server): a sharded replica's user agent names it.

On the real server the operator runs with the chart's ClusterRole plus the Role the chart renders
for the shard Leases (shards=2), so the scenario is also an RBAC check of that Role.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from agent_sessions.api import constants as c
from agent_sessions.handlers.operator import OperatorThread
from agent_sessions.handlers.sharding import shard_of
from agent_sessions.k8s.client import USER_AGENT
from support.backends import CHART
from support.cluster.real_api import RealAPI
from support.sessions import AcceptingRuntime, pods_of, session
from support.tools import find_tool
from support.waits import phase_is, ready, wait_session, wait_until

SHARDS = 2
LEASE_SECONDS = 3
"""Short, so a takeover is quick; the default is 15 s."""
LEASE_NAMESPACE = "agent-sessions-system"
RELEASE = "agent-session-operator"
PREFIX = RELEASE
"""The chart's `--shard-lease-prefix` (its full name) for this release: its Role names these Leases."""
SESSIONS = [f"sharded-{i:02d}" for i in range(20)]


def user_agent(identity: str) -> str:
    return f"{USER_AGENT} (replica {identity})"


def received(request: Any) -> float:
    """When the API server received a request (epoch seconds), on either backend."""
    return request.record.received if hasattr(request, "record") else request.timestamp


def session_writes(api: Any) -> list[Any]:
    """Writes to AgentSessions (finalizer and status patches): what reconciling a session writes."""
    return [r for r in api.requests if r.is_write and r.resource == c.SESSION_PLURAL and r.name]


def chart_shard_rbac() -> list[dict]:
    """The Role and RoleBinding the chart renders for the shard Leases (shards=2)."""
    rendered = subprocess.run(
        [find_tool("helm"), "template", RELEASE, str(CHART), "--namespace", LEASE_NAMESPACE,
         "--set", f"shards={SHARDS}", "--set", f"replicas={SHARDS + 1}"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    return [d for d in yaml.safe_load_all(rendered)
            if d and d["kind"] in ("Role", "RoleBinding") and d["metadata"]["name"].endswith("-shards")]


@pytest.fixture
def lease_namespace(api: Any) -> Iterator[str]:
    if api.get("namespaces", None, LEASE_NAMESPACE) is None:
        api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NAMESPACE}})
    if isinstance(api, RealAPI):
        role, binding = sorted(chart_shard_rbac(), key=lambda d: d["kind"] != "Role")
        binding["subjects"] = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": api.operator_user}]
        for obj, plural in ((role, "roles"), (binding, "rolebindings")):
            if api.get(plural, LEASE_NAMESPACE, obj["metadata"]["name"]) is None:
                api.create(plural, obj)
    yield LEASE_NAMESPACE
    for i in range(SHARDS):
        if api.get("leases", LEASE_NAMESPACE, f"{PREFIX}-shard-{i}") is not None:
            api.delete("leases", LEASE_NAMESPACE, f"{PREFIX}-shard-{i}")


@pytest.fixture
def start_replica(start_operator: Callable[..., OperatorThread], kubelet: Any,
                  lease_namespace: str) -> Callable[..., OperatorThread]:
    def start(identity: str, lease_seconds: int = LEASE_SECONDS) -> OperatorThread:
        return start_operator(shards=SHARDS, shard_lease_namespace=lease_namespace, shard_lease_prefix=PREFIX,
                              shard_lease_seconds=lease_seconds, identity=identity,
                              runtime_client_factory=AcceptingRuntime)
    return start


def holders(replicas: list[OperatorThread]) -> dict[int, OperatorThread]:
    held = {}
    for replica in replicas:
        shard = replica.runtime.shards.held if replica.runtime and replica.runtime.shards else None
        if shard is not None:
            held[shard] = replica
    return held


def shard(name: str) -> int:
    return shard_of("default", name, SHARDS)


def start_three(start_replica: Callable[..., OperatorThread], **kwargs: Any
                ) -> tuple[dict[int, OperatorThread], OperatorThread]:
    """Three replicas: (the holder of each shard, the standby)."""
    replicas = [start_replica(f"replica-{i}", **kwargs) for i in range(3)]
    held = wait_until(lambda: len(holders(replicas)) == SHARDS and holders(replicas), what="both shards held")
    (standby,) = [r for r in replicas if r not in held.values()]
    return held, standby


def test_each_session_is_reconciled_by_its_shards_replica_and_a_killed_replicas_shard_moves(api, start_replica):
    held, standby = start_three(start_replica)
    for name in SESSIONS:
        api.create(c.SESSION_PLURAL, session(name))
    for name in SESSIONS:
        wait_session(api, name, ready)
    assert {shard(name) for name in SESSIONS} == {0, 1}  # both shards have sessions

    # Exactly one replica reconciled each session: the holder of its shard. The standby wrote nothing
    # but (maybe) a losing attempt at creating a shard Lease when all three started.
    writers: dict[str, set[str]] = defaultdict(set)
    for request in session_writes(api):
        writers[request.name].add(request.user_agent)
    assert {name: writers[name] for name in SESSIONS} == {
        name: {user_agent(held[shard(name)].options.identity)} for name in SESSIONS}
    assert [r for r in api.requests if r.is_write and r.user_agent == user_agent(standby.options.identity)
            and r.resource != "leases"] == []
    assert all(len(pods_of(api, name)) == 1 for name in SESSIONS)

    # Kill the holder of shard 0: its Lease is left to expire, the standby takes the shard over.
    victim, survivor = held[0], held[1]
    killed_at = time.time()
    victim.kill()
    dead_at = time.time()
    taken_at = wait_until(lambda: holders([standby, survivor]).get(0) is standby and time.time(), interval=0.01,
                          what="the standby holding shard 0")
    takeover = taken_at - killed_at
    print(f"\nshard 0 taken over {takeover:.2f}s after the kill (lease duration {LEASE_SECONDS}s)")
    # Not before the Lease expired (the standby cannot know of the kill), and within the duration
    # plus the standby's read period (a fifth of it), with a second of slack for a loaded machine.
    assert LEASE_SECONDS * 0.8 - 0.2 <= takeover <= LEASE_SECONDS * 1.2 + 1.0, takeover

    # A change made after the kill reaches every session, each through its shard's new holder.
    for name in SESSIONS:
        api.patch(c.SESSION_PLURAL, "default", name, {"spec": {"state": "Stopped"}})
    for name in SESSIONS:
        wait_session(api, name, phase_is(c.PHASE_STOPPED))
    for name in SESSIONS:
        api.delete(c.SESSION_PLURAL, "default", name)
    for name in SESSIONS:
        api.wait_for(lambda name=name: api.get(c.SESSION_PLURAL, "default", name) is None, timeout=30)

    # The dead replica made no request once dead (a request on the wire at the kill may still land,
    # as on a real kill, within moments), and none after the standby started on the shard.
    victim_agent, standby_agent = user_agent(victim.options.identity), user_agent(standby.options.identity)
    last_of_victim = max(received(r) for r in api.requests if r.user_agent == victim_agent)
    first_of_standby = min(received(r) for r in session_writes(api) if r.user_agent == standby_agent)
    assert last_of_victim < dead_at + 0.5 and last_of_victim < first_of_standby
    owner_after = {0: standby_agent, 1: user_agent(survivor.options.identity)}
    after: dict[str, set[str]] = defaultdict(set)
    for request in session_writes(api):
        if received(request) > killed_at:
            after[request.name].add(request.user_agent)
    assert {name: after[name] for name in SESSIONS} == {name: {owner_after[shard(name)]} for name in SESSIONS}
    # The surviving shard's sessions never had another writer.
    everyone: dict[str, set[str]] = defaultdict(set)
    for request in session_writes(api):
        everyone[request.name].add(request.user_agent)
    assert all(everyone[name] == {owner_after[1]} for name in SESSIONS if shard(name) == 1)
    # No session lost (all stopped, then deleted), none duplicated (never two pods).
    assert api.list(c.SESSION_PLURAL, "default") == []
    assert pods_of_all(api) == []


def pods_of_all(api: Any) -> list[dict]:
    return [p for p in api.list("pods", "default", label_selector=c.LABEL_SESSION)
            if not p["metadata"].get("deletionTimestamp")]


def test_a_replica_stopped_cleanly_releases_its_shard_to_the_standby_at_once(api, start_replica):
    held, standby = start_three(start_replica, lease_seconds=15)
    name = next(n for n in SESSIONS if shard(n) == 0)
    stopped_at = time.time()
    held[0].stop()
    taken_at = wait_until(lambda: holders([standby]).get(0) is standby and time.time(), interval=0.01,
                          what="the standby holding shard 0")
    print(f"\nclean stop: shard 0 taken over {taken_at - stopped_at:.2f}s after the stop (lease duration 15s)")
    # A released Lease is free at once: the standby's next read (every 3 s), not the 15 s duration.
    assert taken_at - stopped_at < 15 / 5 + 1.5, taken_at - stopped_at
    api.create(c.SESSION_PLURAL, session(name))
    wait_session(api, name, ready)
    assert {r.user_agent for r in session_writes(api) if r.name == name} == {user_agent(standby.options.identity)}


# --- real processes: `agent-sessions run --shards 2`, one of them SIGKILLed --------------------


def lease_holder(api: Any, shard_index: int) -> str | None:
    lease = api.get("leases", LEASE_NAMESPACE, f"{PREFIX}-shard-{shard_index}")
    return (lease or {}).get("spec", {}).get("holderIdentity")


@pytest.fixture
def run_replica(kubeconfig: str, kubelet: Any, lease_namespace: str, tmp_path: Any) -> Iterator[Callable[[str], Any]]:
    """Start `agent-sessions run --shards 2` as a process of its own, named by `$POD_ID` as the
    chart names each pod; every process is stopped at the end (SIGTERM, then SIGKILL)."""
    processes: list[subprocess.Popen] = []

    def start(identity: str) -> subprocess.Popen:
        log = open(tmp_path / f"{identity}.log", "w")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            [sys.executable, "-m", "agent_sessions.cli.main", "run", "--kubeconfig", kubeconfig,
             f"--shards={SHARDS}", f"--shard-lease-namespace={lease_namespace}", f"--shard-lease-prefix={PREFIX}",
             f"--shard-lease-duration={LEASE_SECONDS}", "--health-port=0", "--metrics-port=0", "--log-format=text"],
            env={**os.environ, "POD_ID": identity}, stdout=log, stderr=subprocess.STDOUT)
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def test_a_sigkilled_operator_process_loses_its_shard_to_the_standby_within_the_lease_duration(api, run_replica):
    processes = {f"process-{i}": run_replica(f"process-{i}") for i in range(3)}
    held = wait_until(lambda: (h := {i: lease_holder(api, i) for i in range(SHARDS)}) and all(h.values())
                      and len(set(h.values())) == SHARDS and h, timeout=60, what="both shard Leases held")
    (standby,) = set(processes) - set(held.values())
    names = SESSIONS[:10]
    for name in names:
        api.create(c.SESSION_PLURAL, session(name))
    for name in names:
        wait_session(api, name, ready)
    writers: dict[str, set[str]] = defaultdict(set)
    for request in session_writes(api):
        writers[request.name].add(request.user_agent)
    assert {n: writers[n] for n in names} == {n: {user_agent(held[shard(n)])} for n in names}

    victim = processes[held[0]]
    killed_at = time.time()
    victim.send_signal(signal.SIGKILL)
    taken_at = wait_until(lambda: lease_holder(api, 0) == standby and time.time(), timeout=30, interval=0.02,
                          what="the standby holding shard 0's Lease")
    takeover = taken_at - killed_at
    print(f"\nSIGKILL: shard 0 taken over {takeover:.2f}s after the kill (lease duration {LEASE_SECONDS}s)")
    assert victim.wait(5) == -signal.SIGKILL
    assert LEASE_SECONDS * 0.8 - 0.2 <= takeover <= LEASE_SECONDS * 1.2 + 1.0, takeover

    for name in names:
        api.patch(c.SESSION_PLURAL, "default", name, {"spec": {"state": "Stopped"}})
    for name in names:
        wait_session(api, name, phase_is(c.PHASE_STOPPED))
    owner_after = {0: user_agent(standby), 1: user_agent(held[1])}
    after: dict[str, set[str]] = defaultdict(set)
    for request in session_writes(api):
        if received(request) > killed_at:
            after[request.name].add(request.user_agent)
    assert {n: after[n] for n in names} == {n: {owner_after[shard(n)]} for n in names}
    assert [r for r in api.requests if r.user_agent == user_agent(held[0]) and received(r) > killed_at + 0.5] == []
