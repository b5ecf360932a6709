"""A fake kubelet for the embedded API: moves pods through the states a real node reports.

There is no node behind the embedded API, so nothing would ever set a pod's status. This plays
the kubelet's part of the contract the operator depends on, step by step, so the operator sees
the same sequence of watch events it would see on a cluster:

    (new) → bound to `embedded-node` → Pending/ContainerCreating → Running, Ready
    (deleted) → Terminating (deletionTimestamp) → gone

and, on demand, what goes wrong on real nodes: image pull errors, crashes (restarted per the
pod's restartPolicy, with CrashLoopBackOff and OOMKilled), exits 0 or non-zero, eviction.

It runs in its own thread, wakes on every write to the API (no polling), and writes only
through the status subresource, as a kubelet does — with two exceptions, both a real
component's: it binds each new pod to `NODE_NAME` through `pods/{name}/binding` (the
scheduler's part; nothing else sets `spec.nodeName`, and the API deletes only bound pods
gracefully), and it finishes a graceful deletion the kubelet's way. A pod being deleted gets
no more status: after `termination_delay` seconds (the time its "containers" take to stop after
SIGTERM; 0 by default) the kubelet deletes it with `gracePeriodSeconds: 0` and its uid as
precondition, so that a new pod of the same name is never touched.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .object_store import ApiError, now_rfc3339
from .pod_status import (
    NODE_NAME,
    conditions,
    container_image,
    container_status,
    first_container_status,
    pending_status,
    started_status,
    terminated_status,
)
from .strict_api import StrictKubernetesAPI

logger = logging.getLogger(__name__)

PULL_ERRORS = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName")


@dataclass
class PodScript:
    """What happens to one pod when it starts (set before the pod is created, or by default)."""

    waiting_reason: str | None = None
    """Stay Pending with this container waiting reason (e.g. `ImagePullBackOff`)."""
    message: str = ""
    hold: bool = False
    """Stay Pending/ContainerCreating until released (e.g. a slow image pull)."""


@dataclass
class FakeKubelet:
    api: StrictKubernetesAPI
    scripts: list[tuple[Callable[[dict], bool], PodScript]] = field(default_factory=list)
    termination_delay: float = 0.0
    """Seconds between a pod's deletion (its "SIGTERM") and the kubelet's final delete."""
    node_name: str = NODE_NAME
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _ips: itertools.count = field(default_factory=lambda: itertools.count(2))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seen_rv: int = 0
    _rescan: bool = True
    _terminating: dict[str, tuple[float, str, str]] = field(default_factory=dict)
    """uid → (when to delete it, namespace, name), for pods being deleted."""

    # --- running -------------------------------------------------------------------------

    def start(self) -> FakeKubelet:
        self.api.store.subscribe(self._wake.set)
        self._thread = threading.Thread(target=self._run, name="fake-kubelet", daemon=True)
        self._thread.start()
        self._wake.set()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.api.store.unsubscribe(self._wake.set)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeKubelet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._next_deletion_in())
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.sync()
                self._finish_deletions()
            except Exception:  # the harness must survive whatever a test does to the API
                logger.exception("fake kubelet step failed")

    # --- scripting -----------------------------------------------------------------------

    def script(self, match: Callable[[dict], bool], script: PodScript) -> None:
        """Pods for which `match(pod)` is true behave as `script` (first match wins)."""
        with self._lock:
            self.scripts.append((match, script))
            self._rescan = True
        self._wake.set()

    def fail_image_pulls(self, image: str, reason: str = "ImagePullBackOff") -> None:
        message = f'Back-off pulling image "{image}"'
        self.script(lambda pod: container_image(pod) == image, PodScript(waiting_reason=reason, message=message))

    def _script_for(self, pod: dict) -> PodScript:
        with self._lock:
            for match, script in self.scripts:
                if match(pod):
                    return script
        return PodScript()

    # --- the state machine ---------------------------------------------------------------

    def sync(self) -> None:
        """Advance every pod that changed since the last call by one step."""
        for pod in self._changed_pods():
            meta = pod["metadata"]
            if meta.get("deletionTimestamp"):
                self._terminate(pod)
                continue
            if not (pod.get("spec") or {}).get("nodeName"):
                self._bind(pod)
                continue  # the binding is a write: the next step sees the pod bound
            status = pod.get("status") or {}
            phase = status.get("phase")
            script = self._script_for(pod)
            if not phase:
                self._write(pod, pending_status(pod, "ContainerCreating", now=now_rfc3339()))
            elif phase == "Pending" and not script.hold:
                waiting = first_container_status(status).get("state", {}).get("waiting", {})
                if script.waiting_reason:
                    if waiting.get("reason") != script.waiting_reason:
                        self._write(pod, pending_status(pod, script.waiting_reason, script.message, now=now_rfc3339()))
                else:
                    self._write(pod, self._running(pod, restarts=0))

    def _bind(self, pod: dict) -> None:
        meta = pod["metadata"]
        try:
            self.api.bind(meta["namespace"], meta["name"], self.node_name, uid=meta.get("uid"))
        except ApiError as exc:  # gone, replaced, bound meanwhile or being deleted
            if exc.code not in (404, 409, 500):
                raise

    def _terminate(self, pod: dict) -> None:
        """A pod being deleted: its containers "stop", then the kubelet deletes it (once)."""
        meta = pod["metadata"]
        if not meta.get("deletionGracePeriodSeconds"):
            return  # grace 0: gone once its finalizers are, nothing left for a kubelet to do
        with self._lock:
            self._terminating.setdefault(
                meta["uid"], (time.monotonic() + self.termination_delay, meta["namespace"], meta["name"]))

    def _next_deletion_in(self) -> float | None:
        with self._lock:
            due = [when for when, _, _ in self._terminating.values()]
        return max(0.0, min(due) - time.monotonic()) if due else None

    def _finish_deletions(self) -> None:
        """The kubelet's last word on each pod whose containers have stopped: DELETE with
        `gracePeriodSeconds: 0`, guarded by the pod's uid."""
        now = time.monotonic()
        with self._lock:
            due = [(uid, ns, name) for uid, (when, ns, name) in self._terminating.items() if when <= now]
            for uid, _, _ in due:
                del self._terminating[uid]
        for uid, namespace, name in due:
            try:
                self.api.delete("pods", namespace, name, grace_period_seconds=0, preconditions={"uid": uid})
            except ApiError as exc:  # already gone, or a new pod of the same name
                if exc.code not in (404, 409):
                    raise

    def _changed_pods(self) -> list[dict]:
        """Pods written since the last look (from the store's event history: no full scans, so a
        hundred pods cost a hundred steps, not a hundred times every write)."""
        store = self.api.store
        try:
            events = store.events_after(self._seen_rv)
        except ApiError:  # history compacted: fall back to a full look once
            self._seen_rv = store.resource_version
            return self.api.list("pods")
        if events:
            self._seen_rv = events[-1].resource_version
        names = {
            (e.object["metadata"].get("namespace"), e.object["metadata"]["name"])
            for e in events
            if e.group_resource == ("", "pods") and e.type != "DELETED"
        }
        with self._lock:
            rescan, self._rescan = self._rescan, False
        if rescan:  # scripts changed: they may concern any pod, changed or not
            names |= {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in self.api.list("pods")}
        pods = (self.api.get("pods", ns, name) for ns, name in sorted(names))
        return [p for p in pods if p is not None]

    def _running(self, pod: dict, restarts: int, last_state: dict | None = None) -> dict:
        # Loopback addresses: nothing listens there, so an operator calling the "runtime" of a
        # fake pod is refused at once and never reaches a real network.
        ip = (pod.get("status") or {}).get("podIP") or _fake_ip(next(self._ips))
        now = now_rfc3339()
        container = container_status(
            pod, state={"running": {"startedAt": now}}, restarts=restarts, ready=True, started=True,
            last_state=last_state, container_id=f"containerd://{meta_uid(pod)}",
            image_id=f"{container_image(pod)}@sha256:{'0' * 64}",
        )
        start_time = (pod.get("status") or {}).get("startTime") or now
        return started_status(pod, container, ip=ip, host_ip="127.0.1.1", start_time=start_time, now=now)

    def _write(self, pod: dict, status: dict) -> None:
        meta = pod["metadata"]
        try:
            self.api.patch_status("pods", meta["namespace"], meta["name"], status)
        except ApiError as exc:  # deleted meanwhile: nothing to report
            if exc.code != 404:
                raise

    # --- what goes wrong on real nodes, on demand ----------------------------------------

    def release(self, namespace: str, name: str) -> None:
        """Let a held pod start."""
        with self._lock:
            self.scripts = [(m, s) for m, s in self.scripts if not (s.hold and m(self._get(namespace, name)))]
            self._rescan = True
        self._wake.set()

    def crash(self, namespace: str, name: str, exit_code: int = 1, reason: str = "Error") -> None:
        """The agent process dies. With restartPolicy OnFailure/Always the container restarts
        (restartCount+1, lastState terminated); with Never the pod fails."""
        pod = self._get(namespace, name)
        terminated = {"exitCode": exit_code, "reason": reason, "finishedAt": now_rfc3339()}
        if pod["spec"].get("restartPolicy", "Always") == "Never":
            self._write(pod, self._terminated(pod, "Failed", terminated))
            return
        restarts = first_container_status(pod.get("status") or {}).get("restartCount", 0) + 1
        self._write(pod, self._running(pod, restarts, last_state={"terminated": terminated}))

    def crash_loop(self, namespace: str, name: str, exit_code: int = 1, reason: str = "Error") -> None:
        """The container keeps crashing: CrashLoopBackOff, not ready, restartCount+1."""
        pod = self._get(namespace, name)
        status = pod.get("status") or {}
        restarts = first_container_status(status).get("restartCount", 0) + 1
        running = self._running(pod, restarts, last_state={"terminated": {"exitCode": exit_code, "reason": reason}})
        container = running["containerStatuses"][0]
        container.update(ready=False, started=False)
        container["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container"}}
        running["conditions"] = conditions(ready=False, now=now_rfc3339())
        self._write(pod, running)

    def oom_kill(self, namespace: str, name: str) -> None:
        self.crash(namespace, name, exit_code=137, reason="OOMKilled")

    def exit(self, namespace: str, name: str, exit_code: int = 0) -> None:
        """The agent exits by itself: Succeeded for 0, else as a crash."""
        pod = self._get(namespace, name)
        if exit_code != 0:
            self.crash(namespace, name, exit_code)
            return
        terminated = {"exitCode": 0, "reason": "Completed", "finishedAt": now_rfc3339()}
        self._write(pod, self._terminated(pod, "Succeeded", terminated))

    def evict(self, namespace: str, name: str, message: str = "The node was low on resource: memory.") -> None:
        pod = self._get(namespace, name)
        status = {"phase": "Failed", "reason": "Evicted", "message": message, "conditions": conditions(False, now_rfc3339())}
        self._write(pod, status)

    def _terminated(self, pod: dict, phase: str, terminated: dict) -> dict:
        return terminated_status(pod, phase, terminated, now=now_rfc3339())

    def _get(self, namespace: str, name: str) -> dict:
        pod = self.api.get("pods", namespace, name)
        if pod is None:
            raise LookupError(f"no pod {namespace}/{name}")
        return pod


def _fake_ip(n: int) -> str:
    return f"127.0.{2 + n // 250}.{2 + n % 250}"


def meta_uid(pod: dict) -> str:
    return pod["metadata"].get("uid", "").replace("-", "")
