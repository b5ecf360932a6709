"""Prometheus metrics of the operator (§9)."""

from prometheus_client import Counter, Gauge, Histogram

from agent_sessions.api import constants as c

SESSIONS = Gauge("agent_sessions", "Sessions known to the operator, by phase and provider.", ["phase", "provider"])
TRANSITIONS = Counter("agent_session_transitions_total", "Phase transitions.", ["from_phase", "to_phase"])
# The series into Failed exist from the start, at 0: `increase()` (the AgentSessionsFailing alert)
# cannot see the first failure on a series that appears with it.
for _phase in c.PHASES:
    TRANSITIONS.labels(from_phase=_phase, to_phase=c.PHASE_FAILED)
RECONCILE_SECONDS = Histogram("agent_session_reconcile_seconds", "Duration of one reconcile.")
RECONCILES = Counter(
    "agent_session_reconciles_total",
    "Reconciles started, by what asked for the first of them: a watch event of the `session`, its `pod`, a "
    "`template` or a `dependency` (Secret, ConfigMap) it names, a `wake` request, the `provider`, this replica "
    "becoming active (`resume`: peering or a shard taken), the session's own `requeue` timer or a `retry` "
    "after an error.",
    ["cause"],
)
RECONCILE_ERRORS = Counter(
    "agent_session_reconcile_errors_total", "Reconciles that failed with an unexpected error (retried with backoff)."
)
PROVIDER_ERRORS = Counter(
    "agent_session_provider_errors_total", "Provider calls that failed as unavailable.", ["provider", "operation"]
)
STARTUP_SECONDS = Histogram(
    "agent_session_startup_seconds",
    "From creation to Ready.",
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
)
