"""Cross-layer validation: a session's settings for a provider other than the resolved one are a
problem (they would be silently ignored), with the field path and who chose the provider."""

from __future__ import annotations

from typing import Any

import pytest

from agent_sessions.api import constants as c
from agent_sessions.config import ConfigInvalid, resolve_config
from support.embedded import api, kubeconfig  # noqa: F401 (fixtures)
from support.operators import operators, start_operator  # noqa: F401 (fixtures)
from support.waits import condition, wait_session

IMAGE = "ghcr.io/acme/agent:1.4"
HTTP = {"url": "https://agents.example.com", "credentialsSecretRef": {"name": "platform-token"}}


def resolve(spec: dict[str, Any], templates: dict[str, dict[str, Any]] | None = None,
            operator_defaults: dict[str, Any] | None = None):
    session = {"metadata": {"name": "demo", "namespace": "team-a"}, "spec": spec}
    objects = {name: {"metadata": {"name": name, "namespace": "team-a", "generation": 1}, "spec": t}
               for name, t in (templates or {}).items()}
    return resolve_config(session, objects, operator_defaults)


def problems(spec, templates=None, operator_defaults=None) -> list[str]:
    with pytest.raises(ConfigInvalid) as invalid:
        resolve(spec, templates, operator_defaults)
    return [str(problem) for problem in invalid.value.problems]


def test_a_session_http_block_under_a_template_that_chose_pod_is_a_problem_naming_the_template():
    found = problems({"templateRef": {"name": "x"}, "http": HTTP}, {"x": {"provider": "pod", "agent": {"image": IMAGE}}})
    assert found == ['spec.http: set, but the resolved provider is pod (from SessionTemplate "x"); http applies '
                     "only to provider http: set spec.provider: http, or remove spec.http"]


def test_a_session_http_block_with_the_default_provider_names_the_built_in_default():
    (found,) = problems({"agent": {"image": IMAGE}, "http": {"timeoutSeconds": 5}})
    assert found.startswith("spec.http: set, but the resolved provider is pod (from built-in defaults)")


@pytest.mark.parametrize(("spec", "field", "provider"), [
    pytest.param({"provider": "http", "http": HTTP, "podTemplate": {"runtimeClassName": "gvisor"}},
                 "spec.podTemplate", "http", id="podTemplate-on-http"),
    pytest.param({"provider": "pod", "agent": {"image": IMAGE}, "tmux": {"shell": "/bin/bash"}},
                 "spec.tmux", "pod", id="tmux-on-pod"),
    pytest.param({"provider": "tmux", "http": {"maxRetries": 1}}, "spec.http", "tmux", id="http-on-tmux"),
])
def test_every_provider_specific_block_is_checked(spec, field, provider):
    (found,) = problems(spec)
    assert found.startswith(f"{field}: set, but the resolved provider is {provider} (from AgentSession \"demo\")")


@pytest.mark.parametrize(("spec", "templates", "operator_defaults"), [
    pytest.param({"provider": "http", "http": HTTP}, None, None, id="own-provider's-block"),
    pytest.param({"templateRef": {"name": "x"}, "provider": "http", "http": HTTP},
                 {"x": {"provider": "pod", "agent": {"image": IMAGE}, "podTemplate": {"runtimeClassName": "gvisor"}}},
                 None, id="template-blocks-for-another-provider-are-fine"),
    pytest.param({"agent": {"image": IMAGE}}, None, {"http": {"timeoutSeconds": 10}, "tmux": {"shell": "/bin/bash"}},
                 id="operator-defaults-for-every-provider-are-fine"),
    pytest.param({"templateRef": {"name": "x"}, "agent": {"image": IMAGE}, "http": None},
                 {"x": {"provider": "pod", "http": HTTP}}, None, id="a-null-removing-an-inherited-block-is-fine"),
])
def test_settings_the_session_does_not_set_itself_are_no_problem(spec, templates, operator_defaults):
    assert resolve(spec, templates, operator_defaults).config["provider"] in ("pod", "http")


# --- what the operator makes of it ----------------------------------------------------------------


def test_the_operator_reports_it_as_config_valid_false_with_the_field_path(api, start_operator):
    start_operator()
    api.create(c.TEMPLATE_PLURAL, {"apiVersion": c.API_VERSION, "kind": c.TEMPLATE_KIND,
                                   "metadata": {"name": "x", "namespace": "default"},
                                   "spec": {"provider": "pod", "agent": {"image": IMAGE}}})
    api.create(c.SESSION_PLURAL, {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND,
                                  "metadata": {"name": "demo", "namespace": "default"},
                                  "spec": {"templateRef": {"name": "x"}, "http": HTTP}})
    obj = wait_session(api, "demo", lambda o: (condition(o, c.COND_CONFIG_VALID) or {}).get("status") == "False")
    cond = condition(obj, c.COND_CONFIG_VALID)
    assert cond["reason"] == c.REASON_INVALID_CONFIGURATION
    assert 'spec.http: set, but the resolved provider is pod (from SessionTemplate "x")' in cond["message"]
    assert obj["status"]["phase"] == c.PHASE_FAILED and not api.list("pods", "default")
