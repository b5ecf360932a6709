"""The http provider: sessions on an external agent platform behind a REST contract (§6 "http").

The contract is `docs/provider-http.md`. Pure pieces (`validation`, `settings`, `session_body`,
`observe`, `retry`, `api_errors`) are kept apart from the I/O (`credentials`: the token Secret;
`client`: requests with retries; `provider`: the protocol). The reference server and the
conformance kit for platform vendors live in `agent_sessions.dev`.
"""

from .observe import observe_session
from .provider import HTTPProvider, parse_capabilities
from .retry import RetryPolicy, backoff_delay, is_retryable, parse_retry_after
from .session_body import session_body
from .settings import PlatformSettings, SecretKey
from .validation import http_problems

__all__ = [
    "HTTPProvider",
    "PlatformSettings",
    "RetryPolicy",
    "SecretKey",
    "backoff_delay",
    "http_problems",
    "is_retryable",
    "observe_session",
    "parse_capabilities",
    "parse_retry_after",
    "session_body",
]
