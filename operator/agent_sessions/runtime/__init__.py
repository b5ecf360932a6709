"""Runtime layer: the bridge that runs inside every session (§7).

`agent-sessions runtime -- <agent command>` is the entrypoint of a session's container (or tmux
window, or local process). It starts the agent, speaks ACP to it over stdio (or plain lines for
CLI agents), and serves the session's HTTP endpoint: health for the probes, info for the
operator, messages (sync or SSE), history and cancel for the gateway and the CLI.

Why a bridge and not the agent itself: agents speak ACP on stdio, one client at a time, and
forget everything when their process ends. The bridge gives each session a network endpoint,
a per-session monotonic `seq` carried on every frame, a history on the workspace volume that
survives stop/resume, and a health that says why the agent is not answering.

Sits beside `handlers`, `gateway` and `dev`; imports only `api`, `config` and `lifecycle`.
"""

from .options import RuntimeOptions, SessionIdentity

__all__ = ["RuntimeOptions", "SessionIdentity"]
