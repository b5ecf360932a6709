"""Suite-wide: the tier of every test, and one line at the top saying whether the real-cluster
tier runs (docs/testing.md).

`tests/` mirrors the package (`tests/<subpackage>/` holds the tests of `agent_sessions.<subpackage>`);
the other axis, the tier, is a marker every test gets here, from what it stands up:

* `realcluster` — a real kube-apiserver (`KUBE_ASSETS`): the `[real]` case of a test parametrised by
  backend, or anything using the control plane;
* `embedded` — the embedded API, the operator, a gateway, a runtime bridge, local processes or the
  helm/kubectl tools;
* `unit` — none of that: pure functions and objects in this process.

`pytest -m unit` is the fast loop; `pytest -m "not realcluster"` everything but the real server.
A module that starts what no fixture shows (a subprocess or server in the test body) says so with
a module-level `TIER = "embedded"`; the `[real]` cases of a parametrised test are `realcluster`
whatever the module says."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.cluster.control_plane import missing_assets


def pytest_report_header(config: pytest.Config) -> str:
    value = os.environ.get("KUBE_ASSETS")
    reason = missing_assets(Path(value) if value else None)
    if reason is None:
        return f"real-cluster tier: on (KUBE_ASSETS={value})"
    under_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    return f"real-cluster tier: {'FAILS (CI)' if under_ci else 'skipped'}: {reason}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The tier's skips in one line (they share one reason); any other skip with its own."""
    skipped = terminalreporter.stats.get("skipped", [])
    tier = [r for r in skipped if "KUBE_ASSETS" in str(r.longrepr)]
    for report in skipped:
        if report not in tier:
            where, line, reason = report.longrepr if isinstance(report.longrepr, tuple) else ("", 0, report.longrepr)
            terminalreporter.write_line(f"SKIPPED {where}:{line}: {reason}")
    if tier:
        terminalreporter.write_line(f"{len(tier)} real-cluster tests skipped: KUBE_ASSETS is not set "
                                    "(see README, 'The real API server is the truth')")


TIERS = ("unit", "embedded", "realcluster")
REAL_FIXTURES = frozenset({"control_plane", "real_cluster", "real_api", "admin_kubeconfig", "audit_log",
                           "fake_node", "process_node"})
EMBEDDED_FIXTURES = frozenset({
    "api", "kubeconfig", "api_client", "kubelet", "operator", "operators", "start_operator", "runner",
    "make_runner", "gateway", "start_gateway", "runtime", "start_bridge", "platform", "provider",
    "contract", "tmux", "socket_name", "helm", "kubectl", "render",
})


def tier_of(item: pytest.Item) -> str:
    params = getattr(getattr(item, "callspec", None), "params", {})
    names = set(getattr(item, "fixturenames", ()))
    if "real" in (params.get("api"), params.get("backend")) or names & REAL_FIXTURES:
        return "realcluster"
    if item.get_closest_marker("realcluster"):
        return "realcluster"
    declared = getattr(getattr(item, "module", None), "TIER", None)
    if declared is not None:
        assert declared in TIERS, f"{item.nodeid}: TIER {declared!r} is none of {TIERS}"
        return declared
    if names & EMBEDDED_FIXTURES:
        return "embedded"
    return "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = tier_of(item)
        if not item.get_closest_marker(tier):
            item.add_marker(tier)
