"""The operator converges through API errors and restarts, and converged sessions cost nothing."""

from __future__ import annotations

from agent_sessions.api import constants as c
from support.sessions import converged, pods_of, session
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
    observed = {r.name for r in api.requests if r.resource == "pods" and r.method == "GET" and r.name}
    assert observed == {pods_of(api, n)[0]["metadata"]["name"] for n in names}  # it really looked
    writes = [f"{r.method} {r.path}" for r in api.requests if r.is_write]
    assert writes == []
