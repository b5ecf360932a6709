"""One test per operator behaviour (issue: operator on Pods), against the strict embedded API."""

from __future__ import annotations

from agent_sessions.api import constants as c

from .conftest import condition, pods_of, ready, session, wait_session


def test_created_session_becomes_running_with_ready_true(api, operator):
    api.create(c.SESSION_PLURAL, session("alpha"))
    obj = wait_session(api, "alpha", ready)
    status = obj["status"]
    assert status["phase"] == c.PHASE_RUNNING
    assert status["provider"]["type"] == "pod"
    assert status["provider"]["id"] == pods_of(api, "alpha")[0]["metadata"]["name"]
    assert status["provider"]["endpoint"].startswith("http://10.244.0.")
    assert condition(obj, c.COND_CONFIG_VALID)["status"] == "True"
    assert condition(obj, c.COND_UP_TO_DATE)["status"] == "True"
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert c.FINALIZER in obj["metadata"]["finalizers"]
    assert status["capabilities"]["logs"] is True
