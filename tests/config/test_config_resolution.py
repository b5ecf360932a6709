"""Configuration resolution (§5): precedence, merge rules, locks, checks, hash and explain."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from agent_sessions.config import (
    BUILTIN_DEFAULTS,
    BUILTIN_LAYER,
    MAX_CHAIN_DEPTH,
    OPERATOR_LAYER,
    ConfigInvalid,
    Problem,
    ResolvedConfig,
    config_hash,
    explain,
    resolve_config,
)
from agent_sessions.config.paths import leaves

SESSION = 'AgentSession "demo"'
IMAGE = "ghcr.io/acme/agent:1.4"


def base_layer(name: str) -> str:
    return f'SessionTemplate "{name}"'


def a_session(spec: dict[str, Any], name: str = "demo", namespace: str = "team-a") -> dict[str, Any]:
    return {
        "apiVersion": "agentsession.dev/v1alpha1",
        "kind": "AgentSession",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def a_template(name: str, spec: dict[str, Any], generation: int | None = 1) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "team-a"}
    if generation is not None:
        metadata["generation"] = generation
    return {"apiVersion": "agentsession.dev/v1alpha1", "kind": "SessionTemplate", "metadata": metadata, "spec": spec}


def templates_of(specs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: a_template(name, spec) for name, spec in specs.items()}


def resolve(
    spec: dict[str, Any],
    templates: dict[str, dict[str, Any]] | None = None,
    operator_defaults: dict[str, Any] | None = None,
) -> ResolvedConfig:
    return resolve_config(a_session(spec), templates_of(templates or {}), operator_defaults)


def problems_of(
    spec: dict[str, Any],
    templates: dict[str, dict[str, Any]] | None = None,
    operator_defaults: dict[str, Any] | None = None,
) -> list[Problem]:
    with pytest.raises(ConfigInvalid) as raised:
        resolve(spec, templates, operator_defaults)
    return raised.value.problems


MISSING = object()


def at(config: dict[str, Any], path: str) -> Any:
    node: Any = config
    for segment in path.split("."):
        if not isinstance(node, dict) or segment not in node:
            return MISSING
        node = node[segment]
    return node


# --- precedence and merge rules ----------------------------------------------------------------

ROOT = {
    "agent": {"image": "root:1", "args": ["--root"], "workingDir": "/root"},
    "lifecycle": {"idleTimeout": "1h", "backoffLimit": 5},
    "podTemplate": {"labels": {"team": "a"}},
}
MID = {"extends": "root", "agent": {"args": ["--mid"]}, "lifecycle": {"idleTimeout": "30m"}}
LEAF = {"extends": "mid", "agent": {"workingDir": "/leaf"}, "podTemplate": {"labels": {"tier": "gold"}}}
CHAIN_OF_THREE = {"root": ROOT, "mid": MID, "leaf": LEAF}


def case(id: str, spec: dict, templates: dict | None = None, operator_defaults: dict | None = None, *,
         expect: dict[str, Any] | None = None, origins: dict[str, str] | None = None, absent: tuple[str, ...] = ()):
    return pytest.param(spec, templates, operator_defaults, expect or {}, origins or {}, absent, id=id)


RESOLUTION_CASES = [
    case(
        "built_in_defaults_apply_when_no_layer_sets_a_field",
        {"agent": {"image": IMAGE}},
        expect={
            "provider": "pod",
            "agent.protocol": "acp",
            "lifecycle.restartPolicy": "OnFailure",
            "lifecycle.backoffLimit": 3,
            "lifecycle.startTimeout": "10m",
            "lifecycle.wakeOnMessage": True,
            "workspace.accessModes": ["ReadWriteOnce"],
            "http.timeoutSeconds": 30,
            "http.maxRetries": 5,
            "tmux.socketName": "agent-sessions",
            "tmux.shell": "/bin/sh",
        },
        origins={"provider": BUILTIN_LAYER, "lifecycle.backoffLimit": BUILTIN_LAYER, "agent.image": SESSION},
        absent=("lifecycle.idleTimeout", "lifecycle.maxDuration", "workspace.size"),
    ),
    case(
        "operator_defaults_override_built_in_defaults",
        {},
        None,
        {"agent": {"image": "platform:1"}, "lifecycle": {"backoffLimit": 5}},
        expect={"lifecycle.backoffLimit": 5, "lifecycle.restartPolicy": "OnFailure", "agent.image": "platform:1"},
        origins={"lifecycle.backoffLimit": OPERATOR_LAYER, "lifecycle.restartPolicy": BUILTIN_LAYER, "agent.image": OPERATOR_LAYER},
    ),
    case(
        "single_template_supplies_fields_the_session_leaves_unset",
        {"templateRef": {"name": "base"}},
        {"base": {"agent": {"image": "base:1"}, "lifecycle": {"idleTimeout": "15m"}}},
        {"lifecycle": {"idleTimeout": "1h"}},
        expect={"agent.image": "base:1", "lifecycle.idleTimeout": "15m"},
        origins={"agent.image": base_layer("base"), "lifecycle.idleTimeout": base_layer("base")},
    ),
    case(
        "session_overrides_its_template",
        {"templateRef": {"name": "base"}, "agent": {"image": "mine:2"}},
        {"base": {"agent": {"image": "base:1"}}},
        expect={"agent.image": "mine:2"},
        origins={"agent.image": SESSION},
    ),
    case(
        "chain_of_three_layers_root_then_mid_then_leaf_then_session",
        {"templateRef": {"name": "leaf"}, "lifecycle": {"maxDuration": "8h"}},
        CHAIN_OF_THREE,
        {"lifecycle": {"backoffLimit": 1, "startTimeout": "5m"}},
        expect={
            "agent.image": "root:1",
            "agent.args": ["--mid"],
            "agent.workingDir": "/leaf",
            "lifecycle.idleTimeout": "30m",
            "lifecycle.backoffLimit": 5,
            "lifecycle.startTimeout": "5m",
            "lifecycle.maxDuration": "8h",
            "lifecycle.restartPolicy": "OnFailure",
            "podTemplate.labels": {"team": "a", "tier": "gold"},
        },
        origins={
            "agent.image": base_layer("root"),
            "agent.args": base_layer("mid"),
            "agent.workingDir": base_layer("leaf"),
            "lifecycle.idleTimeout": base_layer("mid"),
            "lifecycle.backoffLimit": base_layer("root"),
            "lifecycle.startTimeout": OPERATOR_LAYER,
            "lifecycle.maxDuration": SESSION,
            "lifecycle.restartPolicy": BUILTIN_LAYER,
            "podTemplate.labels.team": base_layer("root"),
            "podTemplate.labels.tier": base_layer("leaf"),
        },
    ),
    case(
        "null_removes_an_inherited_scalar",
        {"templateRef": {"name": "base"}, "agent": {"workingDir": None}},
        {"base": {"agent": {"image": "base:1", "workingDir": "/w"}}},
        absent=("agent.workingDir",),
        expect={"agent.image": "base:1"},
    ),
    case(
        "null_removes_an_inherited_object_with_everything_below_it",
        {"templateRef": {"name": "base"}, "podTemplate": None},
        {"base": {"agent": {"image": "base:1"}, "podTemplate": {"labels": {"a": "b"}, "nodeSelector": {"pool": "gpu"}}}},
        absent=("podTemplate",),
    ),
    case(
        "null_removes_an_inherited_list",
        {"templateRef": {"name": "base"}, "agent": {"args": None}},
        {"base": {"agent": {"image": "base:1", "args": ["--verbose"]}}},
        absent=("agent.args",),
    ),
    case(
        "null_removes_every_inherited_item_of_a_merge_by_key_list",
        {"templateRef": {"name": "base"}, "agent": {"env": None}},
        {"base": {"agent": {"image": "base:1", "env": [{"name": "A", "value": "1"}]}}},
        absent=("agent.env",),
    ),
    case(
        "null_removes_one_key_of_an_inherited_map_and_keeps_the_others",
        {"templateRef": {"name": "base"}, "podTemplate": {"labels": {"cost-center": None}}},
        {"base": {"agent": {"image": "base:1"}, "podTemplate": {"labels": {"cost-center": "42", "team": "a"}}}},
        expect={"podTemplate.labels": {"team": "a"}},
    ),
    case(
        "null_removes_an_operator_default_and_it_does_not_come_back",
        {"agent": {"image": IMAGE}, "podTemplate": {"nodeSelector": None}},
        None,
        {"podTemplate": {"nodeSelector": {"pool": "agents"}, "runtimeClassName": "gvisor"}},
        expect={"podTemplate.runtimeClassName": "gvisor"},
        absent=("podTemplate.nodeSelector",),
    ),
    case(
        "null_on_a_field_with_a_built_in_default_falls_back_to_that_default",
        {"templateRef": {"name": "base"}, "lifecycle": {"backoffLimit": None, "restartPolicy": None}},
        {"base": {"agent": {"image": "base:1"}, "lifecycle": {"backoffLimit": 9, "restartPolicy": "Never"}}},
        expect={"lifecycle.backoffLimit": 3, "lifecycle.restartPolicy": "OnFailure"},
        origins={"lifecycle.backoffLimit": BUILTIN_LAYER, "lifecycle.restartPolicy": BUILTIN_LAYER},
    ),
    case(
        "null_on_a_whole_block_with_built_in_defaults_falls_back_to_them",
        {"templateRef": {"name": "base"}, "lifecycle": None},
        {"base": {"agent": {"image": "base:1"}, "lifecycle": {"idleTimeout": "5m", "backoffLimit": 9}}},
        expect={"lifecycle": {"restartPolicy": "OnFailure", "backoffLimit": 3, "startTimeout": "10m", "wakeOnMessage": True}},
    ),
    case(
        "a_later_layer_sets_again_what_an_earlier_null_removed",
        {"templateRef": {"name": "mid"}, "lifecycle": {"idleTimeout": "10m"}},
        {"root": {"agent": {"image": "r:1"}, "lifecycle": {"idleTimeout": "1h"}},
         "mid": {"extends": "root", "lifecycle": {"idleTimeout": None}}},
        expect={"lifecycle.idleTimeout": "10m"},
        origins={"lifecycle.idleTimeout": SESSION},
    ),
    case(
        "env_merges_by_name_overriding_one_adding_one_and_keeping_order",
        {"templateRef": {"name": "base"}, "agent": {"env": [{"name": "B", "value": "session"}, {"name": "D", "value": "new"}]}},
        {"base": {"agent": {"image": "base:1", "env": [
            {"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}]}}},
        expect={"agent.env": [
            {"name": "A", "value": "1"}, {"name": "B", "value": "session"},
            {"name": "C", "value": "3"}, {"name": "D", "value": "new"}]},
        origins={"agent.env[A]": base_layer("base"), "agent.env[B]": SESSION, "agent.env[D]": SESSION},
    ),
    case(
        "env_item_is_replaced_whole_so_value_and_value_from_never_mix",
        {"templateRef": {"name": "base"}, "agent": {"env": [
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "mine", "key": "token"}}}]}},
        {"base": {"agent": {"image": "base:1", "env": [{"name": "TOKEN", "value": "dev"}]}}},
        expect={"agent.env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "mine", "key": "token"}}}]},
    ),
    case(
        "env_from_merges_by_kind_and_name_so_a_configmap_and_a_secret_of_one_name_both_stay",
        {"templateRef": {"name": "base"}, "agent": {"envFrom": [
            {"secretRef": {"name": "shared"}}, {"configMapRef": {"name": "tuning"}, "prefix": "S_"}]}},
        {"base": {"agent": {"image": "base:1", "envFrom": [
            {"configMapRef": {"name": "shared"}}, {"configMapRef": {"name": "tuning"}, "prefix": "T_"}]}}},
        expect={"agent.envFrom": [
            {"configMapRef": {"name": "shared"}},
            {"configMapRef": {"name": "tuning"}, "prefix": "S_"},
            {"secretRef": {"name": "shared"}}]},
        origins={"agent.envFrom[configMapRef:shared]": base_layer("base"),
                 "agent.envFrom[configMapRef:tuning]": SESSION,
                 "agent.envFrom[secretRef:shared]": SESSION},
    ),
    case(
        "volumes_merge_by_name",
        {"templateRef": {"name": "base"}, "podTemplate": {"volumes": [
            {"name": "cache", "emptyDir": {"sizeLimit": "5Gi"}}, {"name": "extra", "configMap": {"name": "x"}}]}},
        {"base": {"agent": {"image": "base:1"}, "podTemplate": {"volumes": [
            {"name": "cache", "emptyDir": {}}, {"name": "tools", "emptyDir": {}}]}}},
        expect={"podTemplate.volumes": [
            {"name": "cache", "emptyDir": {"sizeLimit": "5Gi"}}, {"name": "tools", "emptyDir": {}},
            {"name": "extra", "configMap": {"name": "x"}}]},
        origins={"podTemplate.volumes[cache]": SESSION, "podTemplate.volumes[tools]": base_layer("base")},
    ),
    case(
        "volume_mounts_merge_by_mount_path",
        {"templateRef": {"name": "base"}, "agent": {"volumeMounts": [
            {"name": "cache2", "mountPath": "/cache"}, {"name": "extra", "mountPath": "/extra"}]}},
        {"base": {"agent": {"image": "base:1", "volumeMounts": [
            {"name": "cache", "mountPath": "/cache"}, {"name": "tools", "mountPath": "/tools", "readOnly": True}]}}},
        expect={"agent.volumeMounts": [
            {"name": "cache2", "mountPath": "/cache"}, {"name": "tools", "mountPath": "/tools", "readOnly": True},
            {"name": "extra", "mountPath": "/extra"}]},
        origins={"agent.volumeMounts[/cache]": SESSION, "agent.volumeMounts[/tools]": base_layer("base")},
    ),
    case(
        "tolerations_merge_by_key_and_effect",
        {"templateRef": {"name": "base"}, "podTemplate": {"tolerations": [
            {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "gpu", "operator": "Exists", "effect": "NoExecute"}]}},
        {"base": {"agent": {"image": "base:1"}, "podTemplate": {"tolerations": [
            {"key": "gpu", "operator": "Equal", "value": "a100", "effect": "NoSchedule"},
            {"operator": "Exists"}]}}},
        expect={"podTemplate.tolerations": [
            {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"operator": "Exists"},
            {"key": "gpu", "operator": "Exists", "effect": "NoExecute"}]},
        origins={"podTemplate.tolerations[gpu:NoSchedule]": SESSION,
                 "podTemplate.tolerations[*:*]": base_layer("base"),
                 "podTemplate.tolerations[gpu:NoExecute]": SESSION},
    ),
    case(
        "args_command_and_image_pull_secrets_are_replaced_whole",
        {"templateRef": {"name": "base"}, "agent": {"args": ["--b"], "command": ["run"]},
         "podTemplate": {"imagePullSecrets": [{"name": "mine"}]}},
        {"base": {"agent": {"image": "base:1", "args": ["--a", "--x"], "command": ["agent", "serve"]},
                  "podTemplate": {"imagePullSecrets": [{"name": "platform"}]}}},
        expect={"agent.args": ["--b"], "agent.command": ["run"], "podTemplate.imagePullSecrets": [{"name": "mine"}]},
        origins={"agent.args": SESSION, "agent.command": SESSION, "podTemplate.imagePullSecrets": SESSION},
    ),
    case(
        "objects_merge_key_by_key_at_every_depth",
        {"templateRef": {"name": "base"}, "agent": {"resources": {"limits": {"memory": "8Gi"}}}},
        {"base": {"agent": {"image": "base:1", "resources": {"limits": {"cpu": "2", "memory": "4Gi"}, "requests": {"cpu": "1"}}}}},
        expect={"agent.resources": {"limits": {"cpu": "2", "memory": "8Gi"}, "requests": {"cpu": "1"}}},
        origins={"agent.resources.limits.cpu": base_layer("base"), "agent.resources.limits.memory": SESSION},
    ),
    case(
        "an_empty_object_or_empty_keyed_list_changes_nothing",
        {"templateRef": {"name": "base"}, "podTemplate": {}, "agent": {"env": []}},
        {"base": {"agent": {"image": "base:1", "env": [{"name": "A", "value": "1"}]}, "podTemplate": {"labels": {"a": "b"}}}},
        expect={"podTemplate.labels": {"a": "b"}, "agent.env": [{"name": "A", "value": "1"}]},
        origins={"podTemplate.labels.a": base_layer("base"), "agent.env[A]": base_layer("base")},
    ),
    case(
        "provider_tmux_needs_no_image",
        {"provider": "tmux", "tmux": {"shell": "/bin/bash"}},
        expect={"provider": "tmux", "tmux": {"socketName": "agent-sessions", "shell": "/bin/bash"}},
        origins={"provider": SESSION, "tmux.shell": SESSION, "tmux.socketName": BUILTIN_LAYER},
        absent=("agent.image",),
    ),
    case(
        "provider_http_with_a_url_from_the_template",
        {"templateRef": {"name": "cloud"}},
        {"cloud": {"provider": "http", "http": {"url": "https://agents.example.com",
                                                "credentialsSecretRef": {"name": "agents-token"}}}},
        expect={"provider": "http", "http.url": "https://agents.example.com", "http.timeoutSeconds": 30},
        origins={"http.url": base_layer("cloud"), "http.credentialsSecretRef.name": base_layer("cloud")},
    ),
    case(
        "session_only_keys_are_not_merged_into_the_config",
        {"templateRef": {"name": "base"}, "state": "Stopped", "title": "Fix the bug", "prompt": "hello",
         "meta": {"ticket": "T-1"}},
        {"base": {"agent": {"image": "base:1"}, "lockedFields": ["agent.image"]}},
        absent=("templateRef", "state", "title", "prompt", "meta", "lockedFields", "extends"),
    ),
    case(
        "template_only_keys_are_not_merged_into_the_config",
        {"templateRef": {"name": "leaf"}},
        {"root": {"agent": {"image": "r:1"}, "lockedFields": ["agent.image"]}, "leaf": {"extends": "root"}},
        absent=("extends", "lockedFields"),
        expect={"agent.image": "r:1"},
    ),
    case(
        "siblings_of_a_locked_field_may_be_set",
        {"templateRef": {"name": "base"}, "agent": {"args": ["--fast"], "env": [{"name": "A", "value": "1"}]}},
        {"base": {"agent": {"image": "base:1"}, "lockedFields": ["agent.image"]}},
        expect={"agent.image": "base:1", "agent.args": ["--fast"]},
    ),
    case(
        "the_locking_template_and_its_parents_may_set_the_locked_field",
        {"templateRef": {"name": "locker"}},
        {"root": {"agent": {"image": "root:1"}},
         "locker": {"extends": "root", "agent": {"image": "approved:1"}, "lockedFields": ["agent.image"]}},
        expect={"agent.image": "approved:1"},
        origins={"agent.image": base_layer("locker")},
    ),
]


@pytest.mark.parametrize("spec, templates, operator_defaults, expect, origins, absent", RESOLUTION_CASES)
def test_resolution(spec, templates, operator_defaults, expect, origins, absent):
    resolved = resolve(spec, templates, operator_defaults)
    for path, value in expect.items():
        assert at(resolved.config, path) == value, path
    for path, layer in origins.items():
        assert resolved.origins.get(path) == layer, path
    for path in absent:
        assert at(resolved.config, path) is MISSING, path


def test_origins_name_every_leaf_of_the_config_and_nothing_else():
    resolved = resolve({"templateRef": {"name": "leaf"}, "agent": {"env": [{"name": "A", "value": "1"}]}},
                       CHAIN_OF_THREE, {"podTemplate": {"tolerations": [{"operator": "Exists"}]}})
    assert set(resolved.origins) == {path for path, _ in leaves(resolved.config)}


def test_removed_names_the_layer_of_the_null():
    resolved = resolve({"templateRef": {"name": "base"}, "agent": {"workingDir": None}},
                       {"base": {"agent": {"image": "b:1", "workingDir": "/w"}}})
    assert resolved.removed == {"agent.workingDir": SESSION}


def test_template_chain_lists_names_and_generations_root_first_and_locks_accumulate():
    templates = {
        "root": a_template("root", {"agent": {"image": "r:1"}, "lockedFields": ["agent.image"]}, generation=7),
        "leaf": a_template("leaf", {"extends": "root", "lockedFields": ["podTemplate"]}, generation=None),
    }
    resolved = resolve_config(a_session({"templateRef": {"name": "leaf"}}), templates)
    assert resolved.template_chain == (("root", 7), ("leaf", None))
    assert resolved.locked_fields == frozenset({"agent.image", "podTemplate"})


def test_a_chain_exactly_as_deep_as_the_limit_resolves():
    specs = {f"t{i}": ({"extends": f"t{i + 1}"} if i + 1 < MAX_CHAIN_DEPTH else {"agent": {"image": "deep:1"}})
             for i in range(MAX_CHAIN_DEPTH)}
    resolved = resolve({"templateRef": {"name": "t0"}}, specs)
    assert len(resolved.template_chain) == MAX_CHAIN_DEPTH
    assert resolved.template_chain[0][0] == f"t{MAX_CHAIN_DEPTH - 1}"


# --- problems ---------------------------------------------------------------------------------

def deep_chain(length: int) -> dict[str, dict]:
    return {f"t{i}": {"extends": f"t{i + 1}"} if i + 1 < length else {"agent": {"image": "x:1"}} for i in range(length)}


def problem(id: str, spec: dict, templates: dict | None = None, operator_defaults: dict | None = None, *,
            expected: str, layer: str):
    return pytest.param(spec, templates, operator_defaults, expected, layer, id=id)


PROBLEM_CASES = [
    problem(
        "cycle_of_two_templates_shows_the_cycle",
        {"templateRef": {"name": "a"}},
        {"a": {"extends": "b"}, "b": {"extends": "a"}},
        expected='SessionTemplate "b" spec.extends: template chain has a cycle: a → b → a',
        layer=base_layer("b"),
    ),
    problem(
        "template_extending_itself_is_a_cycle",
        {"templateRef": {"name": "a"}},
        {"a": {"extends": "a"}},
        expected='SessionTemplate "a" spec.extends: template chain has a cycle: a → a',
        layer=base_layer("a"),
    ),
    problem(
        "cycle_further_up_the_chain_shows_only_the_loop",
        {"templateRef": {"name": "c"}},
        {"c": {"extends": "a"}, "a": {"extends": "b"}, "b": {"extends": "a"}},
        expected='SessionTemplate "b" spec.extends: template chain has a cycle: a → b → a',
        layer=base_layer("b"),
    ),
    problem(
        "template_referenced_by_the_session_is_missing",
        {"templateRef": {"name": "x"}},
        {"other": {}},
        expected='spec.templateRef.name: SessionTemplate "x" not found in namespace "team-a"',
        layer=SESSION,
    ),
    problem(
        "template_referenced_mid_chain_is_missing",
        {"templateRef": {"name": "a"}},
        {"a": {"extends": "b"}, "b": {"extends": "x"}},
        expected='SessionTemplate "b" spec.extends: SessionTemplate "x" not found',
        layer=base_layer("b"),
    ),
    problem(
        "chain_longer_than_the_depth_limit",
        {"templateRef": {"name": "t0"}},
        deep_chain(MAX_CHAIN_DEPTH + 1),
        expected=f"spec.templateRef.name: template chain is longer than {MAX_CHAIN_DEPTH} templates: t0 → ",
        layer=SESSION,
    ),
    problem(
        "locked_field_set_by_the_session",
        {"templateRef": {"name": "base"}, "agent": {"image": "evil:1"}},
        {"base": {"agent": {"image": "base:1"}, "lockedFields": ["agent.image"]}},
        expected='spec.agent.image: locked by SessionTemplate "base" (set by AgentSession "demo")',
        layer=SESSION,
    ),
    problem(
        "locked_field_set_by_a_child_template",
        {"templateRef": {"name": "child"}},
        {"base": {"agent": {"image": "base:1"}, "lockedFields": ["agent.image"]},
         "child": {"extends": "base", "agent": {"image": "other:1"}}},
        expected='spec.agent.image: locked by SessionTemplate "base" (set by SessionTemplate "child")',
        layer=base_layer("child"),
    ),
    problem(
        "lock_is_inherited_through_a_child_template_to_the_session",
        {"templateRef": {"name": "child"}, "lifecycle": {"idleTimeout": "9h"}},
        {"base": {"agent": {"image": "base:1"}, "lifecycle": {"idleTimeout": "30m"}, "lockedFields": ["lifecycle.idleTimeout"]},
         "child": {"extends": "base", "agent": {"args": ["--x"]}}},
        expected='spec.lifecycle.idleTimeout: locked by SessionTemplate "base" (set by AgentSession "demo")',
        layer=SESSION,
    ),
    problem(
        "setting_a_field_below_a_locked_object",
        {"templateRef": {"name": "base"}, "podTemplate": {"labels": {"a": "b"}}},
        {"base": {"agent": {"image": "base:1"}, "lockedFields": ["podTemplate"]}},
        expected='spec.podTemplate.labels: inside podTemplate, locked by SessionTemplate "base" (set by AgentSession "demo")',
        layer=SESSION,
    ),
    problem(
        "removing_a_locked_field_with_null",
        {"templateRef": {"name": "base"}, "lifecycle": {"idleTimeout": None}},
        {"base": {"agent": {"image": "base:1"}, "lifecycle": {"idleTimeout": "30m"}, "lockedFields": ["lifecycle.idleTimeout"]}},
        expected='spec.lifecycle.idleTimeout: locked by SessionTemplate "base" (removed by AgentSession "demo")',
        layer=SESSION,
    ),
    problem(
        "removing_an_object_that_contains_a_locked_field",
        {"templateRef": {"name": "base"}, "agent": None, "provider": "tmux"},
        {"base": {"agent": {"image": "base:1"}, "lockedFields": ["agent.image"]}},
        expected='spec.agent: contains agent.image, locked by SessionTemplate "base" (removed by AgentSession "demo")',
        layer=SESSION,
    ),
    problem(
        "locked_path_that_is_not_a_configuration_field",
        {"templateRef": {"name": "base"}},
        {"base": {"agent": {"image": "base:1"}, "lockedFields": ["agent.imag"]}},
        expected="SessionTemplate \"base\" spec.lockedFields: 'agent.imag' is not a configuration field, so it would lock nothing",
        layer=base_layer("base"),
    ),
    problem(
        "provider_pod_without_an_image",
        {"agent": {"args": ["--x"]}},
        expected="spec.agent.image: required for provider pod; no layer sets it",
        layer=SESSION,
    ),
    problem(
        "provider_pod_whose_image_a_null_removed",
        {"templateRef": {"name": "base"}, "agent": {"image": None}},
        {"base": {"agent": {"image": "base:1"}}},
        expected='spec.agent.image: required for provider pod; removed by AgentSession "demo"',
        layer=SESSION,
    ),
    problem(
        "provider_http_without_a_url",
        {"provider": "http", "http": {"timeoutSeconds": 10}},
        expected="spec.http.url: required for provider http; no layer sets it",
        layer=SESSION,
    ),
    problem(
        "duration_that_does_not_parse",
        {"templateRef": {"name": "base"}},
        {"base": {"agent": {"image": "base:1"}, "lifecycle": {"idleTimeout": "10 minutes"}}},
        expected="spec.lifecycle.idleTimeout: invalid duration '10 minutes'",
        layer=base_layer("base"),
    ),
    problem(
        "negative_duration_from_operator_defaults",
        {"agent": {"image": IMAGE}},
        None,
        {"lifecycle": {"maxDuration": "-5m"}},
        expected="spec.lifecycle.maxDuration: invalid duration '-5m': must not be negative (set by operator defaults)",
        layer=OPERATOR_LAYER,
    ),
    problem(
        "schema_error_is_reported_at_its_wire_path_and_blamed_on_its_layer",
        {"templateRef": {"name": "base"}},
        {"base": {"agent": {"image": "base:1"}, "lifecycle": {"backoffLimit": 101}}},
        expected='spec.lifecycle.backoffLimit: Input should be less than or equal to 100 (set by SessionTemplate "base")',
        layer=base_layer("base"),
    ),
    problem(
        "schema_error_inside_a_keyed_list_item_names_the_item_by_key",
        {"agent": {"image": IMAGE, "env": [{"name": "PORT", "value": 8080}]}},
        expected='spec.agent.env[PORT].value: Input should be a valid string (set by AgentSession "demo")',
        layer=SESSION,
    ),
    problem(
        "schema_error_for_a_string_where_a_number_belongs",
        {"agent": {"image": IMAGE}, "http": {"maxRetries": "5"}},
        expected='spec.http.maxRetries: Input should be a valid integer (set by AgentSession "demo")',
        layer=SESSION,
    ),
    problem(
        "unknown_field_in_operator_defaults",
        {"agent": {"image": IMAGE}},
        None,
        {"agent": {"imagePullPolicy": "Always"}},
        expected="spec.agent.imagePullPolicy: Extra inputs are not permitted (set by operator defaults)",
        layer=OPERATOR_LAYER,
    ),
    problem(
        "snake_case_field_in_operator_defaults_is_not_accepted",
        {"agent": {"image": IMAGE}},
        None,
        {"lifecycle": {"idle_timeout": "1h"}},
        expected="spec.lifecycle.idle_timeout: Extra inputs are not permitted (set by operator defaults)",
        layer=OPERATOR_LAYER,
    ),
    problem(
        "unknown_block_in_operator_defaults",
        {"agent": {"image": IMAGE}},
        None,
        {"lockedFields": ["agent.image"]},
        expected="operator defaults lockedFields: not a configuration block",
        layer=OPERATOR_LAYER,
    ),
    problem(
        "enum_value_outside_the_allowed_set",
        {"agent": {"image": IMAGE}, "lifecycle": {"restartPolicy": "Always"}},
        expected="spec.lifecycle.restartPolicy: Input should be 'Never' or 'OnFailure'",
        layer=SESSION,
    ),
]


@pytest.mark.parametrize("spec, templates, operator_defaults, expected, layer", PROBLEM_CASES)
def test_problem(spec, templates, operator_defaults, expected, layer):
    problems = problems_of(spec, templates, operator_defaults)
    matching = [found for found in problems if str(found).startswith(expected)]
    assert matching, f"no problem starts with {expected!r}; got {[str(found) for found in problems]}"
    assert matching[0].layer == layer


def test_every_problem_is_reported_at_once_and_the_exception_joins_them():
    with pytest.raises(ConfigInvalid) as raised:
        resolve(
            {"templateRef": {"name": "base"}, "agent": {"image": None}, "lifecycle": {"backoffLimit": -1}},
            {"base": {"agent": {"image": "base:1"}, "lockedFields": ["agent.image"]}},
        )
    fields = [found.field for found in raised.value.problems]
    assert fields == ["spec.agent.image", "spec.agent.image", "spec.lifecycle.backoffLimit"]
    assert str(raised.value) == "; ".join(str(found) for found in raised.value.problems)


def test_a_bad_duration_is_reported_once_not_again_by_the_schema():
    problems = problems_of({"agent": {"image": IMAGE}, "lifecycle": {"idleTimeout": "soon"}})
    assert [found.field for found in problems] == ["spec.lifecycle.idleTimeout"]


def test_problem_names_field_and_layer():
    found = Problem(field="spec.agent.image", layer=SESSION, message=f"locked by {base_layer('base')} (set by {SESSION})")
    assert str(found) == 'spec.agent.image: locked by SessionTemplate "base" (set by AgentSession "demo")'


# --- hash ---------------------------------------------------------------------------------------

def test_hash_is_stable_under_key_reordering():
    spec = {"templateRef": {"name": "base"}, "agent": {"args": ["--x"], "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}}
    base = {"agent": {"image": "base:1", "workingDir": "/w"}, "lifecycle": {"idleTimeout": "1h", "backoffLimit": 2}}
    reordered_spec = {"agent": {"resources": {"limits": {"memory": "1Gi", "cpu": "1"}}, "args": ["--x"]}, "templateRef": {"name": "base"}}
    reordered_base = {"lifecycle": {"backoffLimit": 2, "idleTimeout": "1h"}, "agent": {"workingDir": "/w", "image": "base:1"}}
    first = resolve(spec, {"base": base})
    second = resolve(reordered_spec, {"base": reordered_base})
    assert first.hash == second.hash
    assert re.fullmatch(r"[0-9a-f]{16}", first.hash)
    assert first.hash == config_hash(first.config)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"agent": {"image": "base:2"}}, id="a_scalar"),
        pytest.param({"agent": {"image": "base:1", "args": ["--y"]}}, id="a_list"),
        pytest.param({"agent": {"image": "base:1", "env": [{"name": "A", "value": "1"}]}}, id="an_env_var"),
    ],
)
def test_hash_differs_when_the_config_differs(change):
    assert resolve({"agent": {"image": "base:1"}}).hash != resolve(change).hash


def test_hash_ignores_keys_that_are_not_configuration():
    plain = resolve({"agent": {"image": IMAGE}})
    titled = resolve({"agent": {"image": IMAGE}, "title": "t", "state": "Stopped", "prompt": "p", "meta": {"a": 1}})
    assert plain.hash == titled.hash


# --- explain ------------------------------------------------------------------------------------

def test_explain_shows_every_path_with_its_value_and_layer():
    resolved = resolve(
        {"templateRef": {"name": "base"}, "agent": {"env": [
            {"name": "API_URL", "value": "https://api.example.com"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "agent-token", "key": "token"}}}]},
         "lifecycle": {"idleTimeout": None}},
        {"base": {"agent": {"image": "base:1"}, "lifecycle": {"idleTimeout": "1h"}, "lockedFields": ["agent.image"]}},
    )
    text = explain(resolved)
    lines = text.splitlines()

    def row(path: str) -> str:
        return next(line for line in lines if line.split()[:1] == [path])

    assert row("agent.image").endswith('SessionTemplate "base"  "base:1"')
    assert row("agent.env[API_URL]").endswith('AgentSession "demo"     "https://api.example.com"')
    assert '{"valueFrom": {"secretKeyRef": {"name": "agent-token", "key": "token"}}}' in row("agent.env[TOKEN]")
    assert "built-in defaults" in row("lifecycle.backoffLimit") and row("lifecycle.backoffLimit").endswith(" 3")
    assert row("lifecycle.idleTimeout").endswith('AgentSession "demo"     (removed)')
    assert "Template chain: base (generation 1)" in text
    assert f"Hash:           {resolved.hash}" in text
    assert "Locked fields:  agent.image" in text
    assert {line.split()[0] for line in lines[4:] if line} >= set(resolved.origins)


# --- purity -------------------------------------------------------------------------------------

def test_inputs_are_never_mutated_and_results_share_nothing_with_them():
    session = a_session({"templateRef": {"name": "leaf"}, "agent": {"env": [{"name": "A", "value": "1"}], "args": ["--s"]},
                         "podTemplate": {"labels": None}})
    templates = templates_of(CHAIN_OF_THREE)
    operator_defaults = {"podTemplate": {"tolerations": [{"key": "k", "operator": "Exists"}]}, "agent": {"image": "op:1"}}
    before = copy.deepcopy((session, templates, operator_defaults, BUILTIN_DEFAULTS))

    resolved = resolve_config(session, templates, operator_defaults)
    assert (session, templates, operator_defaults, BUILTIN_DEFAULTS) == before

    resolved.config["agent"]["env"][0]["value"] = "changed"
    resolved.config["agent"]["args"].append("--more")
    resolved.config["lifecycle"]["backoffLimit"] = 99
    resolved.config["podTemplate"]["tolerations"][0]["key"] = "changed"
    resolved.config["workspace"]["accessModes"].append("ReadWriteMany")
    assert (session, templates, operator_defaults, BUILTIN_DEFAULTS) == before


def test_resolving_twice_gives_equal_results():
    session = a_session({"templateRef": {"name": "leaf"}})
    assert resolve_config(session, templates_of(CHAIN_OF_THREE)) == resolve_config(session, templates_of(CHAIN_OF_THREE))


@pytest.mark.parametrize(
    "spec, expected",
    [
        pytest.param({"agent": {"image": IMAGE, "env": [{"name": "A", "value": "1"}, {"value": "2"}]}},
                     'spec.agent.env[1].name: Field required (set by AgentSession "demo")', id="keyed_item_without_key_by_position"),
        pytest.param({"agent": {"image": IMAGE}, "workspace": {"size": 1.5}},
                     "spec.workspace.size: Input should be a valid integer; Input should be a valid string",
                     id="int_or_string_reports_once_per_path"),
        pytest.param({"agent": "ghcr.io/acme/agent:1"}, "spec.agent: Input should be a valid dictionary",
                     id="block_of_the_wrong_type_reported_once"),
    ],
)
def test_schema_problem_paths(spec, expected):
    problems = problems_of(spec)
    assert len(problems) == 1
    assert str(problems[0]).startswith(expected)
