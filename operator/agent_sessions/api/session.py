"""AgentSession: one run of an agent, its desired state and what the operator observed (§3)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from . import constants as c
from .base import (
    LIST_ATOMIC,
    PRESERVE_UNKNOWN,
    APIModel,
    ResourceName,
    list_map,
    validations,
)
from .template import PROVIDER_BLOCK_RULES, ConfigBlocks, ProviderType

Timestamp = Annotated[str, Field(max_length=64, json_schema_extra={"format": "date-time"})]
Meta = Annotated[
    dict[str, Any],
    Field(max_length=c.MAX_META_PROPERTIES, json_schema_extra=PRESERVE_UNKNOWN),
]


class TemplateReference(APIModel):
    """Names the SessionTemplate a session starts from."""

    name: ResourceName
    """Name of a SessionTemplate in the session's namespace."""


class AgentSessionSpec(ConfigBlocks):
    """Desired state of a session. Every configuration block overrides its template's."""

    model_config = validations(*PROVIDER_BLOCK_RULES, nullable_optionals=True)

    template_ref: TemplateReference | None = None
    """The SessionTemplate to start from; its chain supplies every field not set here."""
    state: Literal["Running", "Stopped"] | None = None
    """Desired lifecycle: `Running` (default) or `Stopped`. Stopping keeps the workspace;
    setting `Running` again resumes."""
    title: Annotated[str, Field(max_length=c.MAX_TITLE_LENGTH)] | None = None
    """User-chosen title; wins over the one the agent reports."""
    prompt: Annotated[str, Field(max_length=c.MAX_PROMPT_LENGTH)] | None = None
    """First message, delivered exactly once when the session first becomes Running."""
    meta: Meta | None = None
    """Initial free-form `_meta` object handed to the agent: at most 64 keys here; at most 32
    levels deep and 16 KiB of JSON, which the operator checks (ConfigValid) since the API server
    cannot look inside a free-form field."""


class AgentSession(APIModel):
    """A run of an AI agent, managed by the agent-session-operator."""

    api_version: Literal["agentsession.dev/v1alpha1"] = c.API_VERSION  # type: ignore[assignment]
    kind: Literal["AgentSession"] = "AgentSession"
    metadata: dict = Field(default_factory=dict, json_schema_extra=PRESERVE_UNKNOWN)
    spec: AgentSessionSpec = Field(default_factory=AgentSessionSpec)
    """Desired state of the session."""
    status: "AgentSessionStatus | None" = None
    """Observed state, written only by the operator."""


# --- status -------------------------------------------------------------------------------


class Condition(APIModel):
    """A standard Kubernetes condition (`metav1.Condition`)."""

    type: Annotated[str, Field(min_length=1, max_length=316)]
    """Ready, ConfigValid, ProviderAvailable, Healthy or UpToDate."""
    status: Literal["True", "False", "Unknown"]
    """Whether the condition holds."""
    reason: Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")]
    """Machine-readable CamelCase reason for the last transition."""
    message: Annotated[str, Field(max_length=32768)] = ""
    """Human-readable details."""
    last_transition_time: Timestamp
    """When `status` last changed (not when the condition was last written)."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The `metadata.generation` this condition was computed from."""


class ProviderStatus(APIModel):
    """Where the session runs."""

    type: ProviderType | None = None
    """The provider in use."""
    id: Annotated[str, Field(max_length=512)] | None = None
    """The backing session: pod name, external id or tmux session name."""
    endpoint: Annotated[str, Field(max_length=2048)] | None = None
    """URL of the session's runtime (messages, history)."""
    restarts: Annotated[int, Field(ge=0)] | None = None
    """Restarts the backing session made by itself (e.g. container restarts), last seen."""


class TemplateChainEntry(APIModel):
    """One template of the resolved chain."""

    name: ResourceName
    """Template name."""
    generation: Annotated[int, Field(ge=0)] | None = None
    """Its generation when the config was resolved."""


class ResolvedStatus(APIModel):
    """The configuration the session was resolved to."""

    template_chain: Annotated[list[TemplateChainEntry], Field(max_length=32, json_schema_extra=LIST_ATOMIC)] | None = None
    """Templates applied, root first."""
    hash: Annotated[str, Field(max_length=128)] | None = None
    """Hash of the resolved configuration the running session was started with."""


class SessionInfoStatus(APIModel):
    """What the agent reported about itself through ACP `session_info_update`."""

    title: Annotated[str, Field(max_length=c.MAX_TITLE_LENGTH)] | None = None
    """The agent's title for the session."""
    updated_at: Annotated[str, Field(max_length=64)] | None = None
    """The agent's `updatedAt`, kept as given."""
    meta: Meta | None = None
    """The agent's `_meta`, merged key by key."""


class HealthStatus(APIModel):
    """Health of the running session, from the provider's probes."""

    state: Literal["Healthy", "Unhealthy", "Unknown"] = "Unknown"
    """Healthy, Unhealthy or Unknown."""
    last_probe_time: Timestamp | None = None
    """When health was last probed."""
    consecutive_failures: Annotated[int, Field(ge=0)] = 0
    """Failed probes in a row."""
    message: Annotated[str, Field(max_length=4096)] | None = None
    """Why the session is unhealthy."""


class LogsStatus(APIModel):
    """The end of the agent's log."""

    tail: Annotated[str, Field(max_length=c.MAX_LOG_TAIL_BYTES)] | None = None
    """Last lines (at most 50 lines and 8 KiB), secrets redacted."""
    updated_at: Timestamp | None = None
    """When the tail was taken."""
    truncated: bool | None = None
    """Whether older lines were cut off."""
    output_mark: Annotated[str, Field(max_length=128)] | None = None
    """The runtime's `outputMark` when the tail was taken (it changes whenever the runtime writes
    to its log): while the runtime reports the same mark, the tail is current and the log is not
    read again, also by an operator that restarted since."""


class CapabilitiesStatus(APIModel):
    """What the provider supports."""

    streaming: bool = False
    """Replies can be streamed (SSE)."""
    history: bool = False
    """The message history can be read."""
    logs: bool = False
    """Logs can be read."""
    resume: bool = False
    """A stopped session can resume with its workspace."""
    cancel: bool = False
    """A running turn can be cancelled."""
    resource_limits: bool = False
    """CPU and memory limits are enforced."""


class PromptStatus(APIModel):
    """Delivery of `spec.prompt` (exactly once)."""

    state: Literal["Pending", "Delivering", "Delivered"]
    """Pending until the session first runs and its runtime is ready; Delivered once the runtime took it; Delivering when a send was tried and not acknowledged yet (it is sent again, with the same message id, so it runs once)."""
    time: Timestamp | None = None
    """When the state was last changed."""


class AgentSessionStatus(APIModel):
    """Observed state of a session, written only by the operator through the status subresource."""

    phase: Literal[
        "Pending", "Creating", "Running", "Stopping", "Stopped", "Completed", "Failed", "Terminating"
    ] | None = None
    """Lifecycle phase."""
    conditions: Annotated[list[Condition], Field(max_length=16, json_schema_extra=list_map("type"))] | None = None
    """Ready (summary), ConfigValid, ProviderAvailable, Healthy and UpToDate. Ready's reason says
    why a session is not ready: its phase (Creating, Stopped, ...), or the cause, e.g.
    ImagePullBackOff, StartTimeout, BackoffLimitExceeded, or an agent that could not start as its
    runtime reports it (agentStart): AgentExecFailed, AgentExited, InitializeFailed,
    AuthenticationRequired, SessionRefused."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The `metadata.generation` last acted upon."""
    provider: ProviderStatus | None = None
    """Where the session runs."""
    resolved: ResolvedStatus | None = None
    """The resolved configuration."""
    title: Annotated[str, Field(max_length=c.MAX_TITLE_LENGTH)] | None = None
    """Effective title: `spec.title` if set, else the agent's."""
    session_info: SessionInfoStatus | None = None
    """What the agent reported about the session."""
    health: HealthStatus | None = None
    """Health from the provider's probes."""
    logs: LogsStatus | None = None
    """Tail of the agent's log."""
    prompt: PromptStatus | None = None
    """Delivery of `spec.prompt`."""
    start_time: Timestamp | None = None
    """When the session last started (Creating began)."""
    stop_time: Timestamp | None = None
    """When the session last stopped, completed or failed."""
    last_activity_time: Timestamp | None = None
    """Last message in or out; idle timeouts count from here."""
    stopped_reason: Literal["User", "IdleTimeout", "MaxDuration"] | None = None
    """Why the session is Stopped."""
    restart_count: Annotated[int, Field(ge=0)] | None = None
    """Restarts after crashes and re-creations of a vanished backing session."""
    crash_count: Annotated[int, Field(ge=0)] | None = None
    """Crashes since the session last started; compared with `lifecycle.backoffLimit`."""
    message_count: Annotated[int, Field(ge=0)] | None = None
    """Messages exchanged with the agent."""
    capabilities: CapabilitiesStatus | None = None
    """What the provider supports."""
    restart_request: Annotated[str, Field(max_length=256)] | None = None
    """Value of the `agentsession.dev/restart` annotation last acted upon."""
    wake_request: Annotated[str, Field(max_length=256)] | None = None
    """Value of the `agentsession.dev/wake` annotation last acted upon."""


AgentSession.model_rebuild()
