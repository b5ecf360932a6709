"""Every name the operator writes into the cluster, in one place.

Labels, annotations, finalizers, condition types and reasons are part of the public contract:
users select on them, GitOps tools diff them, dashboards match them. Keeping them here means
renaming one is a visible, reviewable change instead of a grep.
"""

from typing import Final

GROUP: Final = "agentsession.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
PREFIX: Final = f"{GROUP}/"

SESSION_KIND: Final = "AgentSession"
SESSION_PLURAL: Final = "agentsessions"
SESSION_SINGULAR: Final = "agentsession"
SESSION_SHORT_NAMES: Final = ("ags",)
TEMPLATE_KIND: Final = "SessionTemplate"
TEMPLATE_PLURAL: Final = "sessiontemplates"
TEMPLATE_SINGULAR: Final = "sessiontemplate"
TEMPLATE_SHORT_NAMES: Final = ("stpl",)
CATEGORIES: Final = ("agents",)

# Labels
LABEL_SESSION: Final = f"{PREFIX}session"
LABEL_SESSION_UID: Final = f"{PREFIX}session-uid"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "agent-session-operator"

# Annotations
ANNOTATION_RESTART: Final = f"{PREFIX}restart"
"""Changing its value asks the operator to restart the session (also lifts it out of Failed)."""

ANNOTATION_WAKE: Final = f"{PREFIX}wake"
"""Set (to a new value, e.g. a timestamp) by the gateway when a message arrives for a session
stopped for idleness: the operator resumes it if `lifecycle.wakeOnMessage`. Metadata, not spec:
no GitOps drift."""

LABEL_WAKE_REQUEST: Final = f"{PREFIX}wake-request"
"""On an Event the gateway creates to ask the operator to wake a session (value: the session's
name, cut to 63 characters; the Event's `involvedObject` names it in full). The operator watches
Events with this label only (a server-side selector)."""
ANNOTATION_WAKE_REQUESTED_AT: Final = f"{PREFIX}wake-requested-at"
"""On a wake request Event: when it was asked for (RFC 3339, nanoseconds)."""
ANNOTATION_WAKE_SIGNATURE: Final = f"{PREFIX}wake-signature"
"""On a wake request Event: HMAC of the session and time with the runtime key (`wire.credentials`);
the operator ignores a request whose signature does not check."""

ANNOTATION_ABANDON: Final = f"{PREFIX}abandon"
"""`"true"` on a session being deleted: stop trying to delete its backing (an unreachable
platform, a provider this operator lacks) and remove the finalizer. The backing is left where it
is (an `Abandoned` event names it); ignored on a session that is not being deleted."""

# Runtime bridge environment
ENV_RUNTIME_HOST: Final = "AGENT_SESSIONS_RUNTIME_HOST"
"""Address the runtime bridge listens on (default 0.0.0.0); the local pod runner gives each pod
its own loopback address through it."""
RUNTIME_PORT: Final = 8080

# Finalizers
FINALIZER: Final = f"{PREFIX}cleanup"
"""Held by the operator until a deleted session's backing (pod, PVC, external session) is gone."""
KOPF_FINALIZER: Final = f"{PREFIX}kopf"
"""kopf's own marker, only used if a kopf handler ever needs one (none does today)."""

# Phases
PHASE_PENDING: Final = "Pending"
PHASE_CREATING: Final = "Creating"
PHASE_RUNNING: Final = "Running"
PHASE_STOPPING: Final = "Stopping"
PHASE_STOPPED: Final = "Stopped"
PHASE_COMPLETED: Final = "Completed"
PHASE_FAILED: Final = "Failed"
PHASE_TERMINATING: Final = "Terminating"
PHASES: Final = (
    PHASE_PENDING,
    PHASE_CREATING,
    PHASE_RUNNING,
    PHASE_STOPPING,
    PHASE_STOPPED,
    PHASE_COMPLETED,
    PHASE_FAILED,
    PHASE_TERMINATING,
)

# Delivery of spec.prompt (status.prompt.state; the lifecycle's `prompt` module decides it)
PROMPT_PENDING: Final = "Pending"
"""Not sent yet: the session has not been Running and Ready with a runtime endpoint."""
PROMPT_DELIVERING: Final = "Delivering"
"""Sent, or tried, and not acknowledged yet: sent again (same message id) until it is."""
PROMPT_DELIVERED: Final = "Delivered"
"""The runtime acknowledged it: never sent again."""

# Desired states (spec.state)
STATE_RUNNING: Final = "Running"
STATE_STOPPED: Final = "Stopped"

# Providers
PROVIDER_POD: Final = "pod"
PROVIDER_HTTP: Final = "http"
PROVIDER_TMUX: Final = "tmux"
PROVIDERS: Final = (PROVIDER_POD, PROVIDER_HTTP, PROVIDER_TMUX)

# Agent protocols
PROTOCOL_ACP: Final = "acp"
PROTOCOL_STDIO_LINES: Final = "stdio-lines"

# Restart policies
RESTART_NEVER: Final = "Never"
RESTART_ON_FAILURE: Final = "OnFailure"

# Condition types
COND_READY: Final = "Ready"
COND_CONFIG_VALID: Final = "ConfigValid"
COND_PROVIDER_AVAILABLE: Final = "ProviderAvailable"
COND_HEALTHY: Final = "Healthy"
COND_UP_TO_DATE: Final = "UpToDate"
CONDITION_TYPES: Final = (
    COND_READY,
    COND_CONFIG_VALID,
    COND_PROVIDER_AVAILABLE,
    COND_HEALTHY,
    COND_UP_TO_DATE,
)

# Condition reasons (CamelCase, as Kubernetes API conventions ask)
REASON_INVALID_CONFIGURATION: Final = "InvalidConfiguration"
REASON_VALID: Final = "Valid"
REASON_PROVIDER_UNAVAILABLE: Final = "ProviderUnavailable"
REASON_PROVIDER_REACHABLE: Final = "ProviderReachable"
REASON_CREATING: Final = "Creating"
REASON_RUNNING: Final = "Running"
REASON_STOPPED: Final = "Stopped"
REASON_COMPLETED: Final = "Completed"
REASON_FAILED: Final = "Failed"
REASON_PENDING: Final = "Pending"
REASON_TERMINATING: Final = "Terminating"
REASON_START_TIMEOUT: Final = "StartTimeout"
REASON_BACKOFF_LIMIT_EXCEEDED: Final = "BackoffLimitExceeded"
REASON_AGENT_EXITED: Final = "AgentExited"
REASON_PROBE_SUCCEEDED: Final = "ProbeSucceeded"
REASON_PROBE_FAILED: Final = "ProbeFailed"
REASON_NOT_PROBED: Final = "NotProbed"
REASON_TEMPLATE_CHANGED: Final = "TemplateChanged"
REASON_CONFIG_CURRENT: Final = "ConfigCurrent"
REASON_STOPPING: Final = "Stopping"
REASON_RESUMING: Final = "Resuming"
"""Ready=False while a stopped session is being started again (the Started/Resumed event tells
the two apart by it)."""
REASON_NOT_READY: Final = "NotReady"
REASON_DELETION_BLOCKED: Final = "DeletionBlocked"
"""Ready=False while a deleted session's backing cannot be deleted (the provider cannot be
reached): retried with backoff until it can, or until the session is abandoned."""

# Stopped reasons (status.stoppedReason)
STOPPED_USER: Final = "User"
STOPPED_IDLE_TIMEOUT: Final = "IdleTimeout"
STOPPED_MAX_DURATION: Final = "MaxDuration"

# Health states
HEALTH_HEALTHY: Final = "Healthy"
HEALTH_UNHEALTHY: Final = "Unhealthy"
HEALTH_UNKNOWN: Final = "Unknown"

# Event types (core/v1 Event.type)
EVENT_TYPE_NORMAL: Final = "Normal"
EVENT_TYPE_WARNING: Final = "Warning"

# Event reasons (§9)
EVENT_CREATED: Final = "Created"
EVENT_STARTED: Final = "Started"
EVENT_STOPPED: Final = "Stopped"
EVENT_RESUMED: Final = "Resumed"
EVENT_COMPLETED: Final = "Completed"
EVENT_FAILED: Final = "Failed"
EVENT_IDLE_STOPPED: Final = "IdleStopped"
EVENT_CONFIG_INVALID: Final = "ConfigInvalid"
EVENT_PROVIDER_UNAVAILABLE: Final = "ProviderUnavailable"
EVENT_UNHEALTHY: Final = "Unhealthy"
EVENT_RESTARTED: Final = "Restarted"
EVENT_RECREATED: Final = "Recreated"
EVENT_DELETION_BLOCKED: Final = "DeletionBlocked"
EVENT_ABANDONED: Final = "Abandoned"
EVENT_WAKE_REQUESTED: Final = "WakeRequested"

# Bounds shared by the API and the status writer
MAX_TITLE_LENGTH: Final = 256
MAX_PROMPT_LENGTH: Final = 65536
MAX_META_PROPERTIES: Final = 64
MAX_META_BYTES: Final = 16384
MAX_LOG_TAIL_LINES: Final = 50
MAX_LOG_TAIL_BYTES: Final = 8192

MAX_MESSAGE_ID_LENGTH: Final = 256
"""Longest client message `id` (the runtime and the gateway refuse longer ones with 422)."""
