"""The object store of the emulated API server: what a write does, not how it arrives.

Why this exists: an operator is correct only relative to the API server's rules, and the
rules an operator leans on are the ones kmock's emulator leaves out: optimistic
concurrency (``resourceVersion`` and 409 Conflict), ``generation`` moving only with
``spec``, the status subresource splitting who may write what, finalizers holding a
deleted object, owner references cascading deletes, and watches that resume from a
resource version.  Every HTTP verb and every in-process call of
:class:`~agent_sessions.dev.strict_api.StrictKubernetesAPI` goes through this class, so
tests that bypass HTTP still get the same semantics and the same watch events.

How a write works (all under one re-entrant lock, so other threads may call in):

1. decode: ``apiVersion``/``kind``/namespace/name checked against the request (400);
2. merge with the stored object: system fields (``uid``, ``creationTimestamp``, ...) are
   the server's; a ``/status`` write keeps everything but ``.status``, a main write keeps
   ``.status`` when the resource has a status subresource;
3. preconditions: a ``metadata.resourceVersion`` in the written object must be current
   (409); no new finalizers on an object being deleted (422);
4. admission: :class:`~agent_sessions.dev.admission.CRDValidator` (422 Invalid with
   causes), unknown fields pruned (``Warn``/``Ignore``) or refused (``Strict``, 400);
5. ``generation`` + 1 when anything outside metadata (and status) changed;
6. a write that changes nothing is not stored: no new resourceVersion, no watch event —
   exactly like the server, which compares the encoded object before writing;
7. commit: the global resourceVersion counter + 1, one watch event in the history.

Deletion sets ``deletionTimestamp`` (and, as on the server, bumps ``generation``) while
finalizers remain; the last finalizer removed deletes the object (MODIFIED, then DELETED).

Pods are deleted gracefully, as the server's pod strategy does (``CheckGracefulDelete`` and
``rest.BeforeDelete``): a pod bound to a node (``spec.nodeName``) and not Succeeded/Failed
gets ``deletionTimestamp`` (now + the grace period) and ``deletionGracePeriodSeconds`` (from
``DeleteOptions.gracePeriodSeconds``, else ``spec.terminationGracePeriodSeconds``, else 30:
the server's default) and stays until its kubelet, having stopped the containers, deletes it
again with grace 0.  A later DELETE may only shorten the period; grace 0 removes it (once no
finalizers remain).  An unbound or terminated pod is deleted with grace 0: one MODIFIED with
``deletionTimestamp`` set, then DELETED, as the server writes it.  Garbage collection and
namespace termination delete pods the same way.  Pods are bound by ``POST pods/{name}/binding``
(:meth:`ObjectStore.bind`), as the scheduler does.  Garbage collection of owner references,
namespace termination and CRD cleanup run synchronously right after the write that
triggered them (the server's controllers do it moments later); see ``_settle``.

The package, by concern: ``store`` (the objects, reads, commits), ``writes`` (create, PUT,
PATCH and admission), ``binding`` (``pods/binding``), ``deletion`` (finalizers, grace
periods, garbage collection), ``events`` (the watch history), ``errors`` (``Status``
failures), ``kinds`` and ``clock``.
"""

from agent_sessions.dev.object_store.clock import now_rfc3339
from agent_sessions.dev.object_store.deletion import grace_period_option, pod_deletion_grace_period
from agent_sessions.dev.object_store.errors import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    expired,
    invalid,
    not_found,
)
from agent_sessions.dev.object_store.events import EventLog, WatchEvent
from agent_sessions.dev.object_store.kinds import (
    CRD_CLEANUP_FINALIZER,
    DEFAULT_TERMINATION_GRACE_PERIOD,
    FIELD_VALIDATION_MODES,
    FOREGROUND_FINALIZER,
    INITIAL_NAMESPACES,
    NAMESPACE_FINALIZER,
)
from agent_sessions.dev.object_store.store import ObjectStore

__all__ = [
    "CRD_CLEANUP_FINALIZER",
    "DEFAULT_TERMINATION_GRACE_PERIOD",
    "FIELD_VALIDATION_MODES",
    "FOREGROUND_FINALIZER",
    "INITIAL_NAMESPACES",
    "NAMESPACE_FINALIZER",
    "ApiError",
    "EventLog",
    "ObjectStore",
    "WatchEvent",
    "already_exists",
    "bad_request",
    "conflict",
    "expired",
    "grace_period_option",
    "invalid",
    "not_found",
    "now_rfc3339",
    "pod_deletion_grace_period",
]
