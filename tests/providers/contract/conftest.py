"""The provider contract (§6), run against every provider: the same checks, one fixture each.

A provider joins the suite with a fixture named `<type>_contract` returning a `ContractEnv`, and
its name in `PROVIDERS`. The checks never look inside a provider: they call the protocol and use
the env's few probes (`backings`, `workspace`, `remove_backing`). What legitimately differs
between providers is declared in `Expectations`, not branched on by name in the tests.

* `pod` runs against the strict embedded API with the local pod runner: pods really run the
  runtime bridge and the demo agent (readiness comes from a real `/healthz` probe), and the
  workspace PVC is a directory that outlives the pod.
* `tmux` runs a real tmux server on a socket of its own (`ags-test-<random>`), killed at the end.
* `http`: add `http_contract` below (the reference server of `dev/provider_server/`), and
  `"http"` to `PROVIDERS`. See docs/providers.md, "Writing a provider".
"""

from __future__ import annotations

import asyncio
import copy
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.embedded import CRDS, api, api_client, kubeconfig  # noqa: F401 (fixtures)
from support.tmux import private_tmux_socket, require_tmux, socket_file  # noqa: F401

from agent_sessions.api import constants as c
from agent_sessions.dev.pod_runner import LocalPodRunner, LoopbackAddresses, claim_directory
from agent_sessions.dev.strict_api import StrictKubernetesAPI
from agent_sessions.lifecycle import BackingState, Observation
from agent_sessions.providers import Provider, SessionRef
from agent_sessions.providers.pod import PodProvider, pvc_name
from agent_sessions.providers.pod.names import label_value
from agent_sessions.dev.provider_server.server import running_provider_server
from agent_sessions.providers.http import HTTPProvider
from agent_sessions.providers.tmux import TmuxProvider, TmuxServer

ROOT = Path(__file__).resolve().parents[3]
DEMO_AGENT = [sys.executable, "-m", "agent_sessions.runtime.demo_agent"]
NAMESPACE = "default"
TIMEOUT = 20.0

PROVIDERS = ["pod", "tmux", "http"]
"""Every provider the contract runs against (each needs a `<name>_contract` fixture)."""


@dataclass(frozen=True)
class Expectations:
    """What a provider promises beyond the shared contract, so the checks need no `if name == …`."""

    serves_endpoint: bool = True
    """The runtime really runs: a ready observation's endpoint answers `/healthz`."""
    invalid: tuple[tuple[Mapping[str, Any], str], ...] = ()
    """Config overrides the provider must reject, with a fragment of the expected problem."""


@dataclass
class ContractEnv:
    """One provider under test, and the probes the checks need."""

    name: str
    provider: Provider
    factory: Callable[[Any], Provider]
    """Builds the same provider from an ApiClient (the operator calls it in its own thread)."""
    base_config: Mapping[str, Any]
    """A valid resolved configuration running the demo agent."""
    backings: Callable[[SessionRef], Awaitable[int]]
    """How many backings (pods, tmux sessions, external sessions) exist for the session."""
    workspace: Callable[[SessionRef], Path | None]
    """Where the session's workspace is on this machine (None: the provider's is not local)."""
    remove_backing: Callable[[SessionRef], Awaitable[None]]
    """Make the backing vanish behind the provider's back."""
    workspace_kept: Callable[[SessionRef], Awaitable[bool]]
    """Whether the provider holds a workspace for the session (a PVC, a directory, …)."""
    expect: Expectations = field(default_factory=Expectations)
    operator_defaults: Mapping[str, Any] = field(default_factory=dict)
    """The operator's defaults layer (§5) a test operator needs for this provider."""
    on_change: Callable[[str, str], None] | None = None
    """Set by operator tests: how a provider without watch events asks for a reconcile."""
    refs: list[SessionRef] = field(default_factory=list)

    def make_ref(self, name: str | None = None, **overrides: Any) -> SessionRef:
        """A new session (fresh uid) with the base config; `agent={…}` merges into the agent
        block, other keyword arguments replace a block (None removes it)."""
        config = copy.deepcopy(dict(self.base_config))
        for key, value in overrides.items():
            if key == "agent" and value is not None:
                config["agent"] = {**config.get("agent", {}), **value}
            elif value is None:
                config.pop(key, None)
            else:
                config[key] = value
        config["agent"] = {k: v for k, v in config.get("agent", {}).items() if v is not None}
        ref = SessionRef(namespace=NAMESPACE, name=name or f"s-{uuid.uuid4().hex[:6]}", uid=str(uuid.uuid4()),
                         config=config)
        self.refs.append(ref)
        return ref

    async def cleanup(self) -> None:
        for ref in self.refs:
            deadline = time.monotonic() + TIMEOUT
            while not await self.provider.delete(ref) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)


@pytest.fixture(params=PROVIDERS)
def contract(request: pytest.FixtureRequest) -> ContractEnv:
    """The provider under test, once per provider in `PROVIDERS`."""
    return request.getfixturevalue(f"{request.param}_contract")


# --- shared infrastructure ---------------------------------------------------------------------


@pytest.fixture
def tmux_socket() -> Iterator[str]:
    yield from private_tmux_socket()
# --- pod ---------------------------------------------------------------------------------------


class UnusedLoopbackAddresses(LoopbackAddresses):
    """Pod addresses whose runtime port nobody listens on yet. Every local pod runner on the
    machine hands out 127.0.0.2 first; a test suite running beside this one would otherwise
    answer our pods' readiness probes with its own runtimes."""

    def acquire(self, waiter: Any = None) -> str | None:
        taken: list[str] = []
        try:
            while (address := super().acquire(waiter)) is not None:
                with socket.socket() as probe:
                    try:
                        probe.bind((address, 8080))
                        return address
                    except OSError:
                        taken.append(address)
            return None
        finally:
            for address in taken:
                self.release(address)



@pytest.fixture
async def pod_contract(api: StrictKubernetesAPI, api_client: Any, tmp_path: Path) -> AsyncIterator[ContractEnv]:
    root = tmp_path / "pods"
    addresses = UnusedLoopbackAddresses(first=100)
    with LocalPodRunner(api, root, probe_interval=0.1, max_grace_period=2.0, addresses=addresses):

        async def backings(ref: SessionRef) -> int:
            pods = api.list("pods", ref.namespace, label_selector=f"{c.LABEL_SESSION_UID}={label_value(ref.uid)}")
            return len([p for p in pods if not p["metadata"].get("deletionTimestamp")])

        async def remove_backing(ref: SessionRef) -> None:
            for pod in api.list("pods", ref.namespace, label_selector=f"{c.LABEL_SESSION_UID}={label_value(ref.uid)}"):
                api.delete("pods", ref.namespace, pod["metadata"]["name"])

        async def claim_kept(ref: SessionRef) -> bool:
            return api.get("persistentvolumeclaims", ref.namespace, pvc_name(ref.namespace, ref.name, ref.uid)) is not None

        env = ContractEnv(
            name="pod",
            provider=PodProvider(api_client),
            factory=PodProvider,
            base_config={"provider": "pod", "agent": {"image": "local", "command": DEMO_AGENT},
                         "workspace": {"size": "1Gi"}},
            backings=backings,
            workspace=lambda ref: claim_directory(root, ref.namespace, pvc_name(ref.namespace, ref.name, ref.uid)),
            remove_backing=remove_backing,
            workspace_kept=claim_kept,
            expect=Expectations(invalid=(({"agent": {"command": None}}, "spec.agent.command: required by the pod provider"),)),
        )
        yield env
        await env.cleanup()


# --- tmux --------------------------------------------------------------------------------------


@pytest.fixture
async def tmux_contract(api_client: Any, tmux_socket: str, tmp_path: Path) -> AsyncIterator[ContractEnv]:
    root = tmp_path / "tmux"
    server = TmuxServer(tmux_socket)

    def factory(client: Any) -> TmuxProvider:
        def changed(namespace: str, name: str) -> None:
            if env.on_change is not None:
                env.on_change(namespace, name)

        return TmuxProvider(client, socket_name=tmux_socket, workspace_root=root, on_change=changed)

    provider = factory(api_client)

    async def backings(ref: SessionRef) -> int:
        return len([s for s in await asyncio.to_thread(server.list) if s.uid == ref.uid])

    async def remove_backing(ref: SessionRef) -> None:
        await asyncio.to_thread(server.kill, provider.tmux_name(ref))

    async def directory_kept(ref: SessionRef) -> bool:
        return provider.workspace(ref).is_dir()

    env = ContractEnv(
        name="tmux",
        provider=provider,
        factory=factory,
        base_config={"provider": "tmux", "agent": {"command": DEMO_AGENT}},
        backings=backings,
        workspace=provider.workspace,
        remove_backing=remove_backing,
        workspace_kept=directory_kept,
        operator_defaults={"tmux": {"socketName": tmux_socket}},
        expect=Expectations(invalid=(
            ({"agent": {"resources": {"limits": {"memory": "1Gi"}}}},
             "spec.agent.resources: not supported by the tmux provider (resourceLimits: false)"),
            ({"workspace": {"size": "1Gi"}}, "spec.workspace.size: not supported by the tmux provider"),
            ({"agent": {"command": None}}, "spec.agent.command: required by the tmux provider"),
        )),
    )
    yield env
    await env.cleanup()


# --- http --------------------------------------------------------------------------------------


@pytest.fixture
async def http_contract(api: StrictKubernetesAPI, api_client: Any, tmp_path: Path) -> AsyncIterator[ContractEnv]:
    """The reference platform (`agent-sessions provider-server`), with a bearer token from a Secret."""
    workdir = tmp_path / "platform"
    api.create("secrets", {"metadata": {"name": "platform", "namespace": NAMESPACE}, "stringData": {"token": "s3cret"}})
    with running_provider_server(tokens=["s3cret"], workdir=workdir) as platform:
        records = platform.server.platform.records

        async def backings(ref: SessionRef) -> int:
            return 1 if ref.uid in records else 0

        async def remove_backing(ref: SessionRef) -> None:
            await asyncio.to_thread(platform.call, platform.server.platform.delete(ref.uid))

        async def workspace_kept(ref: SessionRef) -> bool:
            return (workdir / ref.uid / "workspace").is_dir()

        def factory(client: Any) -> HTTPProvider:
            """The operator's http provider, allowing this platform (`--http-platform`) and its
            sessions' runtimes, each on a local port of its own (`--http-endpoint`)."""
            return HTTPProvider(client, platforms=[platform.url], endpoints=["http://127.0.0.1:*"])

        env = ContractEnv(
            name="http",
            provider=factory(api_client),
            factory=factory,
            base_config={"provider": "http", "agent": {"command": DEMO_AGENT},
                         "http": {"url": platform.url, "credentialsSecretRef": {"name": "platform", "key": "token"}}},
            backings=backings,
            workspace=lambda ref: workdir / ref.uid / "workspace",
            remove_backing=remove_backing,
            workspace_kept=workspace_kept,
            expect=Expectations(invalid=(
                ({"agent": {"env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}},
                 "fieldRef"),
            )),
        )
        # One look first, so this provider's cached capabilities match what the operator's will be.
        await env.provider.observe(env.make_ref())
        env.refs.clear()
        yield env
        await env.cleanup()


# --- helpers for the checks -----------------------------------------------------------------


async def eventually_ready(env: ContractEnv, ref: SessionRef, timeout: float = TIMEOUT) -> Observation:
    """Observe until the session runs and is ready, calling `ensure` whenever it shows no backing
    — what the lifecycle does while Creating (a terminating backing is waited for, not ensured
    over)."""
    deadline = time.monotonic() + timeout
    while True:
        observation = await env.provider.observe(ref)
        if observation.state == BackingState.RUNNING and observation.ready:
            return observation
        if observation.state in (BackingState.ABSENT, BackingState.STOPPED):
            await env.provider.ensure(ref)
        if time.monotonic() > deadline:
            raise AssertionError(f"{env.name}: session never became ready; last observation: {observation}")
        await asyncio.sleep(0.05)
