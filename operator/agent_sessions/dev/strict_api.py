"""A local Kubernetes API server strict enough to test an operator against.

Why this exists: ``agent-sessions dev`` and the integration tests need a Kubernetes API
without a cluster, one that kopf, kubernetes_asyncio and ``kubectl`` accept and that
fails the way a real server fails.  kmock 0.8's emulator is close in spirit but not in
the rules operators depend on: it keeps no resourceVersion (kopf's finalizer JSON patch
with its ``test`` op then fails with 500), no uid/generation/creationTimestamp, treats
``/status`` like the main resource, ignores selectors and the watch resourceVersion,
has no PUT, owner-reference GC or ``generateName``, and reports ``/api/v1`` as ``/v1``.

Design choice — our own store on aiohttp, kmock where it helps.  kmock's emulator
mutates its object store inside ``_handle`` *before* routing, with dict-merge as the
only write semantics, a name-mangled private object lookup, and a history-less event
bus; making it strict would mean overriding nearly every method and fighting the order
in which it applies writes.  So the rules live in
:class:`~agent_sessions.dev.object_store.ObjectStore` (synchronous, lock-protected,
usable in-process from any thread), the HTTP surface is a small aiohttp application
here, and kmock contributes what it is good at: the bundled discovery snapshot of a real
cluster's built-in resources (see ``resources.py``).  Admission of custom resources
reuses :class:`~agent_sessions.dev.admission.CRDValidator`.

What the server does, by concern (each covered by ``tests/unit/test_strict_api.py``):

* objects — uid, creationTimestamp, a global resourceVersion, generation, status
  subresource, 409 on stale writes, 201/200/404/409/422 with ``Status`` bodies,
  merge / JSON / strategic-merge patches, PUT, generateName, dryRun;
* reads — label and field selectors on list and watch, ``limit``/``continue`` paging,
  Tables with the CRDs' printer columns for ``kubectl get``;
* watches — list-then-watch from a resourceVersion, replay from a bounded history with
  410 Expired beyond it, synthetic ADDED without one, ``sendInitialEvents``,
  ``timeoutSeconds``, BOOKMARKs;
* deletion — finalizers, ``deletionTimestamp``, owner-reference GC (Background,
  Foreground, Orphan), namespace termination, CRD cleanup, graceful deletion of pods bound
  to a node (``deletionGracePeriodSeconds`` until the kubelet deletes them with grace 0);
* ``pods/binding`` (POST, as the scheduler binds a pod to a node; not listed in discovery);
* discovery — ``/api``, ``/apis`` (the aggregated-discovery Accept falls back to the
  legacy documents, which client-go accepts), ``/version``, ``/openapi/v3`` with the
  CRD schemas (for ``kubectl explain`` and server-side field validation);
* CRDs created through the API are served, validated (pruning unknown fields with a
  ``Warning`` header, or 400 with ``fieldValidation=Strict``) and printed;
* ``pods/log`` from text the harness sets (there is no kubelet);
* authentication and RBAC, when asked for (``tokens``, ``authorizer``): bearer tokens (401
  without a known one), every request authorized before routing as the server's filter
  chain does (403 with the server's message), ``OwnerReferencesPermissionEnforcement``, and
  SubjectAccessReview, SelfSubjectAccessReview and TokenReview; see ``authorization.py``;
* for tests: every request recorded, faults injected, watches dropped on demand.

Known deviations from kube-apiserver (all deliberate, to keep this small):

* without ``tokens``, no authentication or authorization; in-process calls (the harness,
  the fake kubelet) are never authorized: they play the control plane;
* no managedFields and no server-side apply
  (``application/apply-patch+yaml`` → 415); no defaulting, conversion or webhooks;
* built-in kinds are validated for ObjectMeta only (names, labels, annotations);
* strategic merge patch is approximated (see ``patches.py``);
* lists always read the current state: ``continue`` pages do not come from a snapshot
  and ``resourceVersionMatch=Exact`` is not honoured;
* garbage collection, namespace termination and CRD cleanup run synchronously right
  after the triggering write; objects whose owners never existed are not collected;
* nothing binds or stops pods unless a harness kubelet runs (``fake_kubelet.py``,
  ``pod_runner.py``): without one, a bound pod that is deleted stays Terminating, as on a
  cluster whose node is gone;
* core/v1 and events.k8s.io/v1 Events are stored apart (the server converts);
* a watch ended by :meth:`StrictKubernetesAPI.drop_watches` closes like a server-side
  timeout, not with a reset connection;
* built-in kinds print Name/Age columns only (pods also Ready/Status/Restarts).

Creating an object in a namespace that does not exist fails with 404 as on a cluster;
``default``, ``kube-system``, ``kube-public`` and ``kube-node-lease`` exist at start.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import EllipsisType
from typing import Any, TypeVar

import yaml
from aiohttp import web
from multidict import CIMultiDict

from agent_sessions.dev.api_faults import FaultPlan
from agent_sessions.dev.authorization import (
    RBACAuthorizer,
    RequestAttributes,
    access_review_errors,
    access_review_status,
    attributes_for,
    forbidden_details,
    owner_reference_denial,
    review_attributes,
    token_review_status,
    with_authenticated,
)
from agent_sessions.dev.object_store import (
    ApiError,
    ObjectStore,
    WatchEvent,
    bad_request,
    not_found,
)
from agent_sessions.dev.openapi import openapi_v3_document, openapi_v3_index
from agent_sessions.dev.patches import MERGE_PATCH
from agent_sessions.dev.resources import ResourceCatalogue, ResourceType
from agent_sessions.dev.selection import FieldSelector, LabelSelector, SelectorError
from agent_sessions.dev.tables import table, wants_table

KUBERNETES_VERSION = "v1.31.0"
DEFAULT_WATCH_TIMEOUT = 1800.0  # the server's --min-request-timeout
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
T = TypeVar("T")
_PATCH_TYPES = ("application/merge-patch+json", "application/json-patch+json",
                "application/strategic-merge-patch+json", "application/apply-patch+yaml")
# Create-only resources answered from the authenticator and authorizer, never stored.
_REVIEWS = (("authentication.k8s.io", "tokenreviews", "TokenReview"),
            ("authorization.k8s.io", "subjectaccessreviews", "SubjectAccessReview"),
            ("authorization.k8s.io", "selfsubjectaccessreviews", "SelfSubjectAccessReview"))


@dataclass
class RecordedRequest:
    """One HTTP request as the server saw it; ``status`` is the response code."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any
    timestamp: float
    group: str | None = None
    version: str | None = None
    resource: str | None = None
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    watch: bool = False
    status: int = 0
    user: str | None = None
    """The authenticated user (None when the server runs without ``tokens``)."""
    groups: tuple[str, ...] = ()
    authorized: bool | None = None
    """The authorizer's decision (None: not asked — no authorizer, or 401 before it)."""
    authorization_reason: str = ""
    user_agent: str = ""
    """The client's User-Agent header (the operator identifies itself with it)."""

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS and self.resource is not None


@dataclass(eq=False)
class _Stream:
    """An open watch or log-follow response.  ``notify`` and ``stop`` may be called from
    any thread; the response handler waits on ``wake`` in the server's loop."""

    loop: asyncio.AbstractEventLoop
    kind: str  # "watch", "log" or "wait"
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    stopped: bool = False

    def notify(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closing: nobody waits
                self.loop.call_soon_threadsafe(self.wake.set)

    def stop(self) -> None:
        self.stopped = True
        self.notify()


@dataclass
class _Target:
    rtype: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    watch: bool


class StrictKubernetesAPI:
    """A Kubernetes API server on 127.0.0.1, in-process, with API-server semantics.

    Use it as ``async with StrictKubernetesAPI() as api:`` in the caller's event loop, or
    ``with running_api() as api:`` to run it in a background thread with its own loop.
    The in-process methods (``get``, ``list``, ``create``, ``patch``, ...) go through the
    same store as HTTP requests (same rules, same watch events) and are thread-safe;
    they raise :class:`~agent_sessions.dev.object_store.ApiError` where HTTP would fail.
    """

    def __init__(self, *, crds: Iterable[dict] = (), history_size: int = 10_000,
                 bookmark_interval: float = 60.0, request_log_size: int | None = None,
                 kubernetes_version: str = KUBERNETES_VERSION,
                 tokens: Mapping[str, tuple[str, list[str]]] | None = None,
                 authorizer: RBACAuthorizer | None = None,
                 enforce_owner_references: bool = True) -> None:
        """``crds`` are created at start; ``history_size`` bounds the watch history (older
        resourceVersions get 410 Expired); ``request_log_size`` bounds ``requests`` (None =
        keep all, as tests want; ``agent-sessions dev`` should bound it).

        ``tokens`` (bearer token → user name and groups) turn authentication on: HTTP
        requests without a known token get 401.  ``authorizer`` (needs ``tokens``) then
        decides every request; ``enforce_owner_references`` adds the
        OwnerReferencesPermissionEnforcement admission check to its writes."""
        if authorizer is not None and tokens is None:
            raise ValueError("an authorizer needs tokens: requests must have a user")
        self.tokens = dict(tokens) if tokens is not None else None
        self.authorizer = authorizer
        self.enforce_owner_references = enforce_owner_references
        self.catalogue = ResourceCatalogue()
        self.catalogue.load_builtins()
        for group, plural, kind in _REVIEWS:
            self.catalogue.add(ResourceType(group=group, version="v1", plural=plural, kind=kind,
                                            namespaced=False, verbs=("create",)))
        self.store = ObjectStore(self.catalogue, history_size=history_size)
        self.store.removal_hooks.append(self._forget_pod_log)
        self.bookmark_interval = bookmark_interval
        self.kubernetes_version = kubernetes_version
        self.requests: deque[RecordedRequest] = deque(maxlen=request_log_size)
        self._faults = FaultPlan()
        self._pod_logs: dict[tuple[str, str], dict[str | None, str]] = {}
        self._log_streams: dict[tuple[str, str], set[_Stream]] = {}
        self._logs_lock = threading.Lock()
        self._streams: set[_Stream] = set()
        self._streams_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        for crd in crds:
            self.create("customresourcedefinitions", crd)

    # --- lifecycle --------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serves HTTP on ``host:port`` (0 = an ephemeral port) in the running loop."""
        if self._runner is not None:
            raise RuntimeError("the API server is already running")
        self._loop = asyncio.get_running_loop()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self._url = f"http://{bound_host}:{bound_port}"

    async def stop(self) -> None:
        """Ends open watches and log streams, then closes the server."""
        for stream in self._open_streams():
            stream.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner, self._url = None, None

    async def __aenter__(self) -> StrictKubernetesAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the API server is not running")
        return self._url

    def kubeconfig(self, namespace: str = "default", token: str | None = None) -> dict:
        """A kubeconfig; ``token`` is the user's bearer token (see ``tokens``).  kubectl
        (client-go) sends credentials over TLS only, so it cannot use a token against this
        plain-HTTP server; kubernetes_asyncio, aiohttp and kopf do."""
        name = "agent-sessions-dev"
        return {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": name, "cluster": {"server": self.url}}],
            "users": [{"name": name, "user": {"token": token} if token else {}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name,
                                                    "namespace": namespace}}],
            "current-context": name,
        }

    def write_kubeconfig(self, path: str | Path, namespace: str = "default",
                         token: str | None = None) -> Path:
        path = Path(path)
        path.write_text(yaml.safe_dump(self.kubeconfig(namespace, token), sort_keys=False))
        return path

    # --- in-process access (thread-safe) ----------------------------------------------

    def resource(self, name: str | ResourceType) -> ResourceType:
        """A served resource by plural, kind, short name, ``plural.group`` or ``g/v/plural``."""
        return name if isinstance(name, ResourceType) else self.catalogue.resolve(name)

    def get(self, resource: str | ResourceType, namespace: str | None, name: str) -> dict | None:
        try:
            return self.store.get(self.resource(resource), namespace, name)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def list(self, resource: str | ResourceType, namespace: str | None = None,
             label_selector: str | None = None, field_selector: str | None = None) -> list[dict]:
        try:
            labels, fields = LabelSelector.parse(label_selector), FieldSelector.parse(field_selector)
        except SelectorError as exc:
            raise bad_request(str(exc)) from None
        return self.store.list(self.resource(resource), namespace, labels, fields)[0]

    def create(self, resource: str | ResourceType, body: dict,
               namespace: str | None = None) -> dict:
        rtype = self.resource(resource)
        if rtype.namespaced:
            namespace = namespace or (body.get("metadata") or {}).get("namespace") or "default"
        return self.store.create(rtype, namespace, body)[0]

    def replace(self, resource: str | ResourceType, namespace: str | None, name: str, body: dict,
                subresource: str | None = None) -> dict:
        return self.store.replace(self.resource(resource), namespace, name, body,
                                  subresource=subresource)[0]

    def patch(self, resource: str | ResourceType, namespace: str | None, name: str, patch: Any,
              *, content_type: str = MERGE_PATCH, subresource: str | None = None) -> dict:
        return self.store.patch(self.resource(resource), namespace, name, content_type, patch,
                                subresource=subresource)[0]

    def patch_status(self, resource: str | ResourceType, namespace: str | None, name: str,
                     status: dict) -> dict:
        """Merge-patches ``.status`` through the status subresource (or the object if none)."""
        rtype = self.resource(resource)
        sub = "status" if rtype.has_status else None
        return self.patch(rtype, namespace, name, {"status": status}, subresource=sub)

    def delete(self, resource: str | ResourceType, namespace: str | None, name: str, *,
               propagation_policy: str | None = None, grace_period_seconds: int | None = None,
               preconditions: dict | None = None) -> dict:
        """DELETE with these DeleteOptions; pods bound to a node are deleted gracefully."""
        return self.store.delete(self.resource(resource), namespace, name,
                                 propagation_policy=propagation_policy,
                                 grace_period_seconds=grace_period_seconds,
                                 preconditions=preconditions)

    def bind(self, namespace: str, name: str, node: str, *, uid: str | None = None) -> dict:
        """``POST pods/{name}/binding`` in-process: binds the pod to ``node`` as the scheduler
        does (409 if it is bound already; ``uid`` guards against a new pod of the same name)."""
        meta: dict = {"name": name, "namespace": namespace}
        if uid:
            meta["uid"] = uid
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": meta,
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        return self.store.bind(self.resource("pods"), namespace, name, binding)

    # --- test harness -----------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """Blocks until ``predicate()`` is truthy and returns it, re-checking after every
        committed write (no polling); TimeoutError after ``timeout`` seconds.  Call it from
        any thread but the server's (e.g. with :func:`running_api`)."""
        changed = threading.Event()
        self.store.subscribe(changed.set)
        try:
            deadline = time.monotonic() + timeout
            while True:
                changed.clear()
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout}s")
                changed.wait(remaining)
        finally:
            self.store.unsubscribe(changed.set)

    async def wait_for_async(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """:meth:`wait_for` for a coroutine, in any event loop (the server's included)."""
        stream = _Stream(asyncio.get_running_loop(), "wait")
        self.store.subscribe(stream.notify)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    stream.wake.clear()
                    result = predicate()
                    if result:
                        return result
                    await stream.wake.wait()
        except TimeoutError:
            raise TimeoutError(f"condition not met within {timeout}s") from None
        finally:
            self.store.unsubscribe(stream.notify)

    def writes(self, *, kind: str | None = None, resource: str | None = None,
               subresource: str | None | EllipsisType = ..., method: str | None = None,
               namespace: str | None = None, name: str | None = None) -> list[RecordedRequest]:
        """Recorded write requests (POST/PUT/PATCH/DELETE on resources), filtered.

        ``subresource=None`` keeps only writes to the main resource; the default (``...``)
        keeps all.  ``kind`` is the Kind (``AgentSession``), ``resource`` the plural.
        """
        return [r for r in list(self.requests) if r.is_write
                and (kind is None or r.kind == kind)
                and (resource is None or r.resource == resource)
                and (subresource is ... or r.subresource == subresource)
                and (method is None or r.method == method.upper())
                and (namespace is None or r.namespace == namespace)
                and (name is None or r.name == name)]

    def reset_requests(self) -> None:
        self.requests.clear()

    def fail_next(self, method: str | None, path: str, status: int = 500, *, count: int = 1,
                  retry_after: float | None = None, message: str | None = None) -> None:
        """Makes the next ``count`` requests whose method matches (None = any) and whose path
        matches the regular expression ``path`` (``re.search``) fail with ``status`` and a
        ``Status`` body, before they touch any state; ``retry_after`` sets ``Retry-After``."""
        self._faults.add(method, path, status, count=count, retry_after=retry_after, message=message)

    def drop_watches(self) -> None:
        """Ends every open watch stream now; clients see the stream close and reconnect."""
        for stream in self._open_streams("watch"):
            stream.stop()

    def set_pod_log(self, namespace: str, name: str, text: str, container: str | None = None) -> None:
        """The text ``GET pods/log`` returns for the pod (``container`` None = the default)."""
        with self._logs_lock:
            self._pod_logs.setdefault((namespace, name), {})[container] = text
        self._wake_log_followers(namespace, name)

    def append_pod_log(self, namespace: str, name: str, text: str,
                       container: str | None = None) -> None:
        with self._logs_lock:
            logs = self._pod_logs.setdefault((namespace, name), {})
            logs[container] = logs.get(container, "") + text
        self._wake_log_followers(namespace, name)

    # --- HTTP -------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        record = RecordedRequest(method=request.method, path=request.path,
                                 query=dict(request.query), content_type=content_type,
                                 body=_decode_body(raw, content_type, strict=False),
                                 timestamp=time.time(),
                                 user_agent=request.headers.get("User-Agent", ""))
        self.requests.append(record)
        try:
            attrs = self._authorize(request, record)
            unknown: ApiError | None = None
            try:
                target = self._target(request.path, request.query)
            except ApiError as exc:
                target, unknown = None, exc
            if target is not None:
                record.group, record.version = target.rtype.group, target.rtype.version
                record.resource, record.kind = target.rtype.plural, target.rtype.kind
                record.namespace, record.name = target.namespace, target.name
                record.subresource, record.watch = target.subresource, target.watch
            fault = self._faults.take(request.method, request.path)
            if fault is not None:
                raise fault
            if unknown is not None:
                raise unknown
            if target is None:
                response = await self._serve_non_resource(request)
            else:
                response = await self._serve_resource(request, target, raw, content_type, attrs)
        except ApiError as exc:
            response = _status_response(exc)
        except Exception as exc:  # noqa: BLE001 - report like the server's 500, keep serving
            response = _status_response(ApiError(500, "InternalError", f"{type(exc).__name__}: {exc}"))
        record.status = response.status
        return response

    def _authorize(self, request: web.Request, record: RecordedRequest) -> RequestAttributes | None:
        """Authentication, then authorization, before routing (as the server's filter chain:
        an unknown resource is 403 to whom may not ask for it).  The request's attributes;
        None when the server runs without authentication."""
        if self.tokens is None:
            return None
        scheme, _, rest = request.headers.get("Authorization", "").strip().partition(" ")
        token = rest.split(" ")[0] if scheme.lower() == "bearer" else ""
        identity = self.tokens.get(token) if token else None
        if identity is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        record.user, record.groups = identity[0], tuple(with_authenticated(identity[1]))
        attrs = attributes_for(request.method, request.path, request.query, user=record.user,
                               groups=record.groups)
        if self.authorizer is not None:
            record.authorized, record.authorization_reason = self.authorizer.allowed(attrs)
            if not record.authorized:
                raise ApiError(403, "Forbidden", record.authorization_reason,
                               forbidden_details(attrs))
        return attrs

    def _admit_owner_references(self, request: web.Request, target: _Target, raw: bytes,
                                content_type: str, attrs: RequestAttributes | None) -> None:
        """OwnerReferencesPermissionEnforcement for an authorized write (403 if it refuses)."""
        if attrs is None or self.authorizer is None or not self.enforce_owner_references:
            return
        rtype, namespace, name = target.rtype, target.namespace, target.name
        old = new = body = _decode_body(raw, content_type, strict=False)
        if request.method == "POST":
            old = None
        else:
            try:  # the object as this write would leave it; a failing write fails on its own
                old = self.store.get(rtype, namespace, name or "")
                if request.method == "PATCH":
                    new = self.store.patch(rtype, namespace, name or "", content_type, body,
                                           subresource=target.subresource, dry_run=True)[0]
            except ApiError:
                return
        denial = owner_reference_denial(self.authorizer, attrs, new, old, self._owner_resources)
        if denial is not None:
            name = attrs.name or ((new or {}).get("metadata") or {}).get("name") or ""
            raise ApiError(403, "Forbidden", denial, forbidden_details(
                RequestAttributes(api_group=rtype.group, resource=rtype.plural, name=name)))

    def _owner_resources(self, api_version: str, kind: str) -> list[tuple[str, str, bool]]:
        group, _, version = api_version.rpartition("/")
        return [(t.group, t.plural, t.namespaced) for t in self.catalogue
                if (t.group, t.version, t.kind) == (group, version, kind)]

    def _review(self, request: web.Request, target: _Target, raw: bytes, content_type: str,
                requester: RequestAttributes | None) -> web.Response:
        """TokenReview, SubjectAccessReview and SelfSubjectAccessReview: answered, not stored."""
        rtype = target.rtype
        if request.method != "POST" or target.name is not None:
            raise ApiError(405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource")
        body = _decode_body(raw, content_type)
        if not isinstance(body, dict):
            raise bad_request(f"the body of the request must be a {rtype.kind} object")
        spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
        if rtype.plural == "tokenreviews":
            if not spec.get("token"):
                raise bad_request("token is required for TokenReview in authentication")
            status = token_review_status(self.tokens, spec)
        else:
            self_review = rtype.plural == "selfsubjectaccessreviews"
            problems = access_review_errors(spec, needs_subject=not self_review)
            if problems:
                summary = problems[0] if len(problems) == 1 else f"[{', '.join(problems)}]"
                raise ApiError(422, "Invalid", f'{rtype.qualified_kind} "" is invalid: {summary}',
                               {"group": rtype.group, "kind": rtype.kind})
            requester = requester or RequestAttributes()
            asked = (review_attributes(spec, requester.user, requester.groups) if self_review
                     else review_attributes(spec))
            status = access_review_status(self.authorizer, asked)
        review = {**body, "apiVersion": rtype.api_version, "kind": rtype.kind,
                  "metadata": body.get("metadata") or {"creationTimestamp": None},
                  "spec": spec, "status": status}
        return _json_response(review, status=201)

    def _target(self, path: str, query: Any) -> _Target | None:
        """The resource a path addresses, None for non-resource paths; 404 if unknown."""
        parts = [p for p in path.split("/") if p]
        if len(parts) >= 3 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        watch = _truthy(query.get("watch"))
        if rest[0] == "watch":
            watch, rest = True, rest[1:]
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces" and not (
                len(rest) == 3 and rest[2] in ("status", "finalize")):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise _no_such_resource()
        rtype = self.catalogue.get(group, version, rest[0])
        if rtype is None or (namespace is not None and not rtype.namespaced):
            raise _no_such_resource()
        subresource = rest[2] if len(rest) == 3 else None
        if subresource is not None and subresource not in rtype.subresources and (
                subresource != "binding" or rtype.group_resource != ("", "pods")):
            raise _no_such_resource()
        return _Target(rtype, namespace, rest[1] if len(rest) > 1 else None, subresource, watch)

    async def _serve_non_resource(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if request.method != "GET":
            raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on "
                                                    f"the requested resource")
        parts = [p for p in path.split("/") if p]
        document: Any = None
        if path == "/":
            document = {"paths": sorted(self._paths())}
        elif path == "/version":
            major, minor = self.kubernetes_version.lstrip("v").split(".")[:2]
            document = {"major": major, "minor": minor, "gitVersion": self.kubernetes_version,
                        "gitCommit": "0" * 40, "gitTreeState": "clean",
                        "buildDate": "2024-08-13T07:28:49Z", "goVersion": "go1.22.5",
                        "compiler": "gc", "platform": "linux/amd64"}
        elif path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok", content_type="text/plain")
        elif path == "/api":
            host = self.url.removeprefix("http://")
            document = self.catalogue.api_versions(host)
        elif path == "/apis":
            document = self.catalogue.group_list()
        elif parts[0] == "api" and len(parts) == 2:
            document = self.catalogue.resource_list("", parts[1])
        elif parts[0] == "apis" and len(parts) == 2:
            document = self.catalogue.group(parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            document = self.catalogue.resource_list(parts[1], parts[2])
        elif path == "/openapi/v3":
            document = openapi_v3_index(self.catalogue)
        elif parts[:2] == ["openapi", "v3"]:
            document = openapi_v3_document(self.catalogue, "/".join(parts[2:]))
        if document is None:
            raise _no_such_resource()
        return _json_response(document)

    def _paths(self) -> set[str]:
        paths = {"/api", "/api/v1", "/apis", "/version", "/healthz", "/livez", "/readyz",
                 "/openapi/v3"}
        for group, version in self.catalogue.group_versions():
            if group:
                paths |= {f"/apis/{group}", f"/apis/{group}/{version}"}
        return paths

    async def _serve_resource(self, request: web.Request, target: _Target, raw: bytes,
                              content_type: str,
                              attrs: RequestAttributes | None = None) -> web.StreamResponse:
        rtype, namespace, name, sub = target.rtype, target.namespace, target.name, target.subresource
        query = request.query
        method = request.method
        validation = query.get("fieldValidation", "Warn")
        dry_run = query.get("dryRun") == "All"
        if (rtype.group, rtype.plural, rtype.kind) in _REVIEWS:
            return self._review(request, target, raw, content_type, attrs)
        if method == "GET" and (target.watch or _truthy(query.get("watch"))):
            return await self._watch(request, target)
        if method == "GET" and name is None:
            return self._list(request, target)
        if method == "GET" and sub == "log":
            return await self._pod_log(request, target)
        if method == "GET":
            return self._object_response(request, rtype, self.store.get(rtype, namespace, name))
        if rtype.namespaced and namespace is None and method != "GET":
            raise _no_such_resource()
        if sub == "binding":
            if method != "POST":
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested resource")
            result = self.store.bind(rtype, namespace, name, _decode_body(raw, content_type),
                                     dry_run=dry_run)
            return _json_response(result, status=201)
        if method in ("POST", "PUT", "PATCH"):
            self._admit_owner_references(request, target, raw, content_type, attrs)
        if method == "POST" and name is None:
            obj, warnings = self.store.create(rtype, namespace, _decode_body(raw, content_type),
                                              field_validation=validation, dry_run=dry_run)
            return self._object_response(request, rtype, obj, status=201, warnings=warnings)
        if method == "PUT" and name is not None:
            obj, warnings = self.store.replace(rtype, namespace, name, _decode_body(raw, content_type),
                                               subresource=sub, field_validation=validation,
                                               dry_run=dry_run)
            return self._object_response(request, rtype, obj, warnings=warnings)
        if method == "PATCH" and name is not None:
            if content_type not in _PATCH_TYPES:
                raise ApiError(415, "UnsupportedMediaType",
                               f"the body of the request was in an unknown format - accepted "
                               f"media types include: {', '.join(_PATCH_TYPES[:3])}")
            obj, warnings = self.store.patch(rtype, namespace, name, content_type,
                                             _decode_body(raw, content_type), subresource=sub,
                                             field_validation=validation, dry_run=dry_run)
            return self._object_response(request, rtype, obj, warnings=warnings)
        if method == "DELETE":
            options = _delete_options(raw, content_type, query)
            if name is None:
                labels, fields = _selectors(query, rtype)
                deleted = self.store.delete_collection(
                    rtype, namespace, labels, fields,
                    propagation_policy=options.get("propagationPolicy"),
                    grace_period_seconds=options.get("gracePeriodSeconds"))
                return _json_response({"kind": f"{rtype.kind}List",
                                       "apiVersion": rtype.api_version,
                                       "metadata": {"resourceVersion": str(self.store.resource_version)},
                                       "items": deleted})
            obj = self.store.delete(rtype, namespace, name,
                                    propagation_policy=options.get("propagationPolicy"),
                                    preconditions=options.get("preconditions"),
                                    grace_period_seconds=options.get("gracePeriodSeconds"),
                                    dry_run=options.get("dryRun") == ["All"] or dry_run)
            return self._object_response(request, rtype, obj)
        raise ApiError(405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource")

    def _object_response(self, request: web.Request, rtype: ResourceType, obj: dict,
                         status: int = 200, warnings: list[str] | None = None) -> web.Response:
        if wants_table(request.headers.get("Accept", "")):
            document = table(rtype, [obj], resource_version=obj["metadata"].get("resourceVersion", ""),
                             include_object=request.query.get("includeObject", "Metadata"))
        else:
            document = obj
        headers = CIMultiDict(("Warning", _warning(w)) for w in warnings or [])
        return _json_response(document, status=status, headers=headers)

    def _list(self, request: web.Request, target: _Target) -> web.Response:
        rtype, query = target.rtype, request.query
        labels, fields = _selectors(query, rtype)
        items, resource_version = self.store.list(rtype, target.namespace, labels, fields)
        metadata: dict[str, Any] = {"resourceVersion": str(resource_version)}
        token = query.get("continue")
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                start, metadata["resourceVersion"] = tuple(state["start"]), state["rv"]
            except (ValueError, KeyError, TypeError):
                raise bad_request(f"continue key is not valid: {token}") from None
            items = [i for i in items
                     if (i["metadata"].get("namespace", ""), i["metadata"]["name"]) > start]
        limit = int(_number(query, "limit"))
        if 0 < limit < len(items):
            last = items[limit - 1]["metadata"]
            state = {"rv": metadata["resourceVersion"],
                     "start": [last.get("namespace", ""), last["name"]]}
            metadata["continue"] = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
            metadata["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        if wants_table(request.headers.get("Accept", "")):
            document = table(rtype, items, resource_version=metadata["resourceVersion"],
                             include_object=query.get("includeObject", "Metadata"))
            document["metadata"] = metadata
        else:
            document = {"kind": f"{rtype.kind}List", "apiVersion": rtype.api_version,
                        "metadata": metadata, "items": items}
        return _json_response(document)

    # --- watches ----------------------------------------------------------------------

    async def _watch(self, request: web.Request, target: _Target) -> web.StreamResponse:
        rtype, query, namespace = target.rtype, request.query, target.namespace
        labels, fields = _selectors(query, rtype)
        if target.name is not None:
            fields = FieldSelector(fields.terms + FieldSelector.parse(
                f"metadata.name={target.name}").terms)
        timeout = _number(query, "timeoutSeconds", DEFAULT_WATCH_TIMEOUT)
        bookmarks = _truthy(query.get("allowWatchBookmarks"))
        initial_events = _truthy(query.get("sendInitialEvents"))
        as_table = wants_table(request.headers.get("Accept", ""))
        include_object = query.get("includeObject", "Metadata")
        since = query.get("resourceVersion") or ""
        if since not in ("", "0") and not since.isdigit():
            raise bad_request(f'resourceVersion: Invalid value: "{since}": must be an integer')

        loop = asyncio.get_running_loop()
        stream = _Stream(loop, "watch")
        self.store.subscribe(stream.notify)
        self._track(stream)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        first = True

        async def send(event_type: str, obj: dict) -> None:
            nonlocal first
            if as_table and event_type != "ERROR" and obj.get("kind") != "Status" and \
                    event_type != "BOOKMARK":
                obj = table(rtype, [obj], resource_version=obj["metadata"].get("resourceVersion", ""),
                            include_object=include_object, with_columns=first)
                first = False
            line = json.dumps({"type": event_type, "object": obj}, separators=(",", ":"))
            await response.write(line.encode() + b"\n")

        def bookmark(cursor: int, initial_end: bool = False) -> dict:
            meta: dict[str, Any] = {"resourceVersion": str(cursor)}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return {"kind": rtype.kind, "apiVersion": rtype.api_version, "metadata": meta}

        try:
            await response.prepare(request)
            if since in ("", "0") or initial_events:
                items, cursor = self.store.list(rtype, namespace, labels, fields)
                for item in items:
                    await send("ADDED", item)
                if initial_events and bookmarks:
                    await send("BOOKMARK", bookmark(cursor, initial_end=True))
            else:
                cursor = int(since)
            deadline = loop.time() + timeout
            next_bookmark = loop.time() + self.bookmark_interval
            while not stream.stopped:
                stream.wake.clear()
                try:
                    events = self.store.events_after(cursor)
                except ApiError as exc:
                    await send("ERROR", exc.status())
                    break
                for event in events:
                    translated = self._translate(event, rtype, namespace, labels, fields)
                    if translated is not None:
                        await send(*translated)
                    cursor = event.resource_version
                now = loop.time()
                if now >= deadline:
                    if bookmarks:
                        await send("BOOKMARK", bookmark(cursor))
                    break
                if bookmarks and now >= next_bookmark:
                    await send("BOOKMARK", bookmark(cursor))
                    next_bookmark = now + self.bookmark_interval
                if events:
                    continue
                wait = min(deadline, next_bookmark if bookmarks else deadline) - now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stream.wake.wait(), timeout=max(wait, 0))
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away
        finally:
            self.store.unsubscribe(stream.notify)
            self._untrack(stream)
        return response

    def _translate(self, event: WatchEvent, rtype: ResourceType, namespace: str | None,
                   labels: LabelSelector, fields: FieldSelector) -> tuple[str, dict] | None:
        """The event as this watcher sees it: entering its selection is ADDED, leaving it
        is DELETED (as the server's watch cache does)."""
        if event.group_resource != rtype.group_resource:
            return None
        now = self.store.selects(rtype, event.object, namespace, labels, fields)
        before = event.old is not None and self.store.selects(rtype, event.old, namespace,
                                                              labels, fields)
        kind = event.type
        if kind == "ADDED":
            kind = "ADDED" if now else ""
        elif kind == "DELETED":
            kind = "DELETED" if before or now else ""
        else:
            kind = {(True, True): "MODIFIED", (True, False): "ADDED",
                    (False, True): "DELETED"}.get((now, before), "")
        return (kind, self.store.present(rtype, event.object)) if kind else None

    # --- pod logs ---------------------------------------------------------------------

    async def _pod_log(self, request: web.Request, target: _Target) -> web.StreamResponse:
        namespace, name, query = target.namespace or "", target.name or "", request.query
        pod = self.store.get(target.rtype, namespace, name)
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        container = query.get("container")
        if container is None:
            if len(containers) > 1:
                raise bad_request(f"a container name must be specified for pod {name}, choose "
                                  f"one of: [{' '.join(containers)}]")
            container = containers[0] if containers else None
        elif container not in containers:
            raise bad_request(f"container {container} is not valid for pod {name}")

        def current() -> str:
            with self._logs_lock:
                logs = self._pod_logs.get((namespace, name), {})
                return logs[container] if container in logs else logs.get(None, "")

        text = current()
        if query.get("tailLines"):
            tail = int(_number(query, "tailLines"))
            text = "".join(text.splitlines(keepends=True)[-tail:]) if tail > 0 else ""
        limit = int(_number(query, "limitBytes"))
        if limit > 0:
            text = text.encode()[:limit].decode(errors="ignore")
        if not _truthy(query.get("follow")):
            return web.Response(text=text, content_type="text/plain")

        stream = _Stream(asyncio.get_running_loop(), "log")
        self._track(stream)
        with self._logs_lock:
            self._log_streams.setdefault((namespace, name), set()).add(stream)
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        try:
            await response.prepare(request)
            await response.write(text.encode())
            sent = len(current())
            while not stream.stopped:
                stream.wake.clear()
                full = current()
                if len(full) < sent:
                    sent = 0
                if len(full) > sent:
                    await response.write(full[sent:].encode())
                    sent = len(full)
                if self.get(target.rtype, namespace, name) is None:
                    break
                await stream.wake.wait()
            await response.write_eof()
        except ConnectionResetError:
            pass
        finally:
            self._untrack(stream)
            with self._logs_lock:
                self._log_streams.get((namespace, name), set()).discard(stream)
        return response

    def _wake_log_followers(self, namespace: str, name: str) -> None:
        with self._logs_lock:
            streams = list(self._log_streams.get((namespace, name), ()))
        for stream in streams:
            stream.notify()

    def _track(self, stream: _Stream) -> None:
        with self._streams_lock:
            self._streams.add(stream)

    def _untrack(self, stream: _Stream) -> None:
        with self._streams_lock:
            self._streams.discard(stream)

    def _open_streams(self, kind: str | None = None) -> list[_Stream]:
        with self._streams_lock:
            return [s for s in self._streams if kind is None or s.kind == kind]

    def _forget_pod_log(self, group_resource: tuple[str, str], obj: dict) -> None:
        if group_resource == ("", "pods"):
            key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            with self._logs_lock:
                self._pod_logs.pop(key, None)
            self._wake_log_followers(*key)



def _truthy(value: str | None) -> bool:
    """Go's strconv.ParseBool, which the server uses for boolean query parameters."""
    return value in ("1", "t", "T", "true", "TRUE", "True")


def _no_such_resource() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def _status_response(exc: ApiError) -> web.Response:
    return _json_response(exc.status(), status=exc.code, headers=CIMultiDict(exc.headers))


def _json_response(document: Any, status: int = 200,
                   headers: CIMultiDict[str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(document).encode(), status=status,
                        content_type="application/json", headers=headers)


def _warning(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


def _decode_body(raw: bytes, content_type: str, strict: bool = True) -> Any:
    if not raw:
        if strict:
            raise bad_request("the request body is empty")
        return None
    try:
        if "yaml" in content_type:
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        if strict:
            raise bad_request(f"the request body is not valid: {exc}") from None
        return raw.decode(errors="replace")


def _selectors(query: Any, rtype: ResourceType) -> tuple[LabelSelector, FieldSelector]:
    """The request's selectors; 400 for bad syntax or a field the resource cannot select on."""
    try:
        fields = FieldSelector.parse(query.get("fieldSelector"))
        fields.check_supported(rtype.group, rtype.plural, rtype.selectable_fields)
        return LabelSelector.parse(query.get("labelSelector")), fields
    except SelectorError as exc:
        raise bad_request(str(exc)) from None


def _number(query: Any, name: str, default: float = 0) -> float:
    """A numeric query parameter; 400 if it is not a number, as on the server."""
    value = query.get(name)
    if value in (None, ""):
        return default
    try:
        return float(value) if name == "timeoutSeconds" else int(value)
    except ValueError:
        raise bad_request(f'{name}: Invalid value: "{value}": must be an integer') from None


def _delete_options(raw: bytes, content_type: str, query: Any) -> dict:
    """DeleteOptions from the JSON body and/or the query (the query wins, as on the server)."""
    options = _decode_body(raw, content_type or "application/json", strict=False) or {}
    if not isinstance(options, dict):
        raise bad_request("DeleteOptions must be an object")
    if "propagationPolicy" in query:
        options["propagationPolicy"] = query["propagationPolicy"]
    if "gracePeriodSeconds" in query:
        options["gracePeriodSeconds"] = query["gracePeriodSeconds"]
    if "orphanDependents" in query or "orphanDependents" in options:
        orphan = str(query.get("orphanDependents", options.get("orphanDependents"))).lower()
        options.setdefault("propagationPolicy", "Orphan" if orphan == "true" else "Background")
    if "dryRun" in query:
        options["dryRun"] = query.getall("dryRun")
    return options


@contextlib.contextmanager
def running_api(*, host: str = "127.0.0.1", port: int = 0, **options: Any) -> Iterator[StrictKubernetesAPI]:
    """Runs a StrictKubernetesAPI in a daemon thread with its own event loop.

    The caller's event loop (if any) is not touched; use the in-process methods (they
    are thread-safe) or HTTP.  On exit the server stops and the thread's loop is closed
    after cancelling whatever is left in it.
    """
    api = StrictKubernetesAPI(**options)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(api.start(host, port))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            failure.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())

    thread = threading.Thread(target=run, name="strict-kubernetes-api", daemon=True)
    thread.start()
    ready.wait()
    try:
        if failure:
            raise failure[0]
        yield api
    finally:
        if not failure:
            asyncio.run_coroutine_threadsafe(api.stop(), loop).result(timeout=30)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
