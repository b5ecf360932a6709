"""An operator started with a kopf peering on a cluster without kopf's peering CRDs says so.

kopf pauses every watch while a mandatory peering's resource is missing, without a word at the
default log level: `agent-sessions run` (whose default is the peering `agent-session-operator`)
against a cluster where the chart's CRDs were not applied would reconcile nothing, silently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import yaml

from agent_sessions.api import constants as c
from agent_sessions.handlers.registration import peering_problem
from agent_sessions.k8s.client import make_api_client
from support.sessions import session
from support.waits import wait_until

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
