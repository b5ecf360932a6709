{{/*
Names, labels and the operator's RBAC rules.
*/}}

{{- define "agent-session-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "agent-session-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "agent-session-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "agent-session-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agent-session-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "agent-session-operator.commonLabels" -}}
helm.sh/chart: {{ include "agent-session-operator.chart" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: agent-session-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "agent-session-operator.labels" -}}
{{ include "agent-session-operator.selectorLabels" . }}
{{ include "agent-session-operator.commonLabels" . }}
{{- end }}

{{/*
The gateway: its own name (the release's full name + "-gateway", still at most 63 characters),
labels (component "gateway": the NetworkPolicy tells it from the operator by them) and account.
*/}}
{{- define "agent-session-operator.gateway.fullname" -}}
{{- printf "%s-gateway" (include "agent-session-operator.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{- define "agent-session-operator.gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agent-session-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "agent-session-operator.gateway.labels" -}}
{{ include "agent-session-operator.gateway.selectorLabels" . }}
{{ include "agent-session-operator.commonLabels" . }}
{{- end }}

{{- define "agent-session-operator.gateway.serviceAccountName" -}}
{{- if .Values.gateway.serviceAccount.create }}
{{- default (include "agent-session-operator.gateway.fullname" .) .Values.gateway.serviceAccount.name }}
{{- else }}
{{- required "gateway.serviceAccount.name is required when gateway.serviceAccount.create is false" .Values.gateway.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "agent-session-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "agent-session-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Labels (a YAML mapping, as the selectorLabels helpers render them) as `key=value,key=value`,
sorted by key: the operator's --network-policy-peer-labels.
*/}}
{{- define "agent-session-operator.labelPairs" -}}
{{- $pairs := list }}
{{- range $key, $value := fromYaml . }}
{{- $pairs = append $pairs (printf "%s=%s" $key $value) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{- define "agent-session-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
"true" when the operators coordinate by kopf peering: peering.enabled and not sharded (with
shards > 1 the shard Leases replace it, and every replica stays active).
*/}}
{{- define "agent-session-operator.peered" -}}
{{- if and .Values.peering.enabled (le (int .Values.shards) 1) }}true{{ end }}
{{- end }}

{{/*
The shard Leases' names: <fullname>-shard-0 … <fullname>-shard-<shards-1> (`--shard-lease-prefix`).
*/}}
{{- define "agent-session-operator.shardLeaseNames" -}}
{{- $fullname := include "agent-session-operator.fullname" . }}
{{- $names := list }}
{{- range $i := until (int .Values.shards) }}
{{- $names = append $names (printf "%s-shard-%d" $fullname $i) }}
{{- end }}
{{- toJson $names }}
{{- end }}

{{/*
Guards repeated from values.schema.json for `--skip-schema-validation` installs: two active kopf
operators without peering (or sharding) would both process every session; a shard without a
replica would be reconciled by nobody.
*/}}
{{- define "agent-session-operator.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.peering.enabled) (le (int .Values.shards) 1) }}
{{- fail "replicas > 1 requires peering.enabled=true (kopf peering keeps one operator active) or shards > 1" }}
{{- end }}
{{- if lt (int .Values.shards) 1 }}
{{- fail "shards must be at least 1" }}
{{- end }}
{{- if and (gt (int .Values.shards) 1) (lt (int .Values.replicas) (int .Values.shards)) }}
{{- fail (printf "replicas (%d) must be at least shards (%d): a shard needs a replica to hold it, and replicas beyond shards stand by" (int .Values.replicas) (int .Values.shards)) }}
{{- end }}
{{- if and (or .Values.monitoring.scrape.enabled .Values.monitoring.prometheusRule.enabled) (not .Values.metrics.enabled) }}
{{- fail "monitoring.scrape and monitoring.prometheusRule need metrics.enabled=true (the operator's /metrics)" }}
{{- end }}
{{- if and .Values.watchNamespaces .Values.networkPolicy.namespaces }}
{{- fail "networkPolicy.namespaces is for cluster-wide mode only: with watchNamespaces the NetworkPolicy goes into each watched namespace" }}
{{- end }}
{{- if .Values.gateway.enabled }}
{{- if eq (include "agent-session-operator.gateway.serviceAccountName" .) (include "agent-session-operator.serviceAccountName" .) }}
{{- fail "gateway.serviceAccount must differ from serviceAccount: each would hold the other's permissions" }}
{{- end }}
{{- $pdb := .Values.gateway.podDisruptionBudget }}
{{- if and $pdb.enabled (gt (int .Values.gateway.replicas) 1) (not (kindIs "string" $pdb.minAvailable)) }}
{{- if ge (int $pdb.minAvailable) (int .Values.gateway.replicas) }}
{{- fail "gateway.podDisruptionBudget.minAvailable must be below gateway.replicas, or no gateway pod could ever be evicted (node drains would hang)" }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
RBAC: the only place that lists what the operator may do. Exactly the calls the operator makes,
nothing more; tests/deploy/test_install.py compares these rules with its own copy of the contract
and with the ClusterRole of manifests/base.

"agent-session-operator.rules.sessions" — everything done inside a watched namespace, call by
call: watch/list sessions and templates (kopf's indexes), get+patch sessions (our finalizer,
guarded by resourceVersion), patch their status subresource, update agentsessions/finalizers
(owner references with blockOwnerDeletion need it), the session pods (get to observe, list/watch
for their events, create, delete) and their workspace claims (get, create, delete), pods/log for
the status log tail, secrets (get: exact-value redaction of log tails; create and patch: each
session's runtime token Secret, written before its pod, patched only when the runtime key changed —
Kubernetes cannot restrict `create` by name, and these Secrets have names derived from the
session; list/watch: a session waiting for a Secret it names is reconciled as soon as the Secret
changes, handlers/dependencies.py), configmaps (list/watch, the same as for Secrets;
docs/security.md says why no selector can narrow these two watches; get only with
httpProvider.platforms: the values an http session's agent names, which the operator sends to
its platform — a pod's are read by the kubelet), core/v1 Events (create transition events; list/watch
only those labelled agentsession.dev/wake-request, the gateway's signed wake requests: kopf watches
them with a label selector) and the session's namespace itself (get: its pod-security.kubernetes.io/enforce label may raise the
pod security level; a Role grants get on its own namespace). With networkPolicy.enabled, the session
NetworkPolicy the operator keeps in each namespace where a session pod runs (get to compare it,
create when missing, patch its spec back when changed). kopf's scanning of namespaces and CRDs
is disabled (handlers/settings.py): no cluster-scoped lists or watches.
*/}}
{{- define "agent-session-operator.rules.sessions" -}}
- apiGroups: ["agentsession.dev"]
  resources: ["agentsessions"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["agentsession.dev"]
  resources: ["agentsessions/status"]
  verbs: ["patch"]
- apiGroups: ["agentsession.dev"]
  resources: ["agentsessions/finalizers"]
  verbs: ["update"]
- apiGroups: ["agentsession.dev"]
  resources: ["sessiontemplates"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get", "create", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: [{{ if .Values.httpProvider.platforms }}"get", {{ end }}"list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "list", "watch"]
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get"]
{{- if .Values.networkPolicy.enabled }}
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "create", "patch"]
{{- end }}
{{- end }}

{{/*
The runtime key Secret's name (runtimeKey.secretName, default "<fullname>-runtime-key"), in the
release namespace; runtime-key-rbac.yaml grants the operator and the gateway their access to it.
*/}}
{{- define "agent-session-operator.runtimeKeySecretName" -}}
{{- .Values.runtimeKey.secretName | default (printf "%s-runtime-key" (include "agent-session-operator.fullname" .)) }}
{{- end }}

{{/*
"agent-session-operator.rules.peering" — kopf's keep-alives in the peering object, with
.resource "clusterkopfpeerings" (cluster-wide mode) or "kopfpeerings" (namespaced mode).
*/}}
{{- define "agent-session-operator.rules.peering" -}}
- apiGroups: ["kopf.dev"]
  resources: [{{ .resource | quote }}]
  verbs: ["list", "watch", "patch"]
{{- end }}

{{/*
The gateway's RBAC: exactly what `agent-sessions gateway` calls (tests/gateway/conftest.py
GATEWAY_RBAC is the same list; tests/gateway/test_gateway_rbac.py runs the gateway under the
rendered rules).

"agent-session-operator.gateway.rules.auth" — cluster-scoped, hence always a ClusterRole: each
caller's bearer token is checked by a TokenReview, each request by a SubjectAccessReview (the same
two rules as the built-in system:auth-delegator ClusterRole).

"agent-session-operator.gateway.rules.sessions" — per namespace served: read a session by name,
list a namespace's sessions, watch one session while waking it and a namespace's sessions to know
where the serving ones are (gateway/serving_index.py: no GET per message), create a signed wake request
Event (the gateway writes no AgentSession: no patch, no update), and list the namespace's templates
to resolve lifecycle.wakeOnMessage as the operator does.
*/}}
{{- define "agent-session-operator.gateway.rules.auth" -}}
- apiGroups: ["authentication.k8s.io"]
  resources: ["tokenreviews"]
  verbs: ["create"]
- apiGroups: ["authorization.k8s.io"]
  resources: ["subjectaccessreviews"]
  verbs: ["create"]
{{- end }}

{{- define "agent-session-operator.gateway.rules.sessions" -}}
- apiGroups: ["agentsession.dev"]
  resources: ["agentsessions"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["agentsession.dev"]
  resources: ["sessiontemplates"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/*
Monitoring (monitoring.*): the job labels the ServiceMonitor/PodMonitor give their targets, and
the series selectors the alerts use (job and namespace, so two releases never mix).
*/}}
{{- define "agent-session-operator.monitoring.operatorJob" -}}
{{- printf "%s-operator" (include "agent-session-operator.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{- define "agent-session-operator.monitoring.gatewayJob" -}}
{{- printf "%s-gateway" (include "agent-session-operator.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{- define "agent-session-operator.monitoring.operatorSelector" -}}
job="{{ include "agent-session-operator.monitoring.operatorJob" . }}",namespace="{{ .Release.Namespace }}"
{{- end }}

{{- define "agent-session-operator.monitoring.gatewaySelector" -}}
job="{{ include "agent-session-operator.monitoring.gatewayJob" . }}",namespace="{{ .Release.Namespace }}"
{{- end }}
