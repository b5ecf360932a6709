"""The pod security policy: what a session's pod may ask for, decided before any pod is built.

Why the operator checks at all. The operator creates pods with its own ServiceAccount, so a user
who may create AgentSessions but not Pods would otherwise get, through `podTemplate`, any pod the
operator may create — `privileged: true`, a `hostPath: /` volume, the node's root. The API
server's Pod Security admission checks the pod against the *namespace's* label only, and many
namespaces have none. So every resolved configuration is held to a Pod Security Standards level
(https://kubernetes.io/docs/concepts/security/pod-security-standards/) before `ensure`:

* the level is operator configuration (`--pod-security-level`, chart `sessionPods.securityLevel`,
  `restricted` by default);
* a namespace's own `pod-security.kubernetes.io/enforce` label can only raise it (see
  `effective_level`): a namespace labelled `privileged` under operator level `baseline` is still
  held to `baseline`, one labelled `restricted` under `baseline` is held to `restricted`;
* nothing in a session relaxes it. A SessionTemplate may (DESIGN §11: template authors are the
  platform team, by RBAC): its `spec.policy.podSecurityLevel` raises the level for the sessions
  that reference it (`config.raises`), never above what the namespace's label enforces — the API
  server's Pod Security admission would refuse that pod anyway. The message of a violation names
  who set the level (`operator policy`, `raised by SessionTemplate team-a/gpu-agents`, the label)
  and says that a template could raise it only where one could: a template cannot lift a
  namespace's label.

The checks are the controls of the standards, applied to the fields the pod provider can produce
(the pod and agent-container security contexts as the pod will get them — the operator's hardened
defaults overlaid with `podTemplate` — plus volumes, mounts, annotations, and, defensively, host
namespaces, host ports and Windows host processes should a future field carry them). Each
violation names the wire path that asked for it and the rule, e.g. `spec.podTemplate.
containerSecurityContext.privileged: not allowed by the restricted pod security level (operator
policy): privileged containers are forbidden`.

Independent of the level: the pod's ServiceAccount. Running as anything but the namespace's
`default`, and mounting a ServiceAccount token at all (`automountServiceAccountToken: true` or a
`projected` `serviceAccountToken` source), is allowed only for the ServiceAccounts the operator
configuration lists (`--allow-service-account`) or a template of the session's chain adds
(`spec.policy.serviceAccounts`); a token is an identity at the API server.

The standards' optional "non-root groups" control is not part of Kubernetes' own Pod Security
admission and is not checked here either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from agent_sessions.config.raises import Raise, TemplateRaises

from ..validation import block
from .security import container_security_context, pod_security_context

PRIVILEGED: Final = "privileged"
BASELINE: Final = "baseline"
RESTRICTED: Final = "restricted"
LEVELS: Final = (PRIVILEGED, BASELINE, RESTRICTED)
"""Pod Security Standards levels, least strict first."""

ENFORCE_LABEL: Final = "pod-security.kubernetes.io/enforce"
"""The namespace label of Kubernetes' Pod Security admission; it may raise the operator's level."""

DEFAULT_SERVICE_ACCOUNT: Final = "default"

BASELINE_CAPABILITIES: Final = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})
"""Capabilities `baseline` lets a container add (the container runtimes' default set)."""
RESTRICTED_CAPABILITIES: Final = frozenset({"NET_BIND_SERVICE"})

SAFE_SYSCTLS: Final = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
})
"""The sysctls `baseline` allows."""

SELINUX_TYPES: Final = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
RESTRICTED_VOLUME_TYPES: Final = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
})
APPARMOR_ANNOTATION_PREFIX: Final = "container.apparmor.security.beta.kubernetes.io/"

LEVEL_HINT: Final = ("a SessionTemplate's spec.policy.podSecurityLevel can raise the level for its sessions,"
                     " up to {level}")
"""Said of a violation a template could lift (never of one the namespace's label enforces)."""
SERVICE_ACCOUNT_HINT: Final = "or a SessionTemplate's spec.policy.serviceAccounts"

_POD_SC: Final = "spec.podTemplate.securityContext"
_CONTAINER_SC: Final = "spec.podTemplate.containerSecurityContext"


@dataclass(frozen=True)
class PodPolicy:
    """The operator's configuration of the policy (`OperatorOptions` → `PodProvider`)."""

    level: str = RESTRICTED
    """The Pod Security Standards level every session pod must meet (at least)."""
    allowed_service_accounts: frozenset[str] = frozenset()
    """ServiceAccounts a session pod may run as besides `default`, and the only ones whose token
    it may mount (list `default` to allow the default ServiceAccount's token)."""

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"pod security level {self.level!r} is not one of {', '.join(LEVELS)}")


@dataclass(frozen=True)
class EffectiveLevel:
    """The level a session's pod is held to, and who set it (for the message)."""

    level: str
    source: str
    ceiling: str = PRIVILEGED
    """The most a template could raise the level to: the namespace label's level, if any."""

    @property
    def rank(self) -> int:
        return LEVELS.index(self.level)


def effective_level(operator_level: str, namespace: str | None = None,
                    namespace_labels: Mapping[str, str] | None = None,
                    raised: Raise | None = None) -> EffectiveLevel:
    """The operator's level, loosened by a template's raise (`raised`, from `TemplateRaises`),
    then held to the namespace's `enforce` label, which never loosens. A label value that is not a
    level counts as `restricted`, as Pod Security admission treats it (fail closed)."""
    level = EffectiveLevel(operator_level, "operator policy")
    if raised is not None and raised.value in LEVELS and LEVELS.index(raised.value) < level.rank:
        level = EffectiveLevel(raised.value, f"raised by {raised.origin}")
    label = (namespace_labels or {}).get(ENFORCE_LABEL)
    if label is None:
        return level
    enforced = label if label in LEVELS else RESTRICTED
    if LEVELS.index(enforced) > level.rank:
        return EffectiveLevel(enforced, f"label {ENFORCE_LABEL}={label} of namespace {namespace}", ceiling=enforced)
    return EffectiveLevel(level.level, level.source, ceiling=enforced)


def policy_problems(config: Mapping[str, Any], policy: PodPolicy,
                    level: EffectiveLevel | None = None, raises: TemplateRaises | None = None) -> list[str]:
    """Every way `config` (a resolved configuration) breaks `policy` at `level` (the operator's
    own level when None), with the ServiceAccounts `raises` adds: one `spec.<path>: …` message per
    violation, with a hint where a template could lift it."""
    level = level or EffectiveLevel(policy.level, "operator policy")
    found = _violations(config, level.level)
    raisable = {level_name: {path for path, _ in _violations(config, level_name)}
                for level_name in LEVELS[LEVELS.index(level.ceiling):level.rank]}
    problems = []
    for path, rule in found:
        lifted_at = [name for name in reversed(LEVELS[:level.rank]) if name in raisable and path not in raisable[name]]
        hint = f" ({LEVEL_HINT.format(level=lifted_at[0])})" if lifted_at else ""
        problems.append(f"{path}: not allowed by the {level.level} pod security level ({level.source}): {rule}{hint}")
    accounts = raises.service_accounts if raises is not None else ()
    return problems + service_account_problems(block(config, "podTemplate"), policy.allowed_service_accounts, accounts)


def _violations(config: Mapping[str, Any], level: str) -> list[tuple[str, str]]:
    """(path, rule) of every control of `level` that `config` breaks."""
    rank = LEVELS.index(level)
    pod_template = block(config, "podTemplate")
    agent = block(config, "agent")
    pod = pod_security_context(_mapping(pod_template.get("securityContext")))
    container = container_security_context(_mapping(pod_template.get("containerSecurityContext")))
    found: list[tuple[str, str]] = []
    if rank >= LEVELS.index(BASELINE):
        found += _baseline(pod_template, agent, pod, container)
        allowed = RESTRICTED_CAPABILITIES if level == RESTRICTED else BASELINE_CAPABILITIES
        found += _added_capabilities(container, allowed)
    if rank >= LEVELS.index(RESTRICTED):
        found += _restricted(pod_template, pod, container)
    return found


# --- baseline ----------------------------------------------------------------------------------


def _baseline(pod_template: Mapping[str, Any], agent: Mapping[str, Any], pod: Mapping[str, Any],
              container: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_template.get(key) is True:
            yield f"spec.podTemplate.{key}", "sharing the host's namespaces is forbidden"
    for path, context in ((_POD_SC, pod), (_CONTAINER_SC, container)):
        if _mapping(context.get("windowsOptions")).get("hostProcess") is True:
            yield f"{path}.windowsOptions.hostProcess", "Windows HostProcess containers are forbidden"
    if container.get("privileged") is True:
        yield f"{_CONTAINER_SC}.privileged", "privileged containers are forbidden"
    for name, volume in _volumes(pod_template):
        if "hostPath" in volume:
            yield f"spec.podTemplate.volumes[{name}].hostPath", "hostPath volumes are forbidden"
    for index, port in enumerate(_list(agent.get("ports"))):
        if _mapping(port).get("hostPort") not in (None, 0):
            yield f"spec.agent.ports[{index}].hostPort", "host ports are forbidden"
    for path, context in ((_POD_SC, pod), (_CONTAINER_SC, container)):
        profile = _mapping(context.get("appArmorProfile")).get("type")
        if profile is not None and profile not in ("RuntimeDefault", "Localhost"):
            yield f"{path}.appArmorProfile.type", (
                f"AppArmor profile {profile} is forbidden (RuntimeDefault or Localhost)")
    for key, value in _mapping(pod_template.get("annotations")).items():
        if str(key).startswith(APPARMOR_ANNOTATION_PREFIX) and not (
            value == "runtime/default" or str(value).startswith("localhost/")
        ):
            yield f"spec.podTemplate.annotations[{key}]", (
                f"AppArmor profile {value!r} is forbidden (runtime/default or localhost/*)")
    for path, context in ((_POD_SC, pod), (_CONTAINER_SC, container)):
        selinux = _mapping(context.get("seLinuxOptions"))
        if selinux.get("type") not in (None, *SELINUX_TYPES):
            yield f"{path}.seLinuxOptions.type", (
                f"SELinux type {selinux['type']!r} is forbidden (allowed: {', '.join(sorted(SELINUX_TYPES - {''}))})")
        for key in ("user", "role"):
            if selinux.get(key) not in (None, ""):
                yield f"{path}.seLinuxOptions.{key}", f"setting a custom SELinux {key} is forbidden"
    if container.get("procMount") not in (None, "Default"):
        yield f"{_CONTAINER_SC}.procMount", f"procMount {container['procMount']} is forbidden (Default only)"
    for path, context in ((_POD_SC, pod), (_CONTAINER_SC, container)):
        if _mapping(context.get("seccompProfile")).get("type") == "Unconfined":
            yield f"{path}.seccompProfile.type", "the Unconfined seccomp profile is forbidden"
    for sysctl in _list(pod.get("sysctls")):
        name = _mapping(sysctl).get("name")
        if not (isinstance(name, str) and name in SAFE_SYSCTLS):
            yield f"{_POD_SC}.sysctls[{name}]", "only the namespaced sysctls of the safe set are allowed"


# --- restricted --------------------------------------------------------------------------------


def _restricted(pod_template: Mapping[str, Any], pod: Mapping[str, Any],
                container: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    for name, volume in _volumes(pod_template):
        for source in sorted(set(volume) - {"name"} - RESTRICTED_VOLUME_TYPES - {"hostPath"}):
            yield f"spec.podTemplate.volumes[{name}].{source}", (
                f"{source} volumes are forbidden (allowed: {', '.join(sorted(RESTRICTED_VOLUME_TYPES))})")
    if container.get("allowPrivilegeEscalation") is not False:
        yield f"{_CONTAINER_SC}.allowPrivilegeEscalation", "must be false"
    if container.get("runAsNonRoot") is False:
        yield f"{_CONTAINER_SC}.runAsNonRoot", "containers must run as non-root (true)"
    elif container.get("runAsNonRoot") is not True and pod.get("runAsNonRoot") is not True:
        yield f"{_POD_SC}.runAsNonRoot", "containers must run as non-root (true)"
    for path, context in ((_POD_SC, pod), (_CONTAINER_SC, container)):
        if context.get("runAsUser") == 0:
            yield f"{path}.runAsUser", "running as uid 0 (root) is forbidden"
    seccomp = _mapping(container.get("seccompProfile") or pod.get("seccompProfile")).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost", "Unconfined"):  # Unconfined: reported by baseline
        yield f"{_POD_SC}.seccompProfile.type", "a seccomp profile (RuntimeDefault or Localhost) is required"
    capabilities = _mapping(container.get("capabilities"))
    if "ALL" not in [str(cap) for cap in _list(capabilities.get("drop"))]:
        yield f"{_CONTAINER_SC}.capabilities.drop", "must drop ALL capabilities"



def _added_capabilities(container: Mapping[str, Any], allowed: frozenset[str]) -> Iterable[tuple[str, str]]:
    added = [str(cap) for cap in _list(_mapping(container.get("capabilities")).get("add"))]
    beyond = [cap for cap in added if cap not in allowed]
    if beyond:
        yield f"{_CONTAINER_SC}.capabilities.add", (
            f"adding {', '.join(beyond)} is forbidden (allowed: {', '.join(sorted(allowed))})")


# --- the ServiceAccount ------------------------------------------------------------------------


def service_account_problems(pod_template: Mapping[str, Any], allowed: Iterable[str],
                             raised: Iterable[Raise] = ()) -> list[str]:
    """The pod's ServiceAccount and its token, against the operator's allowlist and the
    ServiceAccounts the session's templates add (`raised`)."""
    raised = tuple(raised)
    allowed = frozenset(str(name) for name in allowed) | {item.value for item in raised}
    account = str(pod_template.get("serviceAccountName") or DEFAULT_SERVICE_ACCOUNT)
    listed = f"--allow-service-account: {', '.join(sorted(allowed - {i.value for i in raised})) or 'none'}"
    origins: dict[str, list[str]] = {}
    for item in raised:
        origins.setdefault(item.origin, []).append(item.value)
    listed += "".join(f"; {origin}: {', '.join(sorted(names))}" for origin, names in origins.items())
    where = f"the operator configuration ({listed}) {SERVICE_ACCOUNT_HINT}"
    problems = []
    if account != DEFAULT_SERVICE_ACCOUNT and account not in allowed:
        problems.append(f"spec.podTemplate.serviceAccountName: ServiceAccount {account!r} is not allowed by {where}")
    elif account not in allowed:
        token_paths = []
        if pod_template.get("automountServiceAccountToken") is True:
            token_paths.append("spec.podTemplate.automountServiceAccountToken")
        for name, volume in _volumes(pod_template):
            for index, source in enumerate(_list(_mapping(volume.get("projected")).get("sources"))):
                if _mapping(source).get("serviceAccountToken") is not None:
                    token_paths.append(f"spec.podTemplate.volumes[{name}].projected.sources[{index}].serviceAccountToken")
        problems += [
            f"{path}: mounting a token of ServiceAccount {account!r} is not allowed by {where}"
            for path in token_paths
        ]
    return problems


# --- reading untrusted shapes --------------------------------------------------------------------


def _volumes(pod_template: Mapping[str, Any]) -> Iterable[tuple[Any, Mapping[str, Any]]]:
    for volume in _list(pod_template.get("volumes")):
        if isinstance(volume, Mapping):
            yield volume.get("name"), {key: value for key, value in volume.items() if value is not None}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()
