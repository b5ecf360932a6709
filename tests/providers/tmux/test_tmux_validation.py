"""What the tmux provider rejects before anything starts, and what it accepts."""

from __future__ import annotations

import pytest

from agent_sessions.config.defaults import BUILTIN_DEFAULTS
from agent_sessions.providers.base import ValidationContext
from agent_sessions.providers.tmux import TmuxProvider, tmux_problems

VALID = {**BUILTIN_DEFAULTS, "provider": "tmux", "agent": {"protocol": "acp", "command": ["claude-code-acp"]}}


def config(**blocks):
    merged = {key: (dict(value) if isinstance(value, dict) else value) for key, value in VALID.items()}
    for key, value in blocks.items():
        merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    return merged


def test_a_resolved_config_with_builtin_defaults_is_valid():
    # workspace.accessModes and tmux.socketName/shell always carry built-in defaults.
    assert tmux_problems(config()) == []


def test_image_and_working_dir_are_ignored_not_rejected():
    assert tmux_problems(config(agent={"image": "ghcr.io/acme/agent:1", "workingDir": "/workspace/src"})) == []


@pytest.mark.parametrize(
    ("blocks", "expected"),
    [
        ({"agent": {"resources": {"limits": {"memory": "1Gi"}}}},
         "spec.agent.resources: not supported by the tmux provider (resourceLimits: false)"),
        ({"agent": {"resources": {"requests": {"cpu": "1"}}}},
         "spec.agent.resources: not supported by the tmux provider (resourceLimits: false)"),
        ({"agent": {"command": None}}, "spec.agent.command: required by the tmux provider"),
        ({"agent": {"command": []}}, "spec.agent.command: required by the tmux provider"),
        ({"podTemplate": {"nodeSelector": {"disk": "ssd"}}}, "spec.podTemplate: not supported by the tmux provider"),
        ({"workspace": {"size": "10Gi"}}, "spec.workspace.size: not supported by the tmux provider"),
        ({"workspace": {"storageClassName": "fast"}}, "spec.workspace.storageClassName: not supported"),
        ({"agent": {"volumeMounts": [{"name": "x", "mountPath": "/x"}]}}, "spec.agent.volumeMounts: not supported"),
        ({"agent": {"env": [{"name": "AGENT_SESSION_UID", "value": "x"}]}}, "spec.agent.env[AGENT_SESSION_UID]: reserved"),
        ({"agent": {"env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}},
         "spec.agent.env[POD].valueFrom.fieldRef: not supported by the tmux provider"),
        ({"agent": {"protocol": "grpc"}}, "spec.agent.protocol: unknown protocol 'grpc'"),
        ({"tmux": {"shell": "bash -c 'unbalanced"}}, "spec.tmux.shell:"),
    ],
)
def test_unsupported_settings_are_problems(blocks, expected):
    problems = tmux_problems(config(**blocks))
    assert any(problem.startswith(expected) for problem in problems), problems


def test_empty_resources_are_not_a_problem():
    assert tmux_problems(config(agent={"resources": {}})) == []


def test_secret_and_config_map_references_are_supported():
    env = [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
           {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "m", "key": "k"}}}]
    assert tmux_problems(config(agent={"env": env})) == []


def test_the_provider_validates_with_the_same_rules_and_reports_no_resource_limits():
    provider = TmuxProvider(socket_name="unused")
    assert provider.validate(config(agent={"resources": {"limits": {"cpu": "1"}}}), ValidationContext()) == [
        "spec.agent.resources: not supported by the tmux provider (resourceLimits: false)"
    ]
    capabilities = provider.capabilities()
    assert (capabilities.streaming, capabilities.history, capabilities.logs, capabilities.resume,
            capabilities.cancel, capabilities.resource_limits) == (True, True, True, True, True, False)
