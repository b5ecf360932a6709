"""Messages through the gateway against a real kube-apiserver (KUBE_ASSETS): once the gateway
watches the namespace, a message to a serving session costs the API server nothing (its audit log
shows no request by the gateway), and a session that stops is answered as not running.
Skipped without KUBE_ASSETS (failing under CI), like every real-tier test."""

from __future__ import annotations

import aiohttp

from agent_sessions.api import constants as c
from support.cluster.audit import AuditLog
from support.waits import eventually

from . import real_gateway
from .real_gateway import bearer

NAMESPACE = "serving-index"
control_plane = real_gateway.control_plane
cluster = real_gateway.cluster_fixture(NAMESPACE, ["get", "list", "watch"], send=True)
"""`tester` may read and message sessions in NAMESPACE."""
gateway, admin = real_gateway.gateway, real_gateway.admin_fixture(NAMESPACE)


async def test_real_messages_to_a_watched_serving_session_make_no_request_to_the_api_server(
        cluster, gateway, admin, runtime):
    runtime.add("s1")
    real_gateway.new_session(admin, NAMESPACE, "busy")
    admin.patch_status(c.SESSION_PLURAL, NAMESPACE, "busy",
                       {"phase": "Running", "provider": {"type": "pod", "id": "busy", "endpoint": runtime.endpoint("s1")}})
    sender = bearer(cluster, "tester")
    url = f"{gateway.url}/v1/namespaces/{NAMESPACE}/sessions/busy/messages"
    async with aiohttp.ClientSession() as http:
        async def send(text: str) -> tuple[int, dict]:
            async with http.post(url, json={"text": text}, headers=sender) as resp:
                return resp.status, await resp.json()

        assert (await send("first"))[0] == 200
        await eventually(lambda: gateway.service.index.lookup(NAMESPACE, "busy") is not None, "the watch's list")
        audit = AuditLog(cluster.audit_log)
        audit.reset()
        for i in range(20):
            status, reply = await send(f"m{i}")
            assert status == 200 and reply["text"] == f"s1 heard: m{i}", reply
        gateway_user = cluster.users["operator"].name
        admin_user = cluster.users["admin"].name
        assert admin.get(c.SESSION_PLURAL, NAMESPACE, "busy") is not None  # logged after the messages' requests
        await eventually(lambda: any(r.user == admin_user and r.verb == "get" for r in audit.records()),
                         "the audit log past the messages")
        assert [(r.verb, r.target) for r in audit.records(user=gateway_user)] == []

        admin.patch_status(c.SESSION_PLURAL, NAMESPACE, "busy", {"phase": "Stopped", "provider": None,
                                                                   "stoppedReason": "User"})

        async def not_running() -> bool:
            status, body = await send("after the stop")
            return status == 409 and body["code"] == "session_not_running"

        await eventually(not_running, "409 once the watch has the stop", timeout=10)
        assert any(r.verb == "get" and r.name == "busy" for r in audit.records(user=gateway_user))
