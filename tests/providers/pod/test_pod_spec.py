"""The desired Pod and PVC of a session (pure builders), and the pod provider's config checks."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from agent_sessions.api import constants as c
from agent_sessions.config import config_hash
from agent_sessions.providers import InvalidConfiguration, SessionRef
from agent_sessions.providers.pod import build_pod, build_pvc, pod_name, pod_problems, pvc_name

UID = "0b6c3a1e-8f5d-4c1b-9a77-3f2f1e0d9c8b"
BASE = {
    "provider": "pod",
    "agent": {"image": "ghcr.io/acme/agent:1.4", "command": ["claude-code-acp"], "args": ["--verbose"],
              "protocol": "acp"},
    "workspace": {"accessModes": ["ReadWriteOnce"]},
    "lifecycle": {"restartPolicy": "OnFailure", "backoffLimit": 3},
}


def config(**blocks) -> dict:
    """BASE with some blocks' fields replaced (shallow, per block)."""
    result = copy.deepcopy(BASE)
    for name, fields in blocks.items():
        result[name] = {**result.get(name, {}), **fields} if isinstance(fields, dict) else fields
    return result


def session(cfg: dict | None = None, **changes) -> SessionRef:
    fields = {"namespace": "team-a", "name": "demo", "uid": UID, "config": cfg if cfg is not None else BASE}
    return SessionRef(**{**fields, **changes})


def pod(cfg: dict | None = None, **kwargs) -> dict:
    cfg = cfg if cfg is not None else BASE
    return build_pod(session(cfg), cfg, **kwargs)


def container(p: dict) -> dict:
    (only,) = p["spec"]["containers"]
    return only


# --- the pod ------------------------------------------------------------------------------


def test_pod_is_a_valid_kubernetes_pod():
    full = config(
        workspace={"size": "10Gi"},
        agent={"env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}],
               "envFrom": [{"secretRef": {"name": "more"}}],
               "resources": {"limits": {"memory": "2Gi"}}},
        podTemplate={"tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
                     "nodeSelector": {"pool": "agents"}},
    )
    kubernetes_validate.validate(pod(full), "1.30", strict=True)
    kubernetes_validate.validate(build_pvc(session(full), full), "1.30", strict=True)


def test_pod_is_named_for_the_session_and_owned_by_it():
    p = pod()
    assert p["metadata"]["name"] == pod_name("team-a", "demo", UID)
    assert p["metadata"]["namespace"] == "team-a"
    assert p["metadata"]["ownerReferences"] == [{
        "apiVersion": "agentsession.dev/v1alpha1", "kind": "AgentSession", "name": "demo", "uid": UID,
        "controller": True, "blockOwnerDeletion": True,
    }]


def test_operator_labels_win_over_template_labels():
    cfg = config(podTemplate={"labels": {"team": "a", c.LABEL_SESSION: "hijack", c.LABEL_MANAGED_BY: "helm"}})
    assert pod(cfg)["metadata"]["labels"] == {
        "team": "a",
        "agentsession.dev/session": "demo",
        "agentsession.dev/session-uid": UID,
        "app.kubernetes.io/managed-by": "agent-session-operator",
    }


def test_annotations_carry_the_template_ones_and_the_config_hash():
    cfg = config(podTemplate={"annotations": {"example.com/cost-center": "42"}})
    annotations = pod(cfg)["metadata"]["annotations"]
    assert annotations == {"example.com/cost-center": "42", "agentsession.dev/config-hash": config_hash(cfg)}
    assert build_pod(session(cfg, config_hash="given"), cfg)["metadata"]["annotations"][
        "agentsession.dev/config-hash"] == "given"


@pytest.mark.parametrize(
    ("agent", "command"),
    [
        pytest.param({}, ["agent-sessions", "runtime", "--port", "8080", "--workspace", "/workspace",
                          "--protocol", "acp", "--", "claude-code-acp", "--verbose"], id="acp"),
        pytest.param({"protocol": "stdio-lines", "command": ["python", "-m", "bot"], "args": []},
                     ["agent-sessions", "runtime", "--port", "8080", "--workspace", "/workspace",
                      "--protocol", "stdio-lines", "--", "python", "-m", "bot"], id="stdio-lines-no-args"),
    ],
)
def test_the_runtime_bridge_is_the_entrypoint_and_wraps_the_agent_command(agent, command):
    cont = container(pod(config(agent=agent)))
    assert cont["name"] == "agent"
    assert cont["command"] == command
    assert "args" not in cont


def test_runtime_port_is_named_and_probed_for_readiness():
    cont = container(pod(runtime_port=9090))
    assert cont["ports"] == [{"name": "runtime", "containerPort": 9090, "protocol": "TCP"}]
    assert cont["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "runtime"}
    assert cont["command"][2:4] == ["--port", "9090"]


def test_env_is_passed_as_given_and_secrets_are_never_resolved():
    env = [
        {"name": "MODEL", "value": "opus"},
        {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "key"}}},
    ]
    cont = container(pod(config(agent={"env": env})))
    assert cont["env"] == [
        *env,
        {"name": "AGENT_SESSION_NAME", "value": "demo"},
        {"name": "AGENT_SESSION_NAMESPACE", "value": "team-a"},
        {"name": "AGENT_SESSION_UID", "value": UID},
    ]


def test_agent_fields_are_copied_to_the_container():
    cfg = config(agent={"envFrom": [{"configMapRef": {"name": "settings"}}],
                        "resources": {"requests": {"cpu": "500m"}}, "workingDir": "/workspace/repo"})
    cont = container(pod(cfg))
    assert cont["envFrom"] == [{"configMapRef": {"name": "settings"}}]
    assert cont["resources"] == {"requests": {"cpu": "500m"}}
    assert cont["workingDir"] == "/workspace/repo"


@pytest.mark.parametrize(
    ("workspace", "volume"),
    [
        pytest.param({"size": "5Gi"}, {"name": "ags-workspace",
                                       "persistentVolumeClaim": {"claimName": pvc_name("team-a", "demo", UID)}},
                     id="sized-workspace-is-the-pvc"),
        pytest.param({}, {"name": "ags-workspace", "emptyDir": {}}, id="no-size-is-an-emptydir"),
    ],
)
def test_the_workspace_is_always_mounted_at_slash_workspace(workspace, volume):
    p = pod(config(workspace=workspace))
    assert volume in p["spec"]["volumes"]
    assert {"name": "ags-workspace", "mountPath": "/workspace"} in container(p)["volumeMounts"]
    assert container(p)["workingDir"] == "/workspace"


def test_template_volumes_and_mounts_come_first():
    cfg = config(podTemplate={"volumes": [{"name": "cache", "emptyDir": {}}]},
                 agent={"volumeMounts": [{"name": "cache", "mountPath": "/cache"}]})
    p = pod(cfg)
    assert [v["name"] for v in p["spec"]["volumes"]] == ["cache", "ags-workspace"]
    assert [m["mountPath"] for m in container(p)["volumeMounts"]] == ["/cache", "/workspace"]


def test_hardened_defaults():
    p = pod()
    assert p["spec"]["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container(p)["securityContext"] == {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": False,
    }
    assert p["spec"]["automountServiceAccountToken"] is False
    assert p["spec"]["enableServiceLinks"] is False
    assert "serviceAccountName" not in p["spec"]


@pytest.mark.parametrize(
    ("pod_template", "pod_expected", "container_expected"),
    [
        pytest.param({"securityContext": {"runAsNonRoot": False, "runAsUser": 0}},
                     {"runAsNonRoot": False, "runAsUser": 0}, {}, id="explicit-root-is-honoured"),
        pytest.param({"securityContext": {"runAsUser": 1000}},
                     {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 65532}, {},
                     id="one-field-keeps-the-other-defaults"),
        pytest.param({"securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "agent.json"}}},
                     {"seccompProfile": {"type": "Localhost", "localhostProfile": "agent.json"}}, {},
                     id="seccomp-profile-replaced"),
        pytest.param({"containerSecurityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}}},
                     {}, {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
                     id="adding-a-capability-keeps-drop-all"),
        pytest.param({"containerSecurityContext": {"capabilities": {"drop": []}, "allowPrivilegeEscalation": True}},
                     {}, {"capabilities": {"drop": []}, "allowPrivilegeEscalation": True},
                     id="explicit-relaxation-of-the-container"),
    ],
)
def test_template_security_context_overrides_defaults_field_by_field(pod_template, pod_expected, container_expected):
    p = pod(config(podTemplate=pod_template))
    assert p["spec"]["securityContext"].items() >= pod_expected.items()
    assert container(p)["securityContext"].items() >= container_expected.items()


def test_read_only_root_filesystem_gets_a_writable_tmp():
    p = pod(config(podTemplate={"containerSecurityContext": {"readOnlyRootFilesystem": True}}))
    assert {"name": "ags-tmp", "mountPath": "/tmp"} in container(p)["volumeMounts"]
    assert {"name": "ags-tmp", "emptyDir": {}} in p["spec"]["volumes"]


def test_read_only_root_filesystem_keeps_a_template_mount_at_tmp():
    cfg = config(podTemplate={"containerSecurityContext": {"readOnlyRootFilesystem": True},
                              "volumes": [{"name": "scratch", "emptyDir": {"medium": "Memory"}}]},
                 agent={"volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}]})
    assert "ags-tmp" not in [v["name"] for v in pod(cfg)["spec"]["volumes"]]


@pytest.mark.parametrize(
    ("automount", "expected"),
    [pytest.param(True, True, id="asked-for"), pytest.param(False, False, id="refused"),
     pytest.param(None, False, id="unset")],
)
def test_service_account_token_only_when_asked(automount, expected):
    pod_template = {"serviceAccountName": "agent"} | ({} if automount is None else
                                                      {"automountServiceAccountToken": automount})
    p = pod(config(podTemplate=pod_template))
    assert p["spec"]["automountServiceAccountToken"] is expected
    assert p["spec"]["serviceAccountName"] == "agent"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [pytest.param("Never", "Never", id="never"), pytest.param("OnFailure", "OnFailure", id="on-failure")],
)
def test_restart_policy_follows_the_lifecycle(policy, expected):
    assert pod(config(lifecycle={"restartPolicy": policy}))["spec"]["restartPolicy"] == expected


def test_pod_template_scheduling_fields_are_copied():
    fields = {
        "nodeSelector": {"pool": "agents"},
        "tolerations": [{"key": "agents", "operator": "Exists"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}]}}},
        "runtimeClassName": "gvisor",
        "priorityClassName": "agents-low",
        "imagePullSecrets": [{"name": "registry"}],
    }
    assert pod(config(podTemplate=fields))["spec"].items() >= fields.items()


def test_operator_image_stands_in_for_a_missing_agent_image():
    cfg = config(agent={"image": None})
    assert container(build_pod(session(cfg), cfg, operator_image="ghcr.io/acme/operator:1"))["image"] == (
        "ghcr.io/acme/operator:1")


def test_build_pod_refuses_an_invalid_configuration():
    cfg = config(agent={"command": []})
    with pytest.raises(InvalidConfiguration, match="spec.agent.command"):
        pod(cfg)


def test_building_does_not_mutate_the_config():
    cfg = config(workspace={"size": "1Gi"},
                 podTemplate={"labels": {"a": "b"}, "volumes": [{"name": "v", "emptyDir": {}}]})
    before = copy.deepcopy(cfg)
    pod(cfg)["spec"]["volumes"][0]["name"] = "changed"
    build_pvc(session(cfg), cfg)
    assert cfg == before


# --- the workspace claim ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("workspace", "spec"),
    [
        pytest.param({"size": "10Gi"},
                     {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}},
                     id="defaults"),
        pytest.param({"size": "1Gi", "storageClassName": "fast", "accessModes": ["ReadWriteMany"]},
                     {"accessModes": ["ReadWriteMany"], "storageClassName": "fast",
                      "resources": {"requests": {"storage": "1Gi"}}}, id="class-and-modes"),
        pytest.param({"size": 1073741824, "accessModes": None},
                     {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1073741824"}}},
                     id="integer-size"),
    ],
)
def test_pvc_for_a_sized_workspace(workspace, spec):
    cfg = config(workspace=workspace)
    pvc = build_pvc(session(cfg), cfg)
    assert pvc is not None
    assert pvc["spec"] == spec
    assert pvc["metadata"]["name"] == pvc_name("team-a", "demo", UID)
    assert pvc["metadata"]["ownerReferences"][0]["uid"] == UID
    assert pvc["metadata"]["labels"][c.LABEL_SESSION_UID] == UID


def test_no_pvc_without_a_workspace_size():
    assert build_pvc(session(), BASE) is None


# --- the pod provider's own configuration checks ------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        pytest.param(BASE, [], id="valid"),
        pytest.param(config(agent={"image": None}), ["spec.agent.image: required by the pod provider"], id="no-image"),
        pytest.param(config(agent={"command": None}), ["spec.agent.command: required by the pod provider"],
                     id="no-command"),
        pytest.param(config(agent={"command": []}), ["spec.agent.command"], id="empty-command"),
        pytest.param(config(workspace={"size": "0Gi"}), ["spec.workspace.size: '0Gi' is not a positive size"],
                     id="zero-size"),
        pytest.param(config(workspace={"size": "1Gi", "accessModes": ["ReadWriteOncePod", "ReadWriteOnce"]}),
                     ["spec.workspace.accessModes: ReadWriteOncePod cannot be combined"], id="rwop-combined"),
        pytest.param(config(workspace={"size": "1Gi", "accessModes": ["ReadOnlyMany"]}),
                     ["spec.workspace.accessModes: the agent writes to its workspace"], id="read-only-workspace"),
        pytest.param(config(workspace={"accessModes": ["ReadOnlyMany"]}), [], id="modes-without-size-unused"),
        pytest.param(config(agent={"env": [{"name": "AGENT_SESSION_UID", "value": "x"}]}),
                     ["spec.agent.env[AGENT_SESSION_UID]: reserved"], id="reserved-env"),
        pytest.param(config(podTemplate={"volumes": [{"name": "ags-workspace", "emptyDir": {}}]}),
                     ["spec.podTemplate.volumes[ags-workspace]: the name is reserved"], id="reserved-volume"),
        pytest.param(config(agent={"volumeMounts": [{"name": "x", "mountPath": "/workspace/"}]}),
                     ["spec.agent.volumeMounts[/workspace/]"], id="mount-over-workspace"),
        pytest.param(config(podTemplate={"securityContext": {"runAsUser": 0}}),
                     ["spec.podTemplate.securityContext: runAsUser 0 (root) conflicts with runAsNonRoot"],
                     id="root-without-relaxing-non-root"),
        pytest.param(config(podTemplate={"containerSecurityContext": {"runAsUser": 0}}),
                     ["spec.podTemplate.securityContext: runAsUser 0"], id="root-container-without-relaxing"),
        pytest.param(config(podTemplate={"securityContext": {"runAsUser": 0, "runAsNonRoot": False}}), [],
                     id="root-explicitly-relaxed"),
    ],
)
def test_pod_problems(cfg, expected):
    problems = pod_problems(cfg)
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start), problem


def test_an_operator_image_satisfies_the_image_requirement():
    assert pod_problems(config(agent={"image": None}), operator_image="ghcr.io/acme/operator:1") == []


# --- default resources (operator configuration) ----------------------------------------------

DEFAULT_RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "4Gi"}}


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        pytest.param(None, DEFAULT_RESOURCES, id="none-given-all-defaults"),
        pytest.param({"limits": {"memory": "8Gi"}},
                     {"requests": {"cpu": "250m"}, "limits": {"cpu": "2", "memory": "8Gi"}},
                     id="a-named-resource-keeps-exactly-what-it-says"),
        pytest.param({"requests": {"memory": "6Gi"}},
                     {"requests": {"cpu": "250m", "memory": "6Gi"}, "limits": {"cpu": "2"}},
                     id="no-default-limit-under-a-higher-request"),
        pytest.param({"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}},
                     {"requests": {"cpu": "250m", "memory": "512Mi", "nvidia.com/gpu": "1"},
                      "limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}},
                     id="other-resources-added"),
    ],
)
def test_default_resources_fill_what_the_agent_does_not_name(resources, expected):
    cfg = config(agent={"resources": resources} if resources is not None else {})
    p = pod(cfg, default_resources=DEFAULT_RESOURCES)
    assert container(p)["resources"] == expected
    kubernetes_validate.validate(p, "1.30", strict=True)


def test_without_default_resources_the_agents_are_copied_as_written():
    assert "resources" not in container(pod())
    assert container(pod(config(agent={"resources": {"requests": {"cpu": "1"}}})))["resources"] == {
        "requests": {"cpu": "1"}}
