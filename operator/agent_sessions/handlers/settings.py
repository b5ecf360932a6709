"""Every kopf setting that differs from its default, in one place, with the failure it prevents."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any

import kopf

from agent_sessions.api import constants as c
from agent_sessions.providers.pod.network_policy_spec import SessionNetworkPolicy


@dataclass(frozen=True)
class OperatorOptions:
    """How `agent-sessions run` was asked to run."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty = all namespaces (cluster-wide)."""
    peering: str | None = None
    """kopf peering name for HA (one active operator); None = standalone."""
    health_endpoint: str | None = None
    """e.g. `http://0.0.0.0:8080/healthz` for liveness/readiness probes."""
    operator_defaults: dict = field(default_factory=dict)
    """The lowest configuration layer (§5), from Helm values."""
    concurrency: int = 32
    """Sessions reconciled at once."""
    info_refresh_seconds: float = 10.0
    """At most one read of a running session's runtime info (title, activity, health) per interval."""
    log_refresh_seconds: float = 30.0
    """At most one log read, and one log-tail status write, per running session in this interval."""
    tmux: bool = False
    """Offer the tmux provider. Off by default: a tmux agent runs as the operator's own user on the
    operator's host, which suits development (`agent-sessions dev`), not a shared cluster."""
    tmux_reap_orphans: bool = False
    """Kill tmux sessions of ours that no AgentSession owns (they are always reported)."""
    tmux_workspace_root: str | None = None
    """Where tmux sessions keep their workspaces (default: $XDG_STATE_HOME/agent-sessions/tmux)."""
    tmux_orphan_check_seconds: float = 300.0
    pod_security_level: str = "restricted"
    """Pod Security Standards level every session pod must meet (`restricted`, `baseline`,
    `privileged`); a namespace's `pod-security.kubernetes.io/enforce` label may only raise it."""
    allowed_service_accounts: tuple[str, ...] = ()
    """ServiceAccounts a session pod may run as besides `default`, and the only ones whose token
    it may mount (`default` included only when listed)."""
    pod_default_resources: dict = field(default_factory=dict)
    """`{requests: {...}, limits: {...}}` for the resources a session's agent says nothing about."""
    session_network_policy: SessionNetworkPolicy | None = None
    """The NetworkPolicy the operator keeps in every namespace where it runs a session pod, before
    the pod (who may reach the session runtimes); None: none is kept."""
    network_policy_recheck_seconds: float = 60.0
    """How long a namespace's verified NetworkPolicy is trusted before it is read again (by the
    next pod creation there): an edited or deleted policy is restored within this time."""
    http_platforms: tuple[str, ...] = ()
    """Base URLs of the http platforms sessions may be sent to (`--http-platform`); none: every
    http session is refused (`ConfigValid=False`), so no Secret goes to a URL a session chose."""
    http_endpoints: tuple[str, ...] = ()
    """Bases (port `*` allowed) where an http platform's runtime endpoints may be besides its own
    origin and the allowed platforms (`--http-endpoint`); any other reported endpoint is dropped."""
    runtime_key_secret: str | None = None
    """`NAMESPACE/NAME` of the Secret holding the runtime key (`wire.runtime_key`), created at
    start-up when missing; the gateway reads the same Secret. None: a key generated in memory at
    each start (the runtimes are still protected, but no gateway can call them and a restart
    invalidates the tokens of running sessions: see `handlers.registration.load_runtime_key`)."""
    priority: int = 0
    """Peering priority: of the operators of one peering, only the highest-priority one is active.
    Equal priorities pause every one of them (kopf warns of "possibly conflicting operators"), so
    replicas pick distinct, random ones (`agent-sessions run --priority`)."""
    shards: int = 1
    """Sessions are split into this many shards; each replica reconciles the sessions of the one
    shard it holds through a Lease (`handlers.sharding`). 1: no Lease, every session is this
    operator's (HA by peering). More than 1 replaces kopf peering: `peering` must be None."""
    shard_lease_namespace: str = "default"
    """Where the shard Leases `<shard_lease_prefix>-shard-<i>` live (the install's namespace)."""
    shard_lease_prefix: str = "agent-session-operator"
    shard_lease_seconds: int = 15
    """`leaseDurationSeconds` of the shard Leases: a dead replica's shard is taken over about this
    long after its last renewal (at most a fifth more)."""
    identity: str | None = None
    """This replica's name: the shard Leases' holder, and in the user agent when sharded (so the
    audit log tells replicas apart). None: `$POD_ID` (the chart sets the pod name), else host-pid."""

    def __post_init__(self) -> None:
        if self.shards < 1:
            raise ValueError(f"shards must be at least 1, got {self.shards}")
        if self.shards > 1 and self.peering:
            # kopf peering keeps one operator of a peering active: it would idle all shards but one.
            raise ValueError("sharding replaces kopf peering: run shards without a peering name")

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    @property
    def sharded(self) -> bool:
        return self.shards > 1

    @property
    def replica_identity(self) -> str:
        return self.identity or os.environ.get("POD_ID") or f"{socket.gethostname()}-{os.getpid()}"


class UnusedEssence(kopf.AnnotationsDiffBaseStorage):
    """kopf's diff base, for an operator with no change (create/update/delete) or daemon handler.

    For every watch event kopf builds the object's "essence" — a deep copy of the whole body — and
    diffs it with the stored one, for change and daemon handlers only. Ours are event handlers
    and indexes (`handlers.registration`; `tests/handlers/test_kopf_settings.py` checks it), so the
    copy was never read: 6 % of the operator's CPU in a burst of new sessions (py-spy). It is
    built empty; nothing is ever stored."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None


def configure(settings: kopf.OperatorSettings, options: OperatorOptions) -> None:
    # Our own annotation prefix and a finalizer name of kopf's own under our prefix: should kopf
    # ever need to store anything, it is under our name, so two operators cannot collide. It must
    # not be `c.FINALIZER`: kopf removes its marker from objects that need none of its handlers,
    # and `reconcile()` owns `c.FINALIZER`.
    settings.persistence.finalizer = c.KOPF_FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=c.GROUP)
    settings.persistence.diffbase_storage = UnusedEssence(prefix=c.GROUP, key="last-handled-configuration")
    # No Kubernetes Event per log line: events are posted for transitions only (§9).
    settings.posting.enabled = False
    # Nor a log line per watch event: kopf logs "Handler ... succeeded." at INFO for each one (a
    # 1,000-session burst wrote 6,000 such lines, each a JSON record formatted on the event loop).
    # Its warnings and errors stay; `--verbose` (DEBUG) brings the lines back.
    objects_logger = logging.getLogger("kopf.objects")
    if objects_logger.getEffectiveLevel() > logging.DEBUG:
        objects_logger.setLevel(logging.WARNING)
    # Ask the API server to end each watch after 5 minutes and give up on a silent connection
    # soon after: a watch that stalls without closing would otherwise miss events forever.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    # The aiohttp default request timeout is 5 minutes: one hung call would stall a worker.
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    # Resources are discovered once at start-up; no watch on CRDs or namespaces, so the
    # operator needs no cluster-wide read access beyond its own resources.
    settings.scanning.disabled = True
    # Only the gateway's wake requests among Events (`handlers.wake_requests`).
    settings.watching.label_selectors["v1", "events"] = c.LABEL_WAKE_REQUEST
    # HA (§9): with a peering name, only the highest-priority operator of the peering is active.
    # Sharded operators have none (`OperatorOptions` refuses it): every replica must stay active,
    # and the shard Leases decide which sessions each one reconciles (`handlers.sharding`).
    if options.peering:
        settings.peering.name = options.peering
        settings.peering.standalone = False
        settings.peering.mandatory = True
        settings.peering.clusterwide = options.clusterwide
        settings.peering.priority = options.priority
    else:
        settings.peering.standalone = True
