"""The gateway holds no write access to AgentSessions; its wake requests are signed Events the
operator checks (issue 10, "Gateway hardening"; DESIGN §11).

Attacks: the gateway's credentials (or a caller who could make it write) cannot change any
session; whoever may create Events cannot wake sessions with forged, replayed, stale or re-aimed
requests. The operator's side is checked end to end in tests/handlers/test_operator_wake_requests.py.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
import yaml

from agent_sessions.api import constants as c
from agent_sessions.handlers.wake_requests import PendingWakes, on_wake_event
from agent_sessions.wire.credentials import wake_signature
from agent_sessions.wire.wake_request import build_wake_event, wake_timestamp

from gateway.test_gateway_rbac import MODES, rendered

pytestmark = pytest.mark.embedded  # renders the chart with helm

ROOT = Path(__file__).resolve().parents[2]
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*"}


def gateway_grants(docs) -> set[tuple[str, str, str]]:
    return {key for role in docs for rule in role.get("rules") or ()
            for key in itertools.product(rule["apiGroups"], rule["resources"], rule["verbs"])}


@pytest.mark.parametrize("mode", list(MODES))
def test_the_charts_gateway_may_not_write_any_agentsession_or_template(mode):
    grants = rendered(*MODES[mode]).granted()
    ours = {(resource, verb) for group, resource, verb in grants if group == c.GROUP}
    assert ours == {(c.SESSION_PLURAL, "get"), (c.SESSION_PLURAL, "list"), (c.SESSION_PLURAL, "watch"),
                    (c.TEMPLATE_PLURAL, "list")}
    written = {(g, r, v) for g, r, v in grants if v in WRITE_VERBS}
    assert written == {("authentication.k8s.io", "tokenreviews", "create"),
                       ("authorization.k8s.io", "subjectaccessreviews", "create"),
                       ("", "events", "create")}


def test_the_kustomize_base_gateway_may_not_write_any_agentsession():
    docs = list(yaml.safe_load_all((ROOT / "manifests" / "base" / "gateway-rbac.yaml").read_text()))
    roles = [d for d in docs if d and d["kind"] in ("ClusterRole", "Role")]
    written = {(g, r, v) for g, r, v in gateway_grants(roles) if v in WRITE_VERBS}
    assert not [w for w in written if w[0] == c.GROUP]
    assert ("", "events", "create") in written


KEY = bytes(range(32))
SESSION = {"metadata": {"namespace": "team-a", "name": "sleepy", "uid": "uid-1"}}


def _offer(event: dict, *, uid: str = "uid-1", now_offset: float = 0.0) -> tuple[bool, list]:
    triggered: list = []
    accepted = on_wake_event(event, key=KEY, current_uid=lambda ns, name: uid if (ns, name) == ("team-a", "sleepy") else None,
                             pending=PendingWakes(), trigger=triggered.append, now=time.time() + now_offset)
    return accepted, triggered


def _now() -> str:
    return wake_timestamp(time.time_ns())


def test_a_wake_request_forged_by_someone_who_may_create_events_wakes_nothing():
    forged = build_wake_event(SESSION, _now(), bytes(32), requester="mallory")  # any key but the runtime key
    assert _offer(forged) == (False, [])
    unsigned = build_wake_event(SESSION, _now(), KEY)
    del unsigned["metadata"]["annotations"][c.ANNOTATION_WAKE_SIGNATURE]
    assert _offer(unsigned) == (False, [])


def test_a_genuine_request_replayed_later_or_re_aimed_wakes_nothing():
    genuine = build_wake_event(SESSION, _now(), KEY)
    assert _offer(genuine) == (True, [("team-a", "sleepy")])
    assert _offer(genuine, now_offset=3600) == (False, [])  # replayed an hour later
    assert _offer(genuine, uid="uid-2") == (False, [])  # the session was deleted and created again
    re_aimed = build_wake_event(SESSION, _now(), KEY)
    re_aimed["involvedObject"]["name"] = re_aimed["metadata"]["labels"][c.LABEL_WAKE_REQUEST] = "other"
    assert _offer(re_aimed) == (False, [])
    moved = build_wake_event(SESSION, _now(), KEY)
    moved["metadata"]["namespace"] = "team-b"  # copied into another namespace
    assert _offer(moved) == (False, [])
    redated = build_wake_event(SESSION, _now(), KEY)
    redated["metadata"]["annotations"][c.ANNOTATION_WAKE_REQUESTED_AT] = wake_timestamp(10**18 * 2)
    assert _offer(redated) == (False, [])
    assert wake_signature(KEY, "team-a", "sleepy", "uid-1", "x") != wake_signature(bytes(32), "team-a", "sleepy", "uid-1", "x")
