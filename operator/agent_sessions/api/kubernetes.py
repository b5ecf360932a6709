"""Kubernetes core types, modelled after `k8s.io/api/core/v1`, for the fields users copy from Pods.

Users paste `env`, `resources`, `tolerations` and `affinity` blocks from their Deployments;
they must validate exactly as they would there, and `kubectl explain` must show their fields.
Only the sources of a volume are left open (`x-kubernetes-preserve-unknown-fields`): there are
thirty of them, and the API server validates them again when the Pod is created.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import (
    LIST_ATOMIC,
    LIST_SET,
    APIModel,
    PRESERVE_UNKNOWN,
    LabelValue,
    Quantity,
    ResourceName,
    ShortText,
    StringMap,
    cel,
    list_map,
    validations,
)

ENV_NAME_PATTERN = r"^[ -<>-~]+$"
"""Kubernetes' environment variable names (1.32+): printable ASCII other than `=`; so no NUL,
newline or other control character, which would cut or forge an `env` entry."""
EnvVarName = Annotated[str, Field(min_length=1, max_length=256, pattern=ENV_NAME_PATTERN)]


class ObjectFieldSelector(APIModel):
    """Selects a field of the Pod (downward API)."""

    apiVersion: Annotated[str, Field(max_length=64)] | None = None
    """Version of the schema the fieldPath is written in terms of, defaults to "v1"."""
    fieldPath: Annotated[str, Field(min_length=1, max_length=256)]
    """Path of the field to select, e.g. `metadata.name` or `status.podIP`."""


class ResourceFieldSelector(APIModel):
    """Selects a resource of the container: only limits and requests are supported."""

    containerName: ResourceName | None = None
    """Container name: required for volumes, optional for env vars."""
    resource: Annotated[str, Field(min_length=1, max_length=64)]
    """Resource to select, e.g. `limits.memory`."""
    divisor: Quantity | None = None
    """Output format of the exposed resources, defaults to "1"."""


class ConfigMapKeySelector(APIModel):
    """Selects a key of a ConfigMap in the session's namespace."""

    name: ResourceName
    """Name of the ConfigMap."""
    key: Annotated[str, Field(min_length=1, max_length=253)]
    """The key to select."""
    optional: bool | None = None
    """Whether the ConfigMap or its key may be missing."""


class SecretKeySelector(APIModel):
    """Selects a key of a Secret in the session's namespace."""

    name: ResourceName
    """Name of the Secret."""
    key: Annotated[str, Field(min_length=1, max_length=253)]
    """The key of the secret to select."""
    optional: bool | None = None
    """Whether the Secret or its key may be missing."""


class EnvVarSource(APIModel):
    """Source of an environment variable's value; exactly one source is set."""

    model_config = validations(
        cel(
            "(has(self.fieldRef) ? 1 : 0) + (has(self.resourceFieldRef) ? 1 : 0)"
            " + (has(self.configMapKeyRef) ? 1 : 0) + (has(self.secretKeyRef) ? 1 : 0) == 1",
            "exactly one of fieldRef, resourceFieldRef, configMapKeyRef or secretKeyRef must be set",
        )
    )

    fieldRef: ObjectFieldSelector | None = None
    """Selects a field of the pod (downward API)."""
    resourceFieldRef: ResourceFieldSelector | None = None
    """Selects a resource limit or request of the container."""
    configMapKeyRef: ConfigMapKeySelector | None = None
    """Selects a key of a ConfigMap."""
    secretKeyRef: SecretKeySelector | None = None
    """Selects a key of a Secret. The value never appears in status, events or logs."""


class EnvVar(APIModel):
    """An environment variable of the agent container, as in a Pod."""

    model_config = validations(
        cel("!has(self.value) || !has(self.valueFrom)", "value and valueFrom are mutually exclusive")
    )

    name: EnvVarName
    """Name of the variable."""
    value: Annotated[str, Field(max_length=32768)] | None = None
    """Literal value. `$(VAR)` references are expanded by the kubelet as in a Pod."""
    valueFrom: EnvVarSource | None = None
    """Source of the value; cannot be used together with `value`."""


class ConfigMapEnvSource(APIModel):
    """Exposes every key of a ConfigMap as an environment variable."""

    name: ResourceName
    """Name of the ConfigMap."""
    optional: bool | None = None
    """Whether the ConfigMap may be missing."""


class SecretEnvSource(APIModel):
    """Exposes every key of a Secret as an environment variable."""

    name: ResourceName
    """Name of the Secret."""
    optional: bool | None = None
    """Whether the Secret may be missing."""


class EnvFromSource(APIModel):
    """A set of environment variables taken from one ConfigMap or Secret."""

    model_config = validations(
        cel(
            "(has(self.configMapRef) ? 1 : 0) + (has(self.secretRef) ? 1 : 0) == 1",
            "exactly one of configMapRef or secretRef must be set",
        )
    )

    prefix: Annotated[str, Field(max_length=128, pattern=r"^[ -<>-~]*$")] | None = None
    """Prefix prepended to every key."""
    configMapRef: ConfigMapEnvSource | None = None
    """The ConfigMap to take variables from."""
    secretRef: SecretEnvSource | None = None
    """The Secret to take variables from."""


class ResourceClaim(APIModel):
    """A dynamic resource claim used by the container."""

    name: ResourceName
    """Name of an entry of the pod's resourceClaims."""
    request: ResourceName | None = None
    """Name of the request inside the claim."""


class ResourceRequirements(APIModel):
    """Compute resources of the agent container, as in a Pod."""

    model_config = validations(
        cel(
            "!has(self.requests) || !has(self.limits) || self.requests.all(k, !(k in self.limits)"
            " || !isQuantity(string(self.requests[k])) || !isQuantity(string(self.limits[k]))"
            " || quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k]))) <= 0)",
            "a request must be less than or equal to the limit of the same resource",
            field_path=".requests",
        )
    )

    limits: Annotated[dict[Annotated[str, Field(max_length=253)], Quantity], Field(max_length=32)] | None = None
    """Maximum amount of each resource, e.g. `cpu: "2"`, `memory: 4Gi`."""
    requests: Annotated[dict[Annotated[str, Field(max_length=253)], Quantity], Field(max_length=32)] | None = None
    """Minimum amount of each resource the scheduler reserves."""
    claims: Annotated[list[ResourceClaim], Field(max_length=16, json_schema_extra=list_map("name"))] | None = None
    """Dynamic resource claims used by the container."""


class VolumeMount(APIModel):
    """Mounts a pod volume into the agent container."""

    name: ResourceName
    """Name of a volume of the pod (see `podTemplate.volumes`)."""
    mountPath: Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^/")]
    """Absolute path inside the container."""
    readOnly: bool | None = None
    """Mount read-only."""
    subPath: LocalPath | None = None
    """Path inside the volume to mount instead of its root (relative, without `..`)."""
    subPathExpr: LocalPath | None = None
    """Like subPath, with `$(VAR)` expansion (relative, without `..`)."""
    mountPropagation: Literal["None", "HostToContainer", "Bidirectional"] | None = None
    """How mounts propagate between host and container."""


LocalPath = Annotated[str, Field(max_length=4096, json_schema_extra={"x-kubernetes-validations": [
    cel("!self.startsWith('/')", "must be a relative path"),
    cel("!self.matches('(^|/)[.][.](/|$)')", "must not contain '..'"),
]})]
"""A path that stays inside its volume, as Kubernetes checks `subPath`: relative, no `..` element."""


# The volume sources of `k8s.io/api/core/v1.VolumeSource`. Each is declared (as an open object)
# because a CEL rule can only name declared fields: the API server rejects `has(self.x)` for an
# undeclared `x`, and `size(self)` on an object, so "has a source" is spelled out over this list.
VOLUME_SOURCES: tuple[str, ...] = (
    "emptyDir", "persistentVolumeClaim", "configMap", "secret",
    "projected", "downwardAPI", "ephemeral", "csi",
    "image", "hostPath", "nfs", "iscsi",
    "fc", "rbd", "cephfs", "glusterfs",
    "gitRepo", "flexVolume", "awsElasticBlockStore", "gcePersistentDisk",
    "azureDisk", "azureFile", "cinder", "vsphereVolume",
    "portworxVolume", "flocker", "quobyte", "photonPersistentDisk",
    "scaleIO", "storageos",
)

VolumeSource = Annotated[dict, Field(json_schema_extra=PRESERVE_UNKNOWN)]
"""One volume source, passed to the Pod as written and validated there."""


class Volume(APIModel):
    """A pod volume: a name and one volume source (e.g. `configMap`, `secret`, `emptyDir`,
    `persistentVolumeClaim`). Only `name` is checked here; the source is passed to the Pod as
    written and validated there."""

    model_config = validations(
        cel(" || ".join(f"has(self.{source})" for source in VOLUME_SOURCES),
            "a volume needs a source besides its name, e.g. emptyDir: {}"),
    ) | {"extra": "allow"}

    name: ResourceName
    """Name of the volume, referenced by `agent.volumeMounts[].name`."""
    emptyDir: VolumeSource | None = None
    """A directory that lives as long as the pod, e.g. `{}` or `{medium: Memory}`."""
    persistentVolumeClaim: VolumeSource | None = None
    """A PersistentVolumeClaim in the session's namespace (`claimName`)."""
    configMap: VolumeSource | None = None
    """The keys of a ConfigMap as files."""
    secret: VolumeSource | None = None
    """The keys of a Secret as files."""
    projected: VolumeSource | None = None
    """Several configMap/secret/downwardAPI/serviceAccountToken sources in one directory."""
    downwardAPI: VolumeSource | None = None
    """Pod fields as files."""
    ephemeral: VolumeSource | None = None
    """A volume claim created and deleted with the pod."""
    csi: VolumeSource | None = None
    """A CSI driver's ephemeral volume."""
    image: VolumeSource | None = None
    """The content of an OCI image or artifact, read-only."""
    hostPath: VolumeSource | None = None
    """A path on the node: refused by the baseline and restricted pod security levels."""
    nfs: VolumeSource | None = None
    """An NFS export."""
    iscsi: VolumeSource | None = None
    """An iSCSI disk."""
    fc: VolumeSource | None = None
    """A Fibre Channel disk."""
    rbd: VolumeSource | None = None
    """A Ceph RBD image (deprecated in Kubernetes)."""
    cephfs: VolumeSource | None = None
    """A CephFS mount (deprecated in Kubernetes)."""
    glusterfs: VolumeSource | None = None
    """A GlusterFS mount (removed from Kubernetes)."""
    gitRepo: VolumeSource | None = None
    """A git repository cloned at pod start (deprecated in Kubernetes)."""
    flexVolume: VolumeSource | None = None
    """A FlexVolume driver (deprecated in Kubernetes)."""
    awsElasticBlockStore: VolumeSource | None = None
    """An AWS EBS disk (in-tree, migrated to CSI)."""
    gcePersistentDisk: VolumeSource | None = None
    """A GCE persistent disk (in-tree, migrated to CSI)."""
    azureDisk: VolumeSource | None = None
    """An Azure data disk (in-tree, migrated to CSI)."""
    azureFile: VolumeSource | None = None
    """An Azure File share (in-tree, migrated to CSI)."""
    cinder: VolumeSource | None = None
    """An OpenStack Cinder volume (in-tree, migrated to CSI)."""
    vsphereVolume: VolumeSource | None = None
    """A vSphere volume (in-tree, migrated to CSI)."""
    portworxVolume: VolumeSource | None = None
    """A Portworx volume (in-tree, migrated to CSI)."""
    flocker: VolumeSource | None = None
    """A Flocker volume (removed from Kubernetes)."""
    quobyte: VolumeSource | None = None
    """A Quobyte volume (removed from Kubernetes)."""
    photonPersistentDisk: VolumeSource | None = None
    """A Photon disk (removed from Kubernetes)."""
    scaleIO: VolumeSource | None = None
    """A ScaleIO volume (removed from Kubernetes)."""
    storageos: VolumeSource | None = None
    """A StorageOS volume (removed from Kubernetes)."""


class Toleration(APIModel):
    """Lets the session's pod schedule onto nodes with a matching taint."""

    model_config = validations(
        cel(
            "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
            "value must be empty when operator is Exists",
        ),
        cel(
            "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
            "tolerationSeconds is only valid with effect NoExecute",
        ),
    )

    key: Annotated[str, Field(max_length=317)] | None = None
    """Taint key; empty with operator Exists matches every taint."""
    operator: Literal["Exists", "Equal"] | None = None
    """`Equal` (default) or `Exists`."""
    value: LabelValue | None = None
    """Taint value to match with operator Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect to match; empty matches all effects."""
    tolerationSeconds: int | None = None
    """With NoExecute: how long the pod stays bound after the taint appears."""


_OPERATOR_VALUES_RULE = cel(
    "(self.operator in ['In', 'NotIn']) ? (has(self.values) && size(self.values) > 0)"
    " : ((self.operator in ['Gt', 'Lt']) ? (has(self.values) && size(self.values) == 1)"
    " : (!has(self.values) || size(self.values) == 0))",
    "values must be non-empty for In and NotIn, hold exactly one item for Gt and Lt, and be empty for Exists and DoesNotExist",
)


class LabelSelectorRequirement(APIModel):
    """A label selector requirement: key, operator and values."""

    model_config = validations(_OPERATOR_VALUES_RULE)

    key: Annotated[str, Field(min_length=1, max_length=317)]
    """The label key."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """How the key relates to the values."""
    values: Annotated[list[LabelValue], Field(max_length=64, json_schema_extra=LIST_ATOMIC)] | None = None
    """Values for In and NotIn."""


class LabelSelector(APIModel):
    """A label query over objects; requirements are ANDed."""

    matchLabels: StringMap | None = None
    """Labels that must all match."""
    matchExpressions: Annotated[list[LabelSelectorRequirement], Field(max_length=32, json_schema_extra=LIST_ATOMIC)] | None = None
    """Requirements that must all match."""


class NodeSelectorRequirement(APIModel):
    """A node selector requirement."""

    model_config = validations(_OPERATOR_VALUES_RULE)

    key: Annotated[str, Field(min_length=1, max_length=317)]
    """The label key (or field name for matchFields)."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]
    """How the key relates to the values."""
    values: Annotated[list[Annotated[str, Field(max_length=253)]], Field(max_length=64, json_schema_extra=LIST_ATOMIC)] | None = None
    """Values; one integer for Gt and Lt."""


class NodeSelectorTerm(APIModel):
    """Requirements a node must meet; requirements are ANDed."""

    matchExpressions: Annotated[list[NodeSelectorRequirement], Field(max_length=32, json_schema_extra=LIST_ATOMIC)] | None = None
    """Requirements on node labels."""
    matchFields: Annotated[list[NodeSelectorRequirement], Field(max_length=32, json_schema_extra=LIST_ATOMIC)] | None = None
    """Requirements on node fields."""


class NodeSelector(APIModel):
    """Terms of which at least one must match (ORed)."""

    nodeSelectorTerms: Annotated[list[NodeSelectorTerm], Field(min_length=1, max_length=32, json_schema_extra=LIST_ATOMIC)]
    """The terms."""


class PreferredSchedulingTerm(APIModel):
    """A weighted node preference."""

    weight: Annotated[int, Field(ge=1, le=100)]
    """Weight in 1-100."""
    preference: NodeSelectorTerm
    """The node selector term."""


class NodeAffinity(APIModel):
    """Node affinity scheduling rules."""

    requiredDuringSchedulingIgnoredDuringExecution: NodeSelector | None = None
    """Hard requirement on the node."""
    preferredDuringSchedulingIgnoredDuringExecution: Annotated[
        list[PreferredSchedulingTerm], Field(max_length=32, json_schema_extra=LIST_ATOMIC)
    ] | None = None
    """Soft preferences on the node."""


class PodAffinityTerm(APIModel):
    """Pods (matched by labelSelector in namespaces) this pod should (not) be co-located with."""

    labelSelector: LabelSelector | None = None
    """The pods to match."""
    namespaceSelector: LabelSelector | None = None
    """The namespaces to search."""
    namespaces: Annotated[list[ResourceName], Field(max_length=64, json_schema_extra=LIST_ATOMIC)] | None = None
    """Static list of namespaces to search."""
    topologyKey: Annotated[str, Field(min_length=1, max_length=317)]
    """Node label whose value defines co-location, e.g. `kubernetes.io/hostname`."""
    matchLabelKeys: Annotated[list[Annotated[str, Field(max_length=317)]], Field(max_length=32, json_schema_extra=LIST_ATOMIC)] | None = None
    """Label keys whose values are taken from the incoming pod."""
    mismatchLabelKeys: Annotated[list[Annotated[str, Field(max_length=317)]], Field(max_length=32, json_schema_extra=LIST_ATOMIC)] | None = None
    """Label keys whose values must differ from the incoming pod's."""


class WeightedPodAffinityTerm(APIModel):
    """A weighted pod (anti-)affinity preference."""

    weight: Annotated[int, Field(ge=1, le=100)]
    """Weight in 1-100."""
    podAffinityTerm: PodAffinityTerm
    """The term."""


class PodAffinity(APIModel):
    """Inter-pod (anti-)affinity rules."""

    requiredDuringSchedulingIgnoredDuringExecution: Annotated[
        list[PodAffinityTerm], Field(max_length=32, json_schema_extra=LIST_ATOMIC)
    ] | None = None
    """Hard requirements."""
    preferredDuringSchedulingIgnoredDuringExecution: Annotated[
        list[WeightedPodAffinityTerm], Field(max_length=32, json_schema_extra=LIST_ATOMIC)
    ] | None = None
    """Soft preferences."""


class Affinity(APIModel):
    """Scheduling constraints of the session's pod, as in a Pod."""

    nodeAffinity: NodeAffinity | None = None
    """Node affinity rules."""
    podAffinity: PodAffinity | None = None
    """Pod affinity rules."""
    podAntiAffinity: PodAffinity | None = None
    """Pod anti-affinity rules."""


class SeccompProfile(APIModel):
    """The seccomp profile to apply."""

    model_config = validations(
        cel(
            "self.type == 'Localhost' ? has(self.localhostProfile) : !has(self.localhostProfile)",
            "localhostProfile is required with type Localhost and forbidden otherwise",
        )
    )

    type: Literal["RuntimeDefault", "Unconfined", "Localhost"]
    """Kind of profile."""
    localhostProfile: Annotated[str, Field(max_length=4096)] | None = None
    """Profile file on the node, for type Localhost."""


class AppArmorProfile(APIModel):
    """The AppArmor profile to apply."""

    type: Literal["RuntimeDefault", "Unconfined", "Localhost"]
    """Kind of profile."""
    localhostProfile: Annotated[str, Field(max_length=4096)] | None = None
    """Profile loaded on the node, for type Localhost."""


class SELinuxOptions(APIModel):
    """SELinux labels."""

    user: ShortText | None = None
    """SELinux user label."""
    role: ShortText | None = None
    """SELinux role label."""
    type: ShortText | None = None
    """SELinux type label."""
    level: ShortText | None = None
    """SELinux level label."""


class Sysctl(APIModel):
    """A namespaced kernel parameter."""

    name: Annotated[str, Field(min_length=1, max_length=253)]
    """Parameter name."""
    value: Annotated[str, Field(max_length=1024)]
    """Parameter value."""


class Capabilities(APIModel):
    """Linux capabilities to add and drop."""

    add: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=64, json_schema_extra=LIST_ATOMIC)] | None = None
    """Capabilities to add."""
    drop: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=64, json_schema_extra=LIST_ATOMIC)] | None = None
    """Capabilities to drop."""


class PodSecurityContext(APIModel):
    """Pod-level security settings. Unset fields keep the operator's hardened defaults
    (runAsNonRoot, RuntimeDefault seccomp)."""

    runAsUser: Annotated[int, Field(ge=0, le=2147483647)] | None = None
    """UID to run the entrypoint as."""
    runAsGroup: Annotated[int, Field(ge=0, le=2147483647)] | None = None
    """GID to run the entrypoint as."""
    runAsNonRoot: bool | None = None
    """Refuse to start containers that would run as root."""
    fsGroup: Annotated[int, Field(ge=0, le=2147483647)] | None = None
    """Group that owns mounted volumes (the workspace)."""
    fsGroupChangePolicy: Literal["OnRootMismatch", "Always"] | None = None
    """When to change volume ownership."""
    supplementalGroups: Annotated[list[Annotated[int, Field(ge=0, le=2147483647)]], Field(max_length=32, json_schema_extra=LIST_ATOMIC)] | None = None
    """Extra groups of the container processes."""
    seccompProfile: SeccompProfile | None = None
    """Seccomp profile."""
    appArmorProfile: AppArmorProfile | None = None
    """AppArmor profile."""
    seLinuxOptions: SELinuxOptions | None = None
    """SELinux context."""
    sysctls: Annotated[list[Sysctl], Field(max_length=32, json_schema_extra=LIST_ATOMIC)] | None = None
    """Namespaced sysctls."""


class SecurityContext(APIModel):
    """Container-level security settings. Unset fields keep the operator's hardened defaults
    (no privilege escalation, all capabilities dropped); what is set here must stay within the
    operator's pod security level."""

    allowPrivilegeEscalation: bool | None = None
    """Whether a process can gain more privileges than its parent."""
    privileged: bool | None = None
    """Run as privileged (almost never what you want)."""
    readOnlyRootFilesystem: bool | None = None
    """Mount the root filesystem read-only."""
    runAsUser: Annotated[int, Field(ge=0, le=2147483647)] | None = None
    """UID of the container process."""
    runAsGroup: Annotated[int, Field(ge=0, le=2147483647)] | None = None
    """GID of the container process."""
    runAsNonRoot: bool | None = None
    """Refuse to start as root."""
    capabilities: Capabilities | None = None
    """Capabilities to add or drop."""
    seccompProfile: SeccompProfile | None = None
    """Seccomp profile."""
    appArmorProfile: AppArmorProfile | None = None
    """AppArmor profile."""
    seLinuxOptions: SELinuxOptions | None = None
    """SELinux context."""
    procMount: Literal["Default", "Unmasked"] | None = None
    """proc mount type."""


class LocalObjectReference(APIModel):
    """A reference to an object by name in the same namespace."""

    name: ResourceName
    """Name of the object."""


__all__ = [
    "Affinity",
    "EnvFromSource",
    "EnvVar",
    "LIST_SET",
    "LocalObjectReference",
    "PodSecurityContext",
    "ResourceRequirements",
    "SecurityContext",
    "Toleration",
    "Volume",
    "VolumeMount",
]
