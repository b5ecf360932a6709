"""Container processes on this machine: the command resolved on PATH, the grace period between
SIGTERM and SIGKILL, and the process group that dies with the container."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Final





RUNTIME_EXECUTABLE: Final = "agent-sessions"
RUNTIME_MODULE: Final = "agent_sessions.cli.main"
INHERITED_ENV: Final = (
    "PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "PYTHONPATH",
)
"""Host variables a local process gets before the pod's own env (tools need them to work)."""
DEFAULT_GRACE_PERIOD: Final = 30.0


class StartError(Exception):
    """The container's process could not be started (the runtime's `StartError`)."""


def executable(argv: list[str], search_path: str) -> list[str]:
    """`argv` with its program resolved on `search_path`; `agent-sessions`, when not installed as
    a console script, becomes `python -m agent_sessions.cli.main`. StartError if not found."""
    if not argv:
        raise StartError("no command specified")
    program = argv[0]
    if "/" in program:
        return argv
    found = shutil.which(program, path=search_path)
    if found:
        return [found, *argv[1:]]
    if program == RUNTIME_EXECUTABLE:
        return [sys.executable, "-m", RUNTIME_MODULE, *argv[1:]]
    raise StartError(f'exec: "{program}": executable file not found in $PATH')


def grace_period(pod: dict, cap: float) -> float:
    """Seconds between SIGTERM and SIGKILL for `pod`, at most `cap`: its
    `deletionGracePeriodSeconds` once it is being deleted (what the API decided, from the
    DELETE's options or the spec), else its `terminationGracePeriodSeconds` (30 if unset)."""
    spec, meta = pod.get("spec") or {}, pod["metadata"]
    grace = meta.get("deletionGracePeriodSeconds")
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds")
    grace = DEFAULT_GRACE_PERIOD if grace is None else float(grace)
    return max(0.0, min(grace, cap))


def kill_group(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):
        pass


def await_group_end(group: int, timeout: float = 5.0) -> None:
    """Waits (briefly polling: no notification exists for it) until no process of `group` runs
    any more — killed processes take a moment to die."""
    deadline, pause = time.monotonic() + timeout, 0.001
    while group_runs(group) and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def group_runs(group: int) -> bool:
    """Whether a live (not zombie) process is in process group `group`. From /proc where there is
    one: zombies are dead, but answer signals until reaped, and an init that does not reap (some
    container PID 1s) leaves them for good."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(group, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(group) and fields[0] not in ("Z", "X"):
            return True
    return False
