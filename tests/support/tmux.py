"""A tmux server of the test's own, for the tmux provider's suites."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_sessions.providers.tmux import TmuxServer


def socket_file(name: str) -> Path:
    """Where tmux keeps the socket `tmux -L name`."""
    return Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}" / name


def require_tmux() -> None:
    """tmux tests skip where tmux is missing, and fail in CI (which installs it: `.ci/run`)."""
    if shutil.which("tmux"):
        return
    if os.environ.get("CI"):
        pytest.fail("tmux is not installed (CI installs it in .ci/run)")
    pytest.skip("tmux is not installed")


def private_tmux_socket() -> Iterator[str]:
    """A tmux socket name of the test's own (`tmux -L ags-test-<random>`); its server is killed,
    and the socket file tmux leaves behind removed, at the end."""
    require_tmux()
    name = f"ags-test-{uuid.uuid4().hex[:10]}"
    yield name
    TmuxServer(name).kill_server()
    socket_file(name).unlink(missing_ok=True)
