"""The pod security policy as a session's templates raise it (DESIGN §11): the operator's level and
ServiceAccounts, widened by `TemplateRaises`, held to the namespace's label; messages name who set
the level and hint at a template only where one could lift the violation."""

from __future__ import annotations

from typing import Any

import pytest

from agent_sessions.config import Raise, TemplateRaises
from agent_sessions.providers import InvalidConfiguration, SessionRef, ValidationContext
from agent_sessions.providers.pod import PodProvider
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

CONTAINER_SC = "spec.podTemplate.containerSecurityContext"
POD_SC = "spec.podTemplate.securityContext"
ORIGIN = "SessionTemplate team-a/gpu-agents"
HINT = "(a SessionTemplate's spec.policy.podSecurityLevel can raise the level for its sessions, up to {})"


def config(pod_template: dict[str, Any]) -> dict[str, Any]:
    return {"provider": "pod", "agent": {"image": "example.com/agent:1", "command": ["agent"]},
            "podTemplate": pod_template}


ROOT = config({"securityContext": {"runAsUser": 0, "runAsNonRoot": False}})
"""Allowed by baseline, forbidden by restricted."""
PRIVILEGED_CONTAINER = config({"containerSecurityContext": {"privileged": True}})
"""Allowed by privileged only."""


def raised(level: str | None = None, *accounts: str) -> TemplateRaises:
    return TemplateRaises(pod_security_level=Raise(level, ORIGIN) if level else None,
                          service_accounts=tuple(Raise(account, ORIGIN) for account in accounts))


@pytest.mark.parametrize(
    ("operator", "template", "label", "expected"),
    [
        pytest.param(RESTRICTED, BASELINE, None, EffectiveLevel(BASELINE, f"raised by {ORIGIN}"), id="raises"),
        pytest.param(BASELINE, RESTRICTED, None, EffectiveLevel(BASELINE, "operator policy"), id="never-lowers"),
        pytest.param(BASELINE, BASELINE, None, EffectiveLevel(BASELINE, "operator policy"), id="equal-is-no-raise"),
        pytest.param(RESTRICTED, PRIVILEGED, BASELINE,
                     EffectiveLevel(BASELINE, f"label {ENFORCE_LABEL}=baseline of namespace team-a", BASELINE),
                     id="label-caps-the-template"),
        pytest.param(RESTRICTED, BASELINE, PRIVILEGED, EffectiveLevel(BASELINE, f"raised by {ORIGIN}", PRIVILEGED),
                     id="label-above-the-template"),
        pytest.param(RESTRICTED, PRIVILEGED, RESTRICTED,
                     EffectiveLevel(RESTRICTED, f"label {ENFORCE_LABEL}=restricted of namespace team-a", RESTRICTED),
                     id="label-binds-over-the-template"),
        pytest.param(BASELINE, PRIVILEGED, PRIVILEGED, EffectiveLevel(PRIVILEGED, f"raised by {ORIGIN}"),
                     id="label-privileged"),
    ],
)
def test_a_template_raises_the_operators_level_and_the_namespace_label_still_binds(operator, template, label,
                                                                                   expected):
    labels = {ENFORCE_LABEL: label} if label else {}
    assert effective_level(operator, "team-a", labels, Raise(template, ORIGIN)) == expected


def test_a_raised_level_is_named_with_its_template_and_the_hint_names_the_level_needed():
    level = effective_level(RESTRICTED, "team-a", {}, Raise(BASELINE, ORIGIN))
    assert policy_problems(ROOT, PodPolicy(RESTRICTED), level) == []
    (problem,) = policy_problems(PRIVILEGED_CONTAINER, PodPolicy(RESTRICTED), level)
    assert problem == (f"{CONTAINER_SC}.privileged: not allowed by the baseline pod security level (raised by"
                       f" {ORIGIN}): privileged containers are forbidden {HINT.format(PRIVILEGED)}")


def test_the_hint_names_the_least_level_that_lifts_each_violation():
    problems = policy_problems(config({"securityContext": {"runAsUser": 0, "runAsNonRoot": False},
                                       "containerSecurityContext": {"privileged": True}}), PodPolicy(RESTRICTED))
    assert [problem.rsplit(" (a SessionTemplate", 1)[1] for problem in problems] == [
        "'s spec.policy.podSecurityLevel can raise the level for its sessions, up to privileged)",
        "'s spec.policy.podSecurityLevel can raise the level for its sessions, up to baseline)",
        "'s spec.policy.podSecurityLevel can raise the level for its sessions, up to baseline)",
    ]


def test_no_hint_where_the_namespace_label_enforces_the_level():
    level = effective_level(BASELINE, "team-a", {ENFORCE_LABEL: RESTRICTED}, Raise(PRIVILEGED, ORIGIN))
    problems = policy_problems(ROOT, PodPolicy(BASELINE), level)
    assert problems and not any("SessionTemplate" in problem for problem in problems)


def test_no_hint_beyond_the_level_the_namespace_label_allows():
    level = effective_level(RESTRICTED, "team-a", {ENFORCE_LABEL: BASELINE})
    (root, _) = policy_problems(ROOT, PodPolicy(RESTRICTED), level)
    assert root.endswith(HINT.format(BASELINE))
    (privileged,) = policy_problems(PRIVILEGED_CONTAINER, PodPolicy(RESTRICTED), level)
    assert privileged.endswith("privileged containers are forbidden")  # baseline forbids it too: no template helps


def test_a_template_adds_service_accounts_and_the_message_lists_them_with_their_template():
    cfg = config({"serviceAccountName": "builder", "automountServiceAccountToken": True})
    assert policy_problems(cfg, PodPolicy(RESTRICTED), raises=raised(None, "builder")) == []
    (problem,) = policy_problems(config({"serviceAccountName": "deployer"}), PodPolicy(RESTRICTED, frozenset({"agent"})),
                                 raises=raised(None, "builder"))
    assert problem == ("spec.podTemplate.serviceAccountName: ServiceAccount 'deployer' is not allowed by the operator"
                       f" configuration (--allow-service-account: agent; {ORIGIN}: builder) or a SessionTemplate's"
                       " spec.policy.serviceAccounts")


def test_validate_and_ensure_take_the_raises_from_their_context():
    provider = PodProvider(core_api=object())
    context = ValidationContext(namespace="team-a", raises=raised(BASELINE))
    assert provider.validate(ROOT, context) == []
    assert provider.validate(ROOT, ValidationContext(namespace="team-a")) != []  # no raise, restricted


async def test_ensure_without_the_raise_refuses_before_any_request():
    provider = PodProvider(core_api=object())  # any request would fail: none is made
    with pytest.raises(InvalidConfiguration, match="runAsUser: not allowed by the restricted pod security level"):
        await provider.ensure(SessionRef(namespace="team-a", name="demo", uid="u1", config=ROOT))
