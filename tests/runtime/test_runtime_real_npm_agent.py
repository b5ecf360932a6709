"""Optional: a real ACP agent from npm, `@zed-industries/codex-acp`, without credentials. It answers
`initialize` and then refuses `session/new` with "Authentication required" — the bridge reports an
`AuthenticationRequired` start failure naming the agent's auth methods.

Skipped, with the reason, without `npx` or without the npm registry (checked with one `npm view`);
the first run downloads the package into npx's cache."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from .conftest import wait_health

PACKAGE = "@zed-industries/codex-acp"
TIER = "embedded"


def _npx_or_skip() -> str:
    npx, npm = shutil.which("npx"), shutil.which("npm")
    if npx is None or npm is None:
        pytest.skip("npx/npm are not installed")
    try:
        subprocess.run([npm, "view", PACKAGE, "version"], capture_output=True, timeout=30, check=True)
    except (subprocess.SubprocessError, OSError):
        pytest.skip(f"the npm registry does not answer for {PACKAGE} (no network?)")
    return npx


async def test_codex_acp_without_credentials_is_an_authentication_required_start_failure(start_bridge, http):
    npx = _npx_or_skip()
    env = {name: "" for name in ("OPENAI_API_KEY", "CODEX_API_KEY") if name in os.environ}
    bridge = start_bridge(agent=(npx, "-y", PACKAGE), env=env, args=("--start-timeout", "240"))
    health = await wait_health(http, bridge, lambda status, body: body["agentStart"]["state"] != "starting",
                               deadline=300)
    start = health["agentStart"]
    assert (start["state"], start["reason"]) == ("failed", "AuthenticationRequired"), health
    assert "Authentication required" in start["message"] and "OPENAI_API_KEY" in start["message"]
    assert health["error"]["code"] == -32000
