"""From an AgentSession object as read to the inputs of `lifecycle.decide()`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from agent_sessions.api import constants as c
from agent_sessions.api.session import AgentSessionStatus
from agent_sessions.config import ResolvedConfig
from agent_sessions.lifecycle import LifecycleSettings, SessionInput
from agent_sessions.lifecycle.timestamps import parse_timestamp

logger = logging.getLogger(__name__)


def parse_status(raw: Mapping[str, Any], meta: Mapping[str, Any]) -> AgentSessionStatus | None:
    """The status as read; None for a new session, or one whose status does not parse (it is
    then recomputed from scratch rather than crashing every reconcile)."""
    if not raw:
        return None
    try:
        return AgentSessionStatus.model_validate(raw)
    except ValidationError as exc:
        logger.warning(
            "status of %s/%s does not parse (%s); recomputing it",
            meta.get("namespace"), meta.get("name"), exc.error_count(),
        )
        return None


def provider_type_of(resolved: ResolvedConfig | None, status: AgentSessionStatus | None) -> str | None:
    """The provider to talk to: the configured one, else the one status says was used."""
    if resolved is not None:
        return resolved.config["provider"]  # defaulted: always there
    if status is not None and status.provider is not None:
        return status.provider.type  # invalid config: still reach what was created, e.g. to delete it
    return None


def session_input(
    body: Mapping[str, Any],
    settings: LifecycleSettings | None,
    problems: list[str],
    deleting: bool,
    status: AgentSessionStatus | None,
) -> SessionInput:
    meta = body["metadata"]
    spec = body.get("spec") or {}
    wake = (meta.get("annotations") or {}).get(c.ANNOTATION_WAKE)
    return SessionInput(
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta.get("uid", ""),
        generation=meta.get("generation") or 0,
        settings=settings,
        config_problems=tuple(problems),
        deleting=deleting,
        deletion_time=parse_timestamp(meta.get("deletionTimestamp")) if deleting else None,
        desired_state=spec.get("state") or c.STATE_RUNNING,
        title=spec.get("title"),
        prompt=spec.get("prompt"),
        restart_request=(meta.get("annotations") or {}).get(c.ANNOTATION_RESTART),
        wake_requested=bool(wake) and wake != (status.wake_request if status else None),
    )
