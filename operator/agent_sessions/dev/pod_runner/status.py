"""What a pod run reports through the status subresource, in the kubelet's shapes
(``pod_status.py``), always with the pod's uid as precondition."""

from __future__ import annotations

from typing import Final

from agent_sessions.dev.object_store import ApiError, now_rfc3339
from agent_sessions.dev.pod_runner.addresses import HOST_IP
from agent_sessions.dev.pod_status import container_status, pending_status, started_status


CRASH_LOOP: Final = "CrashLoopBackOff"
CONFIG_ERROR: Final = "CreateContainerConfigError"
TERMINAL_PHASES: Final = ("Succeeded", "Failed")


class StatusReports:
    """Status writes of :class:`~agent_sessions.dev.pod_runner.pod_run.PodRun` (a mixin)."""

    def _sandbox(self) -> dict:
        return {"podIP": self.ip, "podIPs": [{"ip": self.ip}], "hostIP": HOST_IP, "startTime": self.start_time}

    def _waiting_status(self, reason: str, message: str = "") -> dict:
        now = now_rfc3339()
        if not self.created:
            return {**pending_status(self.pod, reason, message, now=now), **self._sandbox()}
        waiting = {"reason": reason, **({"message": message} if message else {})}
        container = container_status(self.pod, state={"waiting": waiting}, restarts=self.restarts,
                                     last_state=self.last_state)
        return self._started(container, now)

    def _running_status(self, ready: bool, started_at: str, container_id: str) -> dict:
        container = container_status(self.pod, state={"running": {"startedAt": started_at}},
                                     restarts=self.restarts, ready=ready, started=True,
                                     last_state=self.last_state, container_id=container_id)
        return self._started(container, now_rfc3339())

    def _terminated_status(self, phase: str, terminated: dict) -> dict:
        container = container_status(self.pod, state={"terminated": terminated}, restarts=self.restarts,
                                     last_state=self.last_state, container_id=terminated.get("containerID"))
        return self._started(container, now_rfc3339(), phase=phase)

    def _started(self, container: dict, now: str, phase: str = "Running") -> dict:
        assert self.ip is not None
        return started_status(self.pod, container, ip=self.ip, host_ip=HOST_IP,
                              start_time=self.start_time, now=now, phase=phase)

    def _write(self, status: dict) -> None:
        """Through the status subresource, only to this pod (its uid as precondition)."""
        if self.gone:
            return
        try:
            self.runner.api.patch("pods", self.namespace, self.name,
                                  {"metadata": {"uid": self.uid}, "status": status}, subresource="status")
        except ApiError as exc:
            if exc.code not in (404, 409):  # gone, or replaced by a pod of the same name
                raise
