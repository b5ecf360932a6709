"""A kubelet for the embedded API that really runs each pod's container command as a local process.

Why: `agent-sessions dev` and the messaging integration tests need session pods that answer —
the runtime bridge and its agent must really run — without a cluster or a container runtime.
The fake kubelet (`fake_kubelet.py`) only marks pods Running; this is its real-process
counterpart. It plays the kubelet's side of the contract the operator relies on, and reports
through the status subresource exactly what a node would (Pending/ContainerCreating →
Running → Ready once the readiness probe answers; CrashLoopBackOff between restarts;
Succeeded/Failed with the exit code), in the same shapes (`pod_status.py`).

How a pod becomes a process:

* **Network.** Each pod gets its own loopback address, `127.0.0.2` to `127.0.0.254`, handed
  out round-robin and never to two live pods at once, so every pod can listen on the same port
  (8080) as on a cluster. The runtime bridge binds it through `AGENT_SESSIONS_RUNTIME_HOST`.
  Linux routes all of 127.0.0.0/8 to `lo`; macOS only has 127.0.0.1 and needs aliases first
  (`for n in $(seq 2 254); do sudo ifconfig lo0 alias 127.0.0.$n up; done`). Two runners on
  one machine hand out the same addresses: their pods' ports collide.
* **Volumes.** `<root>/<namespace>/<pod>/workspace` is the pod's `/workspace` when that is an
  emptyDir; a PersistentVolumeClaim maps to `<root>/<namespace>/pvc/<claimName>`, keyed by the
  claim, so a stopped and resumed session (new pod, same claim) finds its files and history
  again. Every other volume is an empty directory `<root>/<namespace>/<pod>/volumes/<volume>`
  (configMap/secret volumes are not materialised). A pod's own directories go when the pod goes;
  claim directories stay. Container paths under a mount are rewritten to the local directory in
  `command`/`args` (also `--flag=/path`), env values and `workingDir`.
* **Image.** Ignored: the command runs with this machine's tools. A command without a `/` is
  looked up on the container's PATH, whose first entry is the directory of `sys.executable`, so
  `agent-sessions` is this venv's console script. Where that script is not installed,
  `agent-sessions …` runs as `python -m agent_sessions.cli.main …` instead. A container without
  `command` runs its `args` (there is no image entrypoint to prepend them to).
* **Environment.** What the kubelet computes — `envFrom`, then `env` (literals with `$(VAR)`
  expansion, `secretKeyRef`/`configMapKeyRef` from the embedded API, `fieldRef`; missing optional
  references skipped, a missing required one leaves the container waiting with
  `CreateContainerConfigError` and the kubelet's message, retried whenever a Secret or ConfigMap
  changes) — over a small base: a few host variables tools need (`INHERITED_ENV`, not the whole
  host environment: the operator's credentials stay out of agents), `HOME` (the workspace),
  `HOSTNAME`, `PYTHONUNBUFFERED=1` (so logs arrive line by line), `TMPDIR` for a `/tmp` mount.
  Then `AGENT_SESSIONS_RUNTIME_HOST` is the pod's address and the venv's bin directory leads PATH.
* **Binding.** A pod without `spec.nodeName` is first bound to `NODE_NAME` through
  `POST pods/{name}/binding` (in-process), as the scheduler would; the API deletes only bound
  pods gracefully.
* **Processes.** Each container process leads its own process group. When it exits, what is
  left of its group is killed (a container's processes die with it); processes that leave the
  group (`setsid`, daemons) are beyond reach. `stop()` stops every pod (SIGTERM, SIGKILL after
  its grace period) and waits, so nothing outlives the runner. Exits follow `restartPolicy`
  with the kubelet's doubling back-off (shorter, for dev).
* **Deletion.** As on a node: a deleted pod stays in the API, with `deletionTimestamp`, while
  the runner sends SIGTERM to its process group and waits for it to end, at most the pod's
  `deletionGracePeriodSeconds` (capped for dev, see `max_grace_period`; a later DELETE that
  shortens it is honoured), then SIGKILL; once nothing of it runs (and its address and
  emptyDirs are released) the runner deletes the pod with `gracePeriodSeconds: 0` and the
  pod's uid as precondition, so it never deletes a new pod of the same name. A pod deleted
  outright (grace 0: unbound, ended, or force-deleted) is stopped the same way, after the fact.
* **Probes.** The readiness probe (httpGet, tcpSocket or exec) runs every `probe_interval`
  until it succeeds, then every `ready_probe_interval`; `failureThreshold` consecutive failures
  make the pod unready again (`periodSeconds` is not honoured: dev wants a quick start).
  Liveness and startup probes are ignored.
* **Logs.** stdout and stderr, merged, go line by line to the API's `pods/log` (what
  `kubectl logs` and the operator's log tail read), at most `max_log_bytes` per pod (the oldest
  lines are dropped). Unlike a kubelet, the log carries on across restarts.

Only the first container runs (session pods have one); init containers are not run. Every pod
runs here, whatever its `nodeName`, and a claim need not exist (nor be bound) for its pod to run.

It runs in its own thread and wakes on writes to the API (`store.subscribe`: the listener runs
under the store lock, so it only sets an event), reading what changed from the store's event
history. Each pod has a supervising thread (plus an output reader and an exit waiter while a
process runs); status is written with the pod's uid as precondition, so a late write can never
land on a new pod of the same name.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import logging
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from agent_sessions.api.constants import ENV_RUNTIME_HOST

from .object_store import ApiError, now_rfc3339
from .pod_status import NODE_NAME, container_status, pending_status, started_status
from .strict_api import StrictKubernetesAPI

logger = logging.getLogger(__name__)

HOST_IP: Final = "127.0.0.1"
WORKSPACE_PATH: Final = "/workspace"
TMP_PATH: Final = "/tmp"
RUNTIME_EXECUTABLE: Final = "agent-sessions"
RUNTIME_MODULE: Final = "agent_sessions.cli.main"
INHERITED_ENV: Final = (
    "PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "PYTHONPATH",
)
"""Host variables a local process gets before the pod's own env (tools need them to work)."""
DEFAULT_GRACE_PERIOD: Final = 30.0
START_ERROR_EXIT_CODE: Final = 128
CRASH_LOOP: Final = "CrashLoopBackOff"
CONFIG_ERROR: Final = "CreateContainerConfigError"
_TERMINAL_PHASES: Final = ("Succeeded", "Failed")
_ENV_NAME: Final = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_REFERENCE: Final = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")
_METADATA_KEY: Final = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")
_MAX_LINE: Final = 64 * 1024


# --- the container's configuration, as pure functions ----------------------------------------

class ContainerConfigError(Exception):
    """The container cannot be created yet (a missing Secret, ConfigMap or key); the message is
    the kubelet's."""


class StartError(Exception):
    """The container's process could not be started (the runtime's `StartError`)."""


Reader = Callable[[str, str, str], dict | None]
"""`read(resource, namespace, name)`: an object of the API, None if there is none."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """`$(VAR)` replaced by `env["VAR"]` when defined (left as written otherwise), `$$` by `$`:
    the kubelet's expansion of env values, command and args."""
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))
    return _REFERENCE.sub(replace, text)


def resolve_env(pod: dict, container: dict, *, pod_ip: str, host_ip: str, read: Reader) -> dict[str, str]:
    """The container's environment as the kubelet computes it: `envFrom` sources in order, then
    `env` (later entries win; literal values expanded against what is defined before them).
    Raises ContainerConfigError for a missing required Secret, ConfigMap or key."""
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for source in container.get("envFrom") or ():
        prefix = source.get("prefix") or ""
        for key, resource in (("configMapRef", "configmaps"), ("secretRef", "secrets")):
            ref = source.get(key)
            if ref is None:
                continue
            obj = read(resource, namespace, ref.get("name") or "")
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ContainerConfigError(_not_found(resource, ref.get("name") or ""))
            for name, value in _data(resource, obj).items():
                if _ENV_NAME.match(prefix + name):  # the kubelet skips invalid names (with an Event)
                    env[prefix + name] = value
    for entry in container.get("env") or ():
        name = entry.get("name") or ""
        source = entry.get("valueFrom")
        if source is None:
            env[name] = expand(str(entry.get("value") or ""), env)
            continue
        value = _value_from(source, pod, namespace, pod_ip=pod_ip, host_ip=host_ip, read=read)
        if value is not None:
            env[name] = value
    return env


def _value_from(source: dict, pod: dict, namespace: str, *, pod_ip: str, host_ip: str,
                read: Reader) -> str | None:
    for key, resource, kind in (("secretKeyRef", "secrets", "Secret"),
                                ("configMapKeyRef", "configmaps", "ConfigMap")):
        ref = source.get(key)
        if ref is None:
            continue
        name, wanted = ref.get("name") or "", ref.get("key") or ""
        obj = read(resource, namespace, name)
        if obj is None:
            if ref.get("optional"):
                return None
            raise ContainerConfigError(_not_found(resource, name))
        data = _data(resource, obj)
        if wanted not in data:
            if ref.get("optional"):
                return None
            raise ContainerConfigError(f"couldn't find key {wanted} in {kind} {namespace}/{name}")
        return data[wanted]
    if "fieldRef" in source:
        return _field(pod, source["fieldRef"].get("fieldPath") or "", pod_ip=pod_ip, host_ip=host_ip)
    logger.debug("pod %s/%s: env source %s not supported by the local pod runner; skipped",
                 namespace, pod["metadata"]["name"], sorted(source))
    return None


def _field(pod: dict, path: str, *, pod_ip: str, host_ip: str) -> str:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    fields = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in fields:
        return str(fields[path] or "")
    match = _METADATA_KEY.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2)) or "")
    raise ContainerConfigError(f"unsupported fieldPath: {path}")


def _not_found(resource: str, name: str) -> str:
    return f'{"secret" if resource == "secrets" else "configmap"} "{name}" not found'


def _data(resource: str, obj: dict) -> dict[str, str]:
    """A ConfigMap's data, or a Secret's decoded `data` with `stringData` over it (the API
    server folds `stringData` in on write; the embedded one keeps it as written)."""
    if resource == "configmaps":
        return {k: str(v) for k, v in (obj.get("data") or {}).items()}
    values: dict[str, str] = {}
    for key, encoded in (obj.get("data") or {}).items():
        try:
            values[key] = base64.b64decode(str(encoded), validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            values[key] = str(encoded)
    values.update({k: str(v) for k, v in (obj.get("stringData") or {}).items()})
    return values


@dataclass(frozen=True)
class Mount:
    path: str
    """Where the container sees it."""
    local: Path
    """The directory that stands for it on this machine."""


def pod_directory(root: Path, pod: dict) -> Path:
    meta = pod["metadata"]
    return root / meta["namespace"] / meta["name"]


def claim_directory(root: Path, namespace: str, claim: str) -> Path:
    return root / namespace / "pvc" / claim


def mounts_for(root: Path, pod: dict, container: dict) -> list[Mount]:
    """The container's volume mounts mapped to local directories (see the module docstring),
    longest container path first (the order `localize` needs)."""
    namespace = pod["metadata"]["namespace"]
    own = pod_directory(root, pod)
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or ()}
    mounts = []
    for mount in container.get("volumeMounts") or ():
        path = "/" + str(mount.get("mountPath") or "").strip("/")
        if path == "/":
            continue
        volume = volumes.get(mount.get("name")) or {}
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            local = claim_directory(root, namespace, claim)
        elif path == WORKSPACE_PATH:
            local = own / "workspace"
        else:
            local = own / "volumes" / str(mount.get("name"))
        if mount.get("subPath"):
            local = local / str(mount["subPath"])
        mounts.append(Mount(path, local))
    return sorted(mounts, key=lambda m: len(m.path), reverse=True)


def localize(value: str, mounts: Iterable[Mount]) -> str:
    """`value` with a container path under a mount (whole, or after `--flag=`) rewritten to the
    local directory; anything else unchanged."""
    prefix, path = "", value
    if not value.startswith("/") and "=" in value:
        head, _, tail = value.partition("=")
        if tail.startswith("/"):
            prefix, path = head + "=", tail
    for mount in mounts:
        if path == mount.path or path.startswith(mount.path + "/"):
            return prefix + str(mount.local) + path[len(mount.path):]
    return value


def executable(argv: list[str], search_path: str) -> list[str]:
    """`argv` with its program resolved on `search_path`; `agent-sessions`, when not installed as
    a console script, becomes `python -m agent_sessions.cli.main`. StartError if not found."""
    if not argv:
        raise StartError("no command specified")
    program = argv[0]
    if "/" in program:
        return argv
    found = shutil.which(program, path=search_path)
    if found:
        return [found, *argv[1:]]
    if program == RUNTIME_EXECUTABLE:
        return [sys.executable, "-m", RUNTIME_MODULE, *argv[1:]]
    raise StartError(f'exec: "{program}": executable file not found in $PATH')


def grace_period(pod: dict, cap: float) -> float:
    """Seconds between SIGTERM and SIGKILL for `pod`, at most `cap`: its
    `deletionGracePeriodSeconds` once it is being deleted (what the API decided, from the
    DELETE's options or the spec), else its `terminationGracePeriodSeconds` (30 if unset)."""
    spec, meta = pod.get("spec") or {}, pod["metadata"]
    grace = meta.get("deletionGracePeriodSeconds")
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds")
    grace = DEFAULT_GRACE_PERIOD if grace is None else float(grace)
    return max(0.0, min(grace, cap))


# --- addresses --------------------------------------------------------------------------------

class LoopbackAddresses:
    """127.0.0.`first`–127.0.0.`last`, one per live pod. Handed out round-robin rather than
    lowest-free, so an address just released (that a client may still hold as a stale endpoint)
    is the last to be given again."""

    def __init__(self, first: int = 2, last: int = 254) -> None:
        self._first, self._size = first, last - first + 1
        self._next = 0
        self._in_use: set[int] = set()
        self._waiters: set[threading.Event] = set()
        self._lock = threading.Lock()

    def acquire(self, waiter: threading.Event | None = None) -> str | None:
        """A free address, or None when all are taken (`waiter` is then set on the next release)."""
        with self._lock:
            for step in range(self._size):
                index = (self._next + step) % self._size
                if index not in self._in_use:
                    self._in_use.add(index)
                    self._next = (index + 1) % self._size
                    return f"127.0.0.{self._first + index}"
            if waiter is not None:
                self._waiters.add(waiter)
            return None

    def release(self, address: str) -> None:
        with self._lock:
            self._in_use.discard(int(address.rsplit(".", 1)[1]) - self._first)
            waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            waiter.set()


# --- one pod ----------------------------------------------------------------------------------

class _PodRun:
    """Runs one pod (one uid) from its creation to its deletion, in its own thread."""

    def __init__(self, runner: LocalPodRunner, pod: dict, predecessor: _PodRun | None) -> None:
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
                self._write(self._waiting_status(CONFIG_ERROR, str(exc)))
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

    # --- the container process ----------------------------------------------------------

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
        _kill_group(process.pid, signal.SIGKILL)  # what is left of the container dies with it
        _await_group_end(process.pid)
        self.exited.set()
        self.wake.set()

    def _stop_process(self) -> None:
        process = self.process
        if process is not None and not self.exited.is_set():
            _kill_group(process.pid, signal.SIGTERM)
            while not self.exited.is_set():  # woken by the exit, or a shorter grace period
                self.wake.clear()
                remaining = self.halted_at + self.grace - time.monotonic()
                if remaining <= 0 or self.exited.is_set():
                    break
                self.wake.wait(remaining)
            if not self.exited.is_set():
                _kill_group(process.pid, signal.SIGKILL)
                self.exited.wait(5)
        if self._reader is not None:
            self._reader.join(timeout=2)

    def _read_output(self, stream: IO[bytes]) -> None:
        with stream:
            for line in iter(lambda: stream.readline(_MAX_LINE), b""):
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

    # --- readiness ----------------------------------------------------------------------

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

    # --- status -------------------------------------------------------------------------

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


def _kill_group(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _await_group_end(group: int, timeout: float = 5.0) -> None:
    """Waits (briefly polling: no notification exists for it) until no process of `group` runs
    any more — killed processes take a moment to die."""
    deadline, pause = time.monotonic() + timeout, 0.001
    while _group_runs(group) and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _group_runs(group: int) -> bool:
    """Whether a live (not zombie) process is in process group `group`. From /proc where there is
    one: zombies are dead, but answer signals until reaped, and an init that does not reap (some
    container PID 1s) leaves them for good."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(group, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(group) and fields[0] not in ("Z", "X"):
            return True
    return False


# --- the runner -------------------------------------------------------------------------------

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
                 addresses: LoopbackAddresses | None = None) -> None:
        self.api = api
        self.root = Path(root)
        self.probe_interval = probe_interval
        self.ready_probe_interval = ready_probe_interval
        self.restart_backoff = restart_backoff
        self.max_grace_period = max_grace_period
        self.max_log_bytes = max_log_bytes
        self.inherited_env = tuple(inherited_env)
        self.addresses = addresses or LoopbackAddresses()
        self._runs: dict[tuple[str, str], _PodRun] = {}
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
        if (pod.get("status") or {}).get("phase") in _TERMINAL_PHASES:
            return  # it ended before this runner saw it: nothing to run
        if not (pod.get("spec") or {}).get("nodeName"):
            pod = self._bind(pod)
            if pod is None:
                return
        new = _PodRun(self, pod, predecessor=run)
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

    def _finished(self, run: _PodRun) -> None:
        """A run ended: forget it once its pod is gone (a run that failed unexpectedly stays, so
        that its own writes do not start it over and over)."""
        with self._lock:
            if self._runs.get(run.key) is run and (run.deleted or self._stopping.is_set()):
                del self._runs[run.key]
