"""The chart's Argo CD health checks (charts/agent-session-operator/argocd/*.lua), run by a real
Lua 5.1 — Argo CD's dialect (gopher-lua) — through `lupa`, on the objects the real operator
writes: each scenario drives a session with the operator on the embedded API (and its fake
kubelet) into a phase, then hands the resource's JSON, as the API returns it, to the script the
way Argo CD does (a global `obj`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lupa import lua51

from agent_sessions.api import constants as c
from agent_sessions.dev.fake_kubelet import FakeKubelet, PodScript
import support.embedded
import support.operators
from support.sessions import IMAGE, pods_of, session, template
from support.waits import phase_is, ready, wait_session

ROOT = Path(__file__).resolve().parents[2]
ARGOCD = ROOT / "charts" / "agent-session-operator" / "argocd"
SESSION_CHECK = ARGOCD / "health-agentsession.lua"
TEMPLATE_CHECK = ARGOCD / "health-sessiontemplate.lua"
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

# The embedded API and the operator, as the operator suites use them (fixtures by name).
api = support.embedded.api
kubeconfig = support.embedded.kubeconfig
operators = support.operators.operators
start_operator = support.operators.start_operator


def health(script: Path, resource: dict) -> dict[str, str]:
    """What Argo CD would show: the script run with `obj` set to the resource (via JSON, as Argo CD
    decodes it), in a fresh Lua 5.1."""
    lua = lua51.LuaRuntime()
    assert lua.eval("_VERSION") == "Lua 5.1"
    lua.globals().obj = lua.table_from(json.loads(json.dumps(resource)), recursive=True)
    result = lua.execute(script.read_text())
    out = {"status": result["status"], "message": result["message"]}
    assert out["status"] in ARGO_STATUSES
    return out


@pytest.fixture
def kubelet(api) -> Iterator[FakeKubelet]:
    with FakeKubelet(api) as fake:
        yield fake


@pytest.fixture
def operator(start_operator, kubelet):
    return start_operator()


def test_the_checks_are_lua_5_1_that_argo_cd_can_load():
    for script in (SESSION_CHECK, TEMPLATE_CHECK):
        lua = lua51.LuaRuntime()
        assert lua.eval(f"loadstring({json.dumps(script.read_text())}) ~= nil")


def test_a_running_ready_session_is_healthy(api, operator):
    api.create(c.SESSION_PLURAL, session("running"))
    obj = wait_session(api, "running", ready)
    assert health(SESSION_CHECK, obj) == {"status": "Healthy", "message": "Running: the agent is running"}


def test_a_creating_session_is_progressing(api, operator, kubelet):
    kubelet.script(lambda pod: pod["metadata"].get("labels", {}).get(c.LABEL_SESSION) == "slow", PodScript(hold=True))
    api.create(c.SESSION_PLURAL, session("slow"))
    obj = wait_session(api, "slow", phase_is(c.PHASE_CREATING))
    assert health(SESSION_CHECK, obj)["status"] == "Progressing"
    assert health(SESSION_CHECK, obj)["message"].startswith("Creating: ")


def test_a_failed_session_is_degraded_with_the_reason(api, operator):
    api.create(c.SESSION_PLURAL, session("broken", templateRef={"name": "missing"},
                                         agent={"image": IMAGE, "command": ["agent"]}))
    obj = wait_session(api, "broken", phase_is(c.PHASE_FAILED))
    result = health(SESSION_CHECK, obj)
    assert result["status"] == "Degraded"
    assert 'SessionTemplate "missing" not found' in result["message"]


def test_a_session_failing_to_pull_its_image_is_degraded(api, operator, kubelet):
    kubelet.fail_image_pulls("registry.invalid/agent:nope")
    api.create(c.SESSION_PLURAL, session("nopull", agent={"image": "registry.invalid/agent:nope", "command": ["a"]}))
    obj = wait_session(api, "nopull", phase_is(c.PHASE_FAILED))
    assert health(SESSION_CHECK, obj) == {"status": "Degraded",
                                          "message": f"ImagePullBackOff: {obj['status']['conditions'][0]['message']}"}


def test_a_stopped_session_is_suspended_with_why(api, operator):
    api.create(c.SESSION_PLURAL, session("paused"))
    wait_session(api, "paused", ready)
    api.patch(c.SESSION_PLURAL, "default", "paused", {"spec": {"state": "Stopped"}})
    obj = wait_session(api, "paused", phase_is(c.PHASE_STOPPED))
    result = health(SESSION_CHECK, obj)
    assert result["status"] == "Suspended"
    assert result["message"].startswith("Stopped (User): ")


def test_a_completed_session_is_healthy(api, operator, kubelet):
    api.create(c.SESSION_PLURAL, session("oneshot", lifecycle={"restartPolicy": "Never"}))
    wait_session(api, "oneshot", ready)
    kubelet.exit("default", pods_of(api, "oneshot")[0]["metadata"]["name"], 0)
    obj = wait_session(api, "oneshot", phase_is(c.PHASE_COMPLETED))
    assert health(SESSION_CHECK, obj)["status"] == "Healthy"


def test_a_running_session_in_a_crash_loop_is_degraded(api, operator, kubelet):
    api.create(c.SESSION_PLURAL, session("looping", lifecycle={"restartPolicy": "OnFailure", "backoffLimit": 5}))
    wait_session(api, "looping", ready)
    kubelet.crash_loop("default", pods_of(api, "looping")[0]["metadata"]["name"])
    obj = wait_session(api, "looping", lambda o: (o["status"].get("health") or {}).get("state") == c.HEALTH_UNHEALTHY)
    assert obj["status"]["phase"] == c.PHASE_RUNNING
    result = health(SESSION_CHECK, obj)
    assert result["status"] == "Degraded"
    assert "CrashLoopBackOff" in result["message"]


def test_a_terminating_session_is_progressing(api, operator, kubelet):
    kubelet.termination_delay = 5.0
    api.create(c.SESSION_PLURAL, session("leaving"))
    wait_session(api, "leaving", ready)
    api.delete(c.SESSION_PLURAL, "default", "leaving")
    obj = wait_session(api, "leaving", phase_is(c.PHASE_TERMINATING))
    assert health(SESSION_CHECK, obj)["status"] == "Progressing"


def test_a_spec_change_the_operator_has_not_observed_yet_is_progressing(api, operator, operators):
    api.create(c.SESSION_PLURAL, session("edited"))
    wait_session(api, "edited", ready)
    operators.stop_all()
    obj = api.patch(c.SESSION_PLURAL, "default", "edited", {"spec": {"title": "renamed"}})
    assert obj["metadata"]["generation"] > obj["status"]["observedGeneration"]
    assert health(SESSION_CHECK, obj) == {
        "status": "Progressing", "message": f"Waiting for the operator to observe generation {obj['metadata']['generation']}"}


def test_a_session_without_status_yet_is_progressing(api):
    obj = api.create(c.SESSION_PLURAL, session("new"))
    assert health(SESSION_CHECK, obj)["status"] == "Progressing"


def test_a_session_template_is_healthy(api):
    obj = api.create(c.TEMPLATE_PLURAL, template("base", agent={"image": IMAGE}))
    assert health(TEMPLATE_CHECK, obj)["status"] == "Healthy"


def test_every_phase_maps_to_an_argo_cd_status():
    """The phases no scenario above reaches (Pending, Stopping) on a status shaped like the others."""
    expected = {c.PHASE_PENDING: "Progressing", c.PHASE_CREATING: "Progressing", c.PHASE_RUNNING: "Progressing",
                c.PHASE_STOPPING: "Progressing", c.PHASE_STOPPED: "Suspended", c.PHASE_COMPLETED: "Healthy",
                c.PHASE_FAILED: "Degraded", c.PHASE_TERMINATING: "Progressing"}
    assert set(expected) == set(c.PHASES)
    for phase, status in expected.items():
        obj: dict[str, Any] = {"metadata": {"generation": 1},
                               "status": {"phase": phase, "observedGeneration": 1,
                                          "conditions": [{"type": "Ready", "status": "False", "reason": phase,
                                                          "message": "m"}]}}
        assert health(SESSION_CHECK, obj)["status"] == status, phase


def test_the_documented_argocd_cm_keys_name_the_real_group_and_kinds():
    docs = (ROOT / "docs" / "gitops.md").read_text()
    for kind, script in ((c.SESSION_KIND, SESSION_CHECK), (c.TEMPLATE_KIND, TEMPLATE_CHECK)):
        key = f"resource.customizations.health.{c.GROUP}_{kind}"
        assert key in docs
        assert key in script.read_text()
