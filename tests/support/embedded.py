"""The strict embedded Kubernetes API as the suites use it: fixtures, and waits on sessions.

Conftest modules import the fixtures by name (pytest registers fixtures a conftest imports).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent_sessions.api import constants as c
from agent_sessions.dev.strict_api import StrictKubernetesAPI, running_api
from agent_sessions.k8s.client import make_api_client

ROOT = Path(__file__).resolve().parents[2]
CRDS = [yaml.safe_load((ROOT / "crds" / n).read_text()) for n in ("agentsessions.yaml", "sessiontemplates.yaml")]
TIMEOUT = 20.0


@pytest.fixture
def api() -> Iterator[StrictKubernetesAPI]:
    with running_api(crds=CRDS) as server:
        yield server


@pytest.fixture
def kubeconfig(api: StrictKubernetesAPI, tmp_path: Path) -> str:
    return str(api.write_kubeconfig(tmp_path / "kubeconfig"))


@pytest.fixture
async def api_client(kubeconfig: str) -> AsyncIterator[Any]:
    client = await make_api_client(kubeconfig)
    try:
        yield client
    finally:
        await client.close()


def condition(obj: dict | None, type_: str) -> dict | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return cond
    return None


def ready(obj: dict) -> bool:
    cond = condition(obj, c.COND_READY)
    return cond is not None and cond["status"] == "True"


def phase_is(phase: str) -> Callable[[dict], bool]:
    return lambda obj: (obj.get("status") or {}).get("phase") == phase


def wait_session(api: StrictKubernetesAPI, name: str, predicate: Callable[[dict], bool], namespace: str = "default",
                 timeout: float = TIMEOUT) -> dict:
    """Wait (woken by API writes, with a deadline) until the session satisfies `predicate`."""

    def check() -> dict | None:
        obj = api.get(c.SESSION_PLURAL, namespace, name)
        return obj if obj is not None and predicate(obj) else None

    try:
        return api.wait_for(check, timeout=timeout)
    except TimeoutError:
        obj = api.get(c.SESSION_PLURAL, namespace, name)
        raise AssertionError(f"session {namespace}/{name} never matched; last seen: {yaml.safe_dump(obj)}") from None


def wait_until(predicate: Callable[[], Any], timeout: float = TIMEOUT, interval: float = 0.02) -> Any:
    """For conditions no API write signals (the operator's own progress, a server's log): poll,
    with a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
