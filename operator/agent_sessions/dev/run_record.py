"""What one `agent-sessions dev` run started that would outlive it if it were killed.

A run that is stopped (Ctrl-C, SIGTERM, a closed terminal) stops its pods' processes and its tmux
sessions itself. A run that is killed (SIGKILL, the OOM killer) cannot: each pod's process group
leads a session of its own, so no signal of the terminal reaches it, and a tmux session lives
under its own server — bridges and agents run on, holding their loopback addresses and ports,
owned by an API that no longer exists.

So a run writes down each as it starts, in `<state>/running/<pid>.jsonl`: a pod's process group
by its leader's pid and start time (a pid is reused; with its start time it is that process or
none), a tmux session by its socket and name (`ags-…-<uid8>`: no other session has it). A run
that stops removes its file. The next run in the same state directory stops what the file of a
run that is gone lists — a process group with SIGTERM, then SIGKILL after a grace period; a tmux
session as tmux ends one (SIGHUP, which a bridge takes as a stop) — before it starts anything.
The file of a run still going is left alone.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

from agent_sessions.dev.pod_runner.processes import await_group_end, group_runs, kill_group

logger = logging.getLogger(__name__)

GRACE_SECONDS = 5.0
"""Between SIGTERM and SIGKILL to a process group left running (the pod runner's cap too)."""


def process_start(pid: int) -> str | None:
    """When process `pid` started, as the system says it (None: no such process). With the pid,
    it names one process: a pid is reused, not at the same moment."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None  # Linux: the process is gone
    except (OSError, IndexError):
        return None
    try:  # no /proc (macOS): ps says when it started
        shown = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return shown.stdout.strip() or None


class RunRecord:
    """This run's record (`process_group`, `tmux_session` as things start), and the stopping of
    what killed runs left (`stop_leftovers`). Entered before anything starts; its exit after a
    clean stop removes the record."""

    def __init__(self, state: Path) -> None:
        self.directory = Path(state) / "running"
        self.path = self.directory / f"{os.getpid()}.jsonl"
        self._lock = threading.Lock()
        self._tmux: set[tuple[str, str]] = set()

    def __enter__(self) -> RunRecord:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._append({"owner": os.getpid(), "started": process_start(os.getpid())})
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:  # stopped cleanly: nothing of it runs any more
            self.path.unlink(missing_ok=True)

    # --- what this run starts -------------------------------------------------------------

    def process_group(self, pid: int) -> None:
        """A pod's container process, the leader of its own process group, just started."""
        self._append({"group": pid, "started": process_start(pid)})

    def tmux_session(self, socket_name: str, name: str) -> None:
        with self._lock:
            if (socket_name, name) in self._tmux:
                return
            self._tmux.add((socket_name, name))
        self._append({"tmux": name, "socket": socket_name})

    def _append(self, entry: dict[str, Any]) -> None:
        try:
            with self._lock, self.path.open("a", encoding="utf-8") as file:
                file.write(json.dumps(entry) + "\n")
        except OSError as exc:  # the run goes on; only a kill would leave this one behind
            logger.warning("could not write down %s in %s: %s", entry, self.path, exc)

    # --- what killed runs left --------------------------------------------------------------

    def stop_leftovers(self, tmux_bin: str | None = None) -> list[str]:
        """Stop what the records of runs that are gone list; what was stopped, said in a few words."""
        groups, sessions = 0, 0
        for record in sorted(self.directory.glob("*.jsonl")):
            if record == self.path:
                continue
            entries = _read(record)
            owner = next((e for e in entries if "owner" in e), None)
            if owner is not None and process_start(owner["owner"]) == owner.get("started"):
                continue  # that run is still going
            groups += sum(_stop_group(e["group"], e.get("started")) for e in entries if "group" in e)
            sessions += sum(_stop_tmux(e["socket"], e["tmux"], tmux_bin) for e in entries if "tmux" in e)
            record.unlink(missing_ok=True)
        return ([f"{groups} pod process group{'s' if groups != 1 else ''}"] if groups else []) + \
            ([f"{sessions} tmux session{'s' if sessions != 1 else ''}"] if sessions else [])


def _read(path: Path) -> list[dict[str, Any]]:
    entries = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:  # a line cut short by the kill
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def _stop_group(group: Any, started: Any) -> bool:
    """Stop process group `group` if it is still the one recorded: its leader runs with the
    recorded start time, or the leader is gone but the group is not (a pid that leads a group
    with live members is never given to another process)."""
    if not isinstance(group, int) or group <= 1:
        return False
    leader = process_start(group)
    if leader is not None and leader != started:
        return False  # the pid is another process's now
    if leader is None and not group_runs(group):
        return False
    kill_group(group, signal.SIGTERM)
    await_group_end(group, GRACE_SECONDS)
    if group_runs(group):
        kill_group(group, signal.SIGKILL)
        await_group_end(group)
    return True


def _stop_tmux(socket_name: Any, name: Any, tmux_bin: str | None) -> bool:
    from agent_sessions.providers.tmux.tmux_server import TmuxServer

    if not (isinstance(socket_name, str) and isinstance(name, str)):
        return False
    try:
        return TmuxServer(socket_name, tmux_bin=tmux_bin).kill(name)
    except Exception as exc:  # noqa: BLE001 - no tmux, or its server went: nothing to stop there
        logger.info("could not stop tmux session %s on socket %s: %s", name, socket_name, exc)
        return False
