"""The http provider against real things: the reference server (its sessions are real runtime
bridges running the demo agent), the strict embedded Kubernetes API (for the token Secret and,
with the operator, the AgentSessions), and the real operator in its own thread."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import waits
from support.embedded import CRDS, api, condition, kubeconfig, phase_is, ready  # noqa: F401
from support.operators import Operators, operators  # noqa: F401 (fixture)
from support.waits import wait_until  # noqa: F401 (the tests import it from here)

from agent_sessions.api import constants as c
from agent_sessions.dev.provider_server import ProviderServerThread, running_provider_server
from agent_sessions.dev.strict_api import StrictKubernetesAPI
from agent_sessions.handlers.operator import OperatorThread
from agent_sessions.k8s.client import make_api_client
from agent_sessions.providers.http import HTTPProvider
from agent_sessions.providers.pod.provider import PodProvider

ROOT = Path(__file__).resolve().parents[3]
NAMESPACE = "default"
SECRET = "agent-platform"
TOKEN = "token-one-7f3a9c"
TIMEOUT = 30.0


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[ProviderServerThread]:
    """The reference server, requiring `TOKEN`."""
    with running_provider_server(tokens=[TOKEN], workdir=tmp_path / "platform") as server:
        yield server


@pytest.fixture
def token_secret(api: StrictKubernetesAPI) -> Callable[[str], None]:
    """Create (first call) or rotate (later calls) the platform token Secret."""
    api.create("secrets", secret_body(TOKEN))

    def rotate(token: str) -> None:
        api.patch("secrets", NAMESPACE, SECRET, {"data": {"token": b64(token)}})

    return rotate


PLATFORM_ENDPOINTS = ("http://127.0.0.1:*",)
"""Where the reference server's sessions' runtimes listen (a local port each): what the operator
must allow besides the platform's own origin (`--http-endpoint`)."""


def allowed_platforms(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """The reference server's URL when the test runs one (`platform`): the operator's allowlist
    (`--http-platform`); none otherwise, as an operator configured with none."""
    return (request.getfixturevalue("platform").url,) if "platform" in request.fixturenames else ()


def http_provider(api_client: Any, platforms: tuple[str, ...]) -> HTTPProvider:
    """An HTTPProvider as the operator builds it, allowing `platforms` and their runtimes."""
    return HTTPProvider(api_client, platforms=platforms, endpoints=PLATFORM_ENDPOINTS)


@pytest.fixture
async def provider(kubeconfig: str, request: pytest.FixtureRequest) -> AsyncIterator[HTTPProvider]:
    """An HTTPProvider as the operator builds it: from the API client, allowing the test's platform."""
    client = await make_api_client(kubeconfig)
    made = http_provider(client, allowed_platforms(request))
    try:
        yield made
    finally:
        await made.close()
        await client.close()


@pytest.fixture
def start_operator(kubeconfig: str, request: pytest.FixtureRequest, operators: Operators) -> Callable[..., OperatorThread]:
    """Start operators with the pod and http providers registered (stopped at the end); the http
    provider allows the test's platform (or `http_platforms=` given)."""

    def start(*, http_platforms: tuple[str, ...] | None = None, **given: Any) -> OperatorThread:
        platforms = allowed_platforms(request) if http_platforms is None else http_platforms
        factories = {"pod": PodProvider, "http": lambda api: http_provider(api, platforms)}
        starter = operators.starter(kubeconfig, info_refresh_seconds=0.5, log_refresh_seconds=2.0,
                                    provider_factories=factories)
        return starter(**given)

    return start


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret_body(token: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET, "namespace": NAMESPACE},
            "type": "Opaque", "data": {"token": b64(token)}}


def http_config(url: str, **http: Any) -> dict:
    return {"url": url, "credentialsSecretRef": {"name": SECRET, "key": "token"}, **http}


def http_session(name: str, url: str, *, http: dict | None = None, **spec: Any) -> dict:
    spec = {"provider": "http", "http": http or http_config(url), **spec}
    return {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND,
            "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}


def wait_session(api: StrictKubernetesAPI, name: str, predicate: Callable[[dict], bool],
                 timeout: float = TIMEOUT) -> dict:
    return waits.wait_session(api, name, predicate, NAMESPACE, timeout)
