"""A tier's gate seen from outside: one test run in a pytest subprocess without what the tier
needs, once as on a workstation and once under `CI=true` (it must skip, then fail)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_probe(probe: str, *, unset: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess[str]:
    """`pytest probe` with `CI` and `unset` removed from the environment and `env` added."""
    environment = {k: v for k, v in os.environ.items() if k not in ("CI", *unset)}
    environment.update(env)
    return subprocess.run([sys.executable, "-m", "pytest", probe, "-q", "-rs", "-p", "no:cacheprovider"],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)


def assert_skipped(result: subprocess.CompletedProcess[str], reason: str) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert reason in result.stdout


def assert_failed(result: subprocess.CompletedProcess[str], reason: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert reason in result.stdout
    assert "skipped" not in result.stdout.splitlines()[-1]
