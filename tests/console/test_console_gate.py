"""The browser tests skip on a workstation without Chromium, with a one-line reason, and fail
instead under `CI=true`: `.ci/run` installs Chromium, and a CI that lost it must not pass by
skipping. (The browser fixture comes first, so neither run starts `make dev`'s stack.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TIER = "embedded"  # runs pytest in a subprocess

ROOT = Path(__file__).resolve().parents[2]
PROBE = "tests/console/test_console_safety.py::test_the_policy_blocks_inline_script_style_and_eval_in_the_page"


def run_probe(**env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "CI"}
    environment.update(CHROMIUM="/nonexistent/chromium", **env)
    return subprocess.run([sys.executable, "-m", "pytest", PROBE, "-q", "-rs", "-p", "no:cacheprovider"],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)


def test_without_chromium_the_browser_tests_skip_with_the_reason():
    result = run_probe()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "need Chromium: apt-get install chromium" in result.stdout


def test_without_chromium_under_ci_the_browser_tests_fail():
    result = run_probe(CI="true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "need Chromium: apt-get install chromium" in result.stdout
    assert "skipped" not in result.stdout.splitlines()[-1]
