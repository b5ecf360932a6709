"""The limits a session's templates raise above the operator's configuration (DESIGN §11).

Session authors are untrusted; template authors (the platform team, by RBAC on
`sessiontemplates`) may raise the operator's limits for the sessions that use their templates:
the pod security level, the ServiceAccounts a pod may run as, the http platforms a session may be
sent to and the origins a platform's runtime endpoints may be on. A raise is written in a
template's `spec.policy`, which only the SessionTemplate kind has: nothing an AgentSession says
can raise anything, so `resolve_config` reads policies from the template chain only, never from
the session (should a `policy` key reach it past admission, it is ignored).

Raising only, across the whole chain: every template of the chain (root first) may add
ServiceAccounts, platforms and endpoints (a union), and the most permissive level any of them
names counts. A template naming a level stricter than another's lowers nothing: limits are
tightened elsewhere (the operator's own level, the namespace's Pod Security label, which binds
over every template). Each raise keeps its origin — the template that first granted it, as
`SessionTemplate <namespace>/<name>` — for `explain` and for messages.

What is raised is only a permission: the providers hold the resolved configuration to the
operator's limits widened by these raises (`providers.base.ValidationContext`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from agent_sessions.api.template import POD_SECURITY_LEVELS

POLICY_FIELDS: Final = ("podSecurityLevel", "serviceAccounts", "httpPlatforms", "httpEndpoints")
"""The keys of a template's `spec.policy`, in the order `explain` shows them."""


@dataclass(frozen=True)
class Raise:
    """One value a template granted, and which template."""

    value: str
    origin: str
    """`SessionTemplate <namespace>/<name>`."""

    def __str__(self) -> str:
        return f"{self.value} (raised by {self.origin})"


@dataclass(frozen=True)
class TemplateRaises:
    """Everything the templates of one session's chain raise (empty: nothing is raised)."""

    pod_security_level: Raise | None = None
    """The most permissive level a template names (None: no template names one)."""
    service_accounts: tuple[Raise, ...] = ()
    http_platforms: tuple[Raise, ...] = ()
    http_endpoints: tuple[Raise, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.pod_security_level or self.service_accounts or self.http_platforms or self.http_endpoints)

    def rows(self) -> list[tuple[str, Raise]]:
        """(policy field, raise) for each raise, in `POLICY_FIELDS` order."""
        rows: list[tuple[str, Raise]] = []
        if self.pod_security_level is not None:
            rows.append(("podSecurityLevel", self.pod_security_level))
        rows += [("serviceAccounts", item) for item in self.service_accounts]
        rows += [("httpPlatforms", item) for item in self.http_platforms]
        rows += [("httpEndpoints", item) for item in self.http_endpoints]
        return rows


def template_origin(template: Mapping[str, Any], namespace: str = "") -> str:
    """How a template is named as the origin of a raise: `SessionTemplate team-a/gpu-agents`."""
    metadata = template.get("metadata") or {}
    name = metadata.get("name", "")
    namespace = metadata.get("namespace") or namespace
    return f"SessionTemplate {namespace}/{name}" if namespace else f"SessionTemplate {name}"


def template_raises(chain: Iterable[Mapping[str, Any]], namespace: str = "") -> TemplateRaises:
    """The raises of a template chain (root first, as `template_chain` returns it). Values of the
    wrong shape (the schema refuses them; an object written past admission might carry them) raise
    nothing."""
    level: Raise | None = None
    lists: dict[str, dict[str, Raise]] = {"serviceAccounts": {}, "httpPlatforms": {}, "httpEndpoints": {}}
    for template in chain:
        policy = (template.get("spec") or {}).get("policy")
        if not isinstance(policy, Mapping):
            continue
        origin = template_origin(template, namespace)
        named = policy.get("podSecurityLevel")
        if named in POD_SECURITY_LEVELS[1:] and (  # `restricted`, the strictest, raises nothing
            level is None or POD_SECURITY_LEVELS.index(named) > POD_SECURITY_LEVELS.index(level.value)
        ):
            level = Raise(named, origin)
        for key, granted in lists.items():
            values = policy.get(key)
            for value in values if isinstance(values, list) else ():
                if isinstance(value, str) and value and value not in granted:
                    granted[value] = Raise(value, origin)
    return TemplateRaises(
        pod_security_level=level,
        service_accounts=tuple(lists["serviceAccounts"].values()),
        http_platforms=tuple(lists["httpPlatforms"].values()),
        http_endpoints=tuple(lists["httpEndpoints"].values()),
    )
