"""kopf peering priorities of the chart's operator replicas (issue 12, point 9): the chart passes
no `--priority`, and `agent-sessions run` then picks a random one per process, so two replicas
started with the chart's command line do not tie (equal priorities would leave both active).
values.yaml and the chart's README say exactly this."""

from __future__ import annotations

import kopf
import prometheus_client
import pytest
import yaml

from agent_sessions.cli.main import _cmd_run, build_parser
from agent_sessions.handlers import operator as operator_module
from deploy.test_install import CHART, NAMESPACE, RELEASE, load_all, run
from support.tools import find_tool

TIER = "embedded"  # renders the chart with helm


def rendered_operator_args(*sets: str) -> list[str]:
    args = [arg for s in sets for arg in ("--set", s)]
    result = run(find_tool("helm"), "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)
    assert result.returncode == 0, result.stderr
    (deployment,) = [d for d in load_all(result.stdout) if d["kind"] == "Deployment"
                     and d["metadata"]["labels"]["app.kubernetes.io/component"] == "operator"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container["args"]


@pytest.fixture
def started_priorities(monkeypatch, tmp_path):
    """`start(args)` runs `agent-sessions run` up to the operator's start and returns its priority."""
    seen: list[int] = []

    async def run_operator(options, kubeconfig=None):
        seen.append(options.priority)

    monkeypatch.setattr(operator_module, "run_operator", run_operator)
    monkeypatch.setattr(kopf, "configure", lambda **kwargs: None)
    monkeypatch.setattr(prometheus_client, "start_http_server", lambda *args, **kwargs: None)
    defaults = tmp_path / "defaults.yaml"
    defaults.write_text(yaml.safe_dump({}))

    def start(args: list[str]) -> int:
        args = [f"--defaults={defaults}" if a.startswith("--defaults=") else a for a in args]
        assert _cmd_run(build_parser().parse_args(args)) == 0
        return seen[-1]

    return start


def test_the_chart_passes_no_priority_and_replicas_pick_distinct_random_ones(started_priorities):
    args = rendered_operator_args("replicas=2")
    assert not [a for a in args if a.startswith("--priority")]
    assert any(a.startswith("--peering=") for a in args)
    priorities = [started_priorities(args) for _ in range(2)]
    assert priorities[0] != priorities[1]
    assert all(1 <= p <= 1_000_000 for p in priorities)


def test_a_fixed_priority_in_extra_args_gives_every_replica_the_same_one(started_priorities):
    """Why values.yaml warns against it: kopf keeps replicas of equal priority all active."""
    args = rendered_operator_args("replicas=2", "extraArgs={--priority=7}")
    assert [started_priorities(args) for _ in range(2)] == [7, 7]


def test_the_docs_say_what_the_operator_does():
    values = (CHART / "values.yaml").read_text()
    readme = (CHART / "README.md").read_text()
    assert "must run with a distinct kopf priority" not in values
    assert "Each replica picks a random priority" in values
    assert "each replica picks a random one" in readme
