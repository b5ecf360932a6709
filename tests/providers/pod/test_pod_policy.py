"""The pod security policy (providers/pod/policy.py): the Pod Security Standards controls, one table
per level, the namespace label that may only raise the level, and the ServiceAccount allowlist."""

from __future__ import annotations

import pytest

from agent_sessions.providers.pod.policy import (
    BASELINE,
    ENFORCE_LABEL,
    PRIVILEGED,
    RESTRICTED,
    EffectiveLevel,
    PodPolicy,
    effective_level,
    policy_problems,
)

pytestmark = pytest.mark.unit

POD_SC = "spec.podTemplate.securityContext"
CONTAINER_SC = "spec.podTemplate.containerSecurityContext"


def config(pod_template: dict | None = None, **agent: object) -> dict:
    return {"provider": "pod", "agent": {"image": "i", "command": ["a"], **agent}, "podTemplate": pod_template or {}}


def paths(problems: list[str]) -> list[str]:
    return [problem.split(": ", 1)[0] for problem in problems]


def check(pod_template: dict, level: str, **agent: object) -> list[str]:
    return paths(policy_problems(config(pod_template, **agent), PodPolicy(level)))


# --- every level accepts the operator's own defaults ---------------------------------------------


@pytest.mark.parametrize("level", [PRIVILEGED, BASELINE, RESTRICTED])
def test_the_hardened_defaults_meet_every_level(level):
    assert policy_problems(config(), PodPolicy(level)) == []


def test_restricted_is_the_default_level():
    assert PodPolicy().level == RESTRICTED


def test_an_unknown_level_is_refused_at_configuration():
    with pytest.raises(ValueError, match="'strict' is not one of privileged, baseline, restricted"):
        PodPolicy("strict")


# --- baseline: known privilege escalations -------------------------------------------------------

BASELINE_VIOLATIONS = [
    pytest.param({"containerSecurityContext": {"privileged": True}}, f"{CONTAINER_SC}.privileged", id="privileged"),
    pytest.param({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
                 "spec.podTemplate.volumes[root].hostPath", id="host-path"),
    pytest.param({"containerSecurityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}},
                 f"{CONTAINER_SC}.capabilities.add", id="cap-sys-admin"),
    pytest.param({"containerSecurityContext": {"capabilities": {"add": ["CAP_CHOWN"]}}},
                 f"{CONTAINER_SC}.capabilities.add", id="cap-prefixed-name-is-not-the-listed-one"),
    pytest.param({"securityContext": {"seccompProfile": {"type": "Unconfined"}}},
                 f"{POD_SC}.seccompProfile.type", id="seccomp-unconfined-pod"),
    pytest.param({"containerSecurityContext": {"seccompProfile": {"type": "Unconfined"}}},
                 f"{CONTAINER_SC}.seccompProfile.type", id="seccomp-unconfined-container"),
    pytest.param({"containerSecurityContext": {"procMount": "Unmasked"}}, f"{CONTAINER_SC}.procMount",
                 id="proc-mount-unmasked"),
    pytest.param({"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}},
                 f"{POD_SC}.sysctls[kernel.msgmax]", id="unsafe-sysctl"),
    pytest.param({"securityContext": {"appArmorProfile": {"type": "Unconfined"}}},
                 f"{POD_SC}.appArmorProfile.type", id="apparmor-unconfined-pod"),
    pytest.param({"containerSecurityContext": {"appArmorProfile": {"type": "Unconfined"}}},
                 f"{CONTAINER_SC}.appArmorProfile.type", id="apparmor-unconfined-container"),
    pytest.param({"annotations": {"container.apparmor.security.beta.kubernetes.io/agent": "unconfined"}},
                 "spec.podTemplate.annotations[container.apparmor.security.beta.kubernetes.io/agent]",
                 id="apparmor-annotation-unconfined"),
    pytest.param({"securityContext": {"seLinuxOptions": {"type": "spc_t"}}}, f"{POD_SC}.seLinuxOptions.type",
                 id="selinux-type"),
    pytest.param({"containerSecurityContext": {"seLinuxOptions": {"user": "system_u"}}},
                 f"{CONTAINER_SC}.seLinuxOptions.user", id="selinux-user"),
    pytest.param({"containerSecurityContext": {"seLinuxOptions": {"role": "system_r"}}},
                 f"{CONTAINER_SC}.seLinuxOptions.role", id="selinux-role"),
    pytest.param({"hostNetwork": True}, "spec.podTemplate.hostNetwork", id="host-network"),
    pytest.param({"hostPID": True}, "spec.podTemplate.hostPID", id="host-pid"),
    pytest.param({"hostIPC": True}, "spec.podTemplate.hostIPC", id="host-ipc"),
    pytest.param({"securityContext": {"windowsOptions": {"hostProcess": True}}},
                 f"{POD_SC}.windowsOptions.hostProcess", id="windows-host-process"),
]


@pytest.mark.parametrize(("pod_template", "path"), BASELINE_VIOLATIONS)
@pytest.mark.parametrize("level", [BASELINE, RESTRICTED])
def test_baseline_controls_bind_baseline_and_restricted(pod_template, path, level):
    assert path in check(pod_template, level)


@pytest.mark.parametrize(("pod_template", "path"), BASELINE_VIOLATIONS)
def test_the_privileged_level_checks_nothing(pod_template, path):
    assert check(pod_template, PRIVILEGED) == []


def test_host_ports_are_forbidden_by_baseline():
    assert check({}, BASELINE, ports=[{"containerPort": 80, "hostPort": 80}]) == ["spec.agent.ports[0].hostPort"]
    assert check({}, BASELINE, ports=[{"containerPort": 80, "hostPort": 0}]) == []


@pytest.mark.parametrize(
    "pod_template",
    [
        pytest.param({"containerSecurityContext": {"capabilities": {"add": ["CHOWN", "NET_BIND_SERVICE"]}}},
                     id="default-set-capabilities"),
        pytest.param({"securityContext": {"sysctls": [{"name": "net.ipv4.ping_group_range", "value": "0 1"}]}},
                     id="safe-sysctl"),
        pytest.param({"securityContext": {"seLinuxOptions": {"type": "container_t", "level": "s0:c1"}}},
                     id="selinux-container-type-and-level"),
        pytest.param({"securityContext": {"appArmorProfile": {"type": "Localhost", "localhostProfile": "p"}}},
                     id="apparmor-localhost"),
        pytest.param({"annotations": {"container.apparmor.security.beta.kubernetes.io/agent": "localhost/p"}},
                     id="apparmor-annotation-localhost"),
        pytest.param({"containerSecurityContext": {"procMount": "Default"}}, id="proc-mount-default"),
        pytest.param({"securityContext": {"runAsNonRoot": False, "runAsUser": 0}}, id="root"),
        pytest.param({"containerSecurityContext": {"allowPrivilegeEscalation": True}}, id="privilege-escalation"),
        pytest.param({"volumes": [{"name": "n", "nfs": {"server": "s", "path": "/"}}]}, id="nfs-volume"),
    ],
)
def test_baseline_allows_what_only_restricted_forbids_or_nothing_forbids(pod_template):
    assert check(pod_template, BASELINE) == []


# --- restricted: hardening best practice ----------------------------------------------------------

RESTRICTED_ONLY = [
    pytest.param({"containerSecurityContext": {"allowPrivilegeEscalation": True}},
                 [f"{CONTAINER_SC}.allowPrivilegeEscalation"], id="privilege-escalation"),
    pytest.param({"securityContext": {"runAsNonRoot": False, "runAsUser": 0}},
                 [f"{POD_SC}.runAsNonRoot", f"{POD_SC}.runAsUser"], id="root-pod"),
    pytest.param({"containerSecurityContext": {"runAsNonRoot": False}}, [f"{CONTAINER_SC}.runAsNonRoot"],
                 id="root-allowed-in-container"),
    pytest.param({"containerSecurityContext": {"runAsUser": 0, "runAsNonRoot": False}},
                 [f"{CONTAINER_SC}.runAsNonRoot", f"{CONTAINER_SC}.runAsUser"], id="uid-0-container"),
    pytest.param({"containerSecurityContext": {"capabilities": {"drop": []}}}, [f"{CONTAINER_SC}.capabilities.drop"],
                 id="capabilities-not-dropped"),
    pytest.param({"containerSecurityContext": {"capabilities": {"add": ["CHOWN"]}}},
                 [f"{CONTAINER_SC}.capabilities.add"], id="baseline-capability"),
    pytest.param({"volumes": [{"name": "n", "nfs": {"server": "s", "path": "/"}}]},
                 ["spec.podTemplate.volumes[n].nfs"], id="nfs-volume"),
    pytest.param({"volumes": [{"name": "g", "gitRepo": {"repository": "r"}}]},
                 ["spec.podTemplate.volumes[g].gitRepo"], id="git-repo-volume"),
]


@pytest.mark.parametrize(("pod_template", "expected"), RESTRICTED_ONLY)
def test_restricted_controls(pod_template, expected):
    assert check(pod_template, RESTRICTED) == expected
    assert check(pod_template, BASELINE) == []


@pytest.mark.parametrize(
    "pod_template",
    [
        pytest.param({"containerSecurityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}}},
                     id="net-bind-service"),
        pytest.param({"securityContext": {"runAsUser": 1000}}, id="another-non-root-uid"),
        pytest.param({"securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "a.json"}}},
                     id="seccomp-localhost"),
        pytest.param({"volumes": [{"name": v, source: {}} for v, source in
                                  [("a", "configMap"), ("b", "secret"), ("c", "emptyDir"), ("d", "projected"),
                                   ("e", "downwardAPI"), ("f", "persistentVolumeClaim"), ("g", "csi"),
                                   ("h", "ephemeral")]]},
                     id="allowed-volume-types"),
        pytest.param({"containerSecurityContext": {"readOnlyRootFilesystem": True}}, id="read-only-root"),
    ],
)
def test_restricted_allows(pod_template):
    assert check(pod_template, RESTRICTED) == []


def test_a_message_names_the_field_the_level_who_set_it_and_the_rule():
    (problem,) = policy_problems(config({"containerSecurityContext": {"privileged": True}}), PodPolicy(RESTRICTED))
    assert problem == (f"{CONTAINER_SC}.privileged: not allowed by the restricted pod security level"
                       " (operator policy): privileged containers are forbidden (a SessionTemplate's"
                       " spec.policy.podSecurityLevel can raise the level for its sessions, up to privileged)")


def test_the_allowed_capabilities_in_the_message_are_the_levels():
    cfg = config({"containerSecurityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}})
    (restricted,) = policy_problems(cfg, PodPolicy(RESTRICTED))
    (baseline,) = policy_problems(cfg, PodPolicy(BASELINE))
    assert restricted.endswith("adding SYS_ADMIN is forbidden (allowed: NET_BIND_SERVICE) (a SessionTemplate's"
                               " spec.policy.podSecurityLevel can raise the level for its sessions, up to privileged)")
    assert "allowed: AUDIT_WRITE, CHOWN," in baseline


def test_the_privileged_session_of_the_issue_is_refused_field_by_field():
    attack = config(
        {
            "serviceAccountName": "default",
            "automountServiceAccountToken": True,
            "securityContext": {"runAsUser": 0, "runAsNonRoot": False, "seccompProfile": {"type": "Unconfined"}},
            "containerSecurityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]},
                                         "procMount": "Unmasked"},
            "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
        },
        volumeMounts=[{"name": "host", "mountPath": "/host", "mountPropagation": "Bidirectional"}],
    )
    assert paths(policy_problems(attack, PodPolicy(RESTRICTED))) == [
        f"{CONTAINER_SC}.privileged",
        "spec.podTemplate.volumes[host].hostPath",
        f"{CONTAINER_SC}.procMount",
        f"{POD_SC}.seccompProfile.type",
        f"{CONTAINER_SC}.capabilities.add",
        f"{POD_SC}.runAsNonRoot",
        f"{POD_SC}.runAsUser",
        "spec.podTemplate.automountServiceAccountToken",
    ]


@pytest.mark.parametrize(
    "pod_template",
    [
        {"securityContext": "root", "containerSecurityContext": ["x"], "volumes": "all", "annotations": 3},
        {"securityContext": {"sysctls": [{"name": {"a": 1}}, "x"], "seLinuxOptions": [1]},
         "containerSecurityContext": {"capabilities": {"add": "SYS_ADMIN", "drop": None}}, "volumes": [1, None]},
        {"serviceAccountName": {"name": "x"}, "volumes": [{"name": "p", "projected": {"sources": "x"}}]},
    ],
)
def test_unknown_shapes_never_raise(pod_template):
    policy_problems(config(pod_template), PodPolicy(RESTRICTED, frozenset({"agent"})))


# --- the level a namespace may raise --------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "label", "expected"),
    [
        pytest.param(BASELINE, None, EffectiveLevel(BASELINE, "operator policy"), id="no-label"),
        pytest.param(BASELINE, RESTRICTED,
                     EffectiveLevel(RESTRICTED, f"label {ENFORCE_LABEL}=restricted of namespace team-a", RESTRICTED),
                     id="label-raises"),
        pytest.param(BASELINE, PRIVILEGED, EffectiveLevel(BASELINE, "operator policy"), id="label-never-lowers"),
        pytest.param(RESTRICTED, BASELINE, EffectiveLevel(RESTRICTED, "operator policy", BASELINE), id="label-below"),
        pytest.param(BASELINE, BASELINE, EffectiveLevel(BASELINE, "operator policy", BASELINE), id="label-equal"),
        pytest.param(PRIVILEGED, "strict",
                     EffectiveLevel(RESTRICTED, f"label {ENFORCE_LABEL}=strict of namespace team-a", RESTRICTED),
                     id="unknown-label-value-is-restricted"),
    ],
)
def test_effective_level(operator, label, expected):
    labels = {} if label is None else {ENFORCE_LABEL: label, "other": "x"}
    assert effective_level(operator, "team-a", labels) == expected


def test_a_raised_level_is_named_in_the_message():
    level = effective_level(BASELINE, "team-a", {ENFORCE_LABEL: RESTRICTED})
    (problem,) = policy_problems(config({"containerSecurityContext": {"allowPrivilegeEscalation": True}}),
                                 PodPolicy(BASELINE), level)
    assert problem == (f"{CONTAINER_SC}.allowPrivilegeEscalation: not allowed by the restricted pod security level"
                       f" (label {ENFORCE_LABEL}=restricted of namespace team-a): must be false")


# --- the ServiceAccount ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pod_template", "allowed", "expected"),
    [
        pytest.param({}, (), [], id="default-without-token"),
        pytest.param({"serviceAccountName": "default"}, (), [], id="default-named-without-token"),
        pytest.param({"serviceAccountName": "builder"}, (), ["spec.podTemplate.serviceAccountName"],
                     id="other-account-not-listed"),
        pytest.param({"serviceAccountName": "builder", "automountServiceAccountToken": True}, ("builder",), [],
                     id="listed-account-with-token"),
        pytest.param({"automountServiceAccountToken": True}, (), ["spec.podTemplate.automountServiceAccountToken"],
                     id="default-token-not-listed"),
        pytest.param({"automountServiceAccountToken": True}, ("builder",),
                     ["spec.podTemplate.automountServiceAccountToken"], id="default-token-another-listed"),
        pytest.param({"automountServiceAccountToken": True}, ("default",), [], id="default-token-listed"),
        pytest.param({"volumes": [{"name": "t", "projected": {"sources": [
            {"configMap": {"name": "c"}}, {"serviceAccountToken": {"path": "token"}}]}}]}, (),
                     ["spec.podTemplate.volumes[t].projected.sources[1].serviceAccountToken"],
                     id="projected-token"),
    ],
)
def test_service_accounts_and_tokens_only_from_the_allowlist(pod_template, allowed, expected):
    problems = policy_problems(config(pod_template), PodPolicy(PRIVILEGED, frozenset(allowed)))
    assert paths(problems) == expected


def test_the_service_account_message_names_the_account_and_the_allowlist():
    (problem,) = policy_problems(config({"serviceAccountName": "cluster-admin-sa"}),
                                 PodPolicy(RESTRICTED, frozenset({"builder", "agent"})))
    assert problem == ("spec.podTemplate.serviceAccountName: ServiceAccount 'cluster-admin-sa' is not allowed by the"
                       " operator configuration (--allow-service-account: agent, builder) or a SessionTemplate's"
                       " spec.policy.serviceAccounts")


@pytest.mark.parametrize(("level", "hint_given"), [("restricted", False), ("baseline", True)])
def test_the_how_to_run_as_root_hint_is_given_only_where_the_level_lets_a_pod_run_as_root(level, hint_given):
    from agent_sessions.providers.base import ValidationContext  # noqa: PLC0415
    from agent_sessions.providers.pod.provider import PodProvider  # noqa: PLC0415

    config = {"provider": "pod", "agent": {"image": "example.com/agent:1", "command": ["agent"]},
              "podTemplate": {"securityContext": {"runAsUser": 0}}}
    problems = PodProvider(core_api=object(), policy=PodPolicy(level=level)).validate(config, ValidationContext())
    hint = [p for p in problems if "set runAsNonRoot: false explicitly" in p]
    assert bool(hint) is hint_given
    assert problems  # refused either way: by the policy (restricted) or by the hardened default
