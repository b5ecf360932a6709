"""Provider calls as spans, while tracing is on (`wire.tracing`).

The registry hands out providers through `traced_provider`, so every backend's `ensure`, `observe`,
`stop`, `delete` and `logs` is a span (`provider <call>`, with the provider type and the session's
namespace and name) under the reconcile that made it, without any provider knowing about tracing.
With tracing off the provider itself is handed out: no wrapper, no cost.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from agent_sessions.wire import tracing

from .base import Provider, SessionRef

TRACED_CALLS = frozenset({"ensure", "observe", "stop", "delete", "logs"})
"""The provider methods that do I/O (the `Provider` protocol's async methods)."""


class TracedProvider:
    """`provider` with its I/O calls in spans; everything else is the provider's own."""

    def __init__(self, provider: Provider, type_name: str) -> None:
        self.provider = provider
        self.type_name = type_name

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.provider, name)
        return partial(self._call, name, value) if name in TRACED_CALLS else value

    async def _call(self, call: str, method: Any, session: SessionRef, *args: Any, **kwargs: Any) -> Any:
        attributes = {tracing.PROVIDER: self.type_name, **tracing.session_attributes(session.namespace, session.name)}
        with tracing.span(f"provider {call}", attributes):
            return await method(session, *args, **kwargs)


def traced_provider(provider: Provider, type_name: str) -> Provider:
    if not tracing.enabled():
        return provider
    return TracedProvider(provider, type_name)  # type: ignore[return-value]
