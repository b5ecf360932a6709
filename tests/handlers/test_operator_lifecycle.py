"""One test per operator behaviour (issue: operator on Pods), against the strict embedded API."""

from __future__ import annotations

from agent_sessions.api import constants as c
from support.sessions import IMAGE, AcceptingRuntime, converged, pods_of, run_one_lifecycle, session, template
from support.waits import condition, phase_is, ready, wait_session, wait_until


def test_created_session_becomes_running_with_ready_true(api, operator):
    api.create(c.SESSION_PLURAL, session("alpha"))
    obj = wait_session(api, "alpha", ready)
    status = obj["status"]
    assert status["phase"] == c.PHASE_RUNNING
    assert status["provider"]["type"] == "pod"
    assert status["provider"]["id"] == pods_of(api, "alpha")[0]["metadata"]["name"]
    assert status["provider"]["endpoint"].startswith("http://127.0.")
    assert condition(obj, c.COND_CONFIG_VALID)["status"] == "True"
    assert condition(obj, c.COND_UP_TO_DATE)["status"] == "True"
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert c.FINALIZER in obj["metadata"]["finalizers"]
    assert status["capabilities"]["logs"] is True


def events_of(api, name: str, namespace: str = "default") -> list[str]:
    """Reasons of the session's events, oldest first."""
    events = [e for e in api.list("events", namespace) if e["involvedObject"]["name"] == name]
    return [e["reason"] for e in sorted(events, key=lambda e: (e["eventTime"], int(e["metadata"]["resourceVersion"])))]


def wait_event(api, name: str, reason: str) -> list[str]:
    """Events are posted right after the status write that records the transition."""
    return api.wait_for(lambda: reason in events_of(api, name) and events_of(api, name))


def test_transitions_post_events_once_each(api, operator):
    api.create(c.SESSION_PLURAL, session("evented"))
    wait_session(api, "evented", ready)
    assert wait_event(api, "evented", c.EVENT_STARTED) == [c.EVENT_CREATED, c.EVENT_STARTED]


def test_prompt_is_not_marked_delivered_while_the_runtime_cannot_take_it(api, operator):
    # The fake kubelet runs no runtime: delivery is recorded as under way and retried, never lost.
    api.create(c.SESSION_PLURAL, session("prompted", prompt="Summarise the repository."))
    wait_session(api, "prompted", ready)
    obj = wait_session(api, "prompted", lambda o: (o["status"].get("prompt") or {}).get("state") == "Delivering")
    assert obj["status"]["phase"] == c.PHASE_RUNNING


def status_writes(api, name: str) -> list:
    return [r for r in api.requests
            if r.is_write and r.resource == c.SESSION_PLURAL and r.subresource == "status" and r.name == name]


def test_a_delivered_prompt_costs_no_status_write_of_its_own(api, start_operator, kubelet):
    """The prompt is sent before the reconcile's one status patch and recorded in it: create →
    Running with the prompt Delivered costs the two status patches (Creating, Running) of a
    session without a prompt, and the runtime receives the prompt once, under its message id."""
    runtime = AcceptingRuntime()
    operator = start_operator(runtime_client_factory=lambda: runtime)
    api.create(c.SESSION_PLURAL, session("plain"))
    api.create(c.SESSION_PLURAL, session("prompted", prompt="Summarise the repository."))
    wait_session(api, "plain", ready)
    obj = wait_session(api, "prompted",
                       lambda o: ready(o) and (o["status"].get("prompt") or {}).get("state") == "Delivered")
    wait_until(lambda: converged(operator, [("default", "plain"), ("default", "prompted")]))
    wait_until(lambda: len(status_writes(api, "plain")) >= 2 and len(status_writes(api, "prompted")) >= 2)
    assert len(status_writes(api, "prompted")) == len(status_writes(api, "plain")) == 2
    assert runtime.delivered == [(f"prompt-{obj['metadata']['uid']}", "Summarise the repository.")]


def test_stop_deletes_pod_keeps_pvc_then_resume_runs_on_the_same_pvc(api, operator):
    api.create(c.SESSION_PLURAL, session("worker", workspace={"size": "1Gi"}))
    wait_session(api, "worker", ready)
    pvcs = api.list("persistentvolumeclaims", "default")
    assert len(pvcs) == 1
    claim = pvcs[0]["metadata"]

    api.patch(c.SESSION_PLURAL, "default", "worker", {"spec": {"state": "Stopped"}})
    obj = wait_session(api, "worker", phase_is(c.PHASE_STOPPED))
    assert obj["status"]["stoppedReason"] == c.STOPPED_USER
    api.wait_for(lambda: not pods_of(api, "worker"))
    assert [p["metadata"]["uid"] for p in api.list("persistentvolumeclaims", "default")] == [claim["uid"]]

    api.patch(c.SESSION_PLURAL, "default", "worker", {"spec": {"state": "Running"}})
    obj = wait_session(api, "worker", ready)
    assert "stoppedReason" not in obj["status"]
    volumes = pods_of(api, "worker")[0]["spec"]["volumes"]
    assert claim["name"] in [v.get("persistentVolumeClaim", {}).get("claimName") for v in volumes]
    assert [p["metadata"]["uid"] for p in api.list("persistentvolumeclaims", "default")] == [claim["uid"]]
    wait_event(api, "worker", c.EVENT_RESUMED)


def test_invalid_session_fails_with_a_precise_message_and_runs_once_fixed(api, operator):
    agent = {"image": IMAGE, "command": ["agent"]}
    api.create(c.SESSION_PLURAL, session("broken", templateRef={"name": "missing"}, agent=agent))
    obj = wait_session(api, "broken", phase_is(c.PHASE_FAILED))
    cond = condition(obj, c.COND_CONFIG_VALID)
    assert cond["status"] == "False" and cond["reason"] == c.REASON_INVALID_CONFIGURATION
    assert cond["message"] == 'spec.templateRef.name: SessionTemplate "missing" not found in namespace "default"'
    assert not pods_of(api, "broken")
    wait_event(api, "broken", c.EVENT_CONFIG_INVALID)

    api.patch(c.SESSION_PLURAL, "default", "broken", {"spec": {"templateRef": None}})
    obj = wait_session(api, "broken", ready)
    assert condition(obj, c.COND_CONFIG_VALID)["status"] == "True"


def test_crashes_restart_per_policy_then_fail_after_backoff_limit(api, operator, kubelet):
    api.create(c.SESSION_PLURAL, session("crashy", lifecycle={"restartPolicy": "OnFailure", "backoffLimit": 1}))
    wait_session(api, "crashy", ready)
    pod = pods_of(api, "crashy")[0]["metadata"]["name"]

    kubelet.crash("default", pod)
    obj = wait_session(api, "crashy", lambda o: o["status"].get("crashCount") == 1)
    assert obj["status"]["phase"] == c.PHASE_RUNNING and obj["status"]["restartCount"] == 1

    kubelet.crash("default", pod)
    obj = wait_session(api, "crashy", phase_is(c.PHASE_FAILED))
    assert condition(obj, c.COND_READY)["reason"] == c.REASON_BACKOFF_LIMIT_EXCEEDED
    api.wait_for(lambda: not pods_of(api, "crashy"))


def test_agent_exit_with_restart_policy_never_completes_the_session(api, operator, kubelet):
    api.create(c.SESSION_PLURAL, session("oneshot", lifecycle={"restartPolicy": "Never"}))
    wait_session(api, "oneshot", ready)
    kubelet.exit("default", pods_of(api, "oneshot")[0]["metadata"]["name"], 0)
    wait_session(api, "oneshot", phase_is(c.PHASE_COMPLETED))
    wait_event(api, "oneshot", c.EVENT_COMPLETED)


def test_image_pull_error_fails_the_session_with_the_reason(api, operator, kubelet):
    kubelet.fail_image_pulls("registry.invalid/agent:nope")
    api.create(c.SESSION_PLURAL, session("nopull", agent={"image": "registry.invalid/agent:nope", "command": ["agent"]}))
    obj = wait_session(api, "nopull", phase_is(c.PHASE_FAILED))
    cond = condition(obj, c.COND_READY)
    assert cond["reason"] == "ImagePullBackOff"
    assert "registry.invalid/agent:nope" in cond["message"]
    wait_event(api, "nopull", c.EVENT_FAILED)


def test_pod_deleted_behind_the_operators_back_is_recreated(api, operator):
    api.create(c.SESSION_PLURAL, session("phoenix"))
    wait_session(api, "phoenix", ready)
    first = pods_of(api, "phoenix")[0]["metadata"]
    api.delete("pods", "default", first["name"])
    obj = wait_session(api, "phoenix", lambda o: ready(o) and o["status"].get("restartCount") == 1)
    again = pods_of(api, "phoenix")[0]["metadata"]
    assert again["name"] == first["name"] and again["uid"] != first["uid"]
    assert obj["status"]["phase"] == c.PHASE_RUNNING


def test_template_edit_marks_session_not_up_to_date_without_restarting_it(api, operator):
    api.create(c.TEMPLATE_PLURAL, template("base", agent={"image": IMAGE, "command": ["agent"]}))
    api.create(c.SESSION_PLURAL, session("templated", templateRef={"name": "base"}))
    wait_session(api, "templated", ready)
    pod_uid = pods_of(api, "templated")[0]["metadata"]["uid"]

    api.patch(c.TEMPLATE_PLURAL, "default", "base", {"spec": {"agent": {"env": [{"name": "A", "value": "1"}]}}})
    obj = wait_session(api, "templated", lambda o: condition(o, c.COND_UP_TO_DATE)["status"] == "False")
    assert condition(obj, c.COND_UP_TO_DATE)["reason"] == c.REASON_TEMPLATE_CHANGED
    assert obj["status"]["phase"] == c.PHASE_RUNNING
    assert [p["metadata"]["uid"] for p in pods_of(api, "templated")] == [pod_uid]


def test_idle_timeout_stops_the_session_without_touching_spec(api, operator):
    api.create(c.SESSION_PLURAL, session("idler", lifecycle={"idleTimeout": "1s"}))
    created = wait_session(api, "idler", ready)
    obj = wait_session(api, "idler", phase_is(c.PHASE_STOPPED))
    assert obj["status"]["stoppedReason"] == c.STOPPED_IDLE_TIMEOUT
    assert obj["spec"] == created["spec"] and obj["metadata"]["generation"] == created["metadata"]["generation"]
    assert not pods_of(api, "idler")
    wait_event(api, "idler", c.EVENT_IDLE_STOPPED)


def test_max_duration_stops_the_session(api, operator):
    api.create(c.SESSION_PLURAL, session("bounded", lifecycle={"maxDuration": "1s"}))
    wait_session(api, "bounded", ready)
    obj = wait_session(api, "bounded", phase_is(c.PHASE_STOPPED))
    assert obj["status"]["stoppedReason"] == c.STOPPED_MAX_DURATION


def test_delete_removes_pod_and_pvc_and_the_finalizer(api, operator):
    api.create(c.SESSION_PLURAL, session("doomed", workspace={"size": "1Gi"}))
    wait_session(api, "doomed", ready)
    assert pods_of(api, "doomed") and api.list("persistentvolumeclaims", "default")
    api.delete(c.SESSION_PLURAL, "default", "doomed")
    api.wait_for(lambda: api.get(c.SESSION_PLURAL, "default", "doomed") is None)
    assert not pods_of(api, "doomed")
    assert api.list("persistentvolumeclaims", "default") == []


def test_metrics_count_sessions_by_phase_and_startup_latency(api, operator):
    from prometheus_client import REGISTRY

    def gauge(phase: str) -> float:
        return REGISTRY.get_sample_value("agent_sessions", {"phase": phase, "provider": "pod"}) or 0.0

    started = REGISTRY.get_sample_value("agent_session_startup_seconds_count") or 0.0
    running = gauge(c.PHASE_RUNNING)
    api.create(c.SESSION_PLURAL, session("metered"))
    wait_session(api, "metered", ready)
    wait_until(lambda: gauge(c.PHASE_RUNNING) == running + 1)
    assert REGISTRY.get_sample_value("agent_session_startup_seconds_count") == started + 1
    api.delete(c.SESSION_PLURAL, "default", "metered")
    wait_until(lambda: gauge(c.PHASE_RUNNING) == running)


def test_log_tail_is_redacted_written_on_change_and_rate_limited(api, kubelet, start_operator):
    start_operator(log_refresh_seconds=1.0)
    api.create(c.SESSION_PLURAL, session("chatty"))
    wait_session(api, "chatty", ready)
    pod = pods_of(api, "chatty")[0]["metadata"]["name"]
    api.set_pod_log("default", pod, "starting\nusing token ghp_abcdefghijklmnopqrstuvwxyz0123456789\n")
    obj = wait_session(api, "chatty", lambda o: "starting" in ((o["status"].get("logs") or {}).get("tail") or ""))
    tail = obj["status"]["logs"]["tail"]
    assert "ghp_abcdefghijklmnopqrstuvwxyz0123456789" not in tail and "[REDACTED]" in tail

    api.reset_requests()
    for i in range(20):  # a burst of log lines within one refresh interval
        api.append_pod_log("default", pod, f"line {i}\n")
    obj = wait_session(api, "chatty", lambda o: "line 19" in o["status"]["logs"]["tail"])
    status_writes = [r for r in api.requests if r.is_write and r.subresource == "status" and r.resource == c.SESSION_PLURAL]
    assert 1 <= len(status_writes) <= 2  # one per interval, not one per line

    api.reset_requests()
    wait_until(lambda: sum(1 for r in api.requests if r.subresource == "log") >= 2, timeout=5)  # re-read twice…
    assert [r for r in api.requests if r.is_write and r.resource == c.SESSION_PLURAL] == []  # …unchanged: no write


def test_every_operator_request_carries_its_user_agent(api, operator):
    from agent_sessions import __version__

    api.create(c.SESSION_PLURAL, session("identified", workspace={"size": "1Gi"}))
    wait_session(api, "identified", ready)
    api.delete(c.SESSION_PLURAL, "default", "identified")
    api.wait_for(lambda: api.get(c.SESSION_PLURAL, "default", "identified") is None)
    agents = {r.user_agent for r in api.requests}
    assert agents == {f"agent-session-operator/{__version__}"}
    assert len(api.requests) > 10  # kopf's watches and the reconciler's calls alike


def test_session_for_a_provider_this_operator_lacks_fails_with_a_clear_condition(api, operator):
    # tmux is only offered with --enable-tmux: this operator does not have it.
    api.create(c.SESSION_PLURAL, session("local-only", provider="tmux", agent={"command": ["agent"]}))
    obj = wait_session(api, "local-only", phase_is(c.PHASE_FAILED))
    cond = condition(obj, c.COND_CONFIG_VALID)
    assert cond["status"] == "False"
    assert cond["message"] == "spec.provider: provider 'tmux' is not available in this operator"


def test_oom_killed_agent_is_restarted_and_the_reason_surfaced(api, operator, kubelet):
    api.create(c.SESSION_PLURAL, session("hungry", lifecycle={"restartPolicy": "OnFailure", "backoffLimit": 3}))
    wait_session(api, "hungry", ready)
    kubelet.oom_kill("default", pods_of(api, "hungry")[0]["metadata"]["name"])
    obj = wait_session(api, "hungry", lambda o: o["status"].get("crashCount") == 1)
    assert obj["status"]["restartCount"] == 1
    wait_event(api, "hungry", c.EVENT_RESTARTED)
    restarted = [e for e in api.list("events", "default") if e["involvedObject"]["name"] == "hungry" and e["reason"] == c.EVENT_RESTARTED]
    assert "OOMKilled" in restarted[0]["message"]


def test_crash_loop_back_off_shows_in_health_and_ready(api, operator, kubelet):
    api.create(c.SESSION_PLURAL, session("looping", lifecycle={"restartPolicy": "OnFailure", "backoffLimit": 5}))
    wait_session(api, "looping", ready)
    kubelet.crash_loop("default", pods_of(api, "looping")[0]["metadata"]["name"])
    obj = wait_session(api, "looping", lambda o: (o["status"].get("health") or {}).get("state") == c.HEALTH_UNHEALTHY)
    assert "CrashLoopBackOff" in obj["status"]["health"]["message"]
    assert condition(obj, c.COND_READY)["status"] == "False"


def test_evicted_pod_is_replaced_and_the_session_runs_again(api, operator, kubelet):
    api.create(c.SESSION_PLURAL, session("evictee", lifecycle={"restartPolicy": "OnFailure", "backoffLimit": 3}))
    wait_session(api, "evictee", ready)
    first = pods_of(api, "evictee")[0]["metadata"]
    kubelet.evict("default", first["name"])
    wait_session(api, "evictee", lambda o: ready(o) and o["status"].get("restartCount") == 1)
    assert pods_of(api, "evictee")[0]["metadata"]["uid"] != first["uid"]
    wait_event(api, "evictee", c.EVENT_RESTARTED)
    restarted = [e["message"] for e in api.list("events", "default")
                 if e["involvedObject"]["name"] == "evictee" and e["reason"] == c.EVENT_RESTARTED]
    assert "Evicted" in restarted[0]


def test_a_lifecycle_costs_at_most_13_writes_and_never_a_conflict(api, operator):
    """create → Running → Stopped → Running → delete: finalizer add and remove, the session's
    runtime token Secret once (the resume reads it and finds it unchanged), one pod create per
    start, one pod delete per stop or delete, one status patch per phase change (Creating,
    Running, Stopping, Stopped, Creating, Running) and never two for the same phase; no 409."""
    api.reset_requests()
    run_one_lifecycle(api, "thrifty")

    def writes() -> list:
        return [r for r in api.requests if r.is_write and r.resource != "events"]

    wait_until(lambda: sum(1 for r in writes() if r.resource == c.SESSION_PLURAL and not r.subresource) == 2)
    table = "\n".join(f"{r.status} {r.method} {r.path}" for r in writes())
    assert len(writes()) <= 13, table
    assert [r for r in api.requests if r.status == 409] == [], table
    counted = {(r.method, r.resource, r.subresource): 0 for r in writes()}
    for r in writes():
        counted[(r.method, r.resource, r.subresource)] += 1
    assert counted == {
        ("PATCH", c.SESSION_PLURAL, None): 2,
        ("POST", "secrets", None): 1,
        ("POST", "pods", None): 2,
        ("DELETE", "pods", None): 2,
        ("PATCH", c.SESSION_PLURAL, "status"): 6,
    }, table
