"""The real-cluster tier skips on a workstation without `KUBE_ASSETS`, with a one-line reason, and
fails instead under `CI=true`: a CI whose set-up lost the assets must not pass by skipping."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TIER = "embedded"  # runs pytest in a subprocess

ROOT = Path(__file__).resolve().parents[2]
PROBE = "tests/harness/test_node_simulator.py::test_node_is_registered_ready_with_a_lease"


def run_probe(**env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("KUBE_ASSETS", "CI")}
    environment.update(env)
    return subprocess.run([sys.executable, "-m", "pytest", PROBE, "-q", "-rs", "-p", "no:cacheprovider"],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)


def test_without_kube_assets_the_tier_skips_with_the_reason():
    result = run_probe()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "KUBE_ASSETS is not set" in result.stdout


def test_without_kube_assets_under_ci_the_tier_fails():
    result = run_probe(CI="true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "KUBE_ASSETS is not set" in result.stdout
    assert "skipped" not in result.stdout.splitlines()[-1]
