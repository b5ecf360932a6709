"""The words of the lifecycle: Ready messages and Event texts built from observations."""

from __future__ import annotations

from typing import Final

from agent_sessions.api import constants as c

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
    code = f" with code {obs.exit_code}" if obs.exit_code is not None else ""
    cause = f" ({obs.reason})" if obs.reason else ""
    detail = f": {obs.message}" if obs.message else ""
    return f"the agent exited{code}{cause}{detail}"


def format_seconds(duration: float | None) -> str:
    if duration is None:
        return "the configured time"
    return f"{duration:g}s"
