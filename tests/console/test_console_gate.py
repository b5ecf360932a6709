"""The browser tests skip on a workstation without Chromium, with a one-line reason, and fail
instead under `CI=true`: `.ci/run` installs Chromium, and a CI that lost it must not pass by
skipping. (The browser fixture comes first, so neither run starts `make dev`'s stack.)"""

from __future__ import annotations

from support.gates import assert_failed, assert_skipped, run_probe

TIER = "embedded"  # runs pytest in a subprocess

PROBE = "tests/console/test_console_safety.py::test_the_policy_blocks_inline_script_style_and_eval_in_the_page"
REASON = "need Chromium: apt-get install chromium"


def test_without_chromium_the_browser_tests_skip_with_the_reason():
    assert_skipped(run_probe(PROBE, CHROMIUM="/nonexistent/chromium"), REASON)


def test_without_chromium_under_ci_the_browser_tests_fail():
    assert_failed(run_probe(PROBE, CHROMIUM="/nonexistent/chromium", CI="true"), REASON)
