"""kopf peering (HA): an operator started with a peering on a cluster without kopf's peering CRDs
says so, and a replica outranked by a live peer reconciles nothing until the peer is gone.

kopf pauses every watch while a mandatory peering's resource is missing, without a word at the
default log level: `agent-sessions run` (whose default is the peering `agent-session-operator`)
against a cluster where the chart's CRDs were not applied would reconcile nothing, silently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from agent_sessions.api import constants as c
from agent_sessions.handlers.registration import peering_problem
from agent_sessions.k8s.client import make_api_client
from support.sessions import session
from support.waits import ready, wait_session, wait_until

ROOT = Path(__file__).resolve().parents[2]
PEERING_CRDS = [d for d in yaml.safe_load_all((ROOT / "charts" / "agent-session-operator" / "crds" /
                                               "kopf-peerings.yaml").read_text()) if d]


def test_a_missing_peering_crd_is_an_error_naming_the_fix(api, kubelet, start_operator, caplog):
    for crd in PEERING_CRDS:  # the real control plane is shared by the package: another test may have added them
        if api.get("customresourcedefinitions", None, crd["metadata"]["name"]) is not None:
            api.delete("customresourcedefinitions", None, crd["metadata"]["name"])
    api.wait_for(lambda: all(api.get("customresourcedefinitions", None, crd["metadata"]["name"]) is None
                             for crd in PEERING_CRDS), timeout=30)
    caplog.set_level(logging.ERROR, logger="agent_sessions.handlers.registration")
    start_operator(peering="agent-session-operator")
    wait_until(lambda: any("needs the ClusterKopfPeering resource" in r.getMessage() for r in caplog.records))
    message = next(r.getMessage() for r in caplog.records if "ClusterKopfPeering" in r.getMessage())
    assert "the operator stays paused" in message and "--standalone" in message
    api.create(c.SESSION_PLURAL, session("waiting"))
    time.sleep(1.5)  # what it says is true: nothing is reconciled (an absence: nothing to wait for)
    assert not api.get(c.SESSION_PLURAL, "default", "waiting").get("status")


async def test_with_the_peering_crds_served_nothing_is_said(api, kubeconfig):
    client = await make_api_client(kubeconfig)
    try:
        assert await peering_problem(client, "agent-session-operator", clusterwide=True) is not None
        for crd in PEERING_CRDS:
            if api.get("customresourcedefinitions", None, crd["metadata"]["name"]) is None:
                api.create("customresourcedefinitions", crd)
        # Served once established and in discovery: a real API server takes a moment for each CRD.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
                await peering_problem(client, "agent-session-operator", clusterwide=True) is not None
                or await peering_problem(client, "agent-session-operator", clusterwide=False) is not None):
            await asyncio.sleep(0.2)
        assert await peering_problem(client, "agent-session-operator", clusterwide=True) is None
        assert await peering_problem(client, "agent-session-operator", clusterwide=False) is None
    finally:
        await client.close()


def served_peering(api, name: str) -> None:
    """kopf's peering CRDs and a ClusterKopfPeering `name`, as the chart installs them."""
    for crd in PEERING_CRDS:
        if api.get("customresourcedefinitions", None, crd["metadata"]["name"]) is None:
            api.create("customresourcedefinitions", crd)
    api.wait_for(lambda: all(api.get("customresourcedefinitions", None, crd["metadata"]["name"]) is not None
                             for crd in PEERING_CRDS), timeout=30)
    if hasattr(api, "forget_discovery"):
        api.forget_discovery()
    deadline = time.monotonic() + 30
    while True:  # the new resource is served a moment after the CRD is established
        try:
            if api.get("clusterkopfpeerings", None, name) is None:
                api.create("clusterkopfpeerings", {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
                                                   "metadata": {"name": name}})
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
            if hasattr(api, "forget_discovery"):
                api.forget_discovery()


def rival(priority: int) -> dict:
    now = datetime.now(timezone.utc).isoformat()
    return {"priority": priority, "lifetime": 60, "lastseen": now}


def test_a_replica_outranked_by_a_live_peer_reconciles_nothing_until_the_peer_is_gone(api, kubelet, start_operator):
    # HA (§9): while kopf's peering says another operator is active, this replica's own informers
    # and scheduler stand still too (`handlers.peering_gate`), requeue timers included; when the
    # peer goes, what changed meanwhile is acted on.
    served_peering(api, "ha-pause")
    operator = start_operator(peering="ha-pause", priority=10)
    api.create(c.SESSION_PLURAL, session("active"))
    wait_session(api, "active", ready)

    api.patch("clusterkopfpeerings", None, "ha-pause", {"status": {"rival-replica": rival(100)}})
    wait_until(lambda: operator.runtime.gate is not None and operator.runtime.gate.paused, what="the replica to pause")
    assert "rival-replica" in operator.runtime.gate.reason
    completed = sum(operator.runtime.scheduler.completed.values())
    api.create(c.SESSION_PLURAL, session("meanwhile"))
    api.patch(c.SESSION_PLURAL, "default", "active", {"spec": {"state": c.STATE_STOPPED}})
    time.sleep(2.0)  # an absence: nothing to wait for
    assert not api.get(c.SESSION_PLURAL, "default", "meanwhile").get("status")
    assert api.get(c.SESSION_PLURAL, "default", "active")["status"]["phase"] == c.PHASE_RUNNING
    assert sum(operator.runtime.scheduler.completed.values()) == completed

    api.patch("clusterkopfpeerings", None, "ha-pause", {"status": {"rival-replica": None}})
    wait_session(api, "meanwhile", ready)
    wait_session(api, "active", lambda o: o["status"].get("phase") == c.PHASE_STOPPED)
