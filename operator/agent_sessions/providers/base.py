"""The one provider protocol (§6): what the reconciler may ask of whatever runs a session.

The reconciler never knows which provider it talks to. It resolves a session's configuration,
looks the provider up in the registry by `config["provider"]`, and calls these methods; every
provider (pod, http, tmux) implements them with the same contract and passes the same contract
tests. The contract is built for a level-based reconciler that may call anything any number of
times, in any order, after an operator restart or a missed event:

* Everything is keyed by the session's **uid**, not its name: a session deleted and re-created
  under the same name is a different session and gets a different backing.
* `ensure`, `stop` and `delete` are idempotent: repeating a call that already took effect is a
  no-op, never an error and never a second backing.
* "Not found" is an answer, not a failure, wherever the goal is absence (`stop`, `delete`) or the
  question is "what is there" (`observe` → `ABSENT`).
* Failures are typed (`errors`): `ProviderUnavailable` is transient (retry), `InvalidConfiguration`
  is permanent (fail the session), `SessionNotFound` means the backing is not there.

Messages, streaming, history and cancel do not go through the provider: they go to the runtime
endpoint the provider reports (§7).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from agent_sessions.api import constants as c
from agent_sessions.api.session import CapabilitiesStatus
from agent_sessions.config.raises import TemplateRaises
from agent_sessions.lifecycle.observation import Observation
from agent_sessions.wire import session_ref as wire


@dataclass(frozen=True)
class ValidationContext:
    """What a provider's checks of a resolved configuration depend on besides the configuration:
    the session's namespace (whose Pod Security label may hold the pod stricter) and the limits its
    templates raise above the operator's configuration, each with its template (`TemplateRaises`).

    Built by the reconciler from the session and its `ResolvedConfig`, and passed explicitly — to
    `validate`, and on the `SessionRef` to every other call — so that no check depends on which
    task runs it. The empty context (no namespace, nothing raised) is the strictest."""

    namespace: str | None = None
    raises: TemplateRaises = field(default_factory=TemplateRaises)


@dataclass(frozen=True, kw_only=True)
class SessionRef(wire.SessionRef):
    """The session as a provider sees it: who it is (the wire's identity: `namespace`, `name`, and
    `uid`, the key of the session's backing, distinct for a re-created session), and the
    configuration it runs with."""

    config: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """The resolved configuration (`ResolvedConfig.config`: camelCase config blocks)."""
    generation: int | None = None
    """`metadata.generation` of the session the configuration was resolved from."""
    config_hash: str | None = None
    """`ResolvedConfig.hash`; providers record it on the backing (which config it started with)."""
    api_version: str = c.API_VERSION
    """Owner reference: apiVersion of the session object."""
    kind: str = c.SESSION_KIND
    """Owner reference: kind of the session object."""
    raises: TemplateRaises = field(default_factory=TemplateRaises, hash=False)
    """`ResolvedConfig.raises`: the limits the session's templates raise (nothing, by default)."""
    placed_before: bool = False
    """Whether the session's status records a backing made before (`status.provider.id`): what
    `ensure` made then (a claim, a token Secret) most likely exists, so a provider reads it first
    rather than create it and be refused; a first start creates without reading."""

    @property
    def context(self) -> ValidationContext:
        """What the provider checks `config` against (as `validate` gets it from the reconciler)."""
        return ValidationContext(namespace=self.namespace, raises=self.raises)

    @classmethod
    def from_object(
        cls, session: Mapping[str, Any], config: Mapping[str, Any], *, config_hash: str | None = None,
        raises: TemplateRaises | None = None,
    ) -> SessionRef:
        """A SessionRef for an AgentSession object (a dict as the API server returns it)."""
        identity = wire.SessionRef.of(session)
        status = session.get("status")
        placed = (status.get("provider") if isinstance(status, Mapping) else None) or {}
        return cls(
            namespace=identity.namespace,
            name=identity.name,
            uid=identity.uid or "",
            config=config,
            generation=(session.get("metadata") or {}).get("generation"),
            config_hash=config_hash,
            api_version=session.get("apiVersion") or c.API_VERSION,
            kind=session.get("kind") or c.SESSION_KIND,
            raises=raises or TemplateRaises(),
            placed_before=isinstance(placed, Mapping) and bool(placed.get("id")),
        )

    def owner_reference(self) -> dict[str, Any]:
        """The owner reference that ties a backing object to this session (garbage collection:
        deleting the session deletes what it owns, even if the operator is not running)."""
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


@dataclass(frozen=True)
class ProviderRef:
    """Where a session's backing lives, as returned by `ensure()` (→ `status.provider`)."""

    type: str
    """`pod`, `http` or `tmux`."""
    id: str
    """Pod name, external session id or tmux session name."""
    endpoint: str | None = None
    """URL of the session's runtime, when already known (a new pod has no IP yet)."""


Capabilities = CapabilitiesStatus
"""What a provider supports: providers return the status model itself (→ `status.capabilities`)."""


@runtime_checkable
class Provider(Protocol):
    """One backend that runs sessions. Every method's contract is part of §6."""

    type_name: str
    """The provider's name in `config.provider` (`pod`, `http`, `tmux`)."""

    def validate(self, config: Mapping[str, Any], context: ValidationContext) -> list[str]:
        """Problems that make `config` (a resolved configuration) unusable by this provider, under
        the operator's limits as `context` raises them (the session's namespace and templates).

        Pure and cheap (no I/O): the reconciler calls it on every pass before `ensure`. Each
        problem names the wire path, e.g. `spec.agent.command: required by the pod provider`.
        `ensure` checks again with `session.context`, whoever calls it.
        An empty list means the provider will try; the platform may still reject the config,
        which `ensure` then reports as `InvalidConfiguration`.
        """
        ...

    def capabilities(self) -> Capabilities:
        """What this provider supports. Constant for the provider's lifetime; no I/O."""
        ...

    async def ensure(self, session: SessionRef) -> ProviderRef:
        """Make the session's backing exist (create it, or resume it with its workspace).

        Idempotent and keyed by `session.uid`: when the backing already exists, nothing is
        created and its reference is returned — so a second call, a call after an operator
        restart, or a call racing another creates nothing. Never check-then-create: create, and
        treat "already exists" as success. A backing with the same name that belongs to another
        uid raises `SessionAlreadyExists`. The configuration is applied at creation only: a
        running backing is not changed (the lifecycle reports `UpToDate=False` instead).

        Raises `InvalidConfiguration` (permanent: the platform rejected the config),
        `ProviderUnavailable` (transient), `SessionNotFound` (the session's namespace is gone).
        """
        ...

    async def observe(self, session: SessionRef) -> Observation:
        """What the session's backing is doing now, in the lifecycle's vocabulary.

        No side effects. Not found is `BackingState.ABSENT`, not an error. Read-after-write:
        after `stop()`, a backing still being torn down is `STOPPED` (see `Observation`).
        Raises `ProviderUnavailable` when the provider cannot be asked.
        """
        ...

    async def stop(self, session: SessionRef) -> None:
        """Stop the backing and keep the workspace, so a later `ensure()` resumes it.

        Idempotent: not found (never started, already stopped) counts as done. Returns once the
        stop was requested; `observe()` reports `STOPPED` or `ABSENT` from then on.
        Raises `ProviderUnavailable` when the provider cannot be asked.
        """
        ...

    async def delete(self, session: SessionRef) -> bool:
        """Delete the backing and its workspace: the session itself is being deleted.

        Idempotent; not found counts as done. Returns True when nothing of the session is left,
        False when deletion is under way (call again later). Raises `ProviderUnavailable`.
        """
        ...

    async def logs(self, session: SessionRef, tail_lines: int, limit_bytes: int) -> str:
        """The end of the agent's log: at most `tail_lines` lines and `limit_bytes` UTF-8 bytes,
        cut on line boundaries, secrets redacted *before* it is cut.

        Providers return a `logs.LogTail` (a `str` whose `truncated` says whether older output
        was cut, for `status.logs.truncated`). Raises `SessionNotFound` when there is no
        backing, `ProviderUnavailable` when the provider cannot be asked. A backing that has not
        logged yet returns "".
        """
        ...
