"""The session-status stream against a real kube-apiserver (KUBE_ASSETS): the gateway runs as its
own user with exactly the rules it needs (conftest's GATEWAY_RBAC), callers are authorized by the
real RBAC authorizer through SubjectAccessReviews, and resourceVersions, watches and 410 Gone are
the real API server's. Skipped without KUBE_ASSETS (failing under CI), like every real-tier test."""

from __future__ import annotations

from typing import Any

import aiohttp

from agent_sessions.api import constants as c

from . import real_gateway
from .conftest import read_sse
from .real_gateway import bearer
from .test_gateway_status_stream import count, stream, synced

NAMESPACE = "status-stream"
control_plane = real_gateway.control_plane
cluster = real_gateway.cluster_fixture(NAMESPACE, ["get", "list", "watch"])
"""`tester` may get, list and watch sessions in NAMESPACE; nobody else may."""
gateway, admin = real_gateway.gateway, real_gateway.admin_fixture(NAMESPACE)


def new_session(admin: Any, name: str) -> dict:
    return real_gateway.new_session(admin, NAMESPACE, name)


async def test_real_rbac_decides_who_may_follow_a_namespace(cluster, gateway, admin):
    async with aiohttp.ClientSession() as http:
        async with stream(http, gateway.url, bearer(cluster, "scheduler"), namespace=NAMESPACE) as resp:
            assert resp.status == 403
            assert (await resp.json())["code"] == "forbidden"
        async with stream(http, gateway.url, bearer(cluster, "tester"), namespace=NAMESPACE) as resp:
            assert resp.status == 200
            assert (await read_sse(resp, synced))[-1]["event"] == "synced"


async def test_real_changes_arrive_in_order_and_resume_with_last_event_id(cluster, gateway, admin):
    tester = bearer(cluster, "tester")
    async with aiohttp.ClientSession() as http:
        async with stream(http, gateway.url, tester, namespace=NAMESPACE) as resp:
            await read_sse(resp, synced)
            created = new_session(admin, "one")
            running = admin.patch_status(c.SESSION_PLURAL, NAMESPACE, "one", {"phase": "Running"})
            changes = await read_sse(resp, count(2))
        assert [(m["event"], m["id"]) for m in changes] == [
            ("added", created["metadata"]["resourceVersion"]), ("modified", running["metadata"]["resourceVersion"])]

        admin.patch_status(c.SESSION_PLURAL, NAMESPACE, "one", {"phase": "Stopping"})
        admin.delete(c.SESSION_PLURAL, NAMESPACE, "one")
        async with stream(http, gateway.url, tester, namespace=NAMESPACE, last_event_id=changes[-1]["id"]) as resp:
            missed = await read_sse(resp, count(2))
        assert [(m["event"], m["data"]["info"]["phase"]) for m in missed] == [
            ("modified", "Stopping"), ("deleted", "Stopping")]

        # A position no replica keeps: reset, then the namespace as it is.
        async with stream(http, gateway.url, tester, namespace=NAMESPACE, last_event_id="1") as resp:
            messages = await read_sse(resp, synced)
        assert [m["event"] for m in messages] == ["reset", "synced"]
        assert messages[0]["data"]["reason"] == "expired"


async def test_real_a_session_nested_deeper_than_pythons_decoder_does_not_blind_the_gateway(cluster, gateway, admin):
    # The API server accepts 5,000 levels inside `spec.meta`; Python's decoder stops near 1,000.
    # Every list and watch of the namespace carries that body: decoded with Python's decoder it
    # failed them all (the status stream, the list, the deep session's own page: 500s), so one
    # session author blinded the gateway to their whole namespace. `k8s.decoding` cuts it instead.
    levels = 5000
    path = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{NAMESPACE}/{c.SESSION_PLURAL}"
    body = (b'{"apiVersion":"%s","kind":"%s","metadata":{"name":"abyss","namespace":"%s"},'
            b'"spec":{"agent":{"image":"example.com/agent:1"},"meta":'
            % (c.API_VERSION.encode(), c.SESSION_KIND.encode(), NAMESPACE.encode())
            + b'{"a":' * levels + b"{}" + b"}" * levels + b"}}")
    tester = bearer(cluster, "tester")
    async with aiohttp.ClientSession() as http:
        async with stream(http, gateway.url, tester, namespace=NAMESPACE) as resp:
            await read_sse(resp, synced)
            admin.request("POST", path, body=body, raw=True)  # (the answer is as deep: not decoded here)
            try:
                new_session(admin, "neighbour")
                added = await read_sse(resp, count(2))
                assert sorted(m["data"]["info"]["name"] for m in added if m["event"] == "added") == ["abyss", "neighbour"]
                async with stream(http, gateway.url, tester, namespace=NAMESPACE) as fresh:  # a new list
                    assert fresh.status == 200
                    listed = await read_sse(fresh, synced)
                assert {"abyss", "neighbour"} <= {m["data"]["info"]["name"] for m in listed if m["event"] == "added"}
                base = f"{gateway.url}/v1/namespaces/{NAMESPACE}/sessions"
                async with http.get(base, headers=tester) as page:
                    assert page.status == 200, await page.text()
                    assert [item["name"] for item in (await page.json())["items"]] == ["abyss", "neighbour"]
                async with http.get(f"{base}/abyss", headers=tester) as page:
                    assert page.status == 200, await page.text()
                    assert (await page.json())["info"]["name"] == "abyss"
            finally:  # the admin fixture's clean-up lists with Python's decoder: the deep one goes first
                admin.request("DELETE", f"{path}/abyss", raw=True)
