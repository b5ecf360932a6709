"""Everything `agent-sessions gateway` is told at start, with the defaults of §7."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PORT = 8081
DEFAULT_METRICS_PORT = 9091
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
DEFAULT_HEADER_TIMEOUT_SECONDS = 10.0
DEFAULT_BODY_TIMEOUT_SECONDS = 60.0
DEFAULT_IDLE_TIMEOUT_SECONDS = 75.0
DEFAULT_WEBSOCKET_IDLE_SECONDS = 300.0
DEFAULT_RATE_LIMIT_PER_SECOND = 10.0
DEFAULT_RATE_LIMIT_BURST = 50
DEFAULT_PROVIDERS = ("pod", "http")
"""What an operator offers unless started with `--enable-tmux` (and what the chart installs)."""
DEFAULT_STATUS_STREAMS_PER_CALLER = 10


@dataclass(frozen=True)
class GatewayOptions:
    """Tunables of one gateway replica. Nothing here is per-session state: replicas are
    interchangeable, so any of them can serve any request (§7 "stateless")."""

    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    metrics_port: int | None = None
    """Where Prometheus `/metrics` is served, on `host`: a listener of its own, apart from `port`, so
    that exposing the gateway to users (an Ingress, a LoadBalancer) never exposes it (0: a free
    port). None: not served (the CLI's `--metrics-port 0`)."""
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    """Largest request body (and WebSocket `send` frame) accepted; larger is 413 `message_too_large`."""
    auth_cache_seconds: float = 10.0
    """How long a TokenReview or SubjectAccessReview answer is reused. 0 disables caching."""
    auth_cache_size: int = 10_000
    """Entries kept per cache; the least recently used go first."""
    keepalive_seconds: float = 15.0
    """An SSE `: keep-alive` comment (and a WebSocket ping) after this long without output, so that
    proxies between the client and the gateway keep a silent stream open."""
    history_poll_seconds: float = 1.0
    """How often a tailed session's runtime history is polled when the runtime does not long-poll
    (ignores `/v1/history?wait=`; one poll per session per replica, whatever the number of
    subscribers). Runtimes that long-poll (the project's bridge) push new frames at once instead."""
    history_page_size: int = 500
    """Items asked for per history request when replaying."""
    wake_timeout_seconds: float = 120.0
    """How long a message waits for a session woken from an idle stop to run again."""
    upstream_connect_seconds: float = 10.0
    """Connecting to a session's runtime. Message calls have no other timeout: agent turns may be
    silent for minutes."""
    upstream_request_seconds: float = 30.0
    """Total time of the short runtime calls (info, history, cancel, healthz)."""
    rate_limit_per_second: float = DEFAULT_RATE_LIMIT_PER_SECOND
    """Requests per second each caller (user name) may make on this replica; 0 turns rate limiting
    off. Every HTTP request and every WebSocket `subscribe`/`send`/`cancel` frame takes one."""
    rate_limit_burst: int = DEFAULT_RATE_LIMIT_BURST
    """Requests a caller may make at once before the rate applies (a UI subscribing to its
    sessions on page load)."""
    header_timeout_seconds: float = DEFAULT_HEADER_TIMEOUT_SECONDS
    """A connection that has not sent a whole request head (request line and headers) this long
    after it opened, or after the first byte of its next request, is closed (slowloris)."""
    body_timeout_seconds: float = DEFAULT_BODY_TIMEOUT_SECONDS
    """Reading a message body, whole; slower gets 408 `request_timeout` and the connection closes."""
    idle_timeout_seconds: float = DEFAULT_IDLE_TIMEOUT_SECONDS
    """A keep-alive connection with no request in flight is closed after this long."""
    websocket_idle_seconds: float = DEFAULT_WEBSOCKET_IDLE_SECONDS
    """A WebSocket with no subscription and no turn in flight that sends no frame for this long is
    closed (1000). Dead peers are found sooner by the ping every `keepalive_seconds`: without a
    pong within half of that, the socket is closed. 0: never closed for idleness."""
    runtime_key_secret: str | None = None
    """`NAMESPACE/NAME` of the runtime key Secret the operator keeps (`wire.runtime_key`): session
    runtimes require a token derived from it. Read at start, retried every
    `runtime_key_retry_seconds` until it exists (not ready meanwhile). None: calls carry no token."""
    runtime_key_retry_seconds: float = 2.0
    providers: tuple[str, ...] = DEFAULT_PROVIDERS
    """The providers the operator of this installation offers (`GET /v1/providers`): `pod` and
    `http` always, `tmux` when the operator runs with `--enable-tmux`. The gateway cannot ask the
    operator, so it is told, as it is told the operator's defaults."""
    status_streams_per_caller: int = DEFAULT_STATUS_STREAMS_PER_CALLER
    """Session-status streams (`GET …/sessions?watch=true`) one caller (user name) may hold open on
    this replica at once; one more is 429 `rate_limited`. 0: no limit."""
    status_stream_queue: int = 256
    """Events held for one status stream whose client reads slower than sessions change; past it
    the stream is sent `reset` and the namespace's current state instead (memory per stream stays
    bounded, whatever the client does)."""
    status_stream_replay: int = 1024
    """Recent changes kept per watched namespace, so that a client reconnecting with
    `Last-Event-ID` gets what it missed; an older id gets `reset` and the current state."""
    status_stream_linger_seconds: float = 60.0
    """How long a namespace's shared watch is kept after its last stream closed (a reconnecting
    client resumes from its buffer)."""
    status_stream_recheck_seconds: float = 60.0
    """How often an open status stream re-checks its caller's token and `watch` right; a caller
    who lost either gets an `error` event and the stream ends."""
    namespaces: tuple[str, ...] = ()
    """The namespaces this installation serves (`--namespace`; an operator watching only some):
    what `GET /v1/namespaces` offers (to callers who may list sessions there). Empty: the
    namespaces holding AgentSessions, found with one cluster-wide list."""
    namespaces_cache_seconds: float = 10.0
    """How long the namespaces holding AgentSessions (`GET /v1/namespaces`, `access_api`) are kept
    before they are listed again (one list per replica, whatever the number of callers)."""
    operator_defaults: Mapping[str, Any] = field(default_factory=dict)
    """The operator's defaults layer (Helm values), to resolve `lifecycle.wakeOnMessage` and a
    session's configuration (`GET …/sessions/{name}/config`) as the operator does."""
