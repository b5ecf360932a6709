"""The readiness probe (httpGet, tcpSocket or exec), run until the container exits."""

from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
import time
from typing import Any

from agent_sessions.dev.pod_runner.addresses import HOST_IP
from agent_sessions.dev.pod_runner.processes import StartError, executable
from agent_sessions.dev.pod_runner.volumes import localize


class Readiness:
    """Readiness probing of :class:`~agent_sessions.dev.pod_runner.pod_run.PodRun` (a mixin)."""

    def _probe_until_exit(self, probe: dict, started_at: str, container_id: str) -> None:
        ready, successes, failures = False, 0, 0
        next_at = time.monotonic() + float(probe.get("initialDelaySeconds") or 0)
        while True:
            self._wait(self.exited.is_set, timeout=max(0.0, next_at - time.monotonic()))
            if self.halted or self.exited.is_set():
                return
            if self._probe(probe):
                successes, failures = successes + 1, 0
            else:
                successes, failures = 0, failures + 1
            if not ready and successes >= int(probe.get("successThreshold") or 1):
                ready = True
                self._write(self._running_status(True, started_at, container_id))
            elif ready and failures >= int(probe.get("failureThreshold") or 3):
                ready = False
                self._write(self._running_status(False, started_at, container_id))
            interval = self.runner.ready_probe_interval if ready else self.runner.probe_interval
            next_at = time.monotonic() + interval

    def _probe(self, probe: dict) -> bool:
        timeout = min(float(probe.get("timeoutSeconds") or 1), 5.0)
        if "httpGet" in probe:
            return self._probe_http(probe["httpGet"], timeout)
        if "tcpSocket" in probe:
            target = probe["tcpSocket"]
            try:
                with socket.create_connection((target.get("host") or self.ip, self._port(target.get("port"))),
                                              timeout=timeout):
                    return True
            except (OSError, ValueError):
                return False
        if "exec" in probe:
            words = [localize(str(w), self.mounts) for w in probe["exec"].get("command") or ()]
            try:
                result = subprocess.run(executable(words, self.env["PATH"]), env=self.env, cwd=self.cwd,  # noqa: S603
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, timeout=timeout, check=False)
            except (StartError, OSError, subprocess.TimeoutExpired):
                return False
            return result.returncode == 0
        return True  # grpc probes are not supported: count them as passing

    def _probe_http(self, target: dict, timeout: float) -> bool:
        try:
            host, port = target.get("host") or self.ip or HOST_IP, self._port(target.get("port"))
        except ValueError:
            return False
        if str(target.get("scheme") or "HTTP").upper() == "HTTPS":
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=timeout, context=ssl._create_unverified_context())  # noqa: S323 - as the kubelet
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        headers = {"User-Agent": "kube-probe/local", **{h["name"]: h["value"] for h in target.get("httpHeaders") or ()}}
        try:
            connection.request("GET", target.get("path") or "/", headers=headers)
            return 200 <= connection.getresponse().status < 400  # the kubelet's success range
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    def _port(self, port: Any) -> int:
        """A probe's port: a number, or the name of one of the container's ports."""
        if isinstance(port, str) and not port.isdigit():
            for declared in self.container.get("ports") or ():
                if declared.get("name") == port:
                    return int(declared["containerPort"])
            raise ValueError(f"port {port!r} is not declared by the container")
        return int(port)
