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
  again. Every other volume is an empty directory `<root>/<namespace>/<pod>/volumes/<volume>`;
  a `secret` volume's directory gets the Secret's keys (or its `items`) as files with their modes
  before each container start (a missing Secret keeps the pod `ContainerCreating` with the
  kubelet's `MountVolume.SetUp failed` message until it exists; configMap volumes are not
  materialised). A pod's own directories go when the pod goes;
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

The package, by concern: ``runner`` (:class:`LocalPodRunner`: follows the API, one
``pod_run`` per pod), ``pod_run`` (one pod's life), ``container`` (its process and logs),
``readiness`` (probes), ``status`` (what it reports), and the pure parts: ``environment``,
``volumes``, ``processes`` (commands, grace periods, process groups) and ``addresses``.
"""

from agent_sessions.dev.pod_runner.addresses import LoopbackAddresses
from agent_sessions.dev.pod_runner.environment import ContainerConfigError, expand, resolve_env
from agent_sessions.dev.pod_runner.processes import StartError, executable, grace_period
from agent_sessions.dev.pod_runner.runner import LocalPodRunner
from agent_sessions.dev.pod_runner.volumes import Mount, claim_directory, localize, mounts_for, pod_directory

__all__ = [
    "ContainerConfigError",
    "LocalPodRunner",
    "LoopbackAddresses",
    "Mount",
    "StartError",
    "claim_directory",
    "executable",
    "expand",
    "grace_period",
    "localize",
    "mounts_for",
    "pod_directory",
    "resolve_env",
]
