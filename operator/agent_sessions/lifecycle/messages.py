"""The words of the lifecycle: Ready messages and Event texts built from observations."""

from __future__ import annotations

from typing import Final

from agent_sessions.api import constants as c
from agent_sessions.api.session import AgentSessionStatus

from .observation import Observation

STOPPED_MESSAGES: Final = {
    c.STOPPED_USER: "stopped because spec.state is Stopped; its workspace is kept",
    c.STOPPED_IDLE_TIMEOUT: "stopped after its idle timeout; a message (wakeOnMessage) or a spec change resumes it",
    c.STOPPED_MAX_DURATION: (
        "stopped after its maximum duration; a message (wakeOnMessage), a spec change or a restart request resumes it"
    ),
}


def describe_observation(obs: Observation | None) -> str:
    if obs is None:
        return ""
    if obs.reason and obs.message:
        return f"{obs.reason}: {obs.message}"
    return obs.reason or obs.message


def exit_message(obs: Observation) -> str:
    if obs.start_failed:
        return f"the agent could not start ({obs.reason}): {obs.message}" if obs.reason else \
            f"the agent could not start: {obs.message}"
    code = f" with code {obs.exit_code}" if obs.exit_code is not None else ""
    cause = f" ({obs.reason})" if obs.reason else ""
    detail = f": {obs.message}" if obs.message else ""
    return f"the agent exited{code}{cause}{detail}"


def backing_name(status: AgentSessionStatus) -> str:
    """`the pod backing ags-…` / `the http backing <uid>`, as far as status knows it."""
    provider = status.provider
    kind = f"{provider.type} " if provider is not None and provider.type else ""
    named = f" {provider.id}" if provider is not None and provider.id else ""
    return f"the {kind}backing{named}"


def deletion_blocked_message(status: AgentSessionStatus, session_name: str, error: str) -> str:
    """What is retried, why, and how to give up (the Ready message and the event)."""
    return (
        f"cannot delete {backing_name(status)}: {error}; retrying with backoff (at most every 5 minutes)."
        f" To give up on it and let the session go, annotate the session:"
        f" kubectl annotate agentsession {session_name} {c.ANNOTATION_ABANDON}=true"
        f" (the backing is then left behind, to be removed by hand)"
    )


def abandoned_message(status: AgentSessionStatus) -> str:
    return (
        f"deletion of {backing_name(status)} abandoned ({c.ANNOTATION_ABANDON}: \"true\"): it was not deleted"
        " and may still exist; the finalizer is removed"
    )


def format_seconds(duration: float | None) -> str:
    if duration is None:
        return "the configured time"
    return f"{duration:g}s"
