"""Everything `agent-sessions gateway` is told at start, with the defaults of §7."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PORT = 8081
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class GatewayOptions:
    """Tunables of one gateway replica. Nothing here is per-session state: replicas are
    interchangeable, so any of them can serve any request (§7 "stateless")."""

    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
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
    """How often a tailed session's runtime history is polled (one poll per session per replica,
    whatever the number of subscribers)."""
    history_page_size: int = 500
    """Items asked for per history request when replaying."""
    wake_timeout_seconds: float = 120.0
    """How long a message waits for a session woken from an idle stop to run again."""
    upstream_connect_seconds: float = 10.0
    """Connecting to a session's runtime. Message calls have no other timeout: agent turns may be
    silent for minutes."""
    upstream_request_seconds: float = 30.0
    """Total time of the short runtime calls (info, history, cancel, healthz)."""
    rate_limit_per_second: float = 0.0
    """Requests per second each caller (user name) may make; 0 turns rate limiting off."""
    rate_limit_burst: int = 20
    """Requests a caller may make at once before the rate applies."""
    operator_defaults: Mapping[str, Any] = field(default_factory=dict)
    """The operator's defaults layer (Helm values), used only to resolve `lifecycle.wakeOnMessage`."""
