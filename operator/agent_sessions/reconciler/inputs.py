"""From an AgentSession object as read to the inputs of `lifecycle.decide()`.

Whatever the object holds, digesting it never raises: a status that does not parse is
recomputed, and a spec the API server could not bound (the depth and size of the free-form
`meta`) or that has an unexpected shape becomes a configuration problem — `ConfigValid=False`
with the field and the rule — instead of an exception on every reconcile and no status at all.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from agent_sessions.api import constants as c
from agent_sessions.api.json_shape import MAX_FREE_FORM_DEPTH, nesting_depth
from agent_sessions.api.session import AgentSessionStatus
from agent_sessions.config import ResolvedConfig
from agent_sessions.lifecycle import LifecycleSettings, SessionInput
from agent_sessions.lifecycle.timestamps import parse_timestamp
from agent_sessions.wire.wake_request import newer

logger = logging.getLogger(__name__)


def parse_status(raw: Mapping[str, Any], meta: Mapping[str, Any]) -> AgentSessionStatus | None:
    """The status as read; None for a new session, or one whose status does not parse (it is
    then recomputed from scratch rather than crashing every reconcile)."""
    if not raw:
        return None
    try:
        if nesting_depth(raw) > MAX_FREE_FORM_DEPTH + 8:  # the operator never writes one so deep
            raise ValueError(f"nested more than {MAX_FREE_FORM_DEPTH + 8} levels deep")
        return AgentSessionStatus.model_validate(raw)
    except ValidationError as exc:
        logger.warning(
            "status of %s/%s does not parse (%s); recomputing it",
            meta.get("namespace"), meta.get("name"), exc.error_count(),
        )
        return None
    except Exception as exc:  # noqa: BLE001 - any shape at all: recompute rather than fail forever
        logger.warning("status of %s/%s cannot be read (%s); recomputing it",
                       meta.get("namespace"), meta.get("name"), exc)
        return None


def spec_problems(spec: Any) -> list[str]:
    """What the API server cannot check of a session's own fields: `spec.meta` is free-form, so
    its depth (`MAX_FREE_FORM_DEPTH`) and size (`MAX_META_BYTES` of compact JSON) are checked
    here, depth first and without recursion, so a 10,000-level `meta` costs one bounded walk."""
    if spec is None:
        return []
    if not isinstance(spec, Mapping):
        return [f"spec: must be an object, not {type(spec).__name__}"]
    meta = spec.get("meta")
    if meta is None:
        return []
    if nesting_depth(meta) > MAX_FREE_FORM_DEPTH:
        return [f"spec.meta: nested more than {MAX_FREE_FORM_DEPTH} levels deep (objects and arrays)"]
    size = len(json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))
    if size > c.MAX_META_BYTES:
        return [f"spec.meta: {size} bytes as JSON, more than {c.MAX_META_BYTES}"]
    return []


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
    pending_wake: str | None = None,
) -> SessionInput:
    meta = body["metadata"]
    raw_spec = body.get("spec")
    try:
        own = spec_problems(raw_spec)
    except Exception as exc:  # noqa: BLE001 - digesting a session never raises out of here
        own = [f"spec: cannot be read ({type(exc).__name__}: {exc})"]
    if own:  # the lifecycle acts only on a valid configuration: none without settings
        settings, problems = None, [*problems, *own]
    spec = raw_spec if isinstance(raw_spec, Mapping) else {}
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), Mapping) else {}
    return SessionInput(
        name=meta["name"],
        namespace=meta["namespace"],
        uid=meta.get("uid", ""),
        generation=meta.get("generation") or 0,
        settings=settings,
        config_problems=tuple(problems),
        deleting=deleting,
        deletion_time=parse_timestamp(meta.get("deletionTimestamp")) if deleting else None,
        desired_state=spec.get("state") if spec.get("state") in (c.STATE_RUNNING, c.STATE_STOPPED) else c.STATE_RUNNING,
        title=_text(spec.get("title")),
        prompt=_text(spec.get("prompt")),
        restart_request=annotations.get(c.ANNOTATION_RESTART),
        wake_requested=wake_to_act_on(meta, status, pending_wake) is not None,
    )


def wake_to_act_on(meta: Mapping[str, Any], status: AgentSessionStatus | None, pending_wake: str | None) -> str | None:
    """The wake request not acted on yet, to be recorded in `status.wakeRequest`, or None.

    Two sources: a signed wake request Event from the gateway (`pending_wake`, checked by the
    handler; acted on when newer than the recorded one) and the `agentsession.dev/wake`
    annotation, which anyone who may patch the session may set (`agent-sessions start`; acted on
    when it differs from the recorded one).
    """
    acted = status.wake_request if status else None
    if pending_wake and newer(pending_wake, acted):
        return pending_wake
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), Mapping) else {}
    wake = annotations.get(c.ANNOTATION_WAKE)
    if isinstance(wake, str) and wake and newer(wake, acted):
        return wake
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
