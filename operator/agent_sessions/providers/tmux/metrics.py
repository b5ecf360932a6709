"""Prometheus metrics of the tmux provider (§9), registered once, on import."""

from prometheus_client import Counter, Gauge

ORPHANS = Gauge(
    "agent_session_tmux_orphans",
    "tmux sessions named like the provider's (ags-…) without an AgentSession, at the last orphan check "
    "(after reaping, when enabled).",
)
ORPHANS_REAPED = Counter("agent_session_tmux_orphans_reaped_total", "Orphaned tmux sessions killed.")
