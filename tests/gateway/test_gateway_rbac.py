"""The gateway works with exactly the RBAC the Helm chart grants it — nothing more, nothing less.

The chart is rendered with the real `helm template` (cluster-wide and namespaced); the gateway's
ClusterRoles, Roles and bindings become the embedded API's RBAC authorizer, and the gateway runs
with its service account's token and the options its Deployment starts it with: the rendered
command line through the real `agent-sessions` parser, `--operator-defaults` read from the rendered
ConfigMap. Only the address (a free local port) and the history poll interval (for speed) differ.
Then messages (sync and streamed), the event stream, listing, wake-on-message and the probes all
work with not one 401 or 403 for the gateway's service account, and every (group, resource, verb)
the rendered rules grant is used: the rules are sufficient and none of them is spare.

The hand-written GATEWAY_RBAC of conftest.py, which the other gateway tests run under, is the same
contract (tests/deploy/test_install.py compares the two).

Without helm these tests skip on a workstation and fail in CI (CI=true), like the other install
tests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import itertools
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from agent_sessions.api import constants as c
from agent_sessions.cli.main import build_parser
from agent_sessions.dev.authorization import RBACAuthorizer, attributes_for, service_account_user
from agent_sessions.dev.strict_api import RecordedRequest, StrictKubernetesAPI, running_api
from agent_sessions.gateway.cli import options_from_args
from agent_sessions.gateway.options import GatewayOptions
from agent_sessions.gateway.server import serve_gateway
from agent_sessions.k8s.client import make_api_client
from agent_sessions.wire.credentials import session_token

from .conftest import ALICE, CRDS, DEADLINE, TOKENS, USER_RBAC, ended, identity, make_session, read_sse
from .test_gateway_http import session_url
from .test_gateway_wake import resume, wake_value, watches
from support.tools import find_tool
from support.waits import eventually

TIER = "embedded"  # runs helm to render the gateway RBAC

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "agent-session-operator"
RELEASE, INSTALL_NAMESPACE = "agent-session-operator", "agent-sessions-system"
RUNTIME_KEY = bytes(range(32))
"""The key of the runtime key Secret the tests create, as the operator would on its first start."""
GATEWAY_TOKEN = "rendered-gateway-token"
RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
COMPONENT = "app.kubernetes.io/component"

MODES = {"cluster-wide": (), "namespaced": ("watchNamespaces={team-a}",)}
"""The sessions live in team-a, which the namespaced install watches."""


# --- the install, rendered --------------------------------------------------------------------




@functools.cache
def _chart(helm: str, *sets: str) -> tuple[dict, ...]:
    args = [arg for s in sets for arg in ("--set", s)]
    result = subprocess.run([helm, "template", RELEASE, str(CHART), "--namespace", INSTALL_NAMESPACE, *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


@dataclass(frozen=True)
class GatewayInstall:
    """The gateway's part of a rendered install: its RBAC, its account, how its pod starts it."""

    docs: tuple[dict, ...]

    def of_kind(self, *kinds: str) -> list[dict]:
        return [d for d in self.docs
                if d["kind"] in kinds and d["metadata"].get("labels", {}).get(COMPONENT) == "gateway"]

    @property
    def rbac(self) -> list[dict]:
        return self.of_kind(*RBAC_KINDS)

    @property
    def user(self) -> tuple[str, list[str]]:
        (account,) = self.of_kind("ServiceAccount")
        (deployment,) = self.of_kind("Deployment")
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
        return service_account_user(account["metadata"]["namespace"], account["metadata"]["name"])

    def granted(self) -> set[tuple[str, str, str]]:
        """(api group, resource, verb) of every rule of the gateway's roles."""
        return {key for role in self.of_kind("ClusterRole", "Role") for rule in role["rules"]
                for key in itertools.product(rule["apiGroups"], rule["resources"], rule["verbs"])}

    @property
    def runtime_key_secret(self) -> str:
        """`--runtime-key-secret` of the rendered command line."""
        (deployment,) = self.of_kind("Deployment")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        return build_parser().parse_args(container["args"]).runtime_key_secret

    def options(self, tmp_path: Path) -> GatewayOptions:
        """The rendered command line, parsed by the real CLI; the defaults file is the rendered
        ConfigMap's, written where a test can read it instead of the pod's mount."""
        (deployment,) = self.of_kind("Deployment")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        args = build_parser().parse_args(container["args"])
        assert args.command == "gateway"
        (configmap,) = [d for d in self.docs if d["kind"] == "ConfigMap"]
        defaults = Path(args.operator_defaults)
        local = tmp_path / defaults.name
        local.write_text(configmap["data"][defaults.name])
        args.operator_defaults = str(local)
        options = options_from_args(args)
        return dataclasses.replace(options, host="127.0.0.1", port=0, history_poll_seconds=0.05)


def rendered(*sets: str) -> GatewayInstall:
    return GatewayInstall(_chart(find_tool("helm"), *sets))


# --- the emulated cluster, the gateway --------------------------------------------------------


@contextlib.contextmanager
def cluster(install: GatewayInstall) -> Iterator[StrictKubernetesAPI]:
    """The embedded API enforcing the gateway's rendered RBAC (and the test users' roles)."""
    users = {token: identity for token, identity in TOKENS.items() if token != "gateway-token"}
    authorizer = RBACAuthorizer.from_manifests([*install.rbac, *USER_RBAC])
    with running_api(crds=CRDS, tokens={**users, GATEWAY_TOKEN: install.user}, authorizer=authorizer) as api:
        for namespace in ("team-a", "team-b", INSTALL_NAMESPACE):
            api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        # The runtime key Secret, as the operator creates it on its first start.
        namespace, _, name = install.runtime_key_secret.partition("/")
        api.create("secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
                               "data": {"key": base64.b64encode(RUNTIME_KEY).decode()}})
        yield api


@contextlib.asynccontextmanager
async def gateway_of(install: GatewayInstall, api: StrictKubernetesAPI, tmp_path: Path) -> AsyncIterator[str]:
    kubeconfig = api.write_kubeconfig(tmp_path / "gateway-kubeconfig", token=GATEWAY_TOKEN)
    client = await make_api_client(str(kubeconfig))
    try:
        async with serve_gateway(install.options(tmp_path), client) as running:
            yield running.url
    finally:
        await client.close()


def gateway_requests(api: StrictKubernetesAPI, install: GatewayInstall) -> list[RecordedRequest]:
    return [r for r in list(api.requests) if r.user == install.user[0]]


def describe(requests: list[RecordedRequest]) -> str:
    return "\n".join(f"{r.status} {r.method} {r.path}: {r.authorization_reason or r.body}" for r in requests)


def used(requests: list[RecordedRequest]) -> set[tuple[str, str, str]]:
    """(api group, resource[/subresource], verb) of the resource requests, as RBAC sees them."""
    keys = set()
    for r in requests:
        attrs = attributes_for(r.method, r.path, r.query)
        if attrs.resource_request:
            resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
            keys.add((attrs.api_group, resource, attrs.verb))
    return keys


# --- sufficient and minimal -------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(MODES))
async def test_messages_events_and_wake_work_with_exactly_the_rendered_rbac(mode, runtime, http, tmp_path):
    install = rendered(*MODES[mode])
    with cluster(install) as api:
        api.create(c.TEMPLATE_PLURAL, {"apiVersion": c.API_VERSION, "kind": c.TEMPLATE_KIND,
                                       "metadata": {"name": "team", "namespace": "team-a"},
                                       "spec": {"agent": {"image": "example.com/agent:1"}}})
        runtime.add("s1")
        demo = make_session(api, "demo", endpoint=runtime.endpoint("s1"))
        runtime.add("s2")
        sleepy = make_session(api, "sleepy", phase="Stopped", stopped_reason="IdleTimeout",
                              templateRef={"name": "team"})
        # As session runtimes do: every call but healthz needs the session's token, which the
        # gateway derives from the key it read from the Secret (with the rendered RBAC).
        runtime.require_token("s1", session_token(RUNTIME_KEY, demo["metadata"]["uid"]))
        runtime.require_token("s2", session_token(RUNTIME_KEY, sleepy["metadata"]["uid"]))

        async with gateway_of(install, api, tmp_path) as gateway:
            # The probes, as the kubelet calls them.
            for probe in ("/healthz", "/readyz"):
                async with http.get(gateway + probe) as resp:
                    assert resp.status == 200, probe

            # Listing and reading.
            async with http.get(f"{gateway}/v1/namespaces/team-a/sessions", headers=ALICE) as resp:
                assert resp.status == 200, await resp.text()
                assert [item["name"] for item in (await resp.json())["items"]] == ["demo", "sleepy"]
            async with http.get(session_url(gateway, "demo"), headers=ALICE) as resp:
                assert resp.status == 200, await resp.text()

            # A sync round trip.
            async with http.post(session_url(gateway, "demo") + "/messages", json={"text": "hello"},
                                 headers=ALICE) as resp:
                assert resp.status == 200, await resp.text()
                reply = await resp.json()
            assert (reply["text"], reply["session"], reply["seq"]) == ("s1 heard: hello", identity(demo), 5)

            # The event stream: replay, then a streamed turn tailed as it happens.
            async with http.get(session_url(gateway, "demo") + "/events?after_seq=0", headers=ALICE) as events:
                assert events.status == 200
                replay = await read_sse(events, lambda m: len(m) == 5)
                async with http.post(session_url(gateway, "demo") + "/messages?stream=true", json={"text": "again"},
                                     headers=ALICE) as resp:
                    assert resp.status == 200
                    streamed = await read_sse(resp, ended)
                tailed = await read_sse(events, lambda m: len(m) == 5)
            assert [m["data"]["seq"] for m in replay + tailed] == list(range(1, 11))
            assert [m["data"]["seq"] for m in streamed] == list(range(6, 11)) and streamed[-1]["event"] == "done"

            # Wake-on-message: the template is read to resolve wakeOnMessage, the annotation patched,
            # the session watched until the operator (here: the test) has resumed it.
            async def send() -> tuple[int, dict]:
                async with http.post(session_url(gateway, "sleepy") + "/messages", json={"text": "wake up"},
                                     headers=ALICE) as resp:
                    return resp.status, await resp.json()

            answer = asyncio.create_task(send())
            try:
                await api.wait_for_async(lambda: wake_value(api, "sleepy"), timeout=DEADLINE)
                await eventually(lambda: watches(api, "sleepy"))  # resumed while it watches, as in a cluster
                resume(api, runtime, "sleepy", "s2")
                status, body = await asyncio.wait_for(answer, DEADLINE)
            finally:
                answer.cancel()
            assert (status, body["text"], body["session"]) == (200, "s2 heard: wake up", identity(sleepy))

    requests = gateway_requests(api, install)
    refused = [r for r in requests if r.status in (401, 403)]
    assert refused == [], describe(refused)
    assert runtime.refused == []
    assert requests and all(r.authorized for r in requests), describe([r for r in requests if not r.authorized])
    # Every rule the chart grants the gateway was needed here, and nothing else was asked for.
    assert used(requests) == install.granted()


async def test_the_rendered_operator_defaults_reach_the_gateways_wake_decision(runtime, http, tmp_path):
    install = rendered("operatorDefaults.lifecycle.wakeOnMessage=false")
    with cluster(install) as api:
        make_session(api, "sleepy", phase="Stopped", stopped_reason="IdleTimeout")
        async with gateway_of(install, api, tmp_path) as gateway:
            async with http.post(session_url(gateway, "sleepy") + "/messages", json={"text": "x"},
                                 headers=ALICE) as resp:
                body = await resp.json()
    # The operator's defaults say no wake: refused at once, the session left alone.
    assert (resp.status, body["code"]) == (409, "session_not_running")
    assert wake_value(api, "sleepy") is None
    assert [r for r in gateway_requests(api, install) if r.status in (401, 403)] == []
