"""The one level-based `reconcile()` of an AgentSession (§8).

Every trigger — a session event, an owned pod's event, a template change, a requeue, the slow
resync timer — ends here, and the outcome depends only on what is (the session, its templates,
what the provider observes), never on which trigger fired. The decisions are pure
(`config.resolve_config`, `lifecycle.decide`); this module does the I/O around them:

1. resolve the configuration (templates come from an in-memory index: no API call);
2. ask the provider what exists (`observe`);
3. `decide()`; when it asks for the prompt, send it and decide again with the runtime's answer
   (`lifecycle.prompt`: the delivery is recorded by the same status patch as the rest);
4. execute the actions (provider calls), stopping at the first failure and deciding again with
   that failure, so a transition is only recorded once it really happened;
5. write status once, and only if it differs from what was read; post the transition events.

A converged session therefore costs one observation and zero writes.

Deletion never depends on the configuration: a deleted session is torn down by the provider that
status says made its backing (`status.provider`), with whatever configuration still resolves, and
its finalizer is removed once nothing is left, even when no provider is known; an admin may
abandon a backing that cannot be deleted (`agentsession.dev/abandon`, see `lifecycle.decide`).

Every text written where a reader of the session sees it — condition messages, health, title,
session info and Events — goes through one sanitiser first (`sanitized_status`,
`clean_text`): the log tail's redactor, with the values of the Secrets the session's
configuration references as known secrets (a platform's error may echo what it was sent), and
control characters removed (titles are shown by `kubectl get`). The Secrets are read only when
something is about to be written.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from agent_sessions.api import constants as c
from agent_sessions.api.session import AgentSessionStatus, LogsStatus
from agent_sessions.config import ConfigInvalid, ResolvedConfig, resolve_config
from agent_sessions.k8s.client import call_json
from agent_sessions.k8s.events import build_event, post_event
from agent_sessions.k8s.finalizers import set_finalizers, with_finalizer, without_finalizer
from agent_sessions.k8s.status import merge_patch, patch_status
from agent_sessions.lifecycle import (
    BackingState,
    Decision,
    Delete,
    DeliverPrompt,
    Emit,
    Ensure,
    HealthProbe,
    LifecycleSettings,
    Observation,
    RemoveFinalizer,
    SessionInput,
    Stop,
    apply_condition,
    compute_provider_available_condition,
    decide,
    prompt_message_id,
)
from agent_sessions.lifecycle.timestamps import format_timestamp, parse_timestamp
from agent_sessions.providers.base import Provider, SessionRef, ValidationContext
from agent_sessions.providers.errors import (
    InvalidConfiguration,
    ProviderUnavailable,
    SessionAlreadyExists,
    SessionNotFound,
)
from agent_sessions.providers.logs import tail as bound_tail
from agent_sessions.providers.environment import SECRET, object_data
from agent_sessions.providers.object_reader import KubernetesObjectReader
from agent_sessions.providers.redaction import redact, secret_references
from agent_sessions.wire import tracing
from agent_sessions.wire.runtime_client import RuntimeCallFailed, RuntimeClient

from . import metrics
from .inputs import parse_status, provider_type_of, session_input, wake_to_act_on
from .own_writes import OwnWrites
from .sanitize import KnownSecrets, clean_text, printable_session_info, sanitized_status

logger = logging.getLogger(__name__)

RUNTIME_AGENT_EXITED = "AgentExited"
"""The bridge's health reason when its agent process has ended."""

RESYNC_SECONDS = 300.0
"""The slow timer: how often a session is reconciled with no trigger at all."""
LOG_REFRESH_SECONDS = 30.0
"""At most one log read (and one log status write) per session in this interval."""
INFO_REFRESH_SECONDS = 10.0
"""At most one read of a running session's runtime info (title, activity, health) per interval."""
INFO_REFRESH_BACKOFF = 6.0
"""A runtime whose info did not change since the last read is read half as often each time, down
to once per this many `info_refresh_seconds` (60 s by default); a change, a running turn or a
failed read brings it back to every `info_refresh_seconds`. An idle session so costs a sixth of
the reconciles; its pod's readiness (the bridge's health) still comes at once from the pod watch."""
DELETE_RETRY_SECONDS = 2.0

MAX_SECRETS_READ: Final = 32
"""At most this many Secret references of one session are read for redaction."""


@dataclass
class ReconcileOutcome:
    """What one reconcile did; the scheduler uses `requeue_after`, tests use the rest."""

    requeue_after: float | None
    wrote_status: bool = False
    gone: bool = False
    backoff: bool = False
    """The provider could not be reached: retry with growing delays."""


@dataclass
class Reconciler:
    """Everything `reconcile()` needs from the outside world, injected."""

    api: client.ApiClient
    providers: Callable[[str], Provider]
    operator_defaults: Mapping[str, Any] = field(default_factory=dict)
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    instance: str = "agent-session-operator"
    log_refresh_seconds: float = LOG_REFRESH_SECONDS
    info_refresh_seconds: float = INFO_REFRESH_SECONDS
    runtime: RuntimeClient | None = None
    """Client of the sessions' runtime bridges (session info, health detail, prompt delivery)."""
    _last_log_read: dict[str, float] = field(default_factory=dict)
    _last_info_read: dict[str, float] = field(default_factory=dict)
    _info_interval: dict[str, float] = field(default_factory=dict)
    """uid → the current interval between info reads (see `INFO_REFRESH_BACKOFF`)."""
    _info_known: set[str] = field(default_factory=set)
    """uids whose info this process read (or tried to), or whose first read it put off (see
    `_read_runtime`): only a session none of this is true of has its first read put off."""
    _info_seen: dict[str, int] = field(default_factory=dict)
    """uid → a hash of the info last read, to tell whether it changed."""
    _output_mark: dict[str, str] = field(default_factory=dict)
    """The bridge's `outputMark` as last reported, per session uid."""
    _logged_mark: dict[str, str] = field(default_factory=dict)
    """The `outputMark` when the log tail was last read: equal to the current one, the log did not change."""
    _retry_after: dict[str, float] = field(default_factory=dict)
    """uid → the wait a provider asked for (Retry-After) in this reconcile."""
    _phases: dict[str, tuple[str, str]] = field(default_factory=dict)
    """uid → (phase, provider) last counted in the sessions gauge."""
    _own_writes: OwnWrites = field(default_factory=OwnWrites)
    """What our own status and finalizer writes returned: the index lags behind them."""

    def echoed(self, uid: str, version: str) -> bool:
        """Whether version `version` of session `uid`, delivered by the watch, is a state this
        reconciler's own writes made (or wrote past): it needs no reconcile (`OwnWrites.echoed`)."""
        return self._own_writes.echoed(uid, version)

    async def reconcile(self, body: Mapping[str, Any], templates: Mapping[str, dict], *,
                        pending_wake: str | None = None) -> ReconcileOutcome:
        """`pending_wake`: the time of a signed wake request from the gateway not acted on yet
        (`wire.wake_request`), if there is one."""
        started = time.monotonic()
        try:
            with tracing.object_span("reconcile", body):  # a span while tracing is on (wire.tracing)
                return await self._reconcile(dict(body), templates, pending_wake)
        finally:
            metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)

    async def _reconcile(self, body: dict[str, Any], templates: Mapping[str, dict],
                         pending_wake: str | None) -> ReconcileOutcome:
        body = self._own_writes.freshest(body)
        meta = body["metadata"]
        if isinstance(meta.get("uid"), str):
            # Each read of a session is a fresh copy with a uid string of its own, and up to nine
            # per-session maps key on it: one shared string per session (~0.6 KiB less each).
            meta["uid"] = sys.intern(meta["uid"])
        deleting = bool(meta.get("deletionTimestamp"))
        if deleting and c.FINALIZER not in (meta.get("finalizers") or []):
            self._forget(meta.get("uid", ""))
            return ReconcileOutcome(requeue_after=None, gone=True)  # not ours to clean up (any more)
        if not deleting:
            finalizers = with_finalizer(meta)
            if finalizers is not None:
                updated = await set_finalizers(self.api, meta, finalizers)
                self._own_writes.remember(body, updated)
                body = updated
                meta = body["metadata"]

        raw_status = body.get("status") or {}
        status = parse_status(raw_status, meta)
        resolved, problems = self._resolve(body, templates)
        provider_type = provider_type_of(resolved, status)
        if deleting and status is not None and status.provider is not None and status.provider.type:
            provider_type = status.provider.type  # delete what was made, whatever the config says now
        provider = None
        missing_provider: str | None = None
        if provider_type:
            try:
                provider = self.providers(provider_type)
            except InvalidConfiguration as unavailable:  # e.g. a provider this operator lacks
                problems = [*problems, *(unavailable.problems or [str(unavailable)])]
                missing_provider = f"provider {provider_type!r} is not available in this operator"
        settings = None
        try:
            if provider is not None and resolved is not None:
                context = ValidationContext(namespace=meta.get("namespace"), raises=resolved.raises)
                problems = [*problems, *provider.validate(resolved.config, context)]
            if resolved is not None and not problems:
                settings = LifecycleSettings.from_resolved(resolved)
        except Exception as error:  # input of a shape nobody foresaw: never a reason not to delete
            logger.exception("checking the configuration of %s/%s failed", meta.get("namespace"), meta.get("name"))
            problems = [*problems, f"the configuration could not be checked: {type(error).__name__}: {error}"]
        ref = SessionRef.from_object(
            body, resolved.config if resolved else {}, config_hash=resolved.hash if resolved else None,
            raises=resolved.raises if resolved else None,
        )
        session = session_input(body, settings, problems, deleting, status, pending_wake)
        if deleting and (meta.get("annotations") or {}).get(c.ANNOTATION_ABANDON) == "true":
            session = dataclasses.replace(session, abandon=True)
        secrets = KnownSecrets(lambda: self._secret_values(body, ref.config))

        if session.abandon:  # no provider call: it may be what cannot be reached
            observation, provider_error = None, None
        else:
            observation, provider_error = await self._observe(provider, ref, status, deleting)
        if deleting and provider is None and missing_provider and status is not None and status.provider is not None \
                and status.provider.id:
            provider_error = missing_provider  # what it made cannot be deleted by this operator
        observed = observation
        observation, status, reported = await self._read_runtime(observation, status, ref, provider)
        decision = decide(session, status, observation, provider_error, self.clock())
        if _stops_for_idleness(status, decision) and self.runtime is not None:
            # Never stop a session for idleness on a stale reading: look again, decide again.
            observation, status, reported = await self._read_runtime(observed, status, ref, provider, force=True)
            decision = decide(session, status, observation, provider_error, self.clock())
        decision = await self._deliver_prompt(decision, session, status, observation, provider_error)
        if reported is not None and decision.status.last_activity_time != reported:
            decision.status.last_activity_time = reported  # record the bridge's own clock, not "busy now"
        if not session.deleting and observation is not None and observation.exists \
                and _agent_failed(status, decision.status):
            # The output before a failure is what explains it: read before a stop takes it away.
            await self._refresh_logs(provider, ref, decision.status, failing=True)
        decision, removed = await self._execute(decision, provider, ref, session, status, observation)
        if removed:
            self._count(ref.uid, None, None)
            await self._emit(body, [a for a in decision.actions if isinstance(a, Emit)], secrets)
            return ReconcileOutcome(requeue_after=None, gone=True)

        new_status = decision.status
        if provider is not None and new_status.phase in (c.PHASE_CREATING, c.PHASE_RUNNING):
            new_status.capabilities = provider.capabilities()
        if session.wake_requested:
            new_status.wake_request = wake_to_act_on(meta, status, pending_wake)
        if not session.deleting:  # a log read of a backing on its way out would only add a write
            await self._refresh_logs(provider, ref, new_status)

        wrote = await self._write_status(body, raw_status, new_status, secrets) is not None
        await self._emit(body, [a for a in decision.actions if isinstance(a, Emit)], secrets)
        if wrote and status is not None and status.phase != new_status.phase:
            metrics.TRANSITIONS.labels(from_phase=status.phase or "", to_phase=new_status.phase or "").inc()
        if wrote and new_status.phase == c.PHASE_RUNNING and not (status and status.phase == c.PHASE_RUNNING):
            self._observe_startup(meta, status)
        self._count(ref.uid, new_status.phase or "", provider_type or "")
        requeue = decision.requeue_after
        if new_status.phase == c.PHASE_RUNNING and provider is not None and provider.capabilities().logs \
                and ref.uid not in self._output_mark:
            # Without a bridge that marks its output (a mark comes only from a runtime read), the
            # tail is read on a timer. With one, only when a read shows a new mark: the runtime
            # reads' own timer is enough.
            requeue = min(requeue or self.log_refresh_seconds, self.log_refresh_seconds)
        if new_status.phase == c.PHASE_RUNNING and self.runtime is not None:
            interval = self._info_interval.get(ref.uid, self.info_refresh_seconds)
            requeue = min(requeue or interval, interval)
        asked = self._retry_after.pop(ref.uid, None)
        if asked is not None:  # the provider said when to come back (Retry-After): not sooner
            requeue = max(requeue or 0.0, asked)
        unavailable = any(
            cond.type == c.COND_PROVIDER_AVAILABLE and cond.status == "False" for cond in new_status.conditions or ()
        )
        return ReconcileOutcome(
            requeue_after=requeue if requeue is not None else RESYNC_SECONDS, wrote_status=wrote, backoff=unavailable
        )

    # --- metrics -------------------------------------------------------------------------

    def _count(self, uid: str, phase: str | None, provider: str | None) -> None:
        """Keep the sessions-by-phase gauge in step (None: the session is gone)."""
        before = self._phases.pop(uid, None)
        if before is not None:
            metrics.SESSIONS.labels(phase=before[0], provider=before[1]).dec()
        if phase is not None:
            self._phases[uid] = (phase, provider or "")
            metrics.SESSIONS.labels(phase=phase, provider=provider or "").inc()

    def _observe_startup(self, meta: Mapping[str, Any], status: AgentSessionStatus | None) -> None:
        """Creation (or the last start, on a resume) to Running, for the startup histogram."""
        began = parse_timestamp(status.start_time if status and status.start_time else meta.get("creationTimestamp"))
        if began is not None:
            metrics.STARTUP_SECONDS.observe(max(0.0, (self.clock() - began).total_seconds()))

    # --- configuration -------------------------------------------------------------------

    def _resolve(self, body: dict, templates: Mapping[str, dict]) -> tuple[ResolvedConfig | None, list[str]]:
        try:
            return resolve_config(body, templates, self.operator_defaults), []
        except ConfigInvalid as invalid:
            return None, [str(p) for p in invalid.problems]
        except Exception as error:  # input of a shape nobody foresaw: never a reason not to delete
            meta = body.get("metadata") or {}
            logger.exception("resolving the configuration of %s/%s failed", meta.get("namespace"), meta.get("name"))
            return None, [f"the configuration could not be resolved: {type(error).__name__}: {error}"]

    # --- observation ---------------------------------------------------------------------

    async def _observe(
        self, provider: Provider | None, ref: SessionRef, status: AgentSessionStatus | None, deleting: bool
    ) -> tuple[Observation | None, str | None]:
        if provider is None:
            return None, None
        known = status is not None and status.provider is not None and bool(status.provider.id)
        active = status is not None and status.phase in (
            c.PHASE_CREATING, c.PHASE_RUNNING, c.PHASE_STOPPING, c.PHASE_TERMINATING,
        )
        if not (known or active or deleting):
            return None, None  # nothing was ever created: nothing to look at
        try:
            return await provider.observe(ref), None
        except ProviderUnavailable as unavailable:
            metrics.PROVIDER_ERRORS.labels(provider=provider.type_name, operation="observe").inc()
            self._note_retry_after(ref.uid, unavailable)
            return None, str(unavailable)

    # --- actions -------------------------------------------------------------------------

    async def _execute(
        self,
        decision: Decision,
        provider: Provider | None,
        ref: SessionRef,
        session: SessionInput,
        status: AgentSessionStatus | None,
        observation: Observation | None,
    ) -> tuple[Decision, bool]:
        """Run the provider actions in order. Returns the (possibly re-made) decision and
        whether the finalizer was removed (the object is going away)."""
        for action in decision.actions:
            if isinstance(action, (Emit, DeliverPrompt)):
                continue  # events are posted after the status write; a prompt was sent already
            if isinstance(action, RemoveFinalizer):  # needs no provider: nothing of it is left
                return decision, await self._remove_finalizer(ref)
            if provider is None:
                break
            try:
                if isinstance(action, Ensure):
                    placed = await provider.ensure(ref)
                    st = decision.status
                    if st.provider is not None and not st.provider.id:
                        st.provider.id = placed.id
                    if st.provider is not None and st.provider.restarts is None:
                        st.provider.restarts = 0  # a new backing: what its first observation will say
                    # It answered: said now, in this reconcile's patch, not in one more when it is next observed.
                    st.conditions = apply_condition(st.conditions, compute_provider_available_condition(None),
                                                    st.observed_generation, self.clock())
                elif isinstance(action, Stop):
                    await provider.stop(ref)
                elif isinstance(action, Delete):
                    if not await provider.delete(ref):
                        return dataclasses.replace(decision, requeue_after=DELETE_RETRY_SECONDS), False
                    gone = Observation(state=BackingState.ABSENT)
                    again = decide(session, status, gone, None, self.clock())
                    if any(isinstance(a, RemoveFinalizer) for a in again.actions):
                        return decision, await self._remove_finalizer(ref)
            except ProviderUnavailable as unavailable:
                metrics.PROVIDER_ERRORS.labels(provider=provider.type_name, operation=type(action).__name__).inc()
                self._note_retry_after(ref.uid, unavailable)
                return decide(session, status, observation, str(unavailable), self.clock()), False
            except (InvalidConfiguration, SessionAlreadyExists) as invalid:
                # A permanent refusal (bad config, or a backing of that name owned by another).
                problems = tuple(getattr(invalid, "problems", None) or ()) or (str(invalid),)
                rejected = dataclasses.replace(session, settings=None, config_problems=problems)
                return decide(rejected, status, observation, None, self.clock()), False
        return decision, False

    def _forget(self, uid: str) -> None:
        """The session is going away: drop what was kept for it."""
        self._last_log_read.pop(uid, None)
        self._last_info_read.pop(uid, None)
        self._info_interval.pop(uid, None)
        self._info_seen.pop(uid, None)
        self._info_known.discard(uid)
        self._output_mark.pop(uid, None)
        self._logged_mark.pop(uid, None)
        self._retry_after.pop(uid, None)
        self._own_writes.forget(uid)

    def _note_retry_after(self, uid: str, unavailable: ProviderUnavailable) -> None:
        if unavailable.retry_after:
            self._retry_after[uid] = max(self._retry_after.get(uid, 0.0), float(unavailable.retry_after))

    async def _remove_finalizer(self, ref: SessionRef) -> bool:
        objects = client.CustomObjectsApi(self.api)
        try:
            current = await call_json(objects.get_namespaced_custom_object,
                                      c.GROUP, c.VERSION, ref.namespace, c.SESSION_PLURAL, ref.name)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        remaining = without_finalizer(current["metadata"])
        if remaining is not None:
            await set_finalizers(self.api, current["metadata"], remaining)
        self._forget(ref.uid)
        return True

    # --- the session's runtime ------------------------------------------------------------

    async def _read_runtime(
        self, observation: Observation | None, status: AgentSessionStatus | None, ref: SessionRef,
        provider: Provider | None, *, force: bool = False,
    ) -> tuple[Observation | None, AgentSessionStatus | None, str | None]:
        """Fold what the runtime bridge reports into the status `decide()` starts from (so idle
        timeouts and the title use fresh data) and into the observed health (the bridge knows
        why an agent is unhealthy: its exit code and stderr, or the error it refused a session
        with). Read at most every `info_refresh_seconds` (less often while nothing changes:
        `INFO_REFRESH_BACKOFF`), and at once while not ready or when
        `force`d. A running turn counts as activity now; the third value is the activity time the
        bridge reported, which is what status records. A Pending backing with an endpoint (a
        platform's session whose runtime answers before the platform calls it ready) is read too:
        its runtime may say the agent cannot start."""
        if (
            self.runtime is None
            or observation is None
            or observation.state not in (BackingState.PENDING, BackingState.RUNNING)
            or not observation.endpoint
        ):
            return observation, status, None
        uid = ref.uid
        now = time.monotonic()
        last = self._last_info_read.get(uid)
        interval = self._info_interval.get(uid, self.info_refresh_seconds)
        if not force and observation.ready and last is not None and now - last < interval:
            return observation, status, None
        if not force and observation.ready and uid not in self._info_known and status is not None \
                and status.phase == c.PHASE_RUNNING and status.observed_generation is not None \
                and (status.prompt is None or status.prompt.state == "Delivered"):
            # Running and ready as another operator process (a restart) last recorded it, with
            # nothing to hand its runtime: what status holds stands until a read spread over the
            # backoff's range, so a restart over N converged sessions is not N runtime reads at
            # once (issue 11: resync); the log mark it recorded stands too, so no tail is read
            # before then either.
            self._info_known.add(uid)
            self._last_info_read[uid] = now
            self._info_interval[uid] = self.info_refresh_seconds * random.uniform(1.0, INFO_REFRESH_BACKOFF)
            if status.logs is not None and status.logs.output_mark:
                self._output_mark.setdefault(uid, status.logs.output_mark)
            return observation, status, None
        self._info_known.add(uid)
        try:
            info = await self.runtime.info(observation.endpoint, ref)
        except RuntimeCallFailed:
            # A bridge that answered before and is silent now, on a backing still said to be ready:
            # look at the backing afresh next time, once (a deletion the pod watch missed).
            invalidate = getattr(provider, "invalidate", None)
            if observation.ready and self._last_info_read.pop(uid, None) is not None and invalidate is not None:
                invalidate(ref)
            self._info_interval.pop(uid, None)
            return observation, status, None  # the bridge may still be starting: the pod says the rest
        self._last_info_read[uid] = now
        seen = hash(repr(info))
        if self._info_seen.get(uid) == seen and info.state != "busy":
            self._info_interval[uid] = min(interval * 2, self.info_refresh_seconds * INFO_REFRESH_BACKOFF)
        else:
            self._info_interval.pop(uid, None)
        self._info_seen[uid] = seen
        if info.output_mark is not None:
            self._output_mark[uid] = info.output_mark
        if info.start_failed:
            # The agent never started (cannot run, exited or refused during start-up) and the
            # bridge does not retry: a backing that ended, now, not at the start timeout.
            start = info.agent_start
            message = redact(str(start.get("message") or info.health_message()))
            exit_code = start.get("exitCode")
            observation = dataclasses.replace(
                observation, state=BackingState.FAILED, ready=False, start_failed=True,
                exit_code=exit_code if isinstance(exit_code, int) else None,
                reason=str(start.get("reason") or "") or None, message=message,
                health=HealthProbe(c.HEALTH_UNHEALTHY, redact(info.health_message())),
            )
        elif not info.healthy:
            # The bridge outlives its agent: an exited agent is a backing that ended (so the
            # restart policy applies); a refused session or a failed start is just unhealthy.
            message = redact(info.health_message())
            exit_code = info.health.get("exitCode")
            if info.health.get("reason") == RUNTIME_AGENT_EXITED and isinstance(exit_code, int):
                observation = dataclasses.replace(
                    observation,
                    state=BackingState.SUCCEEDED if exit_code == 0 else BackingState.FAILED,
                    ready=False,
                    exit_code=exit_code,
                    reason=c.REASON_AGENT_EXITED,
                    message=message,
                )
            else:
                observation = dataclasses.replace(
                    observation, ready=False, health=HealthProbe(c.HEALTH_UNHEALTHY, message)
                )
        if status is None:
            return observation, status, None
        updated = status.model_copy(deep=True)
        session_info = printable_session_info(info.session_info) if info.session_info else None
        if session_info != updated.session_info:
            updated.session_info = session_info
        if info.last_activity_time and info.last_activity_time != updated.last_activity_time:
            updated.last_activity_time = info.last_activity_time
        if info.message_count is not None and info.message_count != updated.message_count:
            updated.message_count = info.message_count
        reported = updated.last_activity_time
        if info.state == "busy":
            updated.last_activity_time = format_timestamp(self.clock())
        return observation, updated, reported

    async def _deliver_prompt(
        self,
        decision: Decision,
        session: SessionInput,
        status: AgentSessionStatus | None,
        observation: Observation | None,
        provider_error: str | None,
    ) -> Decision:
        """Send the prompt `decision` asks for and decide again with the runtime's answer, whose
        status records it: the delivery goes into this reconcile's one status patch. The id makes
        a repeated send harmless (see `lifecycle.prompt`), so nothing is written before sending."""
        asked = next((a for a in decision.actions if isinstance(a, DeliverPrompt)), None)
        if asked is None or self.runtime is None or observation is None or not observation.endpoint:
            return decision
        try:
            delivery = await self.runtime.deliver(observation.endpoint, asked.text, prompt_message_id(session.uid),
                                                 SessionRef(session.namespace, session.name, session.uid))
            accepted = delivery.accepted  # not accepted: a turn is running (someone messaged first)
        except RuntimeCallFailed as failed:
            logger.info("prompt delivery to %s postponed: %s", session.name, failed)
            accepted = False
        answered = dataclasses.replace(observation, prompt_accepted=accepted)
        return decide(session, status, answered, provider_error, self.clock())

    # --- logs ----------------------------------------------------------------------------

    async def _refresh_logs(self, provider: Provider | None, ref: SessionRef, status: AgentSessionStatus,
                            *, failing: bool = False) -> None:
        """Read the log tail of a running session at most every `log_refresh_seconds`, and not at
        all while its bridge reports that it wrote nothing since the last read (`outputMark`);
        `failing`: once more, whatever the phase, when the agent has just failed or crashed."""
        if provider is None or not provider.capabilities().logs:
            return
        if not failing and status.phase != c.PHASE_RUNNING:
            return
        mark = self._output_mark.get(ref.uid)
        if not failing and mark is not None and status.logs is not None \
                and mark in (self._logged_mark.get(ref.uid), status.logs.output_mark):
            return  # nothing written since the tail was taken (by this process or, in status, before it)
        now = time.monotonic()
        last = self._last_log_read.get(ref.uid)
        if not failing and last is not None and now - last < self.log_refresh_seconds:
            return
        self._last_log_read[ref.uid] = now
        try:
            text = await provider.logs(ref, c.MAX_LOG_TAIL_LINES, c.MAX_LOG_TAIL_BYTES * 4)
        except (ProviderUnavailable, SessionNotFound):
            return
        if mark is not None:
            self._logged_mark[ref.uid] = mark
        tail, cut = bound_tail(text, c.MAX_LOG_TAIL_LINES, c.MAX_LOG_TAIL_BYTES)
        truncated = cut or bool(getattr(text, "truncated", False))
        previous = status.logs
        if previous is not None and previous.tail == tail and bool(previous.truncated) == truncated:
            return  # the mark alone is not worth a write: this process remembers it (`_logged_mark`)
        status.logs = LogsStatus(tail=tail, truncated=truncated, updated_at=format_timestamp(self.clock()),
                                 output_mark=mark)

    # --- writes --------------------------------------------------------------------------

    async def _write_status(
        self, body: dict, raw_status: dict, status: AgentSessionStatus, secrets: KnownSecrets
    ) -> dict | None:
        """Patch what changed, sanitised; the updated object, or None when nothing was written.
        What changed is first judged with the patterns alone, so an unchanged status costs no
        Secret read; what is written is redacted with the known secret values too."""
        new = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        if merge_patch(raw_status, sanitized_status(new, ())) is None:
            return None
        patch = merge_patch(raw_status, sanitized_status(new, await secrets.values()))
        if patch is None:
            return None
        meta = body["metadata"]
        logger.debug("status patch of %s/%s: %s", meta["namespace"], meta["name"], patch)
        try:
            updated = await patch_status(self.api, meta["namespace"], meta["name"], patch)
        except ApiException as exc:
            if exc.status == 404:
                return None  # deleted meanwhile
            raise
        self._own_writes.remember(body, updated)
        return updated

    async def _emit(self, body: dict, events: list[Emit], secrets: KnownSecrets) -> None:
        if not events:
            return
        values = await secrets.values()
        for event in events:
            message = clean_text(event.message, values)
            try:
                await post_event(
                    self.api, build_event(body, event.type, event.reason, message, self.clock(), self.instance)
                )
            except ApiException as exc:  # an event is never worth failing a reconcile for
                logger.warning("could not post event %s: %s", event.reason, exc.reason)


    async def _secret_values(self, body: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
        """The values of the Secrets the session's configuration references (the resolved one
        and the session's own spec, which is all there is when it does not resolve): what the
        sanitiser redacts as known secrets. A Secret that cannot be read is skipped: the
        patterns still apply, and a status write would fail the same way."""
        namespace = body["metadata"]["namespace"]
        references = dict.fromkeys([*secret_references(config), *secret_references(body.get("spec") or {})])
        reader = KubernetesObjectReader.from_api_client(self.api)
        values: list[str] = []
        read: dict[str, Mapping[str, Any] | None] = {}
        for name, key in list(references)[:MAX_SECRETS_READ]:
            if name not in read:
                try:
                    read[name] = await reader.read(SECRET, namespace, name)
                except ProviderUnavailable as unreadable:  # forbidden, or the API is not answering
                    logger.info("cannot read Secret %s/%s for redaction: %s", namespace, name, unreadable)
                    read[name] = None
            secret = read[name]
            data = object_data(SECRET, secret) if secret is not None else {}
            values += [value for k, value in data.items() if key is None or k == key]
        return values


def _agent_failed(before: AgentSessionStatus | None, after: AgentSessionStatus) -> bool:
    """This decision records a failure or a crash of the agent (Failed now, or one more crash)."""
    if after.phase == c.PHASE_FAILED:
        return before is None or before.phase != c.PHASE_FAILED
    return (after.crash_count or 0) > ((before.crash_count or 0) if before is not None else 0)


def _stops_for_idleness(status: AgentSessionStatus | None, decision: Decision) -> bool:
    return (
        status is not None
        and status.phase == c.PHASE_RUNNING
        and decision.status.phase == c.PHASE_STOPPING
        and decision.status.stopped_reason == c.STOPPED_IDLE_TIMEOUT
    )
