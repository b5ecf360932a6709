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


async def test_real_a_client_ahead_of_the_watch_is_answered_by_the_sessions_runtime_now(
        cluster, gateway, admin, runtime):
    # Right after a restart a client can have read the new endpoint before the gateway's watch
    # delivered it; the old address now serves another session, which refuses the token (401).
    runtime.add("s1")
    runtime.require_token("s1", "another-sessions-token")
    runtime.add("s2")
    obj = real_gateway.new_session(admin, NAMESPACE, "restarted")
    admin.patch_status(c.SESSION_PLURAL, NAMESPACE, "restarted",
                       {"phase": "Running", "provider": {"type": "pod", "id": "restarted",
                                                         "endpoint": runtime.endpoint("s2")}})
    index = gateway.service.index
    await eventually(lambda: index.lookup(NAMESPACE, "restarted") is not None, "the watch's list")
    index.namespaces[NAMESPACE].targets["restarted"] = (obj["metadata"]["uid"], runtime.endpoint("s1"))
    audit = AuditLog(cluster.audit_log)
    audit.reset()
    url = f"{gateway.url}/v1/namespaces/{NAMESPACE}/sessions/restarted/messages"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"text": "hi"}, headers=bearer(cluster, "tester")) as resp:
            status, reply = resp.status, await resp.json()
    assert status == 200 and reply["text"] == "s2 heard: hi", reply
    assert reply["session"]["uid"] == obj["metadata"]["uid"]
    assert runtime.sessions["s1"].requests == [] and len(runtime.refused) == 1
    gateway_user = cluster.users["operator"].name

    def sessions_read() -> list[tuple[str, str | None]]:
        return [(r.verb, r.name) for r in audit.records(user=gateway_user) if r.target == c.SESSION_PLURAL]

    await eventually(lambda: sessions_read() == [("get", "restarted")],
                     "the gateway's one read of the session in the audit log")
