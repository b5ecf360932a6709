"""A session's runtime answers only the operator and the gateway (issue 10, item 7).

Reproduced: the runtime bridge (port 8080 of a session pod, a loopback port for tmux) served
anyone who could connect — history read and the agent prompted around the gateway's TokenReview
and SubjectAccessReview. Now every endpoint but `/healthz` requires `Authorization: Bearer
<token>`, the token being `HMAC(runtime key, session uid)` (`wire.credentials`): the operator
writes it into a Secret of the session's namespace, owned by the session, that the pod mounts
read-only; only the operator and the gateway hold the key and so can compute it.

Attacks, each answered 401 `unauthorized` before any endpoint runs: no token, a wrong token,
another session's token, another scheme. `/healthz` stays open (kubelet probes). The token is in
no status, Event, pod spec, operator log or bridge log. The operator and the gateway still work
end to end (embedded: the local pod runner mounts the Secret volume; the real-cluster tier runs
the same in tests/handlers/on_a_real_node/ and the Secret/volume on a real apiserver here).
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent_sessions.api import constants as c
from agent_sessions.providers.pod import build_pod
from agent_sessions.providers.pod.constants import TOKEN_DIRECTORY, TOKEN_FILE_MODE, TOKEN_VOLUME
from agent_sessions.providers.pod.names import token_secret_name
from agent_sessions.providers.pod.validation import pod_problems
from agent_sessions.providers.base import SessionRef
from agent_sessions.providers.tmux.validation import tmux_problems
from agent_sessions.wire.credentials import ENV_TOKEN_FILE, TOKEN_FILE_NAME, generate_key, session_token
from gateway.messaging.conftest import (  # noqa: F401 (fixtures)
    INSTALL_NAMESPACE,
    NAMESPACE,
    RUNTIME_KEY_SECRET,
    agent_session,
    api,
    gateway,
    http,
    is_ready,
    operator,
    runner,
    start_operator,
    url,
    wait_session,
)
from runtime.conftest import SESSION, free_port, start_bridge, wait_health  # noqa: F401 (fixtures)
from support.operators import Operators, operators  # noqa: F401 (fixture)
from support.sessions import pods_of
from support.waits import eventually

TIER = "embedded"  # starts bridges, agents, operators and gateways

KEY = bytes(range(32))
TOKEN = session_token(KEY, SESSION["uid"])
OTHER_SESSIONS_TOKEN = session_token(KEY, "another-session-uid")
PROTECTED = [("GET", "/v1/info"), ("POST", "/v1/messages"), ("GET", "/v1/history?after_seq=0"),
             ("POST", "/v1/cancel"), ("GET", "/v1/no-such-endpoint")]
ATTACKS = {
    "no token": {},
    "wrong token": {"Authorization": "Bearer not-the-token"},
    "another session's token": {"Authorization": f"Bearer {OTHER_SESSIONS_TOKEN}"},
    "token of another key": {"Authorization": f"Bearer {session_token(generate_key(), SESSION['uid'])}"},
    "another scheme": {"Authorization": f"Basic {TOKEN}"},
    "token with a suffix": {"Authorization": f"Bearer {TOKEN}x"},
    "empty bearer": {"Authorization": "Bearer "},
}


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o400)
    return path


async def call(http: aiohttp.ClientSession, method: str, url_: str, headers: dict[str, str]) -> tuple[int, Any]:
    body = {"text": "read me your history"} if method == "POST" else None
    async with http.request(method, url_, json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


# --- the bridge itself ------------------------------------------------------------------------


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_a_direct_call_without_the_sessions_token_is_refused_on_every_endpoint(start_bridge, token_file,
                                                                                      attack):
    bridge = start_bridge(args=("--token-file", str(token_file)))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        await wait_health(http, bridge)  # /healthz needs no token: the kubelet probes it
        for method, path in PROTECTED:
            status, body = await call(http, method, bridge.url + path, ATTACKS[attack])
            assert status == 401, (method, path, body)
            assert body["code"] == "unauthorized" and "token" in body["message"], body
            assert body["session"] == SESSION
        # Nothing reached the agent: no turn was recorded.
        status, history = await call(http, "GET", bridge.url + "/v1/history", {"Authorization": f"Bearer {TOKEN}"})
        assert (status, history["items"]) == (200, [])
    assert TOKEN not in bridge.logs()


async def test_the_sessions_own_token_opens_every_endpoint_and_is_never_logged(start_bridge, token_file):
    bridge = start_bridge(args=("--token-file", str(token_file)))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        await wait_health(http, bridge)
        status, reply = await call(http, "POST", bridge.url + "/v1/messages", auth)
        assert (status, reply["text"]) == (200, "You said: read me your history")
        for method, path in PROTECTED[:-1]:
            assert (await call(http, method, bridge.url + path, auth))[0] == 200, path
        assert (await call(http, "GET", bridge.url + "/v1/no-such-endpoint", auth))[0] == 404
    logs = bridge.logs()
    assert TOKEN not in logs and "no token configured" not in logs


async def test_the_token_file_may_come_from_the_environment_as_pods_get_it(start_bridge, token_file):
    bridge = start_bridge(env={ENV_TOKEN_FILE: str(token_file)})
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        await wait_health(http, bridge)
        assert (await call(http, "GET", bridge.url + "/v1/info", {}))[0] == 401
        assert (await call(http, "GET", bridge.url + "/v1/info", {"Authorization": f"Bearer {TOKEN}"}))[0] == 200


@pytest.mark.parametrize("content", [None, "", "  \n"], ids=["missing", "empty", "blank"])
def test_a_named_token_file_that_cannot_be_used_stops_the_bridge_rather_than_serve_open(start_bridge, tmp_path,
                                                                                       content):
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    bridge = start_bridge(args=("--token-file", str(path)))
    assert bridge.process.wait(timeout=30) != 0
    assert f"token file {path}" in bridge.logs()


async def test_a_bridge_started_by_hand_without_a_token_serves_but_warns_once(start_bridge):
    bridge = start_bridge()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        await wait_health(http, bridge)
        assert (await call(http, "GET", bridge.url + "/v1/info", {}))[0] == 200
        assert (await call(http, "GET", bridge.url + "/v1/history", {}))[0] == 200
    assert bridge.logs().count("no token configured") == 1


# --- what the pod provider asks for -----------------------------------------------------------


def pod_of(agent: dict[str, Any] | None = None, **config: Any) -> dict[str, Any]:
    session = SessionRef("team-a", "demo", "uid-1")
    return build_pod(session, {"agent": {"image": "example.com/a:1", "command": ["agent"], **(agent or {})},
                               **config}, runtime_token=True)


def test_the_pod_mounts_the_token_secret_read_only_and_holds_no_token_itself():
    pod = pod_of()
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == TOKEN_VOLUME]
    assert volume == {"name": TOKEN_VOLUME, "secret": {
        "secretName": token_secret_name("team-a", "demo", "uid-1"), "defaultMode": TOKEN_FILE_MODE,
        "items": [{"key": TOKEN_FILE_NAME, "path": TOKEN_FILE_NAME}]}}
    assert TOKEN_FILE_MODE == 0o440  # root and the pod's fsGroup (the agent's supplementary group) only
    (container,) = pod["spec"]["containers"]
    assert {"name": TOKEN_VOLUME, "mountPath": TOKEN_DIRECTORY, "readOnly": True} in container["volumeMounts"]
    assert {"name": ENV_TOKEN_FILE, "value": f"{TOKEN_DIRECTORY}/{TOKEN_FILE_NAME}"} in container["env"]
    assert session_token(KEY, "uid-1") not in json.dumps(pod)
    assert pod["spec"]["securityContext"]["fsGroup"] == pod["spec"]["securityContext"]["runAsGroup"]


@pytest.mark.parametrize("problems_of", [lambda config: pod_problems(config, operator_image="x"), tmux_problems],
                         ids=["pod", "tmux"])
def test_a_session_may_not_point_the_bridge_at_a_token_file_of_its_choosing(problems_of):
    config = {"agent": {"image": "example.com/a:1", "command": ["agent"],
                        "env": [{"name": ENV_TOKEN_FILE, "value": "/workspace/my-token"}]}}
    assert (f"spec.agent.env[{ENV_TOKEN_FILE}]: reserved: the operator sets it to hand the session's runtime "
            "its token") in problems_of(config)


def test_a_session_may_not_mount_over_the_token_or_reuse_its_volume_name():
    config = {"agent": {"image": "example.com/a:1", "command": ["agent"],
                        "volumeMounts": [{"name": "mine", "mountPath": TOKEN_DIRECTORY + "/"}]},
              "podTemplate": {"volumes": [{"name": TOKEN_VOLUME, "emptyDir": {}}]}}
    problems = pod_problems(config, operator_image="x")
    assert f"spec.agent.volumeMounts[{TOKEN_DIRECTORY}/]: {TOKEN_DIRECTORY} is reserved for the session runtime's " \
           "token" in problems
    assert f"spec.podTemplate.volumes[{TOKEN_VOLUME}]: the name is reserved for the operator's own volume" in problems


# --- end to end: operator, local pod runner, gateway ------------------------------------------


def _secret_key(api: Any) -> bytes:
    namespace, _, name = RUNTIME_KEY_SECRET.partition("/")
    secret = api.get("secrets", namespace, name)
    assert secret is not None, "the operator did not create the runtime key Secret"
    return base64.b64decode(secret["data"]["key"])


async def test_only_the_operator_and_the_gateway_can_call_a_session_runtime(api, operator, gateway, http, caplog):
    caplog.set_level(logging.DEBUG)
    api.create(c.SESSION_PLURAL, agent_session("mine"))
    api.create(c.SESSION_PLURAL, agent_session("theirs"))
    mine = await wait_session(api, "mine", is_ready)
    theirs = await wait_session(api, "theirs", is_ready)
    key = _secret_key(api)
    assert operator.runtime is not None and operator.runtime.runtime_key == key
    token = session_token(key, mine["metadata"]["uid"])
    endpoint = mine["status"]["provider"]["endpoint"]

    # The per-session Secret: owned by its session (garbage-collected with it), the token only.
    secret = api.get("secrets", NAMESPACE, token_secret_name(NAMESPACE, "mine", mine["metadata"]["uid"]))
    assert secret["data"] == {TOKEN_FILE_NAME: base64.b64encode(token.encode()).decode()}
    assert secret["metadata"]["ownerReferences"] == [{
        "apiVersion": c.API_VERSION, "kind": c.SESSION_KIND, "name": "mine", "uid": mine["metadata"]["uid"],
        "controller": True, "blockOwnerDeletion": True}]
    assert secret["metadata"]["labels"][c.LABEL_MANAGED_BY] == c.MANAGED_BY

    # Around the gateway: refused, whatever is tried (another session's token included).
    theirs_token = session_token(key, theirs["metadata"]["uid"])
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as direct:
        for headers in ({}, {"Authorization": "Bearer guess"}, {"Authorization": f"Bearer {theirs_token}"}):
            for method, path in PROTECTED:
                status, body = await call(direct, method, endpoint + path, headers)
                assert (status, body["code"]) == (401, "unauthorized"), (headers, path, body)
        async with direct.get(endpoint + "/healthz") as response:
            assert response.status == 200

    # Through the gateway (TokenReview, SubjectAccessReview, then the session's token): works.
    async with http.post(url(gateway, "mine", "/messages"), json={"text": "hello"}) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["text"] == "You said: hello"
    # The operator reads the runtime's info with the token: the agent's title reaches status.
    titled = await wait_session(api, "mine", lambda o: bool((o["status"].get("sessionInfo") or {}).get("title")))

    # The token is nowhere to be read but in its Secret.
    (pod,) = pods_of(api, "mine", NAMESPACE)
    events = [e for e in api.list("events", NAMESPACE)]
    for where, text in (("status", json.dumps(titled["status"])), ("events", json.dumps(events)),
                        ("pod", json.dumps(pod)), ("operator logs", caplog.text)):
        assert token not in text, where
        assert base64.b64encode(key).decode() not in text, where


async def test_a_resumed_session_costs_no_token_secret_write(api, operator):
    api.create(c.SESSION_PLURAL, agent_session("steady"))
    obj = await wait_session(api, "steady", is_ready)
    name = token_secret_name(NAMESPACE, "steady", obj["metadata"]["uid"])

    def secret_requests() -> list[tuple[str, int]]:
        return [(r.method, r.status) for r in list(api.requests)
                if r.resource == "secrets" and r.namespace == NAMESPACE and (r.method == "POST" or r.path.endswith(name))]

    api.reset_requests()
    api.patch(c.SESSION_PLURAL, NAMESPACE, "steady", {"spec": {"state": "Stopped"}})
    await wait_session(api, "steady", lambda o: o["status"].get("phase") == c.PHASE_STOPPED)
    api.patch(c.SESSION_PLURAL, NAMESPACE, "steady", {"spec": {"state": "Running"}})
    await wait_session(api, "steady", is_ready)
    # Read before the new pod (and by the log tail's redaction, which includes the token), never written.
    assert secret_requests() and {method for method, _ in secret_requests()} == {"GET"}


async def test_a_gateway_without_the_key_cannot_reach_a_runtime_and_says_so(api, operator, http, tmp_path):
    from agent_sessions.gateway.options import GatewayOptions
    from agent_sessions.gateway.server import serve_gateway
    from agent_sessions.k8s.client import make_api_client

    api.create(c.SESSION_PLURAL, agent_session("locked"))
    await wait_session(api, "locked", is_ready)
    kubeconfig = api.write_kubeconfig(tmp_path / "keyless-gateway", token="gateway-token")
    client = await make_api_client(str(kubeconfig))
    try:
        async with serve_gateway(GatewayOptions(host="127.0.0.1", port=0), client) as keyless:
            async with http.post(url(keyless.url, "locked", "/messages"), json={"text": "hi"}) as response:
                body = await response.json()
    finally:
        await client.close()
    assert (response.status, body["code"], body["upstream"]) == (503, "provider_unavailable",
                                                                 {"status": 401, "code": "unauthorized"})


async def test_the_gateway_is_not_ready_until_it_can_read_the_key(api, tmp_path):
    from agent_sessions.gateway.options import GatewayOptions
    from agent_sessions.gateway.server import serve_gateway
    from agent_sessions.k8s.client import make_api_client

    kubeconfig = api.write_kubeconfig(tmp_path / "gateway", token="gateway-token")
    client = await make_api_client(str(kubeconfig))
    namespace, _, name = RUNTIME_KEY_SECRET.partition("/")
    options = GatewayOptions(host="127.0.0.1", port=0, runtime_key_secret=RUNTIME_KEY_SECRET,
                             runtime_key_retry_seconds=0.05)
    try:
        async with serve_gateway(options, client) as running, aiohttp.ClientSession() as probe:
            async with probe.get(running.url + "/readyz") as response:
                assert response.status == 503
            api.create("secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
                                   "data": {"key": base64.b64encode(KEY).decode()}})
            await eventually(lambda: running.service.runtime_key == KEY, "the gateway read the key")
            async with probe.get(running.url + "/readyz") as response:
                assert response.status == 200
    finally:
        await client.close()


def test_operators_sharing_the_key_secret_agree_and_a_bare_operator_keeps_its_key_in_memory(api, tmp_path,
                                                                                           operators: Operators):
    kubeconfig = str(api.write_kubeconfig(tmp_path / "operator", token="operator-token"))
    first = operators.starter(kubeconfig, runtime_key_secret=RUNTIME_KEY_SECRET)()
    key = _secret_key(api)
    second = operators.starter(kubeconfig, runtime_key_secret=RUNTIME_KEY_SECRET)()
    bare = operators.starter(kubeconfig)()
    assert first.runtime.runtime_key == second.runtime.runtime_key == key
    assert bare.runtime.runtime_key not in (None, key) and len(bare.runtime.runtime_key) == 32
    assert [s["metadata"]["name"] for s in api.list("secrets", INSTALL_NAMESPACE)] == [RUNTIME_KEY_SECRET.split("/")[1]]
