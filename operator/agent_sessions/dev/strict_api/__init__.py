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

What the server does, by concern (each covered by ``tests/dev/test_strict_api.py``):

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
  without a known one; with ``tokenless_admin``, a request with no token at all is served
  unchecked, as the insecure port did: how ``agent-sessions dev`` serves kubectl, which sends
  no token over plain HTTP, next to a developer's token, see ``developer``), every request authorized before routing as the server's filter
  chain does (403 with the server's message), ``OwnerReferencesPermissionEnforcement``, and
  SubjectAccessReview, SelfSubjectAccessReview and TokenReview; see ``authorization.py``;
* for tests: every request recorded, faults injected, watches dropped on demand.

Known deviations from kube-apiserver (all deliberate, to keep this small):

* without ``tokens``, no authentication or authorization; in-process calls (the harness,
  the fake kubelet) are never authorized: they play the control plane;
* no managedFields and no server-side apply
  (``application/apply-patch+yaml`` → 415); no defaulting, conversion or webhooks;
* bodies are JSON or YAML only: protobuf (and CBOR) → 415, for built-in kinds too (the API
  server decodes protobuf for those);
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

The package, by concern: ``server`` (:class:`StrictKubernetesAPI`: lifecycle, kubeconfig,
in-process access; :func:`running_api`), ``routing`` (the HTTP entry point and resource verbs),
``access`` (authentication, RBAC, owner-reference admission, access and token reviews),
``developer`` (the user ``agent-sessions dev`` gives a token and RBAC), ``discovery``,
``watch``, ``pod_logs``, ``harness`` (what tests ask of it), ``streams``,
``recorded`` (:class:`RecordedRequest`) and ``codec`` (request bodies, query parameters,
responses).
"""

from agent_sessions.dev.strict_api.developer import (
    DEVELOPER,
    VIEWER,
    developer_access,
    developer_rbac,
    developer_token,
    viewer_rbac,
)
from agent_sessions.dev.strict_api.recorded import WRITE_METHODS, RecordedRequest
from agent_sessions.dev.strict_api.server import KUBERNETES_VERSION, StrictKubernetesAPI, running_api
from agent_sessions.dev.strict_api.watch import DEFAULT_WATCH_TIMEOUT

__all__ = [
    "DEFAULT_WATCH_TIMEOUT",
    "DEVELOPER",
    "KUBERNETES_VERSION",
    "VIEWER",
    "WRITE_METHODS",
    "RecordedRequest",
    "StrictKubernetesAPI",
    "developer_access",
    "developer_rbac",
    "developer_token",
    "running_api",
    "viewer_rbac",
]
