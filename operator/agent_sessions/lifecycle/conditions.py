"""Conditions as pure functions: what each condition should say, and how to write it.

Each `compute_…_condition` looks at a few facts and returns a `ConditionValue` (type, status,
reason, message); `set_condition` merges one into the list.

`lastTransitionTime` moves only when `status` flips, as `metav1.Condition` defines it. Besides
being the convention every tool relies on ("how long has it been not Ready?"), it is what lets
a converged session produce a status identical to the one it read (§8): a reason or message may
be refreshed in place, but re-asserting the same condition never rewrites a timestamp, so a
reconcile over an unchanged session costs no write.

Conditions are kept in one stable order (Ready, ConfigValid, ProviderAvailable, Healthy,
UpToDate, then any others as found), so recomputing them never reorders the list either.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from agent_sessions.api import constants as c
from agent_sessions.api.session import Condition, HealthStatus

from .timestamps import format_timestamp

ConditionStatus = Literal["True", "False", "Unknown"]

MAX_MESSAGE_LENGTH = 32768
_REASON_PATTERN = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")


@dataclass(frozen=True)
class ConditionValue:
    """What a condition should say, without its bookkeeping (time, generation)."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""


def valid_reason(reason: str | None, default: str) -> str:
    """`reason` if the API server would accept it as a condition reason, else `default`.

    Reasons often come from elsewhere (container waiting reasons, external platforms); an
    invalid one must not make the whole status patch fail validation.
    """
    if reason and len(reason) <= 1024 and _REASON_PATTERN.fullmatch(reason):  # `$` would allow a final \n
        return reason
    return default


def get_condition(conditions: Sequence[Condition] | None, type_: str) -> Condition | None:
    """The condition of that type, or None."""
    for condition in conditions or ():
        if condition.type == type_:
            return condition
    return None


def condition_status(conditions: Sequence[Condition] | None, type_: str) -> str | None:
    """The status (`True`/`False`/`Unknown`) of that condition, or None when it is absent."""
    condition = get_condition(conditions, type_)
    return condition.status if condition else None


def _order(type_: str) -> int:
    try:
        return c.CONDITION_TYPES.index(type_)
    except ValueError:
        return len(c.CONDITION_TYPES)


def set_condition(
    conditions: Sequence[Condition] | None,
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """A new list with that condition set; the input is not modified.

    `lastTransitionTime` becomes `now` only when the condition is new or its `status` flips;
    reason, message and observedGeneration are updated in place.
    """
    message = message[:MAX_MESSAGE_LENGTH]
    previous = get_condition(conditions, type_)
    if previous is not None and previous.status == status:
        transition = previous.last_transition_time
    else:
        transition = format_timestamp(now)
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=generation,
    )
    others = [condition for condition in conditions or () if condition.type != type_]
    # sorted() is stable: conditions of unknown types keep the order they were found in.
    return sorted([*others, updated], key=lambda condition: _order(condition.type))


def apply_condition(
    conditions: Sequence[Condition] | None, value: ConditionValue, generation: int | None, now: datetime
) -> list[Condition]:
    """`set_condition` with a computed `ConditionValue`."""
    return set_condition(conditions, value.type, value.status, value.reason, value.message, generation, now)


# --- what each condition says ----------------------------------------------------------------

_READY_REASONS = {
    c.PHASE_PENDING: c.REASON_PENDING,
    c.PHASE_CREATING: c.REASON_CREATING,
    c.PHASE_RUNNING: c.REASON_NOT_READY,
    c.PHASE_STOPPING: c.REASON_STOPPING,
    c.PHASE_STOPPED: c.REASON_STOPPED,
    c.PHASE_COMPLETED: c.REASON_COMPLETED,
    c.PHASE_FAILED: c.REASON_FAILED,
    c.PHASE_TERMINATING: c.REASON_TERMINATING,
}

_READY_MESSAGES = {
    c.PHASE_PENDING: "the session is waiting to be created",
    c.PHASE_CREATING: "the session is starting",
    c.PHASE_RUNNING: "the agent does not serve yet",
    c.PHASE_STOPPING: "the session is stopping",
    c.PHASE_STOPPED: "the session is stopped; its workspace is kept",
    c.PHASE_COMPLETED: "the agent finished successfully",
    c.PHASE_FAILED: "the session failed",
    c.PHASE_TERMINATING: "the session is being deleted",
}


def compute_ready_condition(
    phase: str, ready: bool = False, reason: str | None = None, message: str | None = None
) -> ConditionValue:
    """The summary condition: True only for a Running session whose agent serves.

    Otherwise False, with `reason`/`message` when given (a failure's cause, a waiting reason)
    or the phase's default.
    """
    if phase == c.PHASE_RUNNING and ready:
        return ConditionValue(c.COND_READY, "True", c.REASON_RUNNING, message or "the agent is running")
    default_reason = _READY_REASONS.get(phase, c.REASON_PENDING)
    return ConditionValue(
        c.COND_READY,
        "False",
        valid_reason(reason, default_reason),
        message or _READY_MESSAGES.get(phase, ""),
    )


def compute_config_valid_condition(valid: bool, problems: Sequence[str] = ()) -> ConditionValue:
    """True when the configuration resolved; else False/InvalidConfiguration with the problems."""
    if valid:
        return ConditionValue(c.COND_CONFIG_VALID, "True", c.REASON_VALID, "the configuration is valid")
    message = "; ".join(problems) or "the configuration is invalid"
    return ConditionValue(c.COND_CONFIG_VALID, "False", c.REASON_INVALID_CONFIGURATION, message)


def compute_provider_available_condition(provider_error: str | None) -> ConditionValue:
    """False/ProviderUnavailable with the error while the provider cannot be reached."""
    if provider_error is not None:
        return ConditionValue(
            c.COND_PROVIDER_AVAILABLE,
            "False",
            c.REASON_PROVIDER_UNAVAILABLE,
            provider_error or "the provider cannot be reached",
        )
    return ConditionValue(c.COND_PROVIDER_AVAILABLE, "True", c.REASON_PROVIDER_REACHABLE, "the provider answered")


def compute_healthy_condition(health: HealthStatus | None) -> ConditionValue:
    """Mirrors `status.health`: Healthy → True, Unhealthy → False, otherwise Unknown."""
    if health is not None and health.state == c.HEALTH_HEALTHY:
        return ConditionValue(
            c.COND_HEALTHY, "True", c.REASON_PROBE_SUCCEEDED, health.message or "the agent answers its health probe"
        )
    if health is not None and health.state == c.HEALTH_UNHEALTHY:
        message = health.message or "the health probe failed"
        return ConditionValue(c.COND_HEALTHY, "False", c.REASON_PROBE_FAILED, message)
    message = (health.message if health else None) or "no health probe result"
    return ConditionValue(c.COND_HEALTHY, "Unknown", c.REASON_NOT_PROBED, message)


UP_TO_DATE = ConditionValue(c.COND_UP_TO_DATE, "True", c.REASON_CONFIG_CURRENT, "the session runs the current configuration")
"""What every start asserts: the session now runs the configuration it was just resolved to."""


def compute_up_to_date_condition(current_hash: str | None, started_hash: str | None) -> ConditionValue | None:
    """False/TemplateChanged when the resolved configuration differs from the one the session
    started with. Template edits never restart a session: it picks them up at its next start.

    None when there is nothing to compare (never started, or no hash).
    """
    if not current_hash or not started_hash:
        return None
    if current_hash == started_hash:
        return UP_TO_DATE
    return ConditionValue(
        c.COND_UP_TO_DATE,
        "False",
        c.REASON_TEMPLATE_CHANGED,
        "the resolved configuration changed since the session started; it applies at the next start",
    )
