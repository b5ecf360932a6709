"""SessionTemplate: the reusable configuration blocks a platform team owns (§3).

An AgentSession carries the same blocks, each optional and layered over its template chain
(§5); that is why every block here is an `OverridableModel` (explicit `null` = remove).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from . import constants as c
from .base import (
    FIELD_PATH_PATTERN,
    LIST_ATOMIC,
    LIST_SET,
    PRESERVE_UNKNOWN,
    APIModel,
    Duration,
    OverridableModel,
    Quantity,
    ResourceName,
    StringMap,
    cel,
    list_map,
    validations,
)
from .kubernetes import (
    Affinity,
    EnvFromSource,
    EnvVar,
    LocalObjectReference,
    PodSecurityContext,
    ResourceRequirements,
    SecurityContext,
    Toleration,
    Volume,
    VolumeMount,
)

ProviderType = Literal["pod", "http", "tmux"]
IMAGE_PATTERN = r"^[!-~]+$"
"""Printable ASCII, no whitespace or control characters (a newline would end a log line, a space
a command-line word)."""
Argument = Annotated[str, Field(max_length=4096)]


class AgentSpec(OverridableModel):
    """The agent process: what runs, with which environment and resources."""

    image: Annotated[str, Field(min_length=1, max_length=512, pattern=IMAGE_PATTERN)] | None = None
    """Container image of the agent (pod provider), e.g. `ghcr.io/acme/agent:1.4`: printable
    ASCII without spaces, as every image reference is."""
    command: Annotated[list[Argument], Field(max_length=64, json_schema_extra=LIST_ATOMIC)] | None = None
    """Entrypoint; replaces the image's. The runtime bridge wraps it."""
    args: Annotated[list[Argument], Field(max_length=256, json_schema_extra=LIST_ATOMIC)] | None = None
    """Arguments to the entrypoint."""
    env: Annotated[list[EnvVar], Field(max_length=128, json_schema_extra=list_map("name"))] | None = None
    """Environment variables; merged by name across template and session."""
    env_from: Annotated[list[EnvFromSource], Field(max_length=32, json_schema_extra=LIST_ATOMIC)] | None = None
    """ConfigMaps and Secrets exposed as environment variables; merged by the referenced ConfigMap or Secret."""
    resources: ResourceRequirements | None = None
    """CPU, memory and other resources of the agent container."""
    working_dir: Annotated[str, Field(max_length=4096, pattern=r"^/")] | None = None
    """Working directory of the agent process (absolute)."""
    protocol: Literal["acp", "stdio-lines"] | None = None
    """How the runtime bridge talks to the agent: `acp` (Agent Client Protocol over stdio,
    default) or `stdio-lines` (plain CLI agents: one line in, output lines until quiet)."""
    volume_mounts: Annotated[list[VolumeMount], Field(max_length=32, json_schema_extra=list_map("mountPath"))] | None = None
    """Extra mounts of `podTemplate.volumes` into the agent container; merged by mountPath."""


class WorkspaceSpec(OverridableModel):
    """A persistent volume for the agent's working files, kept across stop and resume."""

    size: Quantity | None = None
    """Requested size, e.g. `10Gi`. Without a size, no workspace volume is created."""
    storage_class_name: ResourceName | None = None
    """StorageClass of the claim; the cluster default when unset."""
    access_modes: Annotated[
        list[Literal["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"]],
        Field(min_length=1, max_length=4, json_schema_extra=LIST_SET),
    ] | None = None
    """Access modes of the claim; `ReadWriteOnce` when unset."""


class LifecycleSpec(OverridableModel):
    """Timeouts and restart behaviour of the session."""

    idle_timeout: Duration | None = None
    """Stop the session after this long without messages (e.g. `30m`). The stop is recorded in
    `status.stoppedReason: IdleTimeout`; `spec` is never edited, so GitOps sees no drift."""
    max_duration: Duration | None = None
    """Stop the session this long after it started, whatever its activity."""
    start_timeout: Duration | None = None
    """Fail the session if it is not Running this long after creation began."""
    restart_policy: Literal["Never", "OnFailure"] | None = None
    """What to do when the agent exits: `Never` (exit 0 = Completed, else Failed) or `OnFailure`
    (restart after a crash, up to backoffLimit times)."""
    backoff_limit: Annotated[int, Field(ge=0, le=100)] | None = None
    """Crash restarts allowed before the session is Failed."""
    wake_on_message: bool | None = None
    """Resume a session stopped for idleness when a message arrives for it."""


class PodTemplateSpec(OverridableModel):
    """Pod-level settings for the pod provider. The operator's hardened defaults hold for every
    field left unset; what a template or the session sets is checked, before any pod is built,
    against the operator's Pod Security Standards level (restricted unless the operator is
    configured otherwise; a namespace's pod-security.kubernetes.io/enforce label may raise it)."""

    labels: StringMap | None = None
    """Extra labels of the session's pod (the operator's own labels always win)."""
    annotations: StringMap | None = None
    """Extra annotations of the session's pod."""
    service_account_name: ResourceName | None = None
    """ServiceAccount the pod runs as."""
    automount_service_account_token: bool | None = None
    """Mount the ServiceAccount token into the pod. Off unless asked for."""
    node_selector: StringMap | None = None
    """Node labels the pod must match."""
    tolerations: Annotated[list[Toleration], Field(max_length=32, json_schema_extra=LIST_ATOMIC)] | None = None
    """Tolerations; merged by key and effect across layers."""
    affinity: Affinity | None = None
    """Scheduling constraints."""
    security_context: PodSecurityContext | None = None
    """Pod security context."""
    container_security_context: SecurityContext | None = None
    """Security context of the agent container."""
    runtime_class_name: ResourceName | None = None
    """RuntimeClass of the pod, e.g. `gvisor` for sandboxed agents."""
    priority_class_name: ResourceName | None = None
    """PriorityClass of the pod."""
    image_pull_secrets: Annotated[list[LocalObjectReference], Field(max_length=16, json_schema_extra=list_map("name"))] | None = None
    """Secrets used to pull the agent image."""
    volumes: Annotated[list[Volume], Field(max_length=32, json_schema_extra=list_map("name"))] | None = None
    """Extra volumes of the pod; merged by name across layers."""


class SecretKeyReference(APIModel):
    """A key of a Secret in the session's namespace."""

    name: ResourceName
    """Name of the Secret."""
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")] = "token"
    """Key holding the value; `token` by default."""


class HTTPProviderSpec(OverridableModel):
    """Settings of the external agent platform (provider `http`)."""

    url: Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^https?://[^\s/$.?#][^\s]*$")] | None = None
    """Base URL of the platform's session API, e.g. `https://agents.example.com`."""
    credentials_secret_ref: SecretKeyReference | None = None
    """Secret holding the bearer token; re-read when it changes."""
    timeout_seconds: Annotated[int, Field(ge=1, le=3600)] | None = None
    """Timeout of one request to the platform."""
    max_retries: Annotated[int, Field(ge=0, le=20)] | None = None
    """Retries of a failed request (5xx, timeouts) before the platform counts as unavailable."""


class TmuxProviderSpec(OverridableModel):
    """Settings of the local tmux provider (development)."""

    socket_name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] | None = None
    """tmux socket name (`tmux -L`), to keep agent sessions apart from the user's own."""
    shell: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    """Shell that runs the runtime bridge in the tmux window."""


PROVIDER_BLOCK_RULES = (
    cel(
        "!has(self.provider) || self.provider == 'http' || !has(self.http) || self.http == null",
        "http settings are only allowed with provider http",
        field_path=".http",
    ),
    cel(
        "!has(self.provider) || self.provider == 'tmux' || !has(self.tmux) || self.tmux == null",
        "tmux settings are only allowed with provider tmux",
        field_path=".tmux",
    ),
    cel(
        "!has(self.provider) || self.provider == 'pod' || !has(self.podTemplate) || self.podTemplate == null",
        "podTemplate is only allowed with provider pod",
        field_path=".podTemplate",
    ),
)


class ConfigBlocks(OverridableModel):
    """The blocks shared by SessionTemplate and AgentSession specs."""

    provider: ProviderType | None = None
    """Where sessions run: `pod` (default), `http` (an external agent platform) or `tmux`
    (local tmux sessions, for development)."""
    agent: AgentSpec | None = None
    """The agent process."""
    workspace: WorkspaceSpec | None = None
    """Persistent workspace volume."""
    lifecycle: LifecycleSpec | None = None
    """Timeouts and restart behaviour."""
    pod_template: PodTemplateSpec | None = None
    """Pod-level settings (provider `pod`)."""
    http: HTTPProviderSpec | None = None
    """External platform settings (provider `http`)."""
    tmux: TmuxProviderSpec | None = None
    """tmux settings (provider `tmux`)."""


PodSecurityLevel = Literal["restricted", "baseline", "privileged"]
POD_SECURITY_LEVELS = ("restricted", "baseline", "privileged")
"""Pod Security Standards levels, strictest first: a later one allows more."""
PLATFORM_URL_PATTERN = r"^https?://[^\s/?#@\\*]+(/[^\s?#\\]*)?$"
"""An http(s) base URL: a host (and port), an optional path; no userinfo, query, fragment,
whitespace or backslash."""
ENDPOINT_URL_PATTERN = r"^https?://[^\s/?#@\\]+(/[^\s?#\\]*)?$"
"""As `PLATFORM_URL_PATTERN`, and the port may be `*` (any port)."""


class TemplatePolicy(APIModel):
    """Limits this template raises above the operator's configuration, for the sessions that
    reference it. Only a SessionTemplate can carry it (an AgentSession cannot), so granting
    `create sessiontemplates` in a namespace grants these raises there. Raising only: nothing here
    makes the operator's limits stricter, and a namespace's pod-security.kubernetes.io/enforce label
    still holds. Each raise is shown, with this template as its origin, by `agent-sessions explain`."""

    pod_security_level: PodSecurityLevel | None = None
    """Pod Security Standards level the sessions' pods are held to when it allows more than the
    operator's own (`--pod-security-level`): `baseline` or `privileged`. A level stricter than the
    operator's changes nothing; a namespace's pod-security.kubernetes.io/enforce label stricter
    than this one still binds. This raises a limit for every session that references this template
    (or a template extending it), whatever the session's own fields say: only platform teams
    should be able to write SessionTemplates (RBAC)."""
    service_accounts: Annotated[list[ResourceName], Field(max_length=32, json_schema_extra=LIST_SET)] | None = None
    """ServiceAccounts the sessions' pods may run as and mount a token of, in addition to the
    operator's `--allow-service-account` list. This raises a limit for every session that
    references this template (or a template extending it), whatever the session's own fields say:
    only platform teams should be able to write SessionTemplates (RBAC)."""
    http_platforms: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=2048, pattern=PLATFORM_URL_PATTERN)]],
        Field(max_length=32, json_schema_extra=LIST_SET),
    ] | None = None
    """Base URLs of external agent platforms (provider http) the sessions may be sent to, with
    their credentials and Secret-backed environment, in addition to the operator's
    `--http-platform` list, e.g. `https://agents.example.com/v1` (same scheme, host and port; the
    path continues at a `/`). This raises a limit for every session that references this template
    (or a template extending it), whatever the session's own fields say: only platform teams
    should be able to write SessionTemplates (RBAC)."""
    http_endpoints: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=2048, pattern=ENDPOINT_URL_PATTERN)]],
        Field(max_length=32, json_schema_extra=LIST_SET),
    ] | None = None
    """Base URLs, besides a platform's own origin and the allowed platforms, where the runtime
    endpoints a platform reports may be (the operator and the gateway fetch them), in addition to
    the operator's `--http-endpoint` list; the port may be `*`, e.g. `http://10.0.0.7:*`. This
    raises a limit for every session that references this template (or a template extending it),
    whatever the session's own fields say: only platform teams should be able to write
    SessionTemplates (RBAC)."""


class SessionTemplateSpec(ConfigBlocks):
    """Reusable defaults for AgentSessions in this namespace."""

    model_config = validations(
        *PROVIDER_BLOCK_RULES,
        cel("!has(self.extends) || size(self.extends) > 0", "extends must name a template"),
        nullable_optionals=True,
    )

    extends: ResourceName | None = None
    """Name of a parent SessionTemplate in the same namespace; this template's fields override
    the parent's. Chains may be several templates deep; a cycle makes the template invalid."""
    locked_fields: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=253, pattern=FIELD_PATH_PATTERN)]],
        Field(max_length=64, json_schema_extra=LIST_SET),
    ] | None = None
    """Dotted paths (e.g. `agent.image`, `podTemplate`) that sessions may not override; a
    session that sets one is invalid. Locks are inherited by templates extending this one."""
    policy: TemplatePolicy | None = None
    """Limits this template raises above the operator's configuration (pod security level,
    ServiceAccounts, http platforms and endpoints) for every session that references it. Only a
    SessionTemplate can raise a limit, never an AgentSession; so only platform teams should be able
    to write SessionTemplates (RBAC). Shown with its origin by `agent-sessions explain`."""


class SessionTemplate(APIModel):
    """Reusable, layered defaults for AgentSessions (a platform team's session configuration)."""

    api_version: Literal["agentsession.dev/v1alpha1"] = c.API_VERSION  # type: ignore[assignment]
    kind: Literal["SessionTemplate"] = "SessionTemplate"
    metadata: dict = Field(default_factory=dict, json_schema_extra=PRESERVE_UNKNOWN)
    spec: SessionTemplateSpec = Field(default_factory=SessionTemplateSpec)
    """The template's configuration."""
