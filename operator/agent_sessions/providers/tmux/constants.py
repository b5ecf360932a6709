"""Names and numbers of the tmux provider: its part of the contract with tmux, with the runtime
bridge, and with the person at the keyboard (`tmux -L agent-sessions ls` shows what it made).

The `@ags-*` user options are how a tmux session says whose it is after an operator restart:
tmux keeps them as long as the session lives, and `list-sessions` reads them all in one call.
"""

from __future__ import annotations

from typing import Final

from agent_sessions.wire.session_ref import ENV_SESSION_NAME, ENV_SESSION_NAMESPACE, ENV_SESSION_UID  # noqa: F401 (the runtime bridge reads them)

DEFAULT_SOCKET: Final = "agent-sessions"
"""`tmux -L agent-sessions`: apart from the user's own tmux server."""
DEFAULT_SHELL: Final = "/bin/sh"

RUNTIME_HOST: Final = "127.0.0.1"
"""The bridge listens on loopback only: the endpoint is reachable from this host, not the network."""
HEALTH_TIMEOUT_SECONDS: Final = 1.0
STOP_GRACE_SECONDS: Final = 5.0
"""How long `stop()` lets the bridge shut down on SIGTERM (flush history, stop the agent) before
the tmux session is killed."""

EXIT_STATUS_GRACE_SECONDS: Final = 2.0
"""How long a dead pane may lack its exit status before it is reported as unknown (tmux collects
it within milliseconds, except when it loses it)."""
START_WATCH_SECONDS: Final = 120.0
START_WATCH_INTERVAL_SECONDS: Final = 0.1
"""A new session's `/healthz` is probed this often, for at most that long, to tell the operator
the moment it is ready (`TmuxProvider(on_change=…)`)."""

ORPHAN_MIN_AGE_SECONDS: Final = 60.0
"""A tmux session is judged an orphan only once it is this old: the list of AgentSessions it is
compared with may have been taken just before it was created."""

WINDOW_WIDTH: Final = 220
WINDOW_HEIGHT: Final = 50
"""Size of the detached window: wide enough that most log lines do not wrap."""

OPTION_UID: Final = "@ags-uid"
OPTION_NAMESPACE: Final = "@ags-namespace"
OPTION_NAME: Final = "@ags-name"
OPTION_PORT: Final = "@ags-port"
"""The bridge's port: `observe()` after an operator restart finds the endpoint again here."""
OPTION_WORKSPACE: Final = "@ags-workspace"
OPTION_CONFIG_HASH: Final = "@ags-config-hash"

LAUNCH_DIRECTORY: Final = ".launch"
"""Under the workspace root: the environment files handed to `launch.py` (0600, deleted on read)."""


INHERITED_ENV: Final = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "PYTHONPATH", "VIRTUAL_ENV",
)
"""Variables of the operator's environment an agent gets; nothing else of it (the operator's
kubeconfig and cloud credentials stay out of agents). HOME is kept: a local agent finds its own
login (e.g. `~/.claude`) there."""

TOKEN_FILE: Final = ".agent-session/token"
"""Where, under the session's workspace, the runtime bridge's token is written (0600, rewritten on
every start): the bridge's state directory (`runtime.workspace.STATE_DIR`)."""
