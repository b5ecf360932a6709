"""What the console asks of the gateway (docs/gateway.md): who am I, which namespaces, what may I
do, a session's detail and resolved configuration, and stop/start/restart done with the caller's
own token, so that the cluster's RBAC decides. Against the strict embedded API with tokens and
RBAC; the gateway runs with exactly its own rules (conftest's GATEWAY_RBAC: it may not write
AgentSessions), so a change that reaches the API was made as the caller."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator

import pytest
from kubernetes_asyncio.client import Configuration, CustomObjectsApi as client_objects

from agent_sessions.api import constants as c
from agent_sessions.config import explain, resolve_config
from agent_sessions.dev.authorization import RBACAuthorizer
from agent_sessions.dev.strict_api import StrictKubernetesAPI, running_api
from agent_sessions.gateway.authz import PATCH
from agent_sessions.gateway.caller_client import caller_configuration
from agent_sessions.gateway.cli import add_gateway_command, options_from_args
from agent_sessions.gateway.options import GatewayOptions
from agent_sessions.gateway import session_directory
from agent_sessions.gateway.server import serve_gateway
from agent_sessions.gateway.session_directory import SessionDirectory
from agent_sessions.k8s.client import make_api_client
from agent_sessions.k8s.session_state import plan_state_change

from .conftest import ALICE, BOB, CRDS, GATEWAY_RBAC, RBAC_API, TOKENS, USER_RBAC, identity, make_session, read_sse

CAROL = {"Authorization": "Bearer carol-token"}
"""May read and patch sessions in team-a (what `agent-sessions stop` needs), not message them."""
DAVE = {"Authorization": "Bearer dave-token"}
"""May list sessions in every namespace."""
OPERATOR_RBAC = [
    {"apiVersion": RBAC_API, "kind": "Role", "metadata": {"name": "session-operator", "namespace": "team-a"},
     "rules": [{"apiGroups": [c.GROUP], "resources": [c.SESSION_PLURAL], "verbs": ["get", "list", "watch", "patch"]}]},
    {"apiVersion": RBAC_API, "kind": "RoleBinding", "metadata": {"name": "carol-operates", "namespace": "team-a"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "session-operator"},
     "subjects": [{"kind": "User", "name": "carol"}]},
    {"apiVersion": RBAC_API, "kind": "ClusterRole", "metadata": {"name": "session-lister"},
     "rules": [{"apiGroups": [c.GROUP], "resources": [c.SESSION_PLURAL], "verbs": ["list"]}]},
    {"apiVersion": RBAC_API, "kind": "ClusterRoleBinding", "metadata": {"name": "dave-lists"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "session-lister"},
     "subjects": [{"kind": "User", "name": "dave"}]},
]
NAMESPACED_GATEWAY_RBAC = [
    {"apiVersion": RBAC_API, "kind": "ClusterRole", "metadata": {"name": "ns-gateway-auth"}, "rules": [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
        {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]}]},
    {"apiVersion": RBAC_API, "kind": "ClusterRoleBinding", "metadata": {"name": "ns-gateway-auth"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ns-gateway-auth"},
     "subjects": [{"kind": "User", "name": "ns-gateway"}]},
    {"apiVersion": RBAC_API, "kind": "Role", "metadata": {"name": "ns-gateway", "namespace": "team-a"}, "rules": [
        {"apiGroups": [c.GROUP], "resources": [c.SESSION_PLURAL], "verbs": ["get", "list", "watch"]}]},
    {"apiVersion": RBAC_API, "kind": "RoleBinding", "metadata": {"name": "ns-gateway", "namespace": "team-a"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ns-gateway"},
     "subjects": [{"kind": "User", "name": "ns-gateway"}]},
]
"""A gateway installed for some namespaces only (the chart's watchNamespaces): no cluster-wide list."""
SECRET_VALUE = "s3cr3t-value-never-shown"


@pytest.fixture
def api() -> Iterator[StrictKubernetesAPI]:
    tokens = {**TOKENS, "carol-token": ("carol", ["team-a-ops"]), "dave-token": ("dave", []),
              "ns-gateway-token": ("ns-gateway", [])}
    authorizer = RBACAuthorizer.from_manifests([*GATEWAY_RBAC, *USER_RBAC, *OPERATOR_RBAC, *NAMESPACED_GATEWAY_RBAC])
    with running_api(crds=CRDS, tokens=tokens, authorizer=authorizer) as server:
        for namespace in ("team-a", "team-b", "team-c"):
            server.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        yield server


def url(gateway: str, name: str, namespace: str = "team-a") -> str:
    return f"{gateway}/v1/namespaces/{namespace}/sessions/{name}"


async def get_json(http, address: str, headers: dict) -> tuple[int, dict]:
    async with http.get(address, headers=headers) as resp:
        return resp.status, await resp.json()


async def post_json(http, address: str, headers: dict) -> tuple[int, dict]:
    async with http.post(address, headers=headers) as resp:
        return resp.status, await resp.json()


# --- who am I -------------------------------------------------------------------------------


async def test_whoami_names_the_caller_the_cluster_authenticated(gateway, http):
    assert await get_json(http, f"{gateway}/v1/whoami", ALICE) == (
        200, {"user": "alice", "groups": ["team-a-devs", "system:authenticated"]})


async def test_whoami_refuses_a_bad_token_and_a_missing_one_with_401(gateway, http):
    status, body = await get_json(http, f"{gateway}/v1/whoami", {"Authorization": "Bearer not-a-token"})
    assert (status, body["code"], body["session"]) == (401, "unauthorized", None)
    status, body = await get_json(http, f"{gateway}/v1/whoami", {})
    assert (status, body["code"]) == (401, "unauthorized")


# --- namespaces and access ------------------------------------------------------------------


async def test_namespaces_are_those_with_sessions_the_caller_may_list(api, gateway, http):
    make_session(api, "a1")
    make_session(api, "b1", namespace="team-b")  # alice may not list team-b
    # team-c has no session: not offered (a UI lets its user type it)

    assert await get_json(http, f"{gateway}/v1/namespaces", ALICE) == (200, {"items": [{"name": "team-a"}]})
    assert await get_json(http, f"{gateway}/v1/namespaces", BOB) == (200, {"items": []})  # get, not list
    # Allowed cluster-wide: every namespace that holds sessions.
    assert await get_json(http, f"{gateway}/v1/namespaces", DAVE) == (
        200, {"items": [{"name": "team-a"}, {"name": "team-b"}]})
    status, body = await get_json(http, f"{gateway}/v1/namespaces", {"Authorization": "Bearer nope"})
    assert (status, body["code"]) == (401, "unauthorized")


async def test_the_namespaces_are_found_from_the_sessions_metadata_alone(api, tmp_path):
    # GET /v1/namespaces lists every session of the cluster: their metadata only, in pages (no
    # spec or status crosses the wire, whatever a session holds).
    make_session(api, "a1")
    make_session(api, "b1", namespace="team-b")
    client = await make_api_client(str(api.write_kubeconfig(tmp_path / "kubeconfig", token="gateway-token")))
    try:
        pages = [page async for page, _ in session_directory.session_pages(
            client_objects(client), None, limit=1, metadata_only=True)]
        assert await SessionDirectory(client).namespaces() == ["team-a", "team-b"]
    finally:
        await client.close()
    items = [item for page in pages for item in page]
    assert len(pages) == 2 and [item["metadata"]["name"] for item in items] == ["a1", "b1"]
    assert {item["kind"] for item in items} == {"PartialObjectMetadata"}
    assert not any("spec" in item or "status" in item for item in items)


async def test_configured_namespaces_are_offered_even_without_sessions(api, http, start_gateway):
    make_session(api, "b1", namespace="team-b")
    running = await start_gateway(namespaces=("team-c", "team-a"))
    assert await get_json(http, f"{running.url}/v1/namespaces", DAVE) == (
        200, {"items": [{"name": "team-a"}, {"name": "team-c"}]})  # team-b has sessions, but is not served
    assert await get_json(http, f"{running.url}/v1/namespaces", ALICE) == (200, {"items": [{"name": "team-a"}]})


async def test_a_gateway_that_may_not_list_cluster_wide_offers_no_namespace_rather_than_failing(api, http, tmp_path,
                                                                                               caplog):
    make_session(api, "a1")
    kube = await make_api_client(str(api.write_kubeconfig(tmp_path / "ns-gateway", token="ns-gateway-token")))
    try:
        async with serve_gateway(GatewayOptions(host="127.0.0.1", port=0), kube) as running:
            assert await get_json(http, f"{running.url}/v1/namespaces", DAVE) == (200, {"items": []})
            assert await get_json(http, f"{running.url}/v1/namespaces/team-a/sessions", ALICE) == (
                200, {"namespace": "team-a", "items": [(await get_json(
                    http, f"{running.url}/v1/namespaces/team-a/sessions/a1", ALICE))[1]["info"]]})
    finally:
        await kube.close()
    assert "give the namespaces it serves with --namespace" in caplog.text


async def test_access_reports_each_right_of_the_caller_on_a_namespace_and_a_session(api, gateway, http):
    make_session(api, "demo")
    namespace = f"{gateway}/v1/namespaces/team-a/access"

    assert await get_json(http, namespace, ALICE) == (200, {"namespace": "team-a", "name": None, "allowed": {
        "get": True, "list": True, "watch": True, "patch": False, "send": True, "cancel": False}})
    assert await get_json(http, url(gateway, "demo") + "/access", CAROL) == (
        200, {"namespace": "team-a", "name": "demo", "allowed": {
            "get": True, "list": True, "watch": True, "patch": True, "send": False, "cancel": False}})
    # Asking about oneself needs only a token, and tells nothing about whether the session exists.
    assert await get_json(http, url(gateway, "nothing-here", "team-b") + "/access", ALICE) == (
        200, {"namespace": "team-b", "name": "nothing-here", "allowed": dict.fromkeys(
            ("get", "list", "watch", "patch", "send", "cancel"), False)})
    status, body = await get_json(http, f"{gateway}/v1/namespaces/Not_A_Namespace/access", ALICE)
    assert (status, body["code"]) == (422, "invalid_request")


# --- what a session page shows --------------------------------------------------------------


async def test_summaries_carry_the_session_labels(api, gateway, http):
    api.create(c.SESSION_PLURAL, {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND,
                                  "metadata": {"name": "labelled", "namespace": "team-a",
                                               "labels": {"team": "a", "tier": "dev"}},
                                  "spec": {"agent": {"image": "example.com/agent:1"}}})
    make_session(api, "plain")

    status, body = await get_json(http, f"{gateway}/v1/namespaces/team-a/sessions", ALICE)
    assert status == 200
    assert {item["name"]: item["labels"] for item in body["items"]} == {
        "labelled": {"team": "a", "tier": "dev"}, "plain": {}}
    status, body = await get_json(http, url(gateway, "labelled"), ALICE)
    assert body["info"]["labels"] == {"team": "a", "tier": "dev"}


async def test_session_detail_shows_state_conditions_health_logs_info_but_never_the_endpoint(api, gateway, http):
    endpoint = "http://10.1.2.3:8080"
    api.create("secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "keys", "namespace": "team-a"},
                           "stringData": {"token": SECRET_VALUE}})
    obj = make_session(api, "demo", phase="Stopped", endpoint=endpoint, state="Stopped",
                       agent={"image": "example.com/agent:1", "env": [
                           {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "keys", "key": "token"}}}]})
    api.patch_status(c.SESSION_PLURAL, "team-a", "demo", {
        "conditions": [{"type": "Ready", "status": "False", "reason": "Stopped", "message": "stopped by the user",
                        "lastTransitionTime": "2026-12-07T00:00:00Z", "observedGeneration": 1}],
        "health": {"state": "Unhealthy", "consecutiveFailures": 2,
                   "message": f"GET {endpoint}/healthz failed: connection refused"},
        "logs": {"tail": f"listening on {endpoint}\nready\n"},
        "sessionInfo": {"title": "Fix the build", "updatedAt": "2026-12-07T00:00:01Z", "meta": {"ticket": "T-1"}},
        "capabilities": {"streaming": True, "history": True, "logs": True, "resume": True, "cancel": True,
                         "resourceLimits": True},
        "startTime": "2026-12-06T23:00:00Z", "restartCount": 1, "stoppedReason": "User"})

    status, body = await get_json(http, url(gateway, "demo"), BOB)  # `get` is enough
    assert status == 200, body
    assert body["detail"] == {
        "state": "Stopped",
        "conditions": [{"type": "Ready", "status": "False", "reason": "Stopped", "message": "stopped by the user",
                        "lastTransitionTime": "2026-12-07T00:00:00Z"}],
        "health": {"state": "Unhealthy", "consecutiveFailures": 2,
                   "message": "GET (the session's endpoint)/healthz failed: connection refused"},
        "logTail": "listening on (the session's endpoint)\nready\n",
        "sessionInfo": {"title": "Fix the build", "updatedAt": "2026-12-07T00:00:01Z", "meta": {"ticket": "T-1"}},
        "capabilities": {"streaming": True, "history": True, "logs": True, "resume": True, "cancel": True,
                         "resourceLimits": True},
        "startTime": "2026-12-06T23:00:00Z", "restartCount": 1, "stoppedReason": "User",
    }
    text = json.dumps(body)
    assert "10.1.2.3" not in text and SECRET_VALUE not in text
    assert body["session"] == identity(obj)


async def test_a_new_session_has_a_detail_without_status(api, gateway, http):
    make_session(api, "fresh", phase=None)
    status, body = await get_json(http, url(gateway, "fresh"), ALICE)
    assert status == 200
    assert body["detail"] == {"state": "Running", "conditions": [], "health": None, "logTail": None,
                              "sessionInfo": None, "capabilities": None, "startTime": None, "restartCount": None,
                              "stoppedReason": None}


# --- the resolved configuration -------------------------------------------------------------


def template(name: str, spec: dict) -> dict:
    return {"apiVersion": c.API_VERSION, "kind": c.TEMPLATE_KIND, "metadata": {"name": name, "namespace": "team-a"},
            "spec": spec}


def explained_rows(text: str) -> list[tuple[str, str, str]]:
    """The (path, layer, value) rows of `explain`'s table."""
    table = text.split("\n\n", 1)[1].splitlines()
    header = table[0]
    layer_at, value_at = header.index("LAYER"), header.index("VALUE")
    return [(line[:layer_at].strip(), line[layer_at:value_at].strip(), line[value_at:].strip()) for line in table[1:]]


async def test_config_is_what_explain_prints_as_data(api, gateway, http):
    api.create(c.TEMPLATE_PLURAL, template("base", {
        "provider": "pod", "agent": {"image": "example.com/agent:2", "env": [{"name": "MODE", "value": "fast"}]},
        "lockedFields": ["agent.image"], "policy": {"serviceAccounts": ["builder"]}}))
    api.create(c.TEMPLATE_PLURAL, template("team", {"extends": "base", "lifecycle": {"idleTimeout": "5m"}}))
    obj = make_session(api, "demo", templateRef={"name": "team"}, agent={"env": [
        {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "keys", "key": "token"}}}]},
        lifecycle={"idleTimeout": None})

    status, body = await get_json(http, url(gateway, "demo") + "/config", BOB)  # `get` the session is enough
    assert status == 200, body

    templates = {t["metadata"]["name"]: t for t in api.list(c.TEMPLATE_PLURAL, "team-a")}
    resolved = resolve_config(obj, templates)
    text = explain(resolved)
    assert body["session"] == identity(obj)
    assert [entry["name"] for entry in body["templateChain"]] == ["base", "team"]
    assert body["lockedFields"] == ["agent.image"]
    assert body["hash"] == resolved.hash and f"Hash:           {resolved.hash}" in text
    assert body["raised"] == [{"key": "serviceAccounts", "value": "builder", "origin": "SessionTemplate team-a/base"}]
    # Every row of explain's table, in its order: values as explain prints them (JSON).
    rows = [(f["path"], f["layer"], json.dumps(f["value"], ensure_ascii=False)) for f in body["fields"]]
    removed = [(r["path"], r["layer"], "(removed)") for r in body["removed"]]
    assert sorted(rows + removed) == sorted(explained_rows(text))
    fields = {f["path"]: f for f in body["fields"]}
    assert fields["agent.image"] == {"path": "agent.image", "layer": 'SessionTemplate "base"',
                                     "value": "example.com/agent:2"}
    assert fields["agent.env[MODE]"]["value"] == "fast"
    assert fields["agent.env[API_TOKEN]"]["value"] == {"valueFrom": {"secretKeyRef": {"name": "keys", "key": "token"}}}
    assert body["removed"] == [{"path": "lifecycle.idleTimeout", "layer": 'AgentSession "demo"'}]


async def test_config_of_an_invalid_configuration_is_422_with_the_resolver_message(api, gateway, http):
    make_session(api, "orphan", templateRef={"name": "missing"})
    status, body = await get_json(http, url(gateway, "orphan") + "/config", ALICE)
    assert (status, body["code"]) == (422, "invalid_configuration")
    assert "missing" in body["message"] and body["session"]["name"] == "orphan"


async def test_config_needs_get_on_the_session(api, gateway, http):
    make_session(api, "hidden", namespace="team-b")
    status, body = await get_json(http, url(gateway, "hidden", "team-b") + "/config", ALICE)
    assert (status, body["code"]) == (403, "forbidden")
    status, body = await get_json(http, url(gateway, "absent") + "/config", ALICE)
    assert (status, body["code"]) == (404, "session_not_found")


# --- stop, start, restart with the caller's token -------------------------------------------


def spec_state(api: StrictKubernetesAPI, name: str) -> str | None:
    return api.get(c.SESSION_PLURAL, "team-a", name)["spec"].get("state")


def patches_by(api: StrictKubernetesAPI, name: str) -> list[tuple[str | None, int]]:
    """Who asked to patch the session `name`, and the API server's answer (its request log)."""
    path = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/team-a/{c.SESSION_PLURAL}/{name}"
    return [(r.user, r.status) for r in api.requests if r.method == "PATCH" and r.path == path]


async def test_a_developer_stops_starts_and_restarts_a_session_as_itself(api, gateway, http, caplog):
    caplog.set_level(logging.DEBUG)
    obj = make_session(api, "demo")

    status, body = await post_json(http, url(gateway, "demo") + "/stop", CAROL)
    assert status == 200, body
    assert spec_state(api, "demo") == "Stopped"
    assert body["session"] == identity(obj)
    assert body["detail"]["state"] == "Stopped" and body["change"] == "spec.state set to Stopped"
    assert body["info"]["name"] == "demo"

    status, body = await post_json(http, url(gateway, "demo") + "/start", CAROL)
    assert status == 200, body
    assert spec_state(api, "demo") == "Running" and body["detail"]["state"] == "Running"

    status, body = await post_json(http, url(gateway, "demo") + "/restart", CAROL)
    assert status == 200, body
    annotations = api.get(c.SESSION_PLURAL, "team-a", "demo")["metadata"]["annotations"]
    assert annotations[c.ANNOTATION_RESTART] and body["change"] == "restart requested"
    # Every write was the caller's own request to the API server, never the gateway's.
    assert patches_by(api, "demo") == [("carol", 200)] * 3
    # What the gateway logs (the Kubernetes client's own DEBUG output of bodies is not its doing).
    logged = "\n".join(record.getMessage() for record in caplog.records
                       if record.name.startswith(("agent_sessions", "aiohttp")))
    assert "stop of team-a/demo by 'carol'" in logged and "carol-token" not in logged


async def test_start_of_a_session_stopped_for_idleness_wakes_it(api, gateway, http):
    make_session(api, "sleepy", phase="Stopped", stopped_reason="IdleTimeout")
    status, body = await post_json(http, url(gateway, "sleepy") + "/start", CAROL)
    assert status == 200, body
    assert body["change"] == "wake requested (stopped for IdleTimeout)"
    assert api.get(c.SESSION_PLURAL, "team-a", "sleepy")["metadata"]["annotations"][c.ANNOTATION_WAKE]


async def test_a_viewer_may_not_patch_and_a_forged_stop_is_403_leaving_the_session_unchanged(api, gateway, http):
    make_session(api, "demo")
    before = api.get(c.SESSION_PLURAL, "team-a", "demo")

    status, body = await get_json(http, url(gateway, "demo") + "/access", ALICE)
    assert status == 200 and body["allowed"]["patch"] is False
    for action in ("stop", "start", "restart"):
        status, body = await post_json(http, url(gateway, "demo") + f"/{action}", ALICE)
        assert (status, body["code"]) == (403, "forbidden"), body
        assert "may not patch agentsessions" in body["message"]
    status, body = await post_json(http, url(gateway, "demo") + "/stop", {"Authorization": "Bearer nope"})
    assert (status, body["code"]) == (401, "unauthorized")

    after = api.get(c.SESSION_PLURAL, "team-a", "demo")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert patches_by(api, "demo") == []


async def test_stop_of_a_missing_session_is_404_to_who_may_patch_and_403_to_others(api, gateway, http):
    status, body = await post_json(http, url(gateway, "absent") + "/stop", CAROL)
    assert (status, body["code"]) == (404, "session_not_found")
    status, body = await post_json(http, url(gateway, "absent", "team-b") + "/stop", CAROL)
    assert (status, body["code"]) == (403, "forbidden")


async def test_the_api_server_refusing_the_caller_is_403_even_when_the_review_said_yes(api, http, start_gateway):
    """The review only makes the refusal clear: the write is the caller's, and the cluster decides."""
    make_session(api, "demo")
    running = await start_gateway()
    alice = await running.service.authn.authenticate("alice-token")
    running.service.authz.cache.put((alice, PATCH, "team-a", "demo"), True)  # a review that (wrongly) said yes
    status, body = await post_json(http, url(running.url, "demo") + "/stop", ALICE)
    assert (status, body["code"]) == (403, "forbidden"), body
    assert "alice-token" not in json.dumps(body)
    assert spec_state(api, "demo") is None
    assert patches_by(api, "demo") == [("alice", 403)]  # the caller's own request, refused by the cluster


# --- the pieces -----------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "before", "patch", "phase", "request_field"), [
    ("stop", {"spec": {}}, {"spec": {"state": "Stopped"}}, "Stopped", None),
    ("start", {"spec": {"state": "Stopped"}, "status": {"phase": "Stopped", "stoppedReason": "User"}},
     {"spec": {"state": "Running"}}, "Running", None),
    ("start", {"spec": {}, "status": {"phase": "Stopped", "stoppedReason": "MaxDuration"}},
     {"metadata": {"annotations": {c.ANNOTATION_WAKE: "T"}}}, "Running", "wakeRequest"),
    ("start", {"spec": {"state": "Stopped"}, "status": {"phase": "Stopped", "stoppedReason": "IdleTimeout"}},
     {"spec": {"state": "Running"}}, "Running", None),  # asked to stop since: a start undoes that
    ("restart", {"spec": {}}, {"metadata": {"annotations": {c.ANNOTATION_RESTART: "T"}}}, "Running", "restartRequest"),
    ("restart", {"spec": {"state": "Stopped"}}, {"metadata": {"annotations": {c.ANNOTATION_RESTART: "T"}}},
     "Stopped", "restartRequest"),  # recorded, acted on when it runs again
])
def test_the_patch_each_action_asks_for(action, before, patch, phase, request_field):
    change = plan_state_change(action, before, "T")
    assert (change.patch, change.phase) == (patch, phase)
    assert change.request == ((request_field, "T") if request_field else None)


def test_the_callers_client_has_the_gateways_server_and_ca_and_none_of_its_credentials():
    gateway = Configuration(host="https://kube.example:6443")
    gateway.ssl_ca_cert, gateway.cert_file, gateway.key_file = "/ca.crt", "/gateway.crt", "/gateway.key"
    gateway.api_key = {"BearerToken": "Bearer gateway-token"}
    gateway.refresh_api_key_hook = lambda conf: None
    gateway.tls_server_name = "kube"

    configuration = caller_configuration(gateway, "carol-token")
    assert (configuration.host, configuration.ssl_ca_cert, configuration.tls_server_name) == (
        "https://kube.example:6443", "/ca.crt", "kube")
    assert configuration.cert_file is None and configuration.key_file is None
    assert configuration.refresh_api_key_hook is None
    assert configuration.api_key == {"BearerToken": "Bearer carol-token"}
    with pytest.raises(ValueError):
        caller_configuration(gateway, "")  # never a token-less request (a dev API serves those as the admin)


async def test_the_status_stream_carries_labels(api, gateway, http):
    api.create(c.SESSION_PLURAL, {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND,
                                  "metadata": {"name": "labelled", "namespace": "team-a", "labels": {"team": "a"}},
                                  "spec": {"agent": {"image": "example.com/agent:1"}}})
    async with http.get(f"{gateway}/v1/namespaces/team-a/sessions?watch=true", headers=ALICE) as resp:
        assert resp.status == 200
        messages = await read_sse(resp, lambda got: any(m["event"] == "synced" for m in got))
    assert messages[0]["data"]["info"]["labels"] == {"team": "a"}


def test_the_namespaces_a_gateway_serves_are_given_with_repeated_namespace_flags():
    root = argparse.ArgumentParser(prog="agent-sessions")
    add_gateway_command(root.add_subparsers(dest="command"))
    assert options_from_args(root.parse_args(["gateway"])).namespaces == ()
    given = root.parse_args(["gateway", "--namespace", "team-a", "--namespace", "team-b", "--namespace", "team-a"])
    assert options_from_args(given).namespaces == ("team-a", "team-b")
    with pytest.raises(SystemExit):
        root.parse_args(["gateway", "--namespace", "Not_A_Namespace"])
