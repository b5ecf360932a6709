"""The container's process: started in its own process group, its output read line by line
into the pod's log, stopped with SIGTERM then SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from typing import IO, Final

from agent_sessions.dev.object_store import now_rfc3339
from agent_sessions.dev.pod_runner.processes import (
    StartError,
    await_group_end,
    executable,
    kill_group,
)


START_ERROR_EXIT_CODE: Final = 128
MAX_LINE: Final = 64 * 1024


class ContainerProcess:
    """The process side of :class:`~agent_sessions.dev.pod_runner.pod_run.PodRun` (a mixin: it
    uses the run's pod, container, environment and log)."""

    def _run_container(self, argv: list[str]) -> dict | None:
        """Runs the process until it exits (its `terminated` state) or the run is halted (None)."""
        started_at = now_rfc3339()
        self.created = True
        try:
            command = executable(argv, self.env["PATH"])
            self.exited.clear()
            process = subprocess.Popen(  # noqa: S603 - running the pod's command is the point
                command, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        except (StartError, OSError) as exc:
            message = str(exc) if isinstance(exc, StartError) else f"exec: {exc}"
            return {"exitCode": START_ERROR_EXIT_CODE, "reason": "StartError", "message": message,
                    "startedAt": started_at, "finishedAt": now_rfc3339()}
        self.process = process
        if self.runner.on_container_start is not None:
            self.runner.on_container_start(process.pid)
        container_id = f"local://{process.pid}"
        assert process.stdout is not None
        self._reader = threading.Thread(target=self._read_output, args=(process.stdout,),
                                        name=f"pod {self.namespace}/{self.name} output", daemon=True)
        self._reader.start()
        threading.Thread(target=self._await_exit, args=(process,),
                         name=f"pod {self.namespace}/{self.name} exit", daemon=True).start()
        probe = self.container.get("readinessProbe")
        self._write(self._running_status(probe is None, started_at, container_id))
        if probe is None:
            self._wait(self.exited.is_set)
        else:
            self._probe_until_exit(probe, started_at, container_id)
        if self.halted:
            return None
        self._reader.join(timeout=2)
        code = process.returncode
        exit_code = code if code >= 0 else 128 - code  # killed by signal N: 128+N, as runtimes say
        return {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                "startedAt": started_at, "finishedAt": now_rfc3339(), "containerID": container_id}

    def _await_exit(self, process: subprocess.Popen[bytes]) -> None:
        process.wait()
        kill_group(process.pid, signal.SIGKILL)  # what is left of the container dies with it
        await_group_end(process.pid)
        self.exited.set()
        self.wake.set()

    def _stop_process(self) -> None:
        process = self.process
        if process is not None and not self.exited.is_set():
            kill_group(process.pid, signal.SIGTERM)
            while not self.exited.is_set():  # woken by the exit, or a shorter grace period
                self.wake.clear()
                remaining = self.halted_at + self.grace - time.monotonic()
                if remaining <= 0 or self.exited.is_set():
                    break
                self.wake.wait(remaining)
            if not self.exited.is_set():
                kill_group(process.pid, signal.SIGKILL)
                self.exited.wait(5)
        if self._reader is not None:
            self._reader.join(timeout=2)

    def _read_output(self, stream: IO[bytes]) -> None:
        with stream:
            for line in iter(lambda: stream.readline(MAX_LINE), b""):
                self._append_log(line.decode("utf-8", "replace"))

    def _append_log(self, text: str) -> None:
        """Into pods/log, keeping at most `max_log_bytes` (dropping a quarter of it, oldest
        lines first, whenever it is full: few rewrites of the whole text)."""
        limit = self.runner.max_log_bytes
        api, name = self.runner.api, self.container["name"]
        with self._log_lock:  # held by `removed()` too: no append after the pod is gone
            if self.gone:
                return
            size = len(text.encode())
            self._log.append(text)
            self._log_bytes += size
            if self._log_bytes <= limit:
                api.append_pod_log(self.namespace, self.name, text, container=name)
                return
            while self._log and self._log_bytes > limit * 3 // 4:
                self._log_bytes -= len(self._log.popleft().encode())
            api.set_pod_log(self.namespace, self.name, "".join(self._log), container=name)
