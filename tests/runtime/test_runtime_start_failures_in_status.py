"""An agent that cannot start, end to end: the runtime bridge reports it (`agentStart`), the operator
turns it into `Ready=False` with the bridge's reason and message within seconds — not at the start
timeout — fills `status.logs.tail`, and applies the restart policy.

On the embedded API with the local pod runner (the bridge and its agent really run as processes);
`kubectl get ags` shows it in its default columns.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_sessions.api import constants as c
from agent_sessions.dev.pod_runner import LocalPodRunner
from agent_sessions.dev.strict_api import StrictKubernetesAPI
from agent_sessions.handlers.operator import OperatorThread
from support.embedded import api, kubeconfig  # noqa: F401 (fixtures)
from support.operators import Operators, operators  # noqa: F401 (fixture)
from support.tools import find_tool
from support.waits import condition, wait_session

FAIL_FAST_SECONDS = 10.0
"""The acceptance bound (issue 12): creation to Ready=False with the cause."""
EXITS_DURING_INITIALIZE = [sys.executable, "-c",
                           "import sys; print('no API key configured', file=sys.stderr); sys.exit(2)"]
DEMO = [sys.executable, "-m", "agent_sessions.runtime.demo_agent"]


@pytest.fixture
def runner(api: StrictKubernetesAPI, tmp_path: Path) -> Iterator[LocalPodRunner]:
    with LocalPodRunner(api, tmp_path / "pods") as local:
        yield local


@pytest.fixture
def operator(runner: LocalPodRunner, kubeconfig: str, operators: Operators) -> OperatorThread:
    # The defaults of `agent-sessions run`, but for the log refresh (not what is measured here).
    return operators.starter(kubeconfig, log_refresh_seconds=1.0)()


def agent_session(name: str, command: list[str], restart_policy: str = c.RESTART_NEVER, **agent: Any) -> dict:
    return {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND, "metadata": {"name": name, "namespace": "default"},
            "spec": {"agent": {"image": "local", "command": command, **agent},
                     "lifecycle": {"restartPolicy": restart_policy}}}


def ready_false_with(reason: str, text: str) -> Callable[[dict | None], bool]:
    def check(obj: dict | None) -> bool:
        cond = condition(obj, c.COND_READY) or {}
        return cond.get("status") == "False" and cond.get("reason") == reason and text in cond.get("message", "")
    return check


def create_and_time(api: Any, session: dict, until: Callable[[dict | None], bool]) -> tuple[dict, float]:
    started = time.monotonic()
    api.create(c.SESSION_PLURAL, session)
    obj = wait_session(api, session["metadata"]["name"], until, timeout=60)
    return obj, time.monotonic() - started


def test_a_missing_agent_binary_is_ready_false_with_the_exec_error_within_ten_seconds(api, operator):
    obj, elapsed = create_and_time(api, agent_session("missing", ["claude-code-not-installed"]),
                                   ready_false_with("AgentExecFailed", "cannot run 'claude-code-not-installed': "
                                                    "No such file or directory"))
    print(f"\ntime to Ready=False/AgentExecFailed: {elapsed:.2f}s")
    assert elapsed <= FAIL_FAST_SECONDS, f"took {elapsed:.1f}s"
    status = obj["status"]
    assert status["phase"] == c.PHASE_FAILED, "restartPolicy Never: failed at once, not at startTimeout"
    assert status["health"]["state"] == c.HEALTH_UNHEALTHY
    assert "No such file or directory" in status["health"]["message"]
    obj = wait_session(api, "missing", lambda o: "claude-code-not-installed" in
                       (((o or {}).get("status") or {}).get("logs") or {}).get("tail", ""), timeout=10)
    assert "No such file or directory" in obj["status"]["logs"]["tail"]


def test_an_agent_exiting_during_initialize_fails_with_its_exit_code_and_stderr_in_the_logs(api, operator):
    obj, elapsed = create_and_time(api, agent_session("exits", EXITS_DURING_INITIALIZE),
                                   ready_false_with("AgentExited", "before its session was open"))
    print(f"\ntime to Ready=False/AgentExited: {elapsed:.2f}s")
    assert elapsed <= FAIL_FAST_SECONDS, f"took {elapsed:.1f}s"
    assert obj["status"]["phase"] == c.PHASE_FAILED
    assert "exit code 2" in condition(obj, c.COND_READY)["message"]
    obj = wait_session(api, "exits", lambda o: "no API key configured" in
                       (((o or {}).get("status") or {}).get("logs") or {}).get("tail", ""), timeout=10)


def test_an_agent_requiring_authentication_fails_saying_so(api, operator):
    session = agent_session("needs-auth", DEMO, env=[{"name": "DEMO_AGENT_REQUIRE_AUTH", "value": "1"}])
    obj, elapsed = create_and_time(api, session, ready_false_with("AuthenticationRequired", "Authentication required"))
    print(f"\ntime to Ready=False/AuthenticationRequired: {elapsed:.2f}s")
    assert elapsed <= FAIL_FAST_SECONDS, f"took {elapsed:.1f}s"
    assert obj["status"]["phase"] == c.PHASE_FAILED


def test_under_on_failure_a_missing_binary_is_restarted_up_to_its_backoff_limit_then_fails(api, operator):
    session = agent_session("retries", ["claude-code-not-installed"], restart_policy=c.RESTART_ON_FAILURE)
    session["spec"]["lifecycle"]["backoffLimit"] = 1
    obj, elapsed = create_and_time(api, session, ready_false_with("AgentExecFailed", "restarting (crash 1 of at most 1)"))
    print(f"\ntime to Ready=False/AgentExecFailed (restarting): {elapsed:.2f}s")
    assert elapsed <= FAIL_FAST_SECONDS, f"took {elapsed:.1f}s"
    obj = wait_session(api, "retries", lambda o: ((o or {}).get("status") or {}).get("phase") == c.PHASE_FAILED,
                       timeout=30)
    cond = condition(obj, c.COND_READY)
    assert cond["reason"] == c.REASON_BACKOFF_LIMIT_EXCEEDED and "No such file or directory" in cond["message"]
    assert obj["status"]["crashCount"] == 2


def kubectl_get_ags(kubeconfig: str, *args: str) -> list[dict[str, str]]:
    """`kubectl get ags` as rows of {COLUMN: cell} (cells cut at the header's column starts)."""
    out = subprocess.run([find_tool("kubectl"), "--kubeconfig", kubeconfig, "get", "ags", *args],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    header, *lines = out.rstrip("\n").split("\n")
    names = header.split()
    starts = [header.index(f"{name} ") if name != names[-1] else header.rindex(name) for name in names]
    return [{name: line[start:end].strip() for name, start, end in zip(names, starts, [*starts[1:], None])}
            for line in lines]


def test_kubectl_get_shows_why_a_session_failed_in_its_default_columns(api, operator, kubeconfig):
    api.create(c.SESSION_PLURAL, agent_session("missing", ["claude-code-not-installed"]))
    wait_session(api, "missing", ready_false_with("AgentExecFailed", "No such file or directory"), timeout=30)
    (row,) = kubectl_get_ags(kubeconfig)
    assert (row["NAME"], row["PHASE"], row["READY"], row["REASON"]) == ("missing", "Failed", "False", "AgentExecFailed")
    assert row["HEALTH"] == "Unhealthy" and row["PROVIDER"] == "pod"
    (wide,) = kubectl_get_ags(kubeconfig, "-o", "wide")
    assert wide["MESSAGE"] == ("the agent could not start (AgentExecFailed): cannot run "
                               "'claude-code-not-installed': No such file or directory")
