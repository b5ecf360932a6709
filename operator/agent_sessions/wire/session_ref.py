"""The Kubernetes identity of a session, as every frame on the wire carries it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

ENV_SESSION_NAME: Final = "AGENT_SESSION_NAME"
ENV_SESSION_NAMESPACE: Final = "AGENT_SESSION_NAMESPACE"
ENV_SESSION_UID: Final = "AGENT_SESSION_UID"
SESSION_ENV: Final = (ENV_SESSION_NAMESPACE, ENV_SESSION_NAME, ENV_SESSION_UID)
"""The variables every provider sets for the runtime bridge it starts (§6), from which the bridge
learns its session's identity when no flag says otherwise. Reserved: a session may not set them."""


@dataclass(frozen=True)
class SessionRef:
    """`{"namespace", "name", "uid"}` — the AgentSession a frame belongs to.

    The gateway always tags frames with this, taken from the AgentSession it read from the
    Kubernetes API, never with what a runtime says about itself: a runtime could be misconfigured
    (or a pod reused), and clients route frames by this tag. Providers build their richer view of
    a session (with its resolved configuration) on this one.
    """

    namespace: str
    name: str
    uid: str | None = None

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> SessionRef:
        meta = obj.get("metadata") or {}
        return cls(namespace=meta.get("namespace", ""), name=meta.get("name", ""), uid=meta.get("uid"))

    def to_json(self) -> dict[str, str | None]:
        return {"namespace": self.namespace, "name": self.name, "uid": self.uid}

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"
