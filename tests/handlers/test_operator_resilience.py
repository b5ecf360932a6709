"""The operator converges through API errors and restarts, and converged sessions cost nothing."""

from __future__ import annotations

import time
from typing import Any

import pytest

from agent_sessions.api import constants as c
from agent_sessions.wire.runtime_client import RuntimeCallFailed
from agent_sessions.wire.runtime_info import RuntimeInfo
from support.sessions import AcceptingRuntime, converged, pods_of, session
from support.waits import ready, wait_session, wait_until


def test_status_write_failures_500_are_retried_until_the_session_converges(api, operator):
    api.fail_next("PATCH", r"/agentsessions/flaky/status$", 500, count=3)
    api.create(c.SESSION_PLURAL, session("flaky"))
    wait_session(api, "flaky", ready)
    assert [r.status for r in api.requests if r.path.endswith("/agentsessions/flaky/status")][:3] == [500] * 3


def test_pod_create_failing_with_500_is_retried(api, operator):
    api.fail_next("POST", r"/namespaces/default/pods$", 500, count=2)
    api.create(c.SESSION_PLURAL, session("podfail"))
    wait_session(api, "podfail", ready)
    assert len(pods_of(api, "podfail")) == 1


def test_finalizer_conflict_409_is_retried_with_fresh_data(api, operator):
    api.fail_next("PATCH", r"/agentsessions/contended$", 409, count=2)
    api.create(c.SESSION_PLURAL, session("contended"))
    obj = wait_session(api, "contended", ready)
    assert obj["metadata"]["finalizers"] == [c.FINALIZER]


def test_dropped_watches_do_not_lose_changes(api, operator):
    api.create(c.SESSION_PLURAL, session("watched"))
    wait_session(api, "watched", ready)
    api.drop_watches()
    api.patch(c.SESSION_PLURAL, "default", "watched", {"spec": {"state": "Stopped"}})
    api.drop_watches()
    wait_session(api, "watched", lambda o: o["status"].get("phase") == c.PHASE_STOPPED)


def test_operator_restart_over_50_converged_sessions_writes_nothing(api, kubelet, start_operator):
    first = start_operator()
    names = [f"s{i:02d}" for i in range(50)]
    for name in names:
        api.create(c.SESSION_PLURAL, session(name))
    for name in names:
        wait_session(api, name, ready)
    first.stop()

    api.reset_requests()
    second = start_operator()
    wait_until(lambda: converged(second, [("default", n) for n in names]))
    # It really looked: every pod is in its store (from its pod watch, or read when the reconcile
    # came first), and the pods it read were read once (a log tail, `pods/log`, is another read).
    store = second.runtime.provider("pod").pods
    pod_names = {pods_of(api, n)[0]["metadata"]["name"] for n in names}
    assert {name for name in pod_names if store.get("default", name) is not None} == pod_names
    reads = [r.name for r in api.requests
             if r.resource == "pods" and not r.subresource and r.method == "GET" and r.name]
    assert len(reads) == len(set(reads)) and set(reads) <= pod_names
    writes = [f"{r.method} {r.path}" for r in api.requests if r.is_write]
    assert writes == []


class MarkedRuntime(AcceptingRuntime):
    """A bridge that reports an `outputMark`: its log changed only when the mark did."""

    mark = "bridge-1:10"

    async def info(self, endpoint: str, session: Any = None) -> RuntimeInfo:
        return RuntimeInfo(output_mark=self.mark)


def test_a_restarted_operator_reads_no_log_tail_its_status_already_holds(api, kubelet, start_operator):
    # Issue 11 (resync at scale): the mark the tail was taken at is in status, so an operator that
    # restarts over converged sessions does not read every log again; a moved mark is read.
    runtime = MarkedRuntime()
    keys = [("default", f"marked{i}") for i in range(3)]
    first = start_operator(runtime_client_factory=lambda: runtime)
    for _, name in keys:
        api.create(c.SESSION_PLURAL, session(name))
    for _, name in keys:
        wait_session(api, name, lambda o: ready(o) and (o["status"].get("logs") or {}).get("outputMark") == runtime.mark)
    first.stop()

    api.reset_requests()
    second = start_operator(runtime_client_factory=lambda: runtime, info_refresh_seconds=0.2)
    wait_until(lambda: converged(second, keys))
    scheduler = second.runtime.scheduler
    before = {key: scheduler.completed[key] for key in keys}
    wait_until(lambda: all(scheduler.completed[key] >= before[key] + 3 for key in keys))

    def log_reads() -> list[str]:
        return [r.name for r in api.requests if r.resource == "pods" and r.subresource == "log"]

    assert log_reads() == []
    runtime.mark = "bridge-1:11"
    wait_until(lambda: len(log_reads()) == len(keys), what="each log read once its mark moved")


class TimedInfoRuntime(MarkedRuntime):
    """A bridge that records when each session's (by name) info was read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: dict[str, list[float]] = {}

    async def info(self, endpoint: str, session: Any = None) -> RuntimeInfo:
        self.reads.setdefault(session.name, []).append(time.monotonic())
        return await super().info(endpoint, session)


def test_a_restarted_operator_spreads_its_first_runtime_reads_instead_of_reading_all_at_once(
        api, kubelet, start_operator):
    # Issue 11 (resync at scale): over N converged sessions, a restart reading every runtime's
    # info at once is N HTTP calls in its first seconds. What status holds stands until a read
    # spread over the info backoff's range (info_refresh_seconds × 1..6); then each is read.
    runtime = TimedInfoRuntime()
    names = [f"spread{i}" for i in range(6)]
    first = start_operator(runtime_client_factory=lambda: runtime)
    for name in names:
        api.create(c.SESSION_PLURAL, session(name))
    for name in names:
        wait_session(api, name, lambda o: ready(o) and (o["status"].get("logs") or {}).get("outputMark") == runtime.mark)
    first.stop()

    runtime.reads.clear()
    api.reset_requests()
    restarted = time.monotonic()
    second = start_operator(runtime_client_factory=lambda: runtime, info_refresh_seconds=0.5)
    keys = [("default", name) for name in names]
    wait_until(lambda: converged(second, keys))
    assert all(second.runtime.scheduler.completed[key] >= 1 for key in keys)
    read_at_once = [name for name, times in runtime.reads.items() if times[0] - restarted < 0.4]
    assert read_at_once == []
    wait_until(lambda: set(runtime.reads) == set(names), timeout=10, what="every runtime read once")
    assert max(times[0] for times in runtime.reads.values()) - restarted <= 0.5 * 6 + 1.5
    assert [r for r in api.requests if r.is_write] == []
    assert [r for r in api.requests if r.resource == "pods" and r.subresource == "log"] == []


def test_a_converged_session_is_reconciled_without_a_single_request(api, kubelet, start_operator):
    # Reconciles of a Running session come every info_refresh_seconds (here 0.2 s): each observes
    # the pod from the operator's pod watch; log tails are left out (log_refresh_seconds).
    operator = start_operator(info_refresh_seconds=0.2, log_refresh_seconds=3600)
    names = [f"quiet{i}" for i in range(5)]
    for name in names:
        api.create(c.SESSION_PLURAL, session(name))
    for name in names:
        wait_session(api, name, ready)
    scheduler = operator.runtime.scheduler
    wait_until(lambda: not scheduler.busy)
    api.reset_requests()
    before = {name: scheduler.completed[("default", name)] for name in names}
    wait_until(lambda: all(scheduler.completed[("default", n)] >= before[n] + 5 for n in names), timeout=15)
    requests = [f"{r.method} {r.path}" for r in api.requests if not getattr(r, "watch", False)]
    assert requests == []


class SilenceableRuntime(AcceptingRuntime):
    """A bridge that answers until `silent` (its pod is gone)."""

    silent = False

    async def info(self, endpoint: str, session: Any = None) -> RuntimeInfo:
        if self.silent:
            raise RuntimeCallFailed(session, "connection refused")
        return RuntimeInfo()


@pytest.mark.parametrize("missed", ["DELETED", "every event of the deletion"])
def test_a_pod_deletion_the_watch_missed_is_found(api, kubelet, start_operator, missed):
    # The pod store trusts the pod watch; a watch can miss a deletion (a re-list after a long
    # disconnect reports no deletions). A pod held as terminating is read; a ready one whose bridge
    # answered before and is silent now is read afresh. Either way the session finds its pod gone
    # and gets a new one.
    runtime = SilenceableRuntime()
    operator = start_operator(runtime_client_factory=lambda: runtime, info_refresh_seconds=0.2)
    api.create(c.SESSION_PLURAL, session("lost"))
    wait_session(api, "lost", ready)
    lost = pods_of(api, "lost")[0]["metadata"]
    seen = operator.runtime.pod_seen

    def lossy(event: str | None, pod: dict) -> None:
        if pod["metadata"]["uid"] == lost["uid"] and (missed != "DELETED" or event == "DELETED"):
            return
        seen(event, pod)

    operator.runtime.pod_seen = lossy
    runtime.silent = True
    api.delete("pods", "default", lost["name"])
    api.wait_for(lambda: not [p for p in pods_of(api, "lost") if p["metadata"]["uid"] == lost["uid"]])
    replaced = api.wait_for(lambda: [p for p in pods_of(api, "lost") if p["metadata"]["uid"] != lost["uid"]])
    assert len(replaced) == 1


class CountingRuntime(AcceptingRuntime):
    """A bridge whose info is `info` (changed by the test), counting the reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.info_now = RuntimeInfo()

    async def info(self, endpoint: str, session: Any = None) -> RuntimeInfo:
        self.reads += 1
        return self.info_now


def test_an_unchanging_runtime_is_read_less_and_less_often_and_a_change_is_still_seen(api, kubelet, start_operator):
    # info_refresh_seconds 0.2: read every 0.2 s while it changes, backing off to every 1.2 s (x6)
    # while it does not. Without the backoff, 6 s of a converged session would be ~30 reads.
    runtime = CountingRuntime()
    start_operator(runtime_client_factory=lambda: runtime, info_refresh_seconds=0.2, log_refresh_seconds=3600)
    api.create(c.SESSION_PLURAL, session("idle"))
    wait_session(api, "idle", ready)
    time.sleep(3.0)  # backed off by now
    runtime.reads = 0
    time.sleep(6.0)
    assert 3 <= runtime.reads <= 8
    runtime.info_now = RuntimeInfo(session_info={"title": "fixing the build"}, message_count=1)
    started = time.monotonic()
    wait_session(api, "idle", lambda s: (s.get("status") or {}).get("sessionInfo", {}).get("title") == "fixing the build",
                 timeout=5)
    assert time.monotonic() - started <= 1.2 + 1.0  # within the longest interval (and a reconcile)


def test_a_converged_session_whose_bridge_marks_its_output_is_reconciled_only_to_read_its_runtime(
        api, kubelet, start_operator):
    # Issue 11: a Running session was reconciled every log_refresh_seconds (30 s) besides its
    # runtime reads (backed off to 60 s), though a log tail is read only when a runtime read has
    # shown a new output mark: half of a converged session's reconciles did nothing.
    runtime = CountingRuntime()
    runtime.info_now = RuntimeInfo(output_mark="bridge:1")
    operator = start_operator(runtime_client_factory=lambda: runtime, info_refresh_seconds=0.2, log_refresh_seconds=0.3)
    api.create(c.SESSION_PLURAL, session("marked"))
    wait_session(api, "marked", ready)
    time.sleep(3.0)  # runtime reads backed off to every 1.2 s by now
    completed = operator.runtime.scheduler.completed
    reconciles, runtime.reads = completed[("default", "marked")], 0
    time.sleep(6.0)
    reconciles = completed[("default", "marked")] - reconciles
    assert 3 <= runtime.reads <= 8
    assert reconciles <= runtime.reads + 1, f"{reconciles} reconciles for {runtime.reads} runtime reads"

    pod = pods_of(api, "marked")[0]["metadata"]["name"]
    api.set_pod_log("default", pod, "line one\nline two\n")
    runtime.info_now = RuntimeInfo(output_mark="bridge:2")  # the bridge wrote something
    wait_session(api, "marked", lambda s: "line two" in ((s.get("status") or {}).get("logs") or {}).get("tail", ""),
                 timeout=5)


def test_the_echo_of_the_operators_own_status_write_costs_no_reconcile(api, kubelet, start_operator):
    # Issue 11: the watch delivers every status and finalizer patch back; reconciling a session
    # again for what its reconcile just wrote finds nothing to do (three of a new session's
    # reconciles in a burst). A spec change is one reconcile, whose status write comes back unread
    # — also when the echo arrives before the write's own answer has reached the reconcile.
    operator = start_operator(info_refresh_seconds=3600)  # no runtime read on a timer meanwhile
    key = ("default", "echo")
    api.create(c.SESSION_PLURAL, session("echo", lifecycle={"idleTimeout": "1h"}))
    wait_session(api, "echo", ready)
    scheduler = operator.runtime.scheduler
    counts: list[int] = []

    def quiet() -> bool:
        counts.append(scheduler.completed[key])
        return not scheduler.busy and len(counts) > 10 and counts[-1] == counts[-11]
    wait_until(quiet, interval=0.1)

    for step, idle in enumerate(("2h", "3h", "4h", "5h", "6h"), start=1):
        before = scheduler.completed[key]
        api.patch(c.SESSION_PLURAL, "default", "echo", {"spec": {"lifecycle": {"idleTimeout": idle}}})
        obj = wait_session(api, "echo", lambda o: o["status"].get("observedGeneration") == o["metadata"]["generation"])
        time.sleep(1.0)  # time for the status write's echo to arrive (and, before, be reconciled)
        assert scheduler.completed[key] - before == 1, f"change {step}: {scheduler.completed[key] - before} reconciles"
        assert obj["metadata"]["generation"] == 1 + step
