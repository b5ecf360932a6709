"""The tmux commands the provider needs, over libtmux, synchronously: the provider runs each
call in a worker thread (`asyncio.to_thread`), never on the event loop.

Every call is one `tmux` invocation, so each is atomic on the server:

* `create` is `new-session` chained (`;`) with the options that identify the session. tmux runs
  a command list to its end before it handles the child's exit, so `remain-on-exit` is on before
  the bridge can possibly end, and a duplicate name stops the list before the options of the
  existing session are touched. "duplicate session" is how `ensure()` learns it exists: never
  check-then-create.
* targets are written `=name:` — exact match. A bare `-t ags-a` would match `ags-a-b-…` as a
  prefix.
* the pane that runs the bridge is remembered (`@ags-pane`): a developer who attaches and opens a
  second window does not turn their shell into the session's runtime.

"No server running" on the socket means no sessions, not a failure. Anything else tmux complains
about is `ProviderUnavailable`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import libtmux
from libtmux import exc as tmux_exc

from ..errors import ProviderUnavailable
from .constants import (
    OPTION_CONFIG_HASH,
    OPTION_NAME,
    OPTION_NAMESPACE,
    OPTION_PORT,
    OPTION_UID,
    OPTION_WORKSPACE,
    WINDOW_HEIGHT,
    WINDOW_WIDTH,
)
from .names import is_provider_session
from .state import TmuxSessionState

OPTION_PANE: Final = "@ags-pane"
"""The id (`%N`) of the pane that runs the bridge; tmux never reuses pane ids on a server."""

_FIELDS: Final = (
    "session_name", OPTION_UID, OPTION_NAMESPACE, OPTION_NAME, OPTION_PORT, OPTION_WORKSPACE,
    OPTION_CONFIG_HASH, OPTION_PANE, "pane_id", "pane_dead", "pane_dead_status", "pane_dead_signal",
    "pane_pid", "session_created",
)
_FORMAT: Final = "\t".join(f"#{{{name}}}" for name in _FIELDS)
_SERVER_GONE: Final = ("server exited unexpectedly", "lost server")
_ATTEMPTS: Final = 5
_ABSENT: Final = ("no server running", "can't find session", "no such session", "session not found")


class TmuxServer:
    """One tmux server, by socket name (`tmux -L`)."""

    def __init__(self, socket_name: str, *, tmux_bin: str | None = None) -> None:
        self.socket_name = socket_name
        self._server = libtmux.Server(socket_name=socket_name, tmux_bin=tmux_bin)

    def create(self, name: str, argv: Sequence[str], *, start_directory: Path,
               options: Mapping[str, str]) -> bool:
        """Start a detached session `name` running `argv`; False when `name` already exists."""
        target = f"={name}:"
        args: list[str] = [
            "-d", "-s", name, "-x", str(WINDOW_WIDTH), "-y", str(WINDOW_HEIGHT), "-c", str(start_directory),
            "--", *argv,
            ";", "set-option", "-w", "-t", target, "remain-on-exit", "on",
            ";", "set-option", "-F", "-t", target, OPTION_PANE, "#{pane_id}",
        ]
        for option, value in options.items():
            args += [";", "set-option", "-t", target, option, value]
        proc = self._run("new-session", *args)
        if proc.returncode != 0 or proc.stderr:
            error = " ".join(proc.stderr)
            if "duplicate session" in error:
                return False
            raise ProviderUnavailable(f"tmux new-session {name} on socket {self.socket_name}: {error}")
        return True

    def describe(self, name: str) -> TmuxSessionState | None:
        """The session `name` (its bridge's pane), or None when there is none."""
        states = _sessions(self._lines("list-panes", "-s", "-t", f"={name}:", "-F", _FORMAT))
        state = states[0] if states else None
        if state is not None and state.dead and state.pane and state.exit_status is None and not state.exit_signal:
            self.collect_exit_statuses()
            states = _sessions(self._lines("list-panes", "-s", "-t", f"={name}:", "-F", _FORMAT))
            state = states[0] if states else None
        return state

    def collect_exit_statuses(self) -> None:
        """Make the server collect the exit status of its ended processes.

        tmux learns a pane's exit status from SIGCHLD. Now and then (tmux 3.3, most often on a
        fresh server) it misses that signal: the pane is dead, its process a zombie nobody reaps,
        and the status never comes. Any other child of the server that ends makes it reap them
        all, so a `run-shell true` is enough."""
        self._lines("run-shell", "true")

    def list(self) -> list[TmuxSessionState]:
        """Every session on the socket named like the provider's (`ags-…`)."""
        return [state for state in _sessions(self._lines("list-panes", "-a", "-F", _FORMAT))
                if is_provider_session(state.name)]

    def kill(self, name: str) -> bool:
        """Kill the session `name` (SIGHUP to its processes); False when there was none."""
        return self._lines("kill-session", "-t", f"={name}") is not None

    def capture(self, name: str, pane: str | None = None) -> str | None:
        """The pane's whole history and screen, wrapped lines joined (None: no such session)."""
        lines = self._lines("capture-pane", "-p", "-J", "-S", "-", "-t", pane or f"={name}:")
        return None if lines is None else "\n".join(lines)

    def kill_server(self) -> None:
        self._lines("kill-server")

    # --- helpers ---------------------------------------------------------------------------

    def _run(self, command: str, *args: str) -> libtmux.common.tmux_cmd:
        """One tmux command. A server that exits as its last session goes (tmux's default) can
        drop a command sent at that moment ("server exited unexpectedly"): nothing was done, so
        it is sent again, to a new server."""
        for attempt in range(_ATTEMPTS):
            try:
                proc = self._server.cmd(command, *args)
            except tmux_exc.TmuxCommandNotFound as error:
                raise ProviderUnavailable(
                    "tmux is not installed on the operator's host (the tmux provider needs it)"
                ) from error
            except OSError as error:
                raise ProviderUnavailable(f"tmux {command} on socket {self.socket_name}: {error}") from error
            if attempt + 1 < _ATTEMPTS and any(marker in line for line in proc.stderr for marker in _SERVER_GONE):
                time.sleep(0.02 * (attempt + 1))
                continue
            return proc
        raise AssertionError("not reached")

    def _lines(self, command: str, *args: str) -> list[str] | None:
        """stdout lines; None when the target (or the whole server) does not exist."""
        proc = self._run(command, *args)
        if proc.returncode == 0 and not proc.stderr:
            return list(proc.stdout)
        error = " ".join(proc.stderr)
        if _absent(error):
            return None
        raise ProviderUnavailable(f"tmux {command} on socket {self.socket_name}: {error or f'exit {proc.returncode}'}")


def _absent(error: str) -> bool:
    if any(marker in error for marker in _ABSENT):
        return True
    # A socket file without a server (a crashed or killed server) or none at all.
    return "error connecting to" in error and ("No such file" in error or "Connection refused" in error)


def _sessions(lines: list[str] | None) -> list[TmuxSessionState]:
    """One state per session: its bridge's pane (`@ags-pane`), else its first pane."""
    by_session: dict[str, TmuxSessionState] = {}
    for line in lines or ():
        values = dict(zip(_FIELDS, line.split("\t"), strict=False))
        name = values.get("session_name", "")
        if not name:
            continue
        runs_bridge = values.get(OPTION_PANE) == values.get("pane_id")
        if name in by_session and not runs_bridge:
            continue
        by_session[name] = _state(values, pane_found=runs_bridge or not values.get(OPTION_PANE))
    return list(by_session.values())


def _state(values: Mapping[str, str], *, pane_found: bool) -> TmuxSessionState:
    dead = values.get("pane_dead") == "1" or not pane_found  # the bridge's pane was closed by hand
    return TmuxSessionState(
        name=values.get("session_name", ""),
        uid=values.get(OPTION_UID, ""),
        namespace=values.get(OPTION_NAMESPACE, ""),
        session=values.get(OPTION_NAME, ""),
        port=_int(values.get(OPTION_PORT)),
        workspace=values.get(OPTION_WORKSPACE, ""),
        config_hash=values.get(OPTION_CONFIG_HASH, ""),
        dead=dead,
        exit_status=_int(values.get("pane_dead_status")) if pane_found else None,
        exit_signal=_int(values.get("pane_dead_signal")) if pane_found else None,
        pid=_int(values.get("pane_pid")) if pane_found and not dead else None,
        pane=values.get("pane_id", "") if pane_found else "",
        created=_int(values.get("session_created")),
    )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
