"""An http session that answers messages shows HEALTH (Healthy) in `kubectl get ags`, as a pod does:
the platform's `Running` + `ready` is its runtime's readiness, and the runtime's own word (`/v1/info`)
overrides it when the agent is not well."""

from __future__ import annotations

import subprocess

from agent_sessions.api import constants as c
from support.tools import find_tool

from .conftest import http_session, ready, wait_session


def test_an_http_session_answering_messages_is_healthy_in_status_and_in_kubectl_get(
        api, platform, token_secret, start_operator, kubeconfig):
    start_operator()
    api.create(c.SESSION_PLURAL, http_session("cloud", platform.url, prompt="hello platform"))
    obj = wait_session(api, "cloud", lambda o: ready(o) and (o["status"].get("messageCount") or 0) >= 2
                       and (o["status"].get("health") or {}).get("state") == c.HEALTH_HEALTHY)
    assert obj["status"]["provider"]["type"] == "http"
    healthy = next(x for x in obj["status"]["conditions"] if x["type"] == c.COND_HEALTHY)
    assert healthy["status"] == "True"

    out = subprocess.run([find_tool("kubectl"), "--kubeconfig", kubeconfig, "get", "ags"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    header, row = out.splitlines()
    cells = dict(zip(header.split(), row.split()))  # the cells up to HEALTH are one word each (TITLE comes after)
    assert (cells["PROVIDER"], cells["READY"], cells["REASON"], cells["HEALTH"]) == ("http", "True", "Running",
                                                                                      "Healthy")
