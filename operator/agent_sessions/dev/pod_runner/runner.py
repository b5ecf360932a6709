"""The local pod runner: follows the API's pods (and the Secrets and ConfigMaps they read),
binds them to the node, runs each with a :class:`~agent_sessions.dev.pod_runner.pod_run.PodRun`,
and deletes a pod once it has stopped."""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from agent_sessions.dev.object_store import ApiError
from agent_sessions.dev.pod_runner.addresses import LoopbackAddresses
from agent_sessions.dev.pod_runner.pod_run import PodRun
from agent_sessions.dev.pod_runner.processes import INHERITED_ENV, grace_period
from agent_sessions.dev.pod_runner.status import TERMINAL_PHASES
from agent_sessions.dev.pod_status import NODE_NAME
from agent_sessions.dev.strict_api import StrictKubernetesAPI

logger = logging.getLogger(__name__)

RUNTIME_PORT = 8080
"""The port session pods' runtime bridges listen on (`providers.pod.constants.RUNTIME_PORT`)."""


class LocalPodRunner:
    """Runs the embedded API's pods as local processes; see the module docstring.

    `root` holds the pods' volumes. `probe_interval`/`ready_probe_interval`: seconds between
    readiness probes before/after the pod is ready. `restart_backoff`: the first and the longest
    delay before restarting a crashed container (the kubelet's are 10 s and 5 min).
    `max_grace_period` caps the pods' `terminationGracePeriodSeconds`.
    """

    def __init__(self, api: StrictKubernetesAPI, root: Path | str, *, probe_interval: float = 0.2,
                 ready_probe_interval: float = 2.0, restart_backoff: tuple[float, float] = (0.5, 10.0),
                 max_grace_period: float = 5.0, max_log_bytes: int = 1024 * 1024,
                 inherited_env: Iterable[str] = INHERITED_ENV,
                 addresses: LoopbackAddresses | None = None,
                 on_container_start: Callable[[int], None] | None = None) -> None:
        self.api = api
        self.on_container_start = on_container_start
        """Called with the pid of each container process started (the leader of its process
        group), e.g. to write it down (`dev.run_record`)."""
        self.root = Path(root).absolute()  # containers run in their workspace: their paths must not be relative
        self.probe_interval = probe_interval
        self.ready_probe_interval = ready_probe_interval
        self.restart_backoff = restart_backoff
        self.max_grace_period = max_grace_period
        self.max_log_bytes = max_log_bytes
        self.inherited_env = tuple(inherited_env)
        # Session pods listen on the runtime's port (8080): pass over addresses where another
        # runner's pod already does.
        self.addresses = addresses or LoopbackAddresses(busy_port=RUNTIME_PORT)
        self._runs: dict[tuple[str, str], PodRun] = {}
        self._lock = threading.Lock()
        """Guards `_runs`. Never held while calling the API: the store's hooks take it under the
        store's lock."""
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen_rv = 0
        self._rescan = True

    # --- running ------------------------------------------------------------------------

    def start(self) -> LocalPodRunner:
        self.root.mkdir(parents=True, exist_ok=True)
        self.api.store.subscribe(self._wake.set)
        # First, so that a removed pod's output stops before the API forgets its log.
        self.api.store.removal_hooks.insert(0, self._removed)
        self._thread = threading.Thread(target=self._loop, name="local-pod-runner", daemon=True)
        self._thread.start()
        self._wake.set()
        return self

    def stop(self) -> None:
        """Stops watching, then stops every pod's process (SIGTERM, SIGKILL after its grace
        period) and waits for them: nothing the runner started outlives it."""
        self._stopping.set()
        self._wake.set()
        self.api.store.unsubscribe(self._wake.set)
        if self._removed in self.api.store.removal_hooks:
            self.api.store.removal_hooks.remove(self._removed)
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.halt(grace_period(run.pod, self.max_grace_period), deleted=False)
        for run in runs:
            run.join(timeout=self.max_grace_period + 10)

    def __enter__(self) -> LocalPodRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- for tests and tools ------------------------------------------------------------

    def pod_ip(self, namespace: str, name: str) -> str | None:
        """The loopback address the pod's process has (None when it has none)."""
        with self._lock:
            run = self._runs.get((namespace, name))
        return run.ip if run is not None and run.holds_ip else None

    def process(self, namespace: str, name: str) -> subprocess.Popen[bytes] | None:
        """The pod's current (or last) container process."""
        with self._lock:
            run = self._runs.get((namespace, name))
        return run.process if run is not None else None

    # --- watching -----------------------------------------------------------------------

    def _read(self, resource: str, namespace: str, name: str) -> dict | None:
        return self.api.get(resource, namespace, name)

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self._sync()
            except Exception:  # the harness must survive whatever a test does to the API
                logger.exception("local pod runner step failed")

    def _sync(self) -> None:
        pods, configuration = self._changes()
        for key in sorted(pods):
            self._reconcile(key)
        if configuration:  # a Secret or ConfigMap changed: pods waiting for one try again
            with self._lock:
                runs = list(self._runs.values())
            for run in runs:
                run.config_changed()

    def _changes(self) -> tuple[set[tuple[str, str]], bool]:
        """Pods written since the last look, and whether any Secret or ConfigMap was (from the
        store's event history; a full look at start and after the history was compacted)."""
        store = self.api.store
        try:
            events = [] if self._rescan else store.events_after(self._seen_rv)
        except ApiError:  # history compacted
            self._rescan = True
        if self._rescan:
            self._rescan = False
            self._seen_rv = store.resource_version  # events after it may be seen twice: harmless
            with self._lock:
                known = set(self._runs)
            return known | {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in self.api.list("pods")}, True
        if events:
            self._seen_rv = events[-1].resource_version
        pods = {(e.object["metadata"].get("namespace", ""), e.object["metadata"]["name"])
                for e in events if e.group_resource == ("", "pods")}
        configuration = any(e.group_resource in (("", "secrets"), ("", "configmaps")) for e in events)
        return pods, configuration

    def _reconcile(self, key: tuple[str, str]) -> None:
        pod = self.api.get("pods", *key)
        with self._lock:
            run = self._runs.get(key)
        live = pod is not None and not pod["metadata"].get("deletionTimestamp")
        uid = pod["metadata"].get("uid") if pod is not None else None
        if run is not None and (not live or run.uid != uid):
            if run.uid == uid and pod is not None:  # being deleted: its grace period, maybe shortened
                run.halt(grace_period(pod, self.max_grace_period), deleted=True)
            elif not run.halted:  # gone outright, or replaced
                run.halt(grace_period(run.pod, self.max_grace_period), deleted=True)
        if pod is not None and not live and pod["metadata"].get("deletionGracePeriodSeconds") and (
                run is None or run.uid != uid or run.done.is_set()):
            self._delete_stopped(*key, uid or "")  # being deleted, and nothing of it runs here
        if not live or (run is not None and run.uid == uid):
            return
        assert pod is not None
        if not pod.get("spec", {}).get("containers"):
            return
        if (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
            return  # it ended before this runner saw it: nothing to run
        if not (pod.get("spec") or {}).get("nodeName"):
            pod = self._bind(pod)
            if pod is None:
                return
        new = PodRun(self, pod, predecessor=run)
        with self._lock:
            self._runs[key] = new
        new.start()

    def _bind(self, pod: dict) -> dict | None:
        """Binds `pod` to `NODE_NAME` (as the scheduler would): the pod as it is then, None when
        it went meanwhile or is being deleted."""
        meta = pod["metadata"]
        try:
            self.api.bind(meta["namespace"], meta["name"], NODE_NAME, uid=meta.get("uid"))
        except ApiError as exc:
            if exc.code not in (404, 409, 500):  # gone, replaced or bound meanwhile, being deleted
                raise
        bound = self.api.get("pods", meta["namespace"], meta["name"])
        if bound is None or bound["metadata"].get("uid") != meta.get("uid") \
                or bound["metadata"].get("deletionTimestamp"):
            return None
        return bound

    def _delete_stopped(self, namespace: str, name: str, uid: str) -> None:
        """The kubelet's final DELETE of a pod whose containers have stopped: grace 0, guarded by
        the uid so that a new pod of the same name is never deleted."""
        try:
            self.api.delete("pods", namespace, name, grace_period_seconds=0, preconditions={"uid": uid})
        except ApiError as exc:
            if exc.code not in (404, 409):  # already gone, or a new pod of the same name
                raise

    def _removed(self, group_resource: tuple[str, str], obj: dict) -> None:
        """A removal hook of the store (under its lock): only flags and events."""
        if group_resource != ("", "pods"):
            return
        meta = obj["metadata"]
        with self._lock:
            run = self._runs.get((meta.get("namespace", ""), meta["name"]))
        if run is not None and run.uid == meta.get("uid"):
            run.removed()
        self._wake.set()

    def _finished(self, run: PodRun) -> None:
        """A run ended: forget it once its pod is gone (a run that failed unexpectedly stays, so
        that its own writes do not start it over and over)."""
        with self._lock:
            if self._runs.get(run.key) is run and (run.deleted or self._stopping.is_set()):
                del self._runs[run.key]
