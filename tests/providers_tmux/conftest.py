"""tmux specifics against a real tmux server: a socket of each test's own (`ags-test-<random>`),
killed at the end, the strict embedded API, and the real operator when a test needs it."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.embedded import CRDS, api, api_client, kubeconfig  # noqa: F401 (fixtures)
from support.tmux import private_tmux_socket, require_tmux, socket_file  # noqa: F401

from agent_sessions.api import constants as c
from agent_sessions.dev.strict_api import StrictKubernetesAPI
from agent_sessions.handlers.operator import OperatorThread
from agent_sessions.handlers.settings import OperatorOptions
from agent_sessions.providers.tmux import TmuxProvider, TmuxServer

ROOT = Path(__file__).resolve().parents[2]
DEMO_AGENT = [sys.executable, "-m", "agent_sessions.runtime.demo_agent"]
TIMEOUT = 20.0


@pytest.fixture
def socket_name() -> Iterator[str]:
    yield from private_tmux_socket()
@pytest.fixture
def tmux(socket_name: str) -> TmuxServer:
    """The test's tmux server, to look at what the provider made."""
    return TmuxServer(socket_name)


@pytest.fixture
def workspace_root(tmp_path: Path) -> Path:
    return tmp_path / "workspaces"


@pytest.fixture
def start_operator(kubeconfig: str, socket_name: str, workspace_root: Path) -> Iterator[Callable[[], OperatorThread]]:
    """Start operators running the tmux provider on the test's socket (stopped at the end)."""
    running: list[OperatorThread] = []

    def start() -> OperatorThread:
        options = OperatorOptions(info_refresh_seconds=0.5, log_refresh_seconds=1.0,
                                  operator_defaults={"tmux": {"socketName": socket_name}})
        holder: list[OperatorThread] = []

        def factory(api_client: Any) -> TmuxProvider:
            def changed(namespace: str, name: str) -> None:
                holder[0].runtime.scheduler.trigger((namespace, name))

            provider = TmuxProvider(api_client, socket_name=socket_name, workspace_root=workspace_root,
                                    on_change=changed)
            holder[0].tmux_providers.append(provider)  # type: ignore[attr-defined]
            return provider

        operator = OperatorThread(options, kubeconfig=kubeconfig, provider_factories={c.PROVIDER_TMUX: factory})
        operator.tmux_providers = []  # type: ignore[attr-defined]
        holder.append(operator)
        running.append(operator.start())
        return operator

    yield start
    for operator in running:
        operator.stop()


def agent_session(name: str, namespace: str = "default", **spec: Any) -> dict:
    spec.setdefault("provider", c.PROVIDER_TMUX)
    spec.setdefault("agent", {"command": DEMO_AGENT})
    return {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND,
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def is_ready(obj: dict | None) -> bool:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(x["type"] == c.COND_READY and x["status"] == "True" for x in conditions)


def wait_session(api: StrictKubernetesAPI, namespace: str, name: str, predicate: Callable[[dict | None], bool],
                 timeout: float = TIMEOUT) -> dict | None:
    """Wait (woken by every API write, with a deadline) until the session matches `predicate`;
    the predicate sees None once the session is gone."""

    def check() -> Any:
        obj = api.get(c.SESSION_PLURAL, namespace, name)
        return (obj or {"gone": True}) if predicate(obj) else None

    try:
        found = api.wait_for(check, timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"{namespace}/{name} never matched: {api.get(c.SESSION_PLURAL, namespace, name)}") from None
    return None if found == {"gone": True} else found


def wait_until(predicate: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    """For what no API write signals (tmux, the operator's own progress): poll, with a deadline."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.02)
    return result


def converged(operator: OperatorThread, keys: list[tuple[str, str]]) -> bool:
    scheduler = operator.runtime.scheduler if operator.runtime else None
    return bool(scheduler) and all(scheduler.completed[k] >= 1 for k in keys) and not scheduler.busy
