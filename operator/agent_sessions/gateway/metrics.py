"""Prometheus metrics of the gateway (§9), served on its `/metrics`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter(
    "agent_session_gateway_messages_total",
    "Messages sent through the gateway, by outcome: `ok` or the error code.",
    ["code"],
)
MESSAGE_SECONDS = Histogram(
    "agent_session_gateway_message_seconds",
    "From receiving a message to the end of the turn's reply (including any wake).",
    ["mode"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
REQUESTS = Counter(
    "agent_session_gateway_requests_total",
    "HTTP requests answered, by route and status code.",
    ["route", "status"],
)
OPEN_STREAMS = Gauge(
    "agent_session_gateway_open_streams",
    "Open SSE streams and WebSockets.",
    ["kind"],
)
WAKES = Counter(
    "agent_session_gateway_wakes_total",
    "Wake requests made for sessions stopped for idleness, by outcome.",
    ["outcome"],
)
TAILED_SESSIONS = Gauge(
    "agent_session_gateway_tailed_sessions",
    "Sessions whose history this replica is polling for subscribers.",
)
STATUS_WATCHES = Gauge(
    "agent_session_gateway_status_watches",
    "Namespaces whose sessions this replica watches for session-status streams (one watch each).",
)
SESSION_LOOKUPS = Counter(
    "agent_session_gateway_session_lookups_total",
    "Where the gateway learnt a session's endpoint for a message, tail or cancel: `index` (its watch, "
    "no API call), `api` (a GET of the AgentSession) or `stale` (the index's endpoint did nothing: read "
    "and called again).",
    ["source"],
)
INDEXED_NAMESPACES = Gauge(
    "agent_session_gateway_indexed_namespaces",
    "Namespaces whose serving sessions this replica keeps from a watch (one watch each).",
)
