"""The missing-binary session on the real API server: a real kube-apiserver, and a simulated node
that runs the pod's command (the runtime bridge) as a local process. Ready=False with the exec error
within seconds, as on the embedded API (DESIGN §10: the real server is the truth), and the real
server's `kubectl get ags` table (rendered from the CRD's printer columns) shows READY and REASON."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_sessions.api import constants as c
from agent_sessions.handlers.settings import OperatorOptions
from support.backends import operator_on_a_real_node
from support.cluster.control_plane import ControlPlane
from support.cluster.real_api import RealAPI
from support.tools import find_tool
from support.waits import condition, wait_session

pytestmark = pytest.mark.realcluster
FAIL_FAST_SECONDS = 10.0


@pytest.fixture
def real(control_plane: ControlPlane, tmp_path: Path) -> Iterator[RealAPI]:
    # The defaults of `agent-sessions run` (info refresh 10 s): not what makes it fast.
    with operator_on_a_real_node(control_plane, tmp_path, OperatorOptions(log_refresh_seconds=1.0)) as (api, _):
        yield api


def test_a_missing_agent_binary_is_ready_false_with_the_exec_error_within_ten_seconds(real: RealAPI, control_plane: ControlPlane,
                                                                                  tmp_path: Path):
    started = time.monotonic()
    real.create(c.SESSION_PLURAL, {
        "apiVersion": c.API_VERSION, "kind": c.SESSION_KIND, "metadata": {"name": "missing", "namespace": "default"},
        "spec": {"agent": {"image": "local", "command": ["claude-code-not-installed"]},
                 "lifecycle": {"restartPolicy": c.RESTART_NEVER}}})

    def failed_with_the_exec_error(obj: dict | None) -> bool:
        cond = condition(obj, c.COND_READY) or {}
        return cond.get("status") == "False" and cond.get("reason") == "AgentExecFailed" and \
            "cannot run 'claude-code-not-installed': No such file or directory" in cond.get("message", "")

    obj = wait_session(real, "missing", failed_with_the_exec_error, timeout=60)
    elapsed = time.monotonic() - started
    print(f"\ntime to Ready=False/AgentExecFailed on the real API server: {elapsed:.2f}s")
    assert elapsed <= FAIL_FAST_SECONDS, f"took {elapsed:.1f}s"
    assert obj["status"]["phase"] == c.PHASE_FAILED
    # The log tail comes through pods/log: apiserver → the node's kubelet port.
    obj = wait_session(real, "missing", lambda o: "No such file or directory" in
                       (((o or {}).get("status") or {}).get("logs") or {}).get("tail", ""), timeout=30)


    # The real API server renders the table from the CRD: READY and REASON without -o wide.
    kubeconfig = control_plane.kubeconfig(tmp_path / "admin.kubeconfig", "admin")
    got = subprocess.run([find_tool("kubectl"), "--kubeconfig", str(kubeconfig), "get", "ags"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert got.returncode == 0, got.stderr
    header, row = got.stdout.splitlines()
    cells = dict(zip(header.split(), row.split()))  # the cells up to HEALTH are one word each
    assert (cells["PHASE"], cells["READY"], cells["REASON"], cells["HEALTH"]) == \
        ("Failed", "False", "AgentExecFailed", "Unhealthy")
