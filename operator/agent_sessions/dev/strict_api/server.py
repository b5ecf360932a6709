"""The strict Kubernetes API server itself: construction, serving on a port, kubeconfig,
the in-process (thread-safe) access that goes through the same store as HTTP, and
:func:`running_api`, which runs one in a thread of its own."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from agent_sessions.dev.api_faults import FaultPlan
from agent_sessions.dev.authorization import RBACAuthorizer
from agent_sessions.dev.object_store import ApiError, ObjectStore, bad_request
from agent_sessions.dev.patches import MERGE_PATCH
from agent_sessions.dev.resources import ResourceCatalogue, ResourceType
from agent_sessions.dev.selection import FieldSelector, LabelSelector, SelectorError
from agent_sessions.dev.strict_api.access import REVIEWS, Access
from agent_sessions.dev.strict_api.discovery import Discovery
from agent_sessions.dev.strict_api.harness import Harness
from agent_sessions.dev.strict_api.pod_logs import PodLogs
from agent_sessions.dev.strict_api.recorded import RecordedRequest
from agent_sessions.dev.strict_api.routing import Routing
from agent_sessions.dev.strict_api.streams import OpenStreams, Stream
from agent_sessions.dev.strict_api.watch import Watches


KUBERNETES_VERSION = "v1.31.0"


class StrictKubernetesAPI(Routing, Access, Discovery, Watches, PodLogs, Harness, OpenStreams):
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
                 enforce_owner_references: bool = True,
                 tokenless_admin: bool = False) -> None:
        """``crds`` are created at start; ``history_size`` bounds the watch history (older
        resourceVersions get 410 Expired); ``request_log_size`` bounds ``requests`` (None =
        keep all, as tests want; ``agent-sessions dev`` should bound it).

        ``tokens`` (bearer token → user name and groups) turn authentication on: HTTP
        requests without a known token get 401.  ``authorizer`` (needs ``tokens``) then
        decides every request; ``enforce_owner_references`` adds the
        OwnerReferencesPermissionEnforcement admission check to its writes.

        ``tokenless_admin`` (needs ``tokens``): a request without a bearer token is served
        unauthenticated and unauthorized, as kube-apiserver's insecure port served everything
        until 1.20; one with a token is authenticated and authorized as above.  kubectl sends
        no token over plain HTTP, so this is how ``agent-sessions dev`` lets its token-less
        kubeconfig (kubectl, the operator, the gateway) do anything while the developer's
        token gets exactly its RBAC, in TokenReviews and SubjectAccessReviews too."""
        if tokenless_admin and tokens is None:
            raise ValueError("tokenless_admin needs tokens: without them every request is served so")
        if authorizer is not None and tokens is None:
            raise ValueError("an authorizer needs tokens: requests must have a user")
        self.tokens = dict(tokens) if tokens is not None else None
        self.authorizer = authorizer
        self.enforce_owner_references = enforce_owner_references
        self.tokenless_admin = tokenless_admin
        self.catalogue = ResourceCatalogue()
        self.catalogue.load_builtins()
        for group, plural, kind in REVIEWS:
            self.catalogue.add(ResourceType(group=group, version="v1", plural=plural, kind=kind,
                                            namespaced=False, verbs=("create",)))
        self.store = ObjectStore(self.catalogue, history_size=history_size)
        self.store.removal_hooks.append(self._forget_pod_log)
        self.bookmark_interval = bookmark_interval
        self.kubernetes_version = kubernetes_version
        self.requests: deque[RecordedRequest] = deque(maxlen=request_log_size)
        self._faults = FaultPlan()
        self._pod_logs: dict[tuple[str, str], dict[str | None, str]] = {}
        self._log_streams: dict[tuple[str, str], set[Stream]] = {}
        self._logs_lock = threading.Lock()
        self._streams: set[Stream] = set()
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
