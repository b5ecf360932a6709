#!/usr/bin/env bash
# End to end on a real cluster: build the image, start kind, install the Helm chart, apply the
# samples and wait until the minimal session is Ready. `make e2e` runs it with .tools/bin first
# on PATH (helm, kubectl).
#
# Needs Docker (a reachable daemon) and kind; without them it prints what is missing and exits 0,
# so it is safe on any machine. Everything else is a test failure (non-zero exit).
#
# Environment:
#   E2E_CLUSTER   kind cluster name (default agent-sessions-e2e)
#   E2E_KEEP=1    keep the cluster afterwards (default: delete it, also on failure)
#   E2E_TIMEOUT   wait for each step, kubectl duration (default 300s)
#   KIND_NODE_IMAGE  node image for `kind create cluster --image` (default: kind's own)
set -euo pipefail

missing=()
if ! command -v docker >/dev/null 2>&1; then
    missing+=("docker not found")
elif ! docker info >/dev/null 2>&1; then
    missing+=("no reachable Docker daemon")
fi
command -v kind >/dev/null 2>&1 || missing+=("kind not found")
if ((${#missing[@]})); then
    joined="$(printf '%s, ' "${missing[@]}")"
    echo "e2e skipped: ${joined%, } (needs Docker and kind)"
    exit 0
fi
for tool in helm kubectl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "e2e: $tool not found (run \`make tools\`)" >&2; exit 1; }
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

CHART="charts/agent-session-operator"
CLUSTER="${E2E_CLUSTER:-agent-sessions-e2e}"
TIMEOUT="${E2E_TIMEOUT:-300s}"
NAMESPACE="agent-sessions-system"
RELEASE="agent-session-operator"
APP_VERSION="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$CHART/Chart.yaml")"
REPOSITORY="ghcr.io/agent-session-operator/agent-sessions"
IMAGE="$REPOSITORY:$APP_VERSION"
KUBECONFIG="$(mktemp)"
export KUBECONFIG

step() { echo; echo "== e2e: $*"; }

diagnose() {
    step "diagnostics"
    kubectl get nodes,pods -A -o wide || true
    kubectl get agentsessions,sessiontemplates -A -o wide || true
    kubectl describe agentsession minimal -n default || true
    kubectl -n "$NAMESPACE" describe deployment "$RELEASE" || true
    kubectl -n "$NAMESPACE" logs deployment/"$RELEASE" --tail=200 || true
    kubectl get events -A --sort-by=.lastTimestamp | tail -n 50 || true
}

cleanup() {
    local rc=$?
    ((rc == 0)) || diagnose
    if [[ "${E2E_KEEP:-0}" == "1" ]]; then
        echo "e2e: keeping kind cluster $CLUSTER (kubeconfig: $KUBECONFIG)"
    else
        kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
        rm -f "$KUBECONFIG"
    fi
    exit "$rc"
}
trap cleanup EXIT

step "build $IMAGE"
docker build --tag "$IMAGE" .

step "kind cluster $CLUSTER"
if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    kind create cluster --name "$CLUSTER" --wait 120s ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}
fi
kind export kubeconfig --name "$CLUSTER" --kubeconfig "$KUBECONFIG"
kind load docker-image "$IMAGE" --name "$CLUSTER"

step "helm install $RELEASE"
helm upgrade --install "$RELEASE" "$CHART" \
    --namespace "$NAMESPACE" --create-namespace \
    --set image.repository="$REPOSITORY" --set image.tag="$APP_VERSION" \
    --set image.pullPolicy=Never \
    --wait --timeout "$TIMEOUT"
kubectl -n "$NAMESPACE" rollout status deployment/"$RELEASE" --timeout "$TIMEOUT"

step "apply samples"
kubectl apply -f manifests/samples/

step "wait for ags/minimal Ready"
kubectl wait --for=condition=Ready agentsession/minimal -n default --timeout "$TIMEOUT"
kubectl get agentsessions -n default -o wide

step "delete ags/minimal: finalizer removed, pod gone"
kubectl delete agentsession minimal -n default --timeout "$TIMEOUT"
kubectl wait --for=delete pod -n default -l agentsession.dev/session=minimal --timeout "$TIMEOUT" 2>/dev/null || true

echo
echo "e2e passed"
