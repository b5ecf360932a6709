"""The real-cluster tier skips on a workstation without `KUBE_ASSETS`, with a one-line reason, and
fails instead under `CI=true`: a CI whose set-up lost the assets must not pass by skipping."""

from __future__ import annotations

from support.gates import assert_failed, assert_skipped, run_probe

TIER = "embedded"  # runs pytest in a subprocess

PROBE = "tests/harness/test_node_simulator.py::test_node_is_registered_ready_with_a_lease"
REASON = "KUBE_ASSETS is not set"


def test_without_kube_assets_the_tier_skips_with_the_reason():
    assert_skipped(run_probe(PROBE, unset=("KUBE_ASSETS",)), REASON)


def test_without_kube_assets_under_ci_the_tier_fails():
    assert_failed(run_probe(PROBE, unset=("KUBE_ASSETS",), CI="true"), REASON)
