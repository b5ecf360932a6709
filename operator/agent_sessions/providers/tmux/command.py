"""What runs in a session's tmux window, as pure functions of the session and its config.

The window runs the runtime bridge (§7) through the configured shell:

    <tmux.shell> -c 'exec <python> -I launch.py <env file> -- <python> -m agent_sessions.runtime
        --host 127.0.0.1 --port <port> --workspace <dir> … -- <agent.command> <agent.args>'

The environment does not go on a command line: tmux keeps a pane's start command for anyone on
the socket to read (`#{pane_start_command}`), and command lines are visible in `ps`. It goes to
a 0600 file that `launch.py` reads, deletes, and turns into the bridge's whole environment —
a clean one (`process_env`), not the operator's.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from agent_sessions.api import constants as c

from ..base import SessionRef
from .constants import (
    DEFAULT_SHELL,
    ENV_SESSION_NAME,
    ENV_SESSION_NAMESPACE,
    ENV_SESSION_UID,
    INHERITED_ENV,
    RUNTIME_HOST,
)
from .validation import block

RUNTIME_COMMAND: Final = (sys.executable, "-m", "agent_sessions.runtime")
"""The bridge, run by this operator's own interpreter (the tmux provider is for local development,
where the operator runs from the project's virtualenv)."""
LAUNCHER: Final = Path(__file__).with_name("launch.py")


def runtime_argv(
    session: SessionRef,
    config: Mapping[str, Any],
    *,
    port: int,
    workspace: Path,
    runtime_command: Sequence[str] = RUNTIME_COMMAND,
    token_file: Path | None = None,
) -> list[str]:
    """The bridge's command line, wrapping the agent's command and args; with `token_file`, the
    bridge requires the token in it (the file's path is on the command line, never the token)."""
    agent = block(config, "agent")
    return [
        *runtime_command,
        *(("--token-file", str(token_file)) if token_file is not None else ()),
        "--host", RUNTIME_HOST,
        "--port", str(port),
        "--workspace", str(workspace),
        "--protocol", str(agent.get("protocol") or c.PROTOCOL_ACP),
        "--session-namespace", session.namespace,
        "--session-name", session.name,
        "--session-uid", session.uid,
        "--",
        *(str(arg) for arg in agent.get("command") or ()),
        *(str(arg) for arg in agent.get("args") or ()),
    ]


def window_argv(config: Mapping[str, Any], env_file: Path, command: Sequence[str], *,
                python: str = sys.executable) -> list[str]:
    """The tmux window's command: the shell, exec-ing the launcher, exec-ing `command` — so the
    pane's process *is* the bridge (its exit status is the pane's)."""
    shell = shlex.split(str(block(config, "tmux").get("shell") or DEFAULT_SHELL))
    launch = [python, "-I", str(LAUNCHER), str(env_file), "--", *command]
    return [*shell, "-c", "exec " + shlex.join(launch)]


def process_env(host_env: Mapping[str, str], agent_env: Mapping[str, str], session: SessionRef) -> dict[str, str]:
    """The bridge's (and so the agent's) whole environment: a few host variables tools need, the
    agent's own, then the session's identity (which the agent cannot override)."""
    env = {name: host_env[name] for name in INHERITED_ENV if name in host_env}
    # The operator's own interpreter's scripts first (e.g. `agent-sessions demo-agent` from an
    # unactivated virtualenv), as the local pod runner does.
    scripts = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join(p for p in (scripts, env.get("PATH", os.defpath)) if p)
    env.update(agent_env)
    env.update({
        "PYTHONUNBUFFERED": "1",
        ENV_SESSION_NAMESPACE: session.namespace,
        ENV_SESSION_NAME: session.name,
        ENV_SESSION_UID: session.uid,
    })
    return env
