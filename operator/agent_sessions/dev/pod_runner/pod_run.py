"""One pod's life from creation to deletion, in its own thread: address, volumes,
configuration, the container's restarts with back-off, and halting on deletion."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from agent_sessions.api.constants import ENV_RUNTIME_HOST
from agent_sessions.dev.object_store import now_rfc3339
from agent_sessions.dev.pod_runner.addresses import HOST_IP
from agent_sessions.dev.pod_runner.container import ContainerProcess
from agent_sessions.dev.pod_runner.environment import (
    ContainerConfigError,
    expand,
    resolve_env,
    secret_volume_files,
)
from agent_sessions.dev.pod_runner.readiness import Readiness
from agent_sessions.dev.pod_runner.status import CONFIG_ERROR, CRASH_LOOP, StatusReports
from agent_sessions.dev.pod_runner.volumes import (
    TMP_PATH,
    WORKSPACE_PATH,
    Mount,
    localize,
    mounts_for,
    pod_directory,
)
from agent_sessions.dev.pod_status import pending_status

if TYPE_CHECKING:  # the runner creates pod runs: imported for annotations only
    from agent_sessions.dev.pod_runner.runner import LocalPodRunner

logger = logging.getLogger(__name__)


class PodRun(ContainerProcess, Readiness, StatusReports):
    """Runs one pod (one uid) from its creation to its deletion, in its own thread."""

    def __init__(self, runner: LocalPodRunner, pod: dict, predecessor: PodRun | None) -> None:
        meta = pod["metadata"]
        self.runner, self.pod = runner, pod
        self.namespace, self.name, self.uid = meta["namespace"], meta["name"], meta.get("uid", "")
        self.key = (self.namespace, self.name)
        self.container = pod["spec"]["containers"][0]
        self.predecessor = predecessor
        self.wake = threading.Event()
        self.exited = threading.Event()
        self.done = threading.Event()
        self.halted = False
        self.deleted = False
        self.grace = 0.0
        self.halted_at = 0.0
        self.gone = False
        """The pod is removed from the API: nothing more may be written for it."""
        self.ip: str | None = None
        self.holds_ip = False
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.last_state: dict | None = None
        self.start_time = ""
        self.created = False
        """The container was created once: from then on the pod is Running, between restarts too."""
        self.mounts: list[Mount] = []
        self.workspace = pod_directory(runner.root, pod) / "workspace"
        self.env: dict[str, str] = {}
        self.cwd = str(self.workspace)
        self._config_changed = False
        self._reader: threading.Thread | None = None
        self._log_lock = threading.Lock()
        self._log: deque[str] = deque()
        self._log_bytes = 0
        self._thread = threading.Thread(target=self._main, name=f"pod {self.namespace}/{self.name}",
                                        daemon=True)

    # --- control (from other threads) ---------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def halt(self, grace: float, *, deleted: bool) -> None:
        """Stop the pod's process (SIGTERM, SIGKILL `grace` seconds after the first halt; a
        later, shorter `grace` brings SIGKILL forward); `deleted`: the pod is being deleted, its
        own directories go too and, once nothing runs, it is deleted from the API."""
        if not self.halted:
            self.halted_at, self.grace = time.monotonic(), grace
        else:
            self.grace = min(self.grace, grace)
        self.deleted, self.halted = self.deleted or deleted, True
        self.wake.set()

    def config_changed(self) -> None:
        self._config_changed = True
        self.wake.set()

    def removed(self) -> None:
        """The pod left the API (called under the store lock: only flags and events)."""
        with self._log_lock:
            self.gone = True
        self.wake.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    # --- the pod's life -----------------------------------------------------------------

    def _main(self) -> None:
        try:
            if self.predecessor is not None:  # same name, older uid: let it release its things
                self.predecessor.done.wait()
                self.predecessor = None
            self._live()
        except Exception:  # a runner bug must not take the other pods down
            logger.exception("local pod %s/%s failed", self.namespace, self.name)
        finally:
            self._stop_process()
            self._release_ip()
            if self.deleted:
                self._remove_own_volumes()
                if not self.gone:  # the kubelet's last word: nothing of the pod runs any more
                    self.runner._delete_stopped(self.namespace, self.name, self.uid)
            self.done.set()
            self.runner._finished(self)

    def _live(self) -> None:
        self.ip = self._acquire_ip()
        if self.ip is None:
            return
        self.start_time = now_rfc3339()
        self._write(self._waiting_status("ContainerCreating"))
        self._prepare_volumes()
        crashes, ran_for = 0, 0.0
        while not self.halted:
            try:
                argv = self._configure()
            except ContainerConfigError as exc:
                self._write(self._waiting_status(getattr(exc, "reason", CONFIG_ERROR), str(exc)))
                self._wait(self._take_config_change)
                continue
            began = time.monotonic()
            terminated = self._run_container(argv)
            ran_for = time.monotonic() - began
            if terminated is None:
                return
            if not self._restarts_after(terminated["exitCode"]):
                phase = "Succeeded" if terminated["exitCode"] == 0 else "Failed"
                self._write(self._terminated_status(phase, terminated))
                self._release_ip()
                self._wait(lambda: False)  # until the pod is deleted (or the runner stops)
                return
            initial, cap = self.runner.restart_backoff
            crashes = 1 if ran_for >= 2 * cap else crashes + 1  # as the kubelet: reset after a good run
            delay = min(initial * 2 ** (crashes - 1), cap)
            self.restarts += 1
            self.last_state = {"terminated": terminated}
            self._write(self._waiting_status(
                CRASH_LOOP, f"back-off {delay:g}s restarting failed container={self.container['name']} "
                            f"pod={self.name}_{self.namespace}({self.uid})"))
            self._wait(lambda: False, timeout=delay)

    def _restarts_after(self, exit_code: int) -> bool:
        policy = (self.pod.get("spec") or {}).get("restartPolicy") or "Always"
        return policy == "Always" or (policy == "OnFailure" and exit_code != 0)

    def _acquire_ip(self) -> str | None:
        while not self.halted:
            self.wake.clear()
            ip = self.runner.addresses.acquire(waiter=self.wake)
            if ip is not None:
                self.holds_ip = True
                return ip
            self._write(pending_status(self.pod, "ContainerCreating", "no free loopback address",
                                       now=now_rfc3339()))
            self.wake.wait()
        return None

    def _release_ip(self) -> None:
        if self.holds_ip and self.ip is not None:
            self.holds_ip = False
            self.runner.addresses.release(self.ip)

    def _prepare_volumes(self) -> None:
        self._remove_own_volumes()  # a new pod's emptyDirs start empty, whatever an earlier one left
        self.mounts = mounts_for(self.runner.root, self.pod, self.container)
        workspace = [m.local for m in self.mounts if m.path == WORKSPACE_PATH]
        self.workspace = workspace[0] if workspace else self.workspace
        for directory in [self.workspace, *(m.local for m in self.mounts)]:
            directory.mkdir(parents=True, exist_ok=True)

    def _remove_own_volumes(self) -> None:
        """The pod's emptyDirs (never its claims' directories)."""
        own = pod_directory(self.runner.root, self.pod)
        for directory in (own / "workspace", own / "volumes"):
            shutil.rmtree(directory, ignore_errors=True)
        try:
            own.rmdir()
        except OSError:
            pass  # not empty (e.g. a claim directory of a pod named "pvc") or already gone

    def _configure(self) -> list[str]:
        """The command line; sets the environment and working directory it runs with."""
        container, mounts = self.container, self.mounts
        assert self.ip is not None
        self._write_secret_volumes()
        own = resolve_env(self.pod, container, pod_ip=self.ip, host_ip=HOST_IP, read=self.runner._read)
        env = {name: os.environ[name] for name in self.runner.inherited_env if name in os.environ}
        env.update(HOME=str(self.workspace), HOSTNAME=self.name, PYTHONUNBUFFERED="1")
        env.update({"TMPDIR": str(m.local) for m in mounts if m.path == TMP_PATH})
        env.update({name: localize(value, mounts) for name, value in own.items()})
        env[ENV_RUNTIME_HOST] = self.ip
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH") or os.defpath])
        self.env = env
        working_dir = str(container.get("workingDir") or "")
        local_dir = localize(working_dir, mounts) if working_dir else ""
        self.cwd = local_dir if local_dir and Path(local_dir).is_dir() else str(self.workspace)
        words = [*(container.get("command") or ()), *(container.get("args") or ())]
        return [localize(expand(str(word), own), mounts) for word in words]

    def _write_secret_volumes(self) -> None:
        """The container's `secret` volumes written afresh (the Secret's keys as files, with their
        modes), before each start; a missing Secret raises VolumeSetupError."""
        volumes = {v.get("name"): v for v in (self.pod.get("spec") or {}).get("volumes") or ()}
        own = pod_directory(self.runner.root, self.pod) / "volumes"
        for mount in self.container.get("volumeMounts") or ():
            volume = volumes.get(mount.get("name")) or {}
            if "secret" not in volume:
                continue
            files = secret_volume_files(volume, self.namespace, self.runner._read)
            directory = own / str(volume.get("name"))
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True, exist_ok=True)
            for relative, (content, mode) in (files or {}).items():
                path = directory / relative
                if directory not in path.parents:
                    continue  # the API server refuses `..` in item paths; never write outside anyway
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(content)
                os.chmod(path, mode)

    def _take_config_change(self) -> bool:
        changed, self._config_changed = self._config_changed, False
        return changed

    def _wait(self, done: Callable[[], bool], timeout: float | None = None) -> None:
        """Until `done()`, the run is halted, or `timeout` passes (woken by `self.wake`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.wake.clear()
            if self.halted or done():
                return
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            self.wake.wait(remaining)
