"""`start/stop/restart --wait`: wait until the operator has acted on the change and the session
reached what was asked (Running and Ready, or Stopped), or say why it will not.

Only a status that has seen the change counts: `status.observedGeneration` at least the
generation our patch produced (a restart or a wake: `status.restartRequest` or
`status.wakeRequest` equal to the value we set), so the Running status of before a `restart` or
the Stopped status of before a `start` is never taken for the answer. A session that reaches Failed or Completed instead will not get there by
itself: the wait ends at once with the Ready condition's reason and message.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from agent_sessions.api import constants as c
from agent_sessions.cli.failures import CommandError

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def duration(value: str) -> float:
    """`--timeout`: `90`, `90s`, `5m`, `1h30m` → seconds (argparse type)."""
    import argparse

    match = _DURATION.match(value.strip())
    if not value.strip() or not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"expected a duration such as 90s, 5m or 1h, got {value!r}")
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


@dataclass(frozen=True)
class Target:
    """What a command waits for: the phase it asked for (Running also needs Ready=True)."""

    phase: str
    generation: int
    request: tuple[str, str] | None = None
    """A status field and the value it records once the operator acted on our annotation
    (`restartRequest` of a restart, `wakeRequest` of a wake)."""

    def describe(self) -> str:
        return "Running and Ready" if self.phase == c.PHASE_RUNNING else self.phase


def why(status: dict) -> str:
    """`phase Creating, Ready=False AgentNotStarted: …` (what `kubectl get ags -o wide` shows)."""
    phase = status.get("phase") or "unknown"
    ready = next((x for x in status.get("conditions") or [] if x.get("type") == c.COND_READY), None)
    if ready is None:
        return f"phase {phase}"
    text = f"phase {phase}, Ready={ready.get('status')}"
    if ready.get("reason"):
        text += f" {ready['reason']}"
    if ready.get("message"):
        text += f": {' '.join(str(ready['message']).split())}"
    return text


def outcome(obj: dict, target: Target) -> bool | str:
    """True once the session reached the target; a reason when it never will; False meanwhile."""
    status = obj.get("status") or {}
    if (status.get("observedGeneration") or 0) < target.generation:
        return False
    if target.request is not None and status.get(target.request[0]) != target.request[1]:
        return False
    phase = status.get("phase")
    ready = any(x.get("type") == c.COND_READY and x.get("status") == "True" for x in status.get("conditions") or [])
    if phase == target.phase and (phase != c.PHASE_RUNNING or ready):
        return True
    if phase in (c.PHASE_FAILED, c.PHASE_COMPLETED) and phase != target.phase:
        return why(status)
    return False


async def wait_for(changes: AsyncIterator[dict | None], namespace: str, name: str, target: Target,
                   timeout: float) -> None:
    """Returns once the session reached `target`; CommandError when it cannot, or did not in
    `timeout` seconds. `changes` yields the session now and after each change (None: deleted),
    so a state it passes through is seen even when it does not stay in it."""
    last: dict = {}
    try:
        async with asyncio.timeout(timeout), contextlib.aclosing(changes):
            async for obj in changes:
                if obj is None:
                    raise CommandError(f"agentsession {namespace}/{name} was deleted while waiting for it to be "
                                       f"{target.describe()}")
                last = obj
                reached = outcome(obj, target)
                if reached is True:
                    return
                if reached:
                    raise CommandError(f"agentsession {namespace}/{name} will not be {target.describe()}: {reached} "
                                       f"(`agent-sessions logs {name} -n {namespace}` shows the agent's last lines)")
    except TimeoutError:
        pass
    raise CommandError(f"agentsession {namespace}/{name} not {target.describe()} after {timeout:g}s: "
                       f"{why(last.get('status') or {})} (wait longer with --timeout)")
