"""kstatus on the real API server: `kubectl wait --for=condition=Ready` — what GitOps tools and
scripts use — works on an AgentSession the operator runs (docs/gitops.md). The operator runs with
the chart's ClusterRole against a real kube-apiserver and its simulated node (`support.backends`).
"""

from __future__ import annotations

import subprocess

import pytest

import support.backends
import support.embedded
import support.operators
from agent_sessions.api import constants as c
from support.sessions import session
from support.tools import ROOT, find_tool

pytestmark = pytest.mark.realcluster

# The real server, its node and the operator, as the operator suites use them (fixtures by name).
api = support.backends.api
kubelet = support.backends.kubelet
real_cluster = support.backends.real_cluster
kubeconfig = support.embedded.kubeconfig
operators = support.operators.operators
start_operator = support.operators.start_operator
operator = support.operators.operator


@pytest.mark.parametrize("api", ["real"], indirect=True)
def test_kubectl_wait_for_condition_ready_returns_once_the_session_runs(api, operator, admin_kubeconfig):
    kubectl = find_tool("kubectl")
    api.create(c.SESSION_PLURAL, session("waited"))
    result = subprocess.run([kubectl, "wait", "--for=condition=Ready", "agentsession/waited", "--namespace",
                             "default", "--timeout=60s", "--kubeconfig", str(admin_kubeconfig)],
                            capture_output=True, text=True, timeout=90, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "condition met" in result.stdout
    obj = api.get(c.SESSION_PLURAL, "default", "waited")
    assert obj["status"]["phase"] == c.PHASE_RUNNING
    # kstatus: the status describes the current spec, and so does its Ready condition.
    generation = obj["metadata"]["generation"]
    assert obj["status"]["observedGeneration"] == generation
    (ready,) = [cond for cond in obj["status"]["conditions"] if cond["type"] == c.COND_READY]
    assert ready["observedGeneration"] == generation


@pytest.mark.parametrize("api", ["real"], indirect=True)
def test_kubectl_wait_for_ready_times_out_on_a_stopped_session_and_waits_for_its_phase(api, operator,
                                                                                       admin_kubeconfig):
    kubectl = find_tool("kubectl")
    api.create(c.SESSION_PLURAL, session("parked", state="Stopped"))

    def wait(condition: str, timeout: str) -> subprocess.CompletedProcess:
        return subprocess.run([kubectl, "wait", condition, "agentsession/parked", "--namespace", "default",
                               f"--timeout={timeout}", "--kubeconfig", str(admin_kubeconfig)],
                              capture_output=True, text=True, timeout=90, cwd=ROOT)

    phase = wait("--for=jsonpath={.status.phase}=Stopped", "60s")
    assert phase.returncode == 0, phase.stdout + phase.stderr
    ready = wait("--for=condition=Ready", "3s")
    assert ready.returncode != 0 and "timed out" in ready.stderr
