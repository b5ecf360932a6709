"""Admission of custom resources against a CRD schema, as the Kubernetes API server does it.

Why this exists: the embedded Kubernetes API (``agent-sessions dev``) has to reject bad
creates and updates with the same 422 a real cluster would return, and the manifest
corpus tests have to prove that every invalid manifest is refused by our generated CRDs
without starting a cluster.  Both need one checker that follows the API server
(apiextensions-apiserver + kube-openapi + the CEL validator) closely: the same structural
schema semantics, the same field paths and the same error wording, e.g.::

    spec.provider: Unsupported value: "docker": supported values: "pod", "http", "tmux"

Deliberate differences from a real API server, all on the strict side:

* ``null`` for a field without ``nullable: true`` is an error (``must be of type
  string: "null"``).  A real server silently prunes such nulls before defaulting; we
  prefer to flag them because a null in our manifests is always a templating mistake.
* Unknown fields are reported (type ``Unknown field``) as with server-side field
  validation ``Strict`` / ``kubectl apply --validate=strict``.  ``prune`` shows what a
  server with the default field validation would silently drop.
* Defaults are not applied, validation ratcheting (1.30+) is not emulated, and
  ``metadata`` is checked only for the rules listed in ``metadata_errors``.

CEL rules (``x-kubernetes-validations``) run with cel-python, which is imported lazily so
that plain schema checks work without it.  Each rule sees ``self`` with unknown fields
pruned and typed by the schema (``number`` as double, ``date-time`` as timestamp, ...).

The package, by concern: ``field_errors`` (the error type and wording), ``values`` (one value
against its schema: types, formats, bounds, list keys), ``metadata`` (ObjectMeta names, labels,
annotations), ``walk`` (the structural walk that validates and prunes), ``cel`` (the
``x-kubernetes-validations`` rules) and ``validator`` (:class:`CRDValidator`, the entry point).
"""

from agent_sessions.dev.admission.field_errors import (
    DUPLICATE,
    FORBIDDEN,
    INVALID,
    REQUIRED,
    SKIPPED_RULES,
    TOO_LONG,
    TOO_MANY,
    TYPE_INVALID,
    UNKNOWN_FIELD,
    UNSUPPORTED,
    FieldError,
)
from agent_sessions.dev.admission.validator import CRDValidator, validate_object

__all__ = [
    "DUPLICATE",
    "FORBIDDEN",
    "INVALID",
    "REQUIRED",
    "SKIPPED_RULES",
    "TOO_LONG",
    "TOO_MANY",
    "TYPE_INVALID",
    "UNKNOWN_FIELD",
    "UNSUPPORTED",
    "CRDValidator",
    "FieldError",
    "validate_object",
]
