"""Sessions and templates as the operator suites write them, and what they ask of the operator.

Shared by the operator's suites (`tests/handlers`), the CLI's (`tests/cli`), the differential
test of the two backends (`tests/dev`) and the benchmarks: one definition of a sample session, of
"converged" and of the lifecycle whose writes the budget test and the real-server bench count.
"""

from __future__ import annotations

from typing import Any

from agent_sessions.api import constants as c
from agent_sessions.handlers.operator import OperatorThread
from agent_sessions.wire.runtime_client import Delivery
from agent_sessions.wire.runtime_info import RuntimeInfo
from support.waits import TIMEOUT, phase_is, ready, wait_session

IMAGE = "ghcr.io/agent-session-operator/agent-sessions:0.1.0"


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


def pods_of(api: Any, name: str, namespace: str = "default") -> list[dict]:
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


class AcceptingRuntime:
    """Stands in for the sessions' runtime bridges, which the fake kubelet and the fake-mode node
    do not run: the agent is healthy and idle, and every message is taken at once (as the bridge
    takes a prompt: `wait=false`). `delivered` lists `(message id, text)` in the order received."""

    def __init__(self) -> None:
        self.delivered: list[tuple[str, str]] = []

    async def info(self, endpoint: str, session: Any = None) -> RuntimeInfo:
        return RuntimeInfo()

    async def deliver(self, endpoint: str, text: str, message_id: str, session: Any = None) -> Delivery:
        self.delivered.append((message_id, text))
        return Delivery(accepted=True)

    async def close(self) -> None:
        pass
