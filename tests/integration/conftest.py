"""The real operator (kopf in its own thread) against both backends: the strict embedded API with
its fake kubelet, and a real kube-apiserver with a simulated node (`support.backends`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_sessions.api import constants as c
from agent_sessions.dev.strict_api import StrictKubernetesAPI
from agent_sessions.handlers.operator import OperatorThread
from agent_sessions.handlers.settings import OperatorOptions
from agent_sessions.wire.runtime_client import Delivery
from agent_sessions.wire.runtime_info import RuntimeInfo
from support.backends import api, kubelet, real_cluster  # noqa: F401 (fixtures, parametrised by backend)
from support.cluster.fixtures import control_plane  # noqa: F401
from support.embedded import (  # noqa: F401 (fixtures and helpers the tests import from here)
    CRDS,
    TIMEOUT,
    condition,
    kubeconfig,
    phase_is,
    ready,
    wait_session,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "ghcr.io/agent-session-operator/agent-sessions:0.1.0"


@pytest.fixture
def start_operator(kubeconfig: str) -> Iterator[Callable[..., OperatorThread]]:
    """Start (and at the end stop) operators; tests that restart the operator call it twice."""
    running: list[OperatorThread] = []
    option_names = set(OperatorOptions.__dataclass_fields__)

    def start(**given: Any) -> OperatorThread:
        """`OperatorOptions` fields go to the options, anything else (`runtime_client_factory`,
        …) to `OperatorThread`."""
        options = OperatorOptions(**{k: v for k, v in given.items() if k in option_names})
        extra = {k: v for k, v in given.items() if k not in option_names}
        operator = OperatorThread(options, kubeconfig=kubeconfig, **extra).start()
        running.append(operator)
        return operator

    yield start
    for operator in running:
        operator.stop()


@pytest.fixture
def operator(start_operator: Callable[..., OperatorThread], kubelet: Any) -> OperatorThread:
    return start_operator()


class AcceptingRuntime:
    """Stands in for the sessions' runtime bridges, which the fake kubelet and the fake-mode node
    do not run: the agent is healthy and idle, and every message is taken at once (as the bridge
    takes a prompt: `wait=false`). `delivered` lists `(message id, text)` in the order received."""

    def __init__(self) -> None:
        self.delivered: list[tuple[str, str]] = []

    async def info(self, endpoint: str) -> RuntimeInfo:
        return RuntimeInfo()

    async def deliver(self, endpoint: str, text: str, message_id: str) -> Delivery:
        self.delivered.append((message_id, text))
        return Delivery(accepted=True)

    async def close(self) -> None:
        pass


def session(name: str, namespace: str = "default", **spec: Any) -> dict:
    if "templateRef" not in spec:
        spec.setdefault("agent", {"image": IMAGE, "command": ["agent-sessions", "demo-agent"]})
    return {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def template(name: str, namespace: str = "default", **spec: Any) -> dict:
    return {"apiVersion": c.API_VERSION, "kind": c.TEMPLATE_KIND, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def converged(operator: OperatorThread, keys: list[tuple[str, str]]) -> bool:
    """Every key was reconciled at least once by this operator, and nothing is in progress."""
    scheduler = operator.runtime.scheduler if operator.runtime else None
    return bool(scheduler) and all(scheduler.completed[k] >= 1 for k in keys) and not scheduler.busy


def pods_of(api: StrictKubernetesAPI, name: str, namespace: str = "default") -> list[dict]:
    return api.list("pods", namespace, label_selector=f"{c.LABEL_SESSION}={name}")


def run_one_lifecycle(api: Any, name: str, timeout: float = TIMEOUT) -> None:
    """create → Running → Stopped → Running → deleted, waiting for each step (the scenario whose
    writes the budget test and the real-server bench count)."""
    api.create(c.SESSION_PLURAL, session(name))
    wait_session(api, name, ready, timeout=timeout)
    api.patch(c.SESSION_PLURAL, "default", name, {"spec": {"state": "Stopped"}})
    wait_session(api, name, phase_is(c.PHASE_STOPPED), timeout=timeout)
    api.patch(c.SESSION_PLURAL, "default", name, {"spec": {"state": "Running"}})
    wait_session(api, name, ready, timeout=timeout)
    api.delete(c.SESSION_PLURAL, "default", name)
    api.wait_for(lambda: api.get(c.SESSION_PLURAL, "default", name) is None, timeout=timeout)
