"""Lifecycle layer: the session state machine (§4) and its conditions, as pure functions.

`decide(session, status, observation, provider_error, now) -> Decision` is the whole lifecycle:
no I/O, no clock, no memory. The reconciler gathers the inputs (the session digested into a
`SessionInput`, the status it read, the provider's `Observation`), executes the returned actions
and patches the returned status only when it differs from the one it read — which, for a
converged session, it never does (§8).

Imports only `agent_sessions.api` and `agent_sessions.config` (enforced by the import-linter
layers contract).
"""

from .actions import (
    Action,
    Decision,
    Delete,
    DeliverPrompt,
    Emit,
    Ensure,
    RemoveFinalizer,
    Stop,
)
from .conditions import (
    ConditionValue,
    apply_condition,
    compute_config_valid_condition,
    compute_healthy_condition,
    compute_provider_available_condition,
    compute_ready_condition,
    compute_up_to_date_condition,
    condition_status,
    get_condition,
    set_condition,
)
from .deadlines import idle_deadline, max_duration_deadline, start_deadline
from .decide import POLL_SECONDS, PROVIDER_RETRY_SECONDS, decide
from .health import next_health, resting_health
from .inputs import LifecycleSettings, SessionInput
from .observation import BackingState, HealthProbe, Observation
from .prompt import PROMPT_RETRY_SECONDS, prompt_message_id
from .timestamps import format_timestamp, parse_timestamp

__all__ = [
    "POLL_SECONDS",
    "PROMPT_RETRY_SECONDS",
    "PROVIDER_RETRY_SECONDS",
    "Action",
    "BackingState",
    "ConditionValue",
    "Decision",
    "Delete",
    "DeliverPrompt",
    "Emit",
    "Ensure",
    "HealthProbe",
    "LifecycleSettings",
    "Observation",
    "RemoveFinalizer",
    "SessionInput",
    "Stop",
    "apply_condition",
    "compute_config_valid_condition",
    "compute_healthy_condition",
    "compute_provider_available_condition",
    "compute_ready_condition",
    "compute_up_to_date_condition",
    "condition_status",
    "decide",
    "format_timestamp",
    "get_condition",
    "idle_deadline",
    "max_duration_deadline",
    "next_health",
    "parse_timestamp",
    "prompt_message_id",
    "resting_health",
    "set_condition",
    "start_deadline",
]
