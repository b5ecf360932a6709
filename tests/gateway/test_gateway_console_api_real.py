"""Stop, start and restart through the gateway against a real kube-apiserver (KUBE_ASSETS): the
gateway runs as its own user with exactly its rules (conftest's GATEWAY_RBAC, which cannot write
AgentSessions), so every write the audit log shows is the caller's own request, authorized by the
real RBAC authorizer. Skipped without KUBE_ASSETS (failing under CI), like every real-tier test."""

from __future__ import annotations

from typing import Any

import aiohttp

from agent_sessions.api import constants as c
from agent_sessions.gateway.authz import PATCH
from agent_sessions.gateway.server import RunningGateway
from support.cluster.audit import AuditLog
from support.waits import wait_until

from . import real_gateway
from .real_gateway import bearer

NAMESPACE = "console-api"
control_plane = real_gateway.control_plane
cluster = real_gateway.cluster_fixture(NAMESPACE, ["get", "list", "watch", "patch"])
"""`tester` may get, list, watch and patch sessions in NAMESPACE; `scheduler` may do nothing with them."""
gateway, admin = real_gateway.gateway, real_gateway.admin_fixture(NAMESPACE)


def new_session(admin: Any, name: str) -> dict:
    return real_gateway.new_session(admin, NAMESPACE, name)


async def post(http: aiohttp.ClientSession, gateway: RunningGateway, name: str, action: str,
               headers: dict) -> tuple[int, dict]:
    async with http.post(f"{gateway.url}/v1/namespaces/{NAMESPACE}/sessions/{name}/{action}", headers=headers) as resp:
        return resp.status, await resp.json()


def session_writes(audit: AuditLog, name: str) -> list[tuple[str, str, int]]:
    return [(r.user, r.verb, r.code) for r in audit.records(writes_only=True)
            if r.resource == c.SESSION_PLURAL and r.name == name]


async def test_real_stop_start_restart_are_the_callers_own_patches(cluster, gateway, admin):
    new_session(admin, "worker")
    audit = AuditLog(cluster.audit_log)
    audit.reset()
    tester = bearer(cluster, "tester")
    async with aiohttp.ClientSession() as http:
        status, body = await post(http, gateway, "worker", "stop", tester)
        assert status == 200, body
        assert admin.get(c.SESSION_PLURAL, NAMESPACE, "worker")["spec"]["state"] == "Stopped"
        assert body["detail"]["state"] == "Stopped"
        status, body = await post(http, gateway, "worker", "start", tester)
        assert status == 200, body
        assert admin.get(c.SESSION_PLURAL, NAMESPACE, "worker")["spec"]["state"] == "Running"
        status, body = await post(http, gateway, "worker", "restart", tester)
        assert status == 200, body
        assert admin.get(c.SESSION_PLURAL, NAMESPACE, "worker")["metadata"]["annotations"][c.ANNOTATION_RESTART]

    user = cluster.users["tester"].name
    expected = [(user, "patch", 200)] * 3
    wait_until(lambda: session_writes(audit, "worker") == expected, timeout=10,
               what="the caller's three patches in the audit log")


async def test_real_a_caller_without_patch_is_refused_and_the_session_is_unchanged(cluster, gateway, admin):
    before = new_session(admin, "guarded")
    audit = AuditLog(cluster.audit_log)
    audit.reset()
    async with aiohttp.ClientSession() as http:
        # No right at all: the gateway's review refuses, nothing reaches the session.
        status, body = await post(http, gateway, "guarded", "stop", bearer(cluster, "scheduler"))
        assert (status, body["code"]) == (403, "forbidden"), body

        # A review that (wrongly) said yes: the API server itself refuses the caller's own patch.
        scheduler = cluster.users["scheduler"]
        caller = await gateway.service.authn.authenticate(cluster.tokens["scheduler"])
        assert caller.user == scheduler.name
        gateway.service.authz.cache.put((caller, PATCH, NAMESPACE, "guarded"), True)
        status, body = await post(http, gateway, "guarded", "stop", bearer(cluster, "scheduler"))
        assert (status, body["code"]) == (403, "forbidden"), body
        assert cluster.tokens["scheduler"] not in str(body)

    after = admin.get(c.SESSION_PLURAL, NAMESPACE, "guarded")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    wait_until(lambda: session_writes(audit, "guarded") == [(scheduler.name, "patch", 403)], timeout=10,
               what="the scheduler's refused patch in the audit log")
