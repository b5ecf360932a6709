"""The operator's wiring: informers and kopf handlers that only call `SessionScheduler.trigger()`.

AgentSessions, SessionTemplates and session pods are followed by the operator's own informers
(`k8s.informer`: list, then watch; each event decoded once and kept as a trimmed snapshot), not
kopf's per-event machinery, which cost a third of a restart's CPU at scale (issue 11); so are
Secrets and ConfigMaps, by their metadata alone, only to say which session to reconcile
(`handlers.dependencies`). kopf keeps what it is good at: start-up
and clean-up, credentials, the liveness endpoint, peering, and a raw event handler for the
wake-request Events. kopf stores no per-object state for any of them (no progress annotations, no
last-handled-configuration, no finalizer of its own), so the operator writes exactly what
`reconcile()` decides to write. A reconcile reads nothing from the API server: templates and
sessions are in memory, pods in the pod provider's store.

Sessions are reconciled only once the templates and pods have been listed (a session is never
reconciled before its namespace's templates are known, nor observed without its pod), only while
kopf's peering keeps this replica active (`handlers.peering_gate`), and — sharded (`--shards N`)
— only those of the shard this replica holds (`OperatorRuntime.owns`, `handlers.sharding`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kopf
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from agent_sessions.api import constants as c
from agent_sessions.api.json_shape import pack_json, unpack_json
from agent_sessions.k8s.client import USER_AGENT, http_session, make_api_client
from agent_sessions.k8s.informer import Informer
from agent_sessions.providers.base import Provider
from agent_sessions.providers.registry import ProviderRegistry
from agent_sessions.reconciler import Reconciler, SessionScheduler
from agent_sessions.wire.credentials import generate_key, session_token
from agent_sessions.wire.runtime_client import RuntimeClient
from agent_sessions.wire.runtime_key import ensure_runtime_key

from . import heap
from .dependencies import SELECTORS, DependencyIndex, session_dependencies
from .peering_gate import PeeringGate
from .settings import OperatorOptions
from .sharding import LeaseClient, LeaseTiming, ShardLeases, shard_of
from .wake_requests import PendingWakes, on_wake_event

logger = logging.getLogger(__name__)

SESSIONS = (c.GROUP, c.VERSION, c.SESSION_PLURAL)
TEMPLATES = (c.GROUP, c.VERSION, c.TEMPLATE_PLURAL)
PEERING_GROUP = "kopf.dev/v1"
MAX_EARLY_WAKES = 10_000
"""Wake requests kept while the sessions are not listed yet (the gateway makes at most a few)."""


@dataclass
class OperatorRuntime:
    """What the handlers share: built at start-up, torn down at clean-up."""

    options: OperatorOptions
    provider_factories: Mapping[str, Callable[[Any], Provider]]
    kubeconfig: str | None = None
    runtime_client_factory: Callable[[], RuntimeClient] = lambda: RuntimeClient(user_agent=USER_AGENT)
    """Builds the client of the sessions' runtimes (tests inject failures through it)."""
    reconciler: Reconciler | None = None
    scheduler: SessionScheduler | None = None
    sessions: dict[tuple[str, str], bytes | dict] = field(default_factory=dict)
    """(namespace, name) → the session as its informer last delivered it, packed (`pack_json`; read
    with `session()`): a body held as Python objects is ~4.4 KiB, packed ~0.7 (issue 11)."""
    templates: dict[str, dict[str, dict]] = field(default_factory=dict)
    """namespace → template name → the template as its informer last delivered it."""
    informers: list[Informer] = field(default_factory=list)
    gate: PeeringGate | None = None
    """With a peering name: whether kopf's peering keeps this replica paused."""
    _listed: bool = False
    """Templates and pods have been listed: sessions may be reconciled."""
    _early_wakes: list[dict] | None = field(default_factory=list)
    """Wake requests that came before the sessions were listed (whose uid they must match); None
    once the sessions are listed and these were handled."""
    background: list[asyncio.Task] = field(default_factory=list)
    providers: ProviderRegistry = field(default_factory=ProviderRegistry)
    """The providers this operator offers, built on first use (see `connect`)."""
    runtime_key: bytes | None = field(default=None, repr=False)
    """The runtime key (`wire.credentials`), loaded by `connect`: session runtime tokens and wake
    signatures derive from it. Never logged."""
    wakes: PendingWakes = field(default_factory=PendingWakes)
    """Checked wake requests from the gateway that no reconcile has seen yet."""
    shards: ShardLeases | None = None
    """With `--shards N` (N > 1): the shard this replica holds; only its sessions are reconciled."""
    dependencies: DependencyIndex = field(default_factory=DependencyIndex)
    """The Secrets and ConfigMaps each session names (`handlers.dependencies`)."""
    kopf_memories: Any = None
    """kopf's per-object memories (`handlers.memories`): templates only."""
    _connecting: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def connect(self) -> Reconciler:
        """Build the API client, reconciler and scheduler once (startup and login both need it)."""
        async with self._connecting:
            if self.reconciler is None:
                api = await make_api_client(self.kubeconfig)
                api.user_agent = self.user_agent
                if self.runtime_key is None:
                    self.runtime_key = await load_runtime_key(api, self.options.runtime_key_secret)
                for type_name, factory in self.provider_factories.items():
                    self.providers.register(type_name, lambda factory=factory: self._build(factory, api),
                                            replace=True)
                self.reconciler = Reconciler(
                    api=api,
                    providers=self.providers.get,
                    operator_defaults=self.options.operator_defaults,
                    log_refresh_seconds=self.options.log_refresh_seconds,
                    info_refresh_seconds=self.options.info_refresh_seconds,
                    runtime=self._runtime_client(),
                )
                self.scheduler = SessionScheduler(self.reconcile, concurrency=self.options.concurrency)
                if self.options.sharded:
                    self.shards = ShardLeases(
                        LeaseClient(api, self.options.shard_lease_namespace),
                        shards=self.options.shards,
                        prefix=self.options.shard_lease_prefix,
                        identity=self.options.replica_identity,
                        timing=LeaseTiming(self.options.shard_lease_seconds),
                        on_acquired=self._shard_acquired,
                        on_lost=self._shard_lost,
                    )
            return self.reconciler

    @property
    def user_agent(self) -> str:
        """Ours; a sharded replica adds its identity, so an audit log tells the replicas apart."""
        if self.options.sharded:
            return f"{USER_AGENT} (replica {self.options.replica_identity})"
        return USER_AGENT

    # --- sharding ----------------------------------------------------------------------------

    def owns(self, key: Hashable) -> bool:
        """Whether this replica reconciles session `key` now: once templates and pods are listed,
        while no peer outranks it, and — sharded — when the session's shard is the one it holds."""
        if not self._listed or (self.gate is not None and self.gate.paused):
            return False
        if self.shards is None:
            return True
        namespace, name = key  # type: ignore[misc]
        return self.shards.owns(shard_of(namespace, name, self.options.shards))

    def trigger(self, key: Hashable, unless: Callable[[], bool] | None = None, cause: str = "session") -> None:
        """Reconcile session `key` soon, if it is this replica's (`SessionScheduler.trigger`)."""
        if self.scheduler is not None and self.owns(key):
            self.scheduler.trigger(key, unless, cause)

    def _shard_acquired(self, shard: int) -> None:
        # Every session of the shard this replica knows of (the index is kept by every replica).
        for key in list(self.sessions):
            self.trigger(key, cause="resume")

    def _peering_changed(self, paused: bool) -> None:
        """Paused: every reconcile stops at once (another operator is active). Resumed: every
        session is looked at (what changed meanwhile was not)."""
        if paused:
            if self.scheduler is not None:
                self.scheduler.drop(lambda key: True)
        else:
            for key in list(self.sessions):
                self.trigger(key, cause="resume")

    def _shard_lost(self, shard: int) -> None:
        # At once, before any other replica may take the shard: its reconciles are cancelled.
        if self.scheduler is not None:
            self.scheduler.drop(lambda key: shard_of(key[0], key[1], self.options.shards) == shard)  # type: ignore[index]

    async def die(self) -> None:
        """Stop reconciling and renewing at once, never to release the shard (tests: a kill)."""
        if self.shards is not None:
            await self.shards.abandon()
        if self.scheduler is not None:
            await self.scheduler.close()

    def provider(self, type_name: str) -> Provider:
        return self.providers.get(type_name)

    def _runtime_client(self) -> RuntimeClient:
        """The client of the sessions' runtimes, sending each the token derived from its uid."""
        runtime = self.runtime_client_factory()
        key = self.runtime_key
        if key is not None and getattr(runtime, "token_for", False) is None:  # (test doubles may have none)
            runtime.token_for = lambda uid: session_token(key, uid)
        return runtime

    def _build(self, factory: Callable[[Any], Provider], api: Any) -> Provider:
        provider = factory(api)
        if hasattr(provider, "runtime_key") and getattr(provider, "runtime_key") is None:
            # Providers that start runtime bridges (pod, tmux) hand each its session's token.
            provider.runtime_key = self.runtime_key
        if hasattr(provider, "pods"):  # the pod provider: its store is fed by the pod watch (`pod_event`)
            provider.pods.watched = True
        if hasattr(provider, "on_change") and getattr(provider, "on_change") is None:
            # Providers without watch events (tmux) say when a backing changed.
            provider.on_change = lambda namespace, name: self.trigger((namespace, name), cause="provider")
        return provider

    async def _prepare_namespace(self, namespace: str) -> None:
        """Providers whose `validate` depends on the session's namespace (the pod provider's
        security level, which the namespace's label may raise) read what they need first."""
        if "pod" not in self.provider_factories:
            return
        prepare = getattr(self.provider("pod"), "prepare_namespace", None)
        if prepare is not None:
            await prepare(namespace)

    def templates_of(self, namespace: str) -> dict[str, dict]:
        return dict(self.templates.get(namespace) or {})

    # --- what the informers deliver ----------------------------------------------------------

    def session_seen(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        if event_type == "DELETED":
            self.sessions.pop(key, None)
            self.dependencies.forget(key)
        else:
            self.sessions[key] = pack_json(_snapshot(body))
            self.dependencies.update(key, key[0], session_dependencies(body, self.templates_of(key[0])))
            reconciler = self.reconciler
            if reconciler is not None:
                # The echo of our own status or finalizer write needs no reconcile: the one that
                # wrote it knew it (asked once that reconcile has ended, if it has not yet).
                uid, version = str(meta.get("uid", "")), str(meta.get("resourceVersion", ""))
                self.trigger(key, unless=lambda: reconciler.echoed(uid, version))
                return
        self.trigger(key)

    def template_seen(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        # A template change can change any session of its namespace (chains): let each one find
        # out; converged sessions cost no writes.
        meta = body.get("metadata") or {}
        namespace, name = meta.get("namespace") or "", meta.get("name") or ""
        if event_type == "DELETED":
            held = self.templates.get(namespace) or {}
            held.pop(name, None)
            if not held:
                self.templates.pop(namespace, None)
        else:
            self.templates.setdefault(namespace, {})[name] = _snapshot(body)
        templates = self.templates_of(namespace)
        for key in [key for key in self.sessions if key[0] == namespace]:
            session_body = self.session(key)
            if session_body is not None:
                self.dependencies.update(key, namespace, session_dependencies(session_body, templates))
            self.trigger(key, cause="template")

    def pod_event(self, event_type: str | None, pod: Mapping[str, Any]) -> None:
        # The pod provider observes from what this watch delivers (before the reconcile it
        # triggers). The owner reference names the session in full (a label value is cut at 63).
        if not self.pod_seen(event_type, pod):
            return  # the pod as the store holds it already (e.g. what our own create answered)
        meta = pod.get("metadata") or {}
        for owner in meta.get("ownerReferences") or ():
            if owner.get("kind") == c.SESSION_KIND:
                self.trigger((meta.get("namespace") or "", owner["name"]), cause="pod")

    def dependency_seen(self, plural: str, event_type: str | None, obj: Mapping[str, Any]) -> None:
        """A Secret or ConfigMap changed: the sessions naming it find out now. Its informer asks
        for metadata alone — no value of a Secret reaches this process through the watch."""
        meta = obj.get("metadata") or {}
        for key in self.dependencies.sessions_naming(plural, meta.get("namespace") or "", meta.get("name") or ""):
            self.trigger(key, cause="dependency")

    def wake_requested(self, event: dict) -> None:
        """A wake-request Event from the gateway (`handlers.wake_requests`); kept until the sessions
        are listed, since it is checked against the session's uid."""
        if self._early_wakes is not None:
            if len(self._early_wakes) < MAX_EARLY_WAKES:
                self._early_wakes.append(event)
            return
        on_wake_event(event, key=self.runtime_key, current_uid=self.uid_of, pending=self.wakes,
                      trigger=functools.partial(self.trigger, cause="wake"))

    async def follow(self, http: aiohttp.ClientSession, server: str) -> None:
        """Run the informers: peering (if any), templates and pods, then — once those are
        listed — sessions. Until cancelled."""
        scopes = [f"/namespaces/{namespace}" for namespace in self.options.namespaces] or [""]
        tasks: list[asyncio.Task] = []

        def start(path: str, on_event: Any, **kwargs: Any) -> Informer:
            informer = Informer(http, server, path, on_event, **kwargs)
            self.informers.append(informer)
            tasks.append(asyncio.create_task(informer.run(), name=f"informer {path}"))
            return informer

        try:
            if self.options.peering:
                gate = self.gate = PeeringGate(self.options.replica_identity, self.options.priority,
                                               self.options.peering, on_change=self._peering_changed)
                plural = "clusterkopfpeerings" if self.options.clusterwide else "kopfpeerings"
                peering = [start(f"/apis/{PEERING_GROUP}{scope}/{plural}", gate.seen,
                                 field_selector=f"metadata.name={self.options.peering}",
                                 on_missing=lambda missing, where=scope: gate.missing(where, missing))
                           for scope in scopes]
            group = f"/apis/{c.GROUP}/{c.VERSION}"
            first = [start(f"{group}{scope}/{c.TEMPLATE_PLURAL}", self.template_seen) for scope in scopes]
            first += [start(f"/api/v1{scope}/pods", self.pod_event, label_selector=c.LABEL_SESSION)
                      for scope in scopes]
            for plural, (labels, fields) in SELECTORS.items():  # needed by no list: not waited for
                for scope in scopes:
                    start(f"/api/v1{scope}/{plural}", functools.partial(self.dependency_seen, plural),
                          label_selector=labels, field_selector=fields, metadata_only=True)
            await asyncio.gather(*(informer.synced.wait() for informer in first))
            self._listed = True
            sessions = [start(f"{group}{scope}/{c.SESSION_PLURAL}", self.session_seen) for scope in scopes]
            if self.options.peering:
                await asyncio.gather(*(informer.synced.wait() for informer in peering))
                gate.listed()
            await asyncio.gather(*(informer.synced.wait() for informer in sessions))
            early, self._early_wakes = self._early_wakes or [], None
            for event in early:
                self.wake_requested(event)
            heap.trim()  # the lists' responses are freed: hand their memory back
            tasks.append(asyncio.create_task(heap.trim_periodically(), name="heap trim"))
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def session(self, key: tuple[str, str]) -> dict | None:
        """The session as last delivered (a fresh copy each time), or None."""
        held = self.sessions.get(key)
        return None if held is None else unpack_json(held)

    async def reconcile(self, key: Hashable) -> tuple[float | None, bool]:
        namespace, name = key  # type: ignore[misc]
        body = self.session((namespace, name))
        if body is None or not self.owns(key):
            assert self.scheduler is not None
            self.scheduler.forget(key)
            return None, False
        assert self.reconciler is not None
        await self._prepare_namespace(namespace)
        wake = self.wakes.pending((namespace, name), (body.get("metadata") or {}).get("uid"))
        outcome = await self.reconciler.reconcile(body, self.templates_of(namespace), pending_wake=wake)
        self.wakes.seen((namespace, name), wake)
        return outcome.requeue_after, outcome.backoff

    def pod_seen(self, event_type: str | None, pod: Mapping[str, Any]) -> bool:
        """A session pod's watch event, for the pod provider's store (`providers.pod.pod_store`).
        False when the store held the pod as the event says already: nothing to reconcile."""
        if self.reconciler is None or "pod" not in self.provider_factories:
            return True
        store = getattr(self.provider("pod"), "pods", None)
        return store.seen(event_type, pod) if store is not None else True

    def uid_of(self, namespace: str, name: str) -> str | None:
        body = self.session((namespace, name))
        return (body.get("metadata") or {}).get("uid") if body is not None else None


async def peering_problem(api: client.ApiClient, peering: str, clusterwide: bool) -> str | None:
    """Why kopf would keep the operator paused without a word (its peering CRD is not served), or None.

    kopf pauses every watch while a mandatory peering's resource is missing; an operator started
    with a peering name on a cluster without kopf's CRDs would then do nothing, silently.
    """
    kind, plural = ("ClusterKopfPeering", "clusterkopfpeerings") if clusterwide else ("KopfPeering", "kopfpeerings")
    try:
        found = await client.CustomObjectsApi(api).get_api_resources("kopf.dev", "v1", _request_timeout=10)
    except ApiException as error:
        if error.status != 404:
            return None  # cannot tell: say nothing rather than something wrong
        found = None
    except (OSError, asyncio.TimeoutError, aiohttp.ClientError):
        return None
    if found is not None and any(r.name == plural for r in found.resources or ()):
        return None
    return (f"kopf peering '{peering}' needs the {kind} resource (group kopf.dev), which this cluster does "
            f"not serve: the operator stays paused, reconciling nothing, until it does. Install the chart's "
            f"CRDs (charts/agent-session-operator/crds/kopf-peerings.yaml) and the {kind} '{peering}', or run "
            f"with --standalone (one operator, no HA).")


async def load_runtime_key(api: client.ApiClient, secret: str | None) -> bytes:
    """The runtime key from Secret `NAMESPACE/NAME` (created with a fresh key when missing).

    Without a Secret (a bare `agent-sessions run`), a key is generated in memory rather than a
    Secret created in a namespace nobody chose: session runtimes stay protected, but no gateway
    can hold the key, and after a restart the operator no longer holds the tokens of the pods it
    started before (their info is not read until they are recreated). The chart always sets it.
    """
    if secret:
        namespace, _, name = secret.partition("/")
        return await ensure_runtime_key(api, namespace, name)
    logger.warning("no --runtime-key-secret: session runtimes are protected with a key generated in memory; "
                   "no gateway can call them, and sessions started before a restart of this operator keep a "
                   "token it no longer holds")
    return generate_key()


async def _report_tmux_orphans(runtime: OperatorRuntime) -> None:
    """Every `tmux_orphan_check_seconds`: tmux sessions of ours that no AgentSession owns get a
    Warning event (once per name) and the `agent_session_tmux_orphans` metric; they are killed
    only with `--tmux-reap-orphans`. Lists sessions afresh: the index is empty until an event."""
    from agent_sessions.providers.tmux.orphans import report_orphans

    reported: set[str] = set()
    objects = client.CustomObjectsApi(runtime.reconciler.api)  # type: ignore[union-attr]
    while True:
        try:
            if runtime.options.namespaces:
                items = []
                for namespace in runtime.options.namespaces:
                    listed = await objects.list_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.SESSION_PLURAL)
                    items += listed.get("items") or []
            else:
                listed = await objects.list_cluster_custom_object(c.GROUP, c.VERSION, c.SESSION_PLURAL)
                items = listed.get("items") or []
            orphans = await report_orphans(
                runtime.provider("tmux"), items, namespaces=runtime.options.namespaces or None  # type: ignore[arg-type]
            )
            for name in orphans:
                if name not in reported:
                    reported.add(name)
                    logger.warning("tmux session %s has no AgentSession (orphan)", name)
                    await _orphan_event(runtime, name)
        except asyncio.CancelledError:
            raise
        except Exception:  # never let the check take the operator down
            logger.exception("tmux orphan check failed")
        await asyncio.sleep(runtime.options.tmux_orphan_check_seconds)


async def _orphan_event(runtime: OperatorRuntime, name: str) -> None:
    from datetime import datetime, timezone

    from agent_sessions.k8s.events import post_event

    namespace = (runtime.options.namespaces or ("default",))[0]
    now = datetime.now(timezone.utc)
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"tmux-orphan.{abs(hash((name, now))) % 10**12}", "namespace": namespace},
        "involvedObject": {"apiVersion": "v1", "kind": "Namespace", "name": namespace},
        "type": "Warning",
        "reason": "OrphanedTmuxSession",
        "message": f"tmux session {name} has no AgentSession"
        + ("; killed (--tmux-reap-orphans)" if runtime.options.tmux_reap_orphans else "; left running"),
        "source": {"component": "agent-session-operator"},
        "firstTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lastTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "count": 1,
    }
    try:
        await post_event(runtime.reconciler.api, event)  # type: ignore[union-attr]
    except Exception:
        logger.warning("could not post the orphan event for %s", name)


def _snapshot(body: Mapping[str, Any]) -> dict[str, Any]:
    # The decoded event's own values, not a copy (the event is dropped): no walk of a free-form
    # field (`spec.meta`) that may be nested far deeper than Python's stack — its depth is judged
    # by the reconcile, with a message. `managedFields` is left out: nothing reads it, and it is
    # the largest part of most bodies (memory at scale, issue 11).
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {key: value for key, value in (body.get("metadata") or {}).items() if key != "managedFields"},
        "spec": body.get("spec") or {},
        "status": body.get("status") or {},
    }


async def _http_session(runtime: OperatorRuntime) -> tuple[aiohttp.ClientSession, str]:
    """`k8s.client.http_session` of the operator's client, with this replica's user agent."""
    reconciler = await runtime.connect()
    return await http_session(reconciler.api, runtime.user_agent)


async def _follow(runtime: OperatorRuntime, http: aiohttp.ClientSession, server: str) -> None:
    try:
        await runtime.follow(http, server)
    finally:
        await http.close()


def register(registry: kopf.OperatorRegistry, runtime: OperatorRuntime) -> None:
    """Register the operator's handlers into `registry` (one registry per operator run)."""

    @kopf.on.startup(registry=registry)
    async def startup(**_: Any) -> None:
        reconciler = await runtime.connect()
        if runtime.options.peering:
            problem = await peering_problem(reconciler.api, runtime.options.peering, runtime.options.clusterwide)
            if problem:
                logger.error("%s", problem)
        if runtime.shards is not None:
            runtime.shards.start()
        http, server = await _http_session(runtime)
        runtime.background.append(asyncio.create_task(_follow(runtime, http, server), name="informers"))
        if "tmux" in runtime.provider_factories:
            runtime.background.append(asyncio.create_task(_report_tmux_orphans(runtime), name="tmux orphans"))

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        for task in runtime.background:
            task.cancel()
        await asyncio.gather(*runtime.background, return_exceptions=True)
        if runtime.shards is not None:
            await runtime.shards.stop()  # no shard acquired while the work stops
        if runtime.scheduler is not None:
            await runtime.scheduler.close()
        if runtime.shards is not None:
            await runtime.shards.release()  # only now: the next holder finds nothing of ours running
        if runtime.reconciler is not None:
            await runtime.reconciler.api.close()
            if runtime.reconciler.runtime is not None:
                await runtime.reconciler.runtime.close()

    @kopf.on.login(registry=registry)
    async def login(**_: Any) -> kopf.AiohttpSession:
        # kopf's watches use the very credentials of our client (kubeconfig, in-cluster or exec
        # plugin, as kubectl would), and carry our user agent instead of "kopf/<version>".
        session, server = await _http_session(runtime)
        return kopf.AiohttpSession(aiohttp_session=session, server=server)

    @kopf.on.event("v1", "events", labels={c.LABEL_WAKE_REQUEST: kopf.PRESENT}, registry=registry)
    async def wake_request_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        # Only new requests (None: the initial listing, which may hold requests made while no
        # operator was active): a modified or deleted Event asks for nothing new.
        if type not in (None, "ADDED") or runtime.scheduler is None:
            return
        runtime.wake_requested(dict(body))
