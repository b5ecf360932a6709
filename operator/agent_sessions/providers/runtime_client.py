"""The operator's runtime client until the reconciler imports the wire's: `wire.runtime_client`,
failing with `ProviderUnavailable` (what the reconciler retries on) instead of `RuntimeCallFailed`."""

from __future__ import annotations

from agent_sessions.wire.runtime_client import Delivery, RuntimeCallFailed, RuntimeInfo
from agent_sessions.wire.runtime_client import RuntimeClient as WireRuntimeClient

from .errors import ProviderUnavailable

__all__ = ["Delivery", "RuntimeClient", "RuntimeInfo"]


def _unavailable(failure: RuntimeCallFailed) -> ProviderUnavailable:
    return ProviderUnavailable(str(failure))


class RuntimeClient(WireRuntimeClient):
    def __init__(self, user_agent: str) -> None:
        super().__init__(user_agent=user_agent, failure=_unavailable)
