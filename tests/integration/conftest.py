"""The real operator (kopf in its own thread) against the strict embedded API and a fake kubelet."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent_sessions.api import constants as c
from agent_sessions.dev.fake_kubelet import FakeKubelet
from agent_sessions.dev.strict_api import StrictKubernetesAPI, running_api
from agent_sessions.handlers.operator import OperatorThread
from agent_sessions.handlers.settings import OperatorOptions

ROOT = Path(__file__).resolve().parents[2]
CRDS = [yaml.safe_load((ROOT / "crds" / n).read_text()) for n in ("agentsessions.yaml", "sessiontemplates.yaml")]
IMAGE = "ghcr.io/agent-session-operator/agent-sessions:0.1.0"
TIMEOUT = 20.0


@pytest.fixture
def api() -> Iterator[StrictKubernetesAPI]:
    with running_api(crds=CRDS) as server:
        yield server


@pytest.fixture
def kubelet(api: StrictKubernetesAPI) -> Iterator[FakeKubelet]:
    with FakeKubelet(api) as fake:
        yield fake


@pytest.fixture
def kubeconfig(api: StrictKubernetesAPI, tmp_path: Path) -> str:
    return str(api.write_kubeconfig(tmp_path / "kubeconfig"))


@pytest.fixture
def start_operator(kubeconfig: str) -> Iterator[Callable[..., OperatorThread]]:
    """Start (and at the end stop) operators; tests that restart the operator call it twice."""
    running: list[OperatorThread] = []

    def start(**options: Any) -> OperatorThread:
        operator = OperatorThread(OperatorOptions(**options), kubeconfig=kubeconfig).start()
        running.append(operator)
        return operator

    yield start
    for operator in running:
        operator.stop()


@pytest.fixture
def operator(start_operator: Callable[..., OperatorThread], kubelet: FakeKubelet) -> OperatorThread:
    return start_operator()


def session(name: str, namespace: str = "default", **spec: Any) -> dict:
    if "templateRef" not in spec:
        spec.setdefault("agent", {"image": IMAGE, "command": ["agent-sessions", "demo-agent"]})
    return {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def template(name: str, namespace: str = "default", **spec: Any) -> dict:
    return {"apiVersion": c.API_VERSION, "kind": c.TEMPLATE_KIND, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def condition(obj: dict | None, type_: str) -> dict | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return cond
    return None


def wait_session(api: StrictKubernetesAPI, name: str, predicate: Callable[[dict], bool], namespace: str = "default",
                 timeout: float = TIMEOUT) -> dict:
    """Wait (event-driven, with a deadline) until the session satisfies `predicate`."""

    def check() -> dict | None:
        obj = api.get(c.SESSION_PLURAL, namespace, name)
        return obj if obj is not None and predicate(obj) else None

    try:
        return api.wait_for(check, timeout=timeout)
    except TimeoutError:
        obj = api.get(c.SESSION_PLURAL, namespace, name)
        raise AssertionError(f"session {namespace}/{name} never matched; last seen: {yaml.safe_dump(obj)}") from None


def wait_until(predicate: Callable[[], Any], timeout: float = TIMEOUT, interval: float = 0.02) -> Any:
    """For conditions no API write signals (e.g. the operator's own progress): poll, with a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def converged(operator: OperatorThread, keys: list[tuple[str, str]]) -> bool:
    """Every key was reconciled at least once by this operator, and nothing is in progress."""
    scheduler = operator.runtime.scheduler if operator.runtime else None
    return bool(scheduler) and all(scheduler.completed[k] >= 1 for k in keys) and not scheduler.busy


def phase_is(phase: str) -> Callable[[dict], bool]:
    return lambda obj: (obj.get("status") or {}).get("phase") == phase


def ready(obj: dict) -> bool:
    cond = condition(obj, c.COND_READY)
    return cond is not None and cond["status"] == "True"


def pods_of(api: StrictKubernetesAPI, name: str, namespace: str = "default") -> list[dict]:
    return api.list("pods", namespace, label_selector=f"{c.LABEL_SESSION}={name}")
