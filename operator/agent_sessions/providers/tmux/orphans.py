"""The operator's periodic orphan check: tmux sessions whose AgentSession no longer exists.

A tmux session outlives the operator, and the AgentSession it belonged to can go while the
operator is down: deleted with its finalizer removed by hand, or its namespace deleted. Such a
session keeps running an agent nobody can reach through the API. The operator reports them (log,
metric, return value for an Event) and, when told to (`reap_orphans`), kills them.

The AgentSessions to compare with must be complete: the operator's kopf index once it is
populated, or — simpler, and right even when there are no sessions at all — a LIST of
AgentSessions (in the watched namespaces) taken just before the check. Tmux sessions younger
than a minute are never judged (the list may predate them).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from .constants import ORPHAN_MIN_AGE_SECONDS
from .provider import TmuxProvider


def known_uids(sessions: Mapping[Any, Iterable[Mapping[str, Any]]] | Iterable[Mapping[str, Any]]) -> set[str]:
    """The uids of the AgentSessions in `sessions`: a kopf index (key → bodies) or plain bodies."""
    bodies: Iterable[Mapping[str, Any]]
    if isinstance(sessions, Mapping):
        bodies = (body for key in list(sessions.keys()) for body in sessions[key])
    else:
        bodies = sessions
    return {uid for body in bodies if (uid := (body.get("metadata") or {}).get("uid"))}


async def report_orphans(
    provider: TmuxProvider,
    sessions_index: Mapping[Any, Iterable[Mapping[str, Any]]] | Iterable[Mapping[str, Any]],
    *,
    namespaces: Collection[str] | None = None,
    min_age_seconds: float = ORPHAN_MIN_AGE_SECONDS,
) -> list[str]:
    """The names of the orphaned tmux sessions (reported, and killed when the provider reaps).

    `sessions_index` is the operator's session index (or the items of a LIST of AgentSessions);
    `namespaces` the namespaces the operator watches (None: all of them).
    """
    return await provider.orphans(known_uids(sessions_index), namespaces=namespaces,
                                  min_age_seconds=min_age_seconds)
