"""API layer: the custom resources as pydantic models, and the CRDs generated from them."""

from .session import AgentSession, AgentSessionSpec, AgentSessionStatus, Condition
from .template import SessionTemplate, SessionTemplateSpec

__all__ = [
    "AgentSession",
    "AgentSessionSpec",
    "AgentSessionStatus",
    "Condition",
    "SessionTemplate",
    "SessionTemplateSpec",
]
