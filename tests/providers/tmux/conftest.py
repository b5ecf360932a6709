"""tmux specifics against a real tmux server: a socket of each test's own (`ags-test-<random>`),
killed at the end, the strict embedded API, and the real operator when a test needs it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.embedded import CRDS, api, api_client, kubeconfig  # noqa: F401 (fixtures)
from support import waits
from support.operators import Operators, operators  # noqa: F401 (fixture)
from support.sessions import converged  # noqa: F401 (the tests import it from here)
from support.tmux import private_tmux_socket, require_tmux, socket_file  # noqa: F401
from support.waits import ready as is_ready, wait_until  # noqa: F401 (the tests import them from here)

from agent_sessions.api import constants as c
from agent_sessions.dev.strict_api import StrictKubernetesAPI
from agent_sessions.handlers.operator import OperatorThread
from agent_sessions.handlers.settings import OperatorOptions
from agent_sessions.providers.tmux import TmuxProvider, TmuxServer

ROOT = Path(__file__).resolve().parents[3]
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
def start_operator(kubeconfig: str, socket_name: str, workspace_root: Path,
                   operators: Operators) -> Callable[[], OperatorThread]:
    """Start operators running the tmux provider on the test's socket (stopped at the end)."""

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
        return operators.run(operator)

    return start


def agent_session(name: str, namespace: str = "default", **spec: Any) -> dict:
    spec.setdefault("provider", c.PROVIDER_TMUX)
    spec.setdefault("agent", {"command": DEMO_AGENT})
    return {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND,
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def wait_session(api: StrictKubernetesAPI, namespace: str, name: str, predicate: Callable[[dict | None], bool],
                 timeout: float = TIMEOUT) -> dict | None:
    """Wait until the session matches `predicate`, which sees None once the session is gone."""
    return waits.wait_session(api, name, predicate, namespace, timeout, allow_gone=True)
