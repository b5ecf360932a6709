"""`PodProvider`: sessions as Pods (one per session) with an optional workspace PVC (§6 "pod").

Every call is a handful of requests against the core/v1 API, made with `kubernetes_asyncio`
(never a blocking client on the event loop). The provider keeps no state of its own: names are
computed from the session (`names`), so after an operator restart it finds everything again by
construction, and two reconciles racing each other cannot create two pods — the API server's
409 decides.

* `ensure` creates the PVC (read first on a resume: it exists already), then the Pod; a 409
  means it already exists, which is success once we checked it is this session's. The pod is
  never checked before its create. A pod that still exists while being deleted is returned as
  is: `observe` reports it TERMINATING, and the lifecycle ensures again once it is gone.
* `stop` deletes the pod and keeps the PVC; `delete` deletes both. 404 is done. An object that
  is already being deleted (`deletionTimestamp`: a pod within its grace period, a claim held by
  `kubernetes.io/pvc-protection`) is not deleted again: it is waited for, at the cost of a read.
* `logs` reads `pods/log` and redacts it (values of the pod's Secrets, and patterns) before
  bounding it; see `logs` and `redaction`.

The pod security policy (`policy`) is part of `validate`: the operator's level and ServiceAccounts,
as the session's templates raise them and its namespace's label holds them (`ValidationContext`:
the namespace's labels are kept by `namespace_labels`); `ensure` checks it again, with the
session's own context, before creating anything.

With a `runtime_key` (the operator's, `wire.runtime_key`), `ensure` writes the session's runtime
token Secret (`token_secret`) before the pod, and the pod mounts it: the bridge then answers only
callers holding the token. Created without a read on a first start; read first on a resume
(`SessionRef.placed_before`: it exists then), and written only when missing or different (a
rotated key), so a resume costs one read and no write. The workspace claim is made the same way.

With a `network_policy` (operator configuration), `ensure` makes sure the session NetworkPolicy
exists as configured in the session's namespace before it creates a pod there
(`network_policies`: at most one read per namespace and TTL, a write only when it is missing or
was changed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from kubernetes_asyncio.client import CoreV1Api, NetworkingV1Api
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.client.rest import RESTResponse

from agent_sessions.api import constants as c
from agent_sessions.k8s.client import call_json
from agent_sessions.lifecycle.observation import Observation
from agent_sessions.wire.credentials import session_token

from ..base import Capabilities, ProviderRef, SessionRef, ValidationContext
from ..errors import InvalidConfiguration, SessionAlreadyExists, SessionNotFound
from ..logs import LogTail, bounded_log
from .api_errors import TRANSIENT_ERRORS, api_error, transport_error
from .constants import CONTAINER_NAME, RUNTIME_PORT
from .logs import secret_references, secret_values
from .names import label_value, pod_name, pvc_name, token_secret_name
from .namespace_labels import DEFAULT_TTL_SECONDS, NamespaceLabels
from .network_policies import DEFAULT_TTL_SECONDS as NETWORK_POLICY_TTL_SECONDS
from .network_policies import SessionNetworkPolicies
from .network_policy_spec import SessionNetworkPolicy
from .observe import observe_pod
from .pod_store import GONE, PodStore
from .pod_spec import build_pod, session_labels
from .policy import RESTRICTED, PodPolicy, effective_level, policy_problems
from .pvc_spec import build_pvc
from .token_secret import build_token_secret, holds
from .validation import pod_problems

LOG_FETCH_LIMIT_BYTES: Final = 1024 * 1024
"""Safety bound on one log read: `tail_lines` bounds lines, not one enormous line. When a read
hits it, its cut last line is dropped (it could hold a secret cut in half) and the tail is marked
truncated."""


class PodProvider:
    """The `pod` provider. Give it an `ApiClient` (or, in tests, any object with the CoreV1Api
    methods it uses as `core_api`, and with the NetworkingV1Api ones as `networking_api`)."""

    type_name = c.PROVIDER_POD

    def __init__(
        self,
        api_client: Any = None,
        *,
        core_api: Any = None,
        operator_image: str | None = None,
        runtime_port: int = RUNTIME_PORT,
        request_timeout: float | None = 30.0,
        policy: PodPolicy | None = None,
        default_resources: Mapping[str, Any] | None = None,
        namespace_ttl: float = DEFAULT_TTL_SECONDS,
        network_policy: SessionNetworkPolicy | None = None,
        network_policy_ttl: float = NETWORK_POLICY_TTL_SECONDS,
        networking_api: Any = None,
        runtime_key: bytes | None = None,
    ) -> None:
        if core_api is None and api_client is None:
            raise TypeError("PodProvider needs an api_client (or a core_api)")
        self._core = core_api if core_api is not None else CoreV1Api(api_client)
        self._api_client = api_client if api_client is not None else getattr(core_api, "api_client", None)
        self._operator_image = operator_image
        self._runtime_port = runtime_port
        self._timeout = request_timeout
        self.policy = policy or PodPolicy()
        """The pod security policy (operator configuration); restricted, no ServiceAccounts, by default."""
        self._default_resources = dict(default_resources or {})
        self.runtime_key = runtime_key
        """The runtime key the session tokens derive from (None: pods get no token, their bridge
        serves anyone; the operator always sets it, see `handlers.registration`)."""
        self._namespaces = NamespaceLabels(self._read_namespace, ttl=namespace_ttl)
        self.pods = PodStore()
        """The session pods as the operator's pod watch delivers them (`pod_store`): `observe` and
        `logs` read a pod from here when it is held, so a converged session costs no request."""
        self.network_policies: SessionNetworkPolicies | None = None
        """The session NetworkPolicy kept in each namespace with a session pod (None: not kept)."""
        if network_policy is not None:
            if networking_api is None and api_client is None:
                raise TypeError("PodProvider needs an api_client (or a networking_api) to keep a NetworkPolicy")
            networking = networking_api if networking_api is not None else NetworkingV1Api(api_client)
            self.network_policies = SessionNetworkPolicies(
                network_policy, runtime_port=runtime_port, ttl=network_policy_ttl,
                read=lambda name, namespace: self._read_dict(
                    f"read networkpolicy {name}", networking.read_namespaced_network_policy, name, namespace),
                create=lambda namespace, body: self._call(
                    f"create networkpolicy {body['metadata']['name']}",
                    networking.create_namespaced_network_policy, namespace, body),
                patch=lambda name, namespace, patch: self._call(
                    f"patch networkpolicy {name}", networking.patch_namespaced_network_policy, name, namespace,
                    patch, _content_type="application/merge-patch+json"),
            )

    # --- the protocol ---------------------------------------------------------------------

    def validate(self, config: Mapping[str, Any], context: ValidationContext) -> list[str]:
        """The pod provider's requirements, then the pod security policy: the operator's level and
        ServiceAccounts as `context.raises` raises them, held to what is known of the label of
        `context.namespace` (see `prepare_namespace`)."""
        return self._problems(config, context)

    async def prepare_namespace(self, namespace: str) -> None:
        """Before a reconcile of a session in `namespace`: refresh what is known of the
        namespace's labels (at most once per TTL), for `validate` to read. Never raises for a
        failed read (see `namespace_labels`)."""
        await self._namespaces.refresh(namespace)

    def capabilities(self) -> Capabilities:
        return Capabilities(streaming=True, history=True, logs=True, resume=True, cancel=True, resource_limits=True)

    async def ensure(self, session: SessionRef) -> ProviderRef:
        problems = self._problems(session.config, session.context)
        if not problems:  # what is known passes: read the namespace's label (once per TTL), check again
            await self._namespaces.refresh(session.namespace)
            problems = self._problems(session.config, session.context)
        if problems:
            raise InvalidConfiguration(problems)
        if self.network_policies is not None:  # before any pod of the namespace can exist
            await self.network_policies.ensure(session.namespace)
        pvc = build_pvc(session, session.config)
        if pvc is not None:
            await self._create_owned(session, "persistentvolumeclaim", pvc,
                                     self._core.create_namespaced_persistent_volume_claim,
                                     self._core.read_namespaced_persistent_volume_claim,
                                     read_first=session.placed_before)
        if self.runtime_key is not None:
            await self._ensure_token_secret(session, session_token(self.runtime_key, session.uid))
        pod = build_pod(session, session.config, runtime_port=self._runtime_port, operator_image=self._operator_image,
                        default_resources=self._default_resources, runtime_token=self.runtime_key is not None)
        current = await self._create_owned(session, "pod", pod,
                                           self._core.create_namespaced_pod, self._core.read_namespaced_pod)
        if current is not None:
            self.pods.put(current)
        observation = observe_pod(current, runtime_port=self._runtime_port) if current else None
        endpoint = observation.endpoint if observation is not None else None
        return ProviderRef(type=self.type_name, id=pod["metadata"]["name"], endpoint=endpoint)

    async def observe(self, session: SessionRef) -> Observation:
        observation = observe_pod(await self._pod(session), runtime_port=self._runtime_port)
        # Fed by the operator's pod watch, whose events trigger the session's reconcile: every
        # change of the pod is announced (no quick poll while it is scheduled, pulled, removed).
        return dataclasses.replace(observation, announced=True) if self.pods.watched else observation

    async def stop(self, session: SessionRef) -> None:
        await self._delete_pod(session)

    def invalidate(self, session: SessionRef) -> None:
        """Forget what the pod store holds for the session's pod: the next observe reads it (the
        reconciler calls this when the runtime of a pod the store says is ready does not answer:
        a deletion the watch missed)."""
        self.pods.forget(session.namespace, self._pod_name(session))

    async def delete(self, session: SessionRef) -> bool:
        claim = self._pvc_name(session)
        pod_gone = await self._delete_pod(session)
        claim_gone = await self._delete(f"persistentvolumeclaim {claim}",
                                        self._core.delete_namespaced_persistent_volume_claim,
                                        self._core.read_namespaced_persistent_volume_claim, claim, session.namespace)
        return pod_gone and claim_gone

    async def logs(self, session: SessionRef, tail_lines: int = c.MAX_LOG_TAIL_LINES,
                   limit_bytes: int = c.MAX_LOG_TAIL_BYTES) -> LogTail:
        """See `Provider.logs`. The result is a `LogTail`: a `str` with a `truncated` flag.

        The previous container's log is read while the agent waits to be restarted (crash loop):
        the current one is empty then, and the crash is what the user needs to see.
        """
        name = self._pod_name(session)
        pod = await self._pod(session)
        if pod is None:
            raise SessionNotFound(f"pod {session.namespace}/{name} not found")
        secrets = await self._secret_values(session, pod)
        statuses = (pod.get("status") or {}).get("containerStatuses") or ()
        container = next((status for status in statuses if status.get("name") == CONTAINER_NAME), {})
        previous = bool((container.get("state") or {}).get("waiting")) and bool(container.get("restartCount"))
        try:
            data = await self._read_log(name, session.namespace, tail_lines=tail_lines + 1, previous=previous)
        except _NoLogYet:
            return LogTail("", False)
        text = data.decode("utf-8", errors="replace")
        cut = len(data) >= LOG_FETCH_LIMIT_BYTES
        if cut:
            text = text[: text.rfind("\n") + 1]
        # One line more than asked was read: if it came, older output exists (truncated).
        return bounded_log(text, secrets, max_lines=tail_lines, max_bytes=limit_bytes, truncated=cut)

    # --- helpers ----------------------------------------------------------------------------

    def _problems(self, config: Mapping[str, Any], context: ValidationContext) -> list[str]:
        namespace = context.namespace
        labels = self._namespaces.labels(namespace) if namespace else None
        level = effective_level(self.policy.level, namespace, labels, context.raises.pod_security_level)
        return [*pod_problems(config, operator_image=self._operator_image, root_allowed=level.level != RESTRICTED),
                *policy_problems(config, self.policy, level, context.raises)]

    async def _ensure_token_secret(self, session: SessionRef, token: str) -> None:
        """The session's token Secret exists, is the session's, and holds `token` (see the module doc)."""
        body = build_token_secret(session, token, session_labels(session))
        name = body["metadata"]["name"]
        read = self._core.read_namespaced_secret
        current = None
        if session.placed_before:  # a resume: it exists, most likely
            try:
                current = self._as_dict(await self._call(f"read secret {name}", read, name, session.namespace))
            except SessionNotFound:
                pass
        if current is None:
            try:
                await self._call(f"create secret {name}", call_json, self._core.create_namespaced_secret,
                                 session.namespace, body, create=True)
                return
            except SessionAlreadyExists:  # made before all the same (or meanwhile): compare it
                current = self._as_dict(await self._call(f"read secret {name}", read, name, session.namespace))
        self._check_owned(session, "secret", current)
        if not holds(current, token):
            stale = {key: None for key in (current.get("data") or {}) if key not in body["data"]}
            await self._call(f"patch secret {name}", self._core.patch_namespaced_secret, name, session.namespace,
                             {"data": {**stale, **body["data"]}}, _content_type="application/merge-patch+json")

    async def _delete_pod(self, session: SessionRef) -> bool:
        """`_delete` for the session's pod, from the store where it knows: a pod seen deleted is
        gone, one seen terminating is waited for, one seen alive is deleted without a read first."""
        name = self._pod_name(session)
        held = self.pods.get(session.namespace, name)
        if held is GONE:
            return True
        if held is not None and held["metadata"].get("deletionTimestamp"):
            return False
        gone = await self._delete(f"pod {name}", self._core.delete_namespaced_pod, self._core.read_namespaced_pod,
                                  name, session.namespace, current=held, keep=self.pods.put)
        if gone:  # read as gone: what the store holds (if anything) is older
            self.pods.forget(session.namespace, name)
        return gone

    async def _pod(self, session: SessionRef) -> dict[str, Any] | None:
        """The session's pod: as the watch last delivered it, else read (and kept); None if there is
        none. A pod held as terminating is read: its end is a transition worth the request, and
        a DELETED event the watch missed would otherwise keep it terminating for good."""
        name = self._pod_name(session)
        held = self.pods.get(session.namespace, name)
        if held is GONE:
            return None
        if held is not None and not held["metadata"].get("deletionTimestamp"):
            return held
        try:
            pod = self._as_dict(await self._call(f"read pod {name}", self._core.read_namespaced_pod, name,
                                                 session.namespace))
        except SessionNotFound:
            return None
        self.pods.put(pod)
        return pod

    async def _read_namespace(self, namespace: str) -> Any:
        return await self._core.read_namespace(namespace, _request_timeout=self._timeout)

    async def _read_dict(self, action: str, method: Callable[..., Awaitable[Any]], *args: Any) -> dict[str, Any]:
        return self._as_dict(await self._call(action, method, *args))

    def _pod_name(self, session: SessionRef) -> str:
        return pod_name(session.namespace, session.name, session.uid)

    def _pvc_name(self, session: SessionRef) -> str:
        return pvc_name(session.namespace, session.name, session.uid)

    async def _call(self, action: str, method: Callable[..., Awaitable[Any]], *args: Any,
                    create: bool = False, **kwargs: Any) -> Any:
        """One API request, its failures translated into provider errors."""
        try:
            return await method(*args, _request_timeout=self._timeout, **kwargs)
        except ApiException as error:
            raise api_error(error, action=action, create=create) from error
        except TRANSIENT_ERRORS as error:
            raise transport_error(error, action=action) from error

    async def _create_owned(
        self,
        session: SessionRef,
        kind: str,
        body: dict[str, Any],
        create: Callable[..., Awaitable[Any]],
        read: Callable[..., Awaitable[Any]],
        *,
        read_first: bool = False,
    ) -> dict[str, Any] | None:
        """Create `body`; if it exists already, read it and make sure it is this session's.

        Returns the object as the API server has it (None if it vanished right after the 409).
        `read_first` is for objects that usually exist already (a workspace claim on every
        resume): one read instead of a create refused with 409; a create racing it is still
        settled by the 409.
        """
        name = body["metadata"]["name"]
        if read_first:
            try:
                existing = self._as_dict(await self._call(f"read {kind} {name}", read, name, session.namespace))
            except SessionNotFound:
                existing = None
            if existing is not None and not (existing.get("metadata") or {}).get("deletionTimestamp"):
                return self._check_owned(session, kind, existing)
        try:
            response = await self._call(f"create {kind} {name}", call_json, create, session.namespace, body,
                                        create=True)
            return self._as_dict(response)
        except SessionAlreadyExists:
            pass
        try:
            existing = self._as_dict(await self._call(f"read {kind} {name}", read, name, session.namespace))
        except SessionNotFound:
            return None  # deleted between our create and our read; the next ensure creates it
        return self._check_owned(session, kind, existing)

    @staticmethod
    def _check_owned(session: SessionRef, kind: str, existing: dict[str, Any]) -> dict[str, Any]:
        if not _owned_by(existing, session):
            raise SessionAlreadyExists(
                f"{kind} {session.namespace}/{existing['metadata']['name']} exists and does not belong to "
                f"AgentSession {session.name} (uid {session.uid})"
            )
        return existing

    async def _delete(self, what: str, delete: Callable[..., Awaitable[Any]],
                      read: Callable[..., Awaitable[Any]], name: str, namespace: str, *,
                      current: Mapping[str, Any] | None = None,
                      keep: Callable[[Mapping[str, Any]], None] | None = None) -> bool:
        """Delete one object once; True when it is gone (a finalizer or grace period may keep it).

        Read first (unless `current` says what it is): deleting an object that is already going
        would be a write for nothing, and on a real node a pod lives on for its grace period.
        `keep` is given what is read after the delete (the object on its way out).
        """
        if current is None:
            try:
                current = self._as_dict(await self._call(f"read {what}", read, name, namespace))
            except SessionNotFound:
                return True
        if (current.get("metadata") or {}).get("deletionTimestamp"):
            return False
        try:
            await self._call(f"delete {what}", delete, name, namespace)
            after = self._as_dict(await self._call(f"read {what}", read, name, namespace))
        except SessionNotFound:
            return True
        if keep is not None and after is not None:
            keep(after)
        return False

    async def _read_log(self, name: str, namespace: str, *, tail_lines: int, previous: bool) -> bytes:
        action = f"read log of pod {name}"
        kwargs: dict[str, Any] = {"container": CONTAINER_NAME, "tail_lines": tail_lines,
                                  "limit_bytes": LOG_FETCH_LIMIT_BYTES, "_preload_content": False}
        if previous:
            kwargs["previous"] = True
        try:
            response = await self._core.read_namespaced_pod_log(name, namespace, _request_timeout=self._timeout,
                                                                **kwargs)
            return await _body(response)
        except ApiException as error:
            if error.status == 400:
                raise _NoLogYet from error  # the container has not started: nothing logged yet
            raise api_error(error, action=action) from error
        except TRANSIENT_ERRORS as error:
            raise transport_error(error, action=action) from error

    async def _secret_values(self, session: SessionRef, pod: Mapping[str, Any]) -> list[str]:
        """Values of the Secrets the pod can see. Forbidden or missing Secrets are skipped
        (pattern redaction still applies); any other failure fails the log read, rather than
        publishing a log redacted less than it should be. The session's runtime token is not
        read: the operator derives it (a request less per log read)."""
        namespace = session.namespace
        values: list[str] = []
        token_secret = token_secret_name(session.namespace, session.name, session.uid)
        for ref in secret_references(pod):
            if ref.name == token_secret and self.runtime_key is not None:
                values.append(session_token(self.runtime_key, session.uid))
                continue
            action = f"read secret {ref.name}"
            try:
                secret = await self._core.read_namespaced_secret(ref.name, namespace, _request_timeout=self._timeout)
            except ApiException as error:
                if error.status in (401, 403, 404):
                    continue
                raise api_error(error, action=action) from error
            except TRANSIENT_ERRORS as error:
                raise transport_error(error, action=action) from error
            values += secret_values(self._as_dict(secret), ref.key)
        return values

    def _as_dict(self, obj: Any) -> dict[str, Any]:
        """API objects as camelCase JSON dicts, whether the client returned a model or a dict."""
        if obj is None or isinstance(obj, dict):
            return obj  # type: ignore[return-value]
        if self._api_client is not None:
            return self._api_client.sanitize_for_serialization(obj)
        raise TypeError(f"cannot convert {type(obj).__name__} to a dict without an ApiClient")


class _NoLogYet(Exception):
    """The container has not started, so it has no log (the API answers 400)."""


async def _body(response: Any) -> bytes:
    """The body of a raw (`_preload_content=False`) log response. The raw body is read because
    the client would otherwise parse a log that happens to be JSON into an object."""
    if isinstance(response, bytes):
        return response
    if isinstance(response, str):
        return response.encode()
    try:
        data = await response.read()
    finally:
        release = getattr(response, "release", None)
        if release is not None:
            release()
    if not 200 <= response.status <= 299:
        raise ApiException(http_resp=RESTResponse(response, data))
    return data


def _owned_by(obj: Mapping[str, Any], session: SessionRef) -> bool:
    metadata = obj.get("metadata") or {}
    if any(ref.get("uid") == session.uid for ref in metadata.get("ownerReferences") or ()):
        return True
    return (metadata.get("labels") or {}).get(c.LABEL_SESSION_UID) == label_value(session.uid)
