#!/usr/bin/env bash
# Copy the generated CRDs (crds/, written by `make crds`) into the Helm chart and the kustomize
# base, and the kopf peering CRDs from the chart into the base. Both must hold plain files: Helm
# packages only what is inside the chart, kustomize loads only what is inside the base.
# tests/deploy/test_install.py fails while any copy differs from its source.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

for crd in crds/*.yaml; do
    cp "$crd" charts/agent-session-operator/crds/
    cp "$crd" manifests/base/crds/
done
cp charts/agent-session-operator/crds/kopf-peerings.yaml manifests/base/crds/
echo "synced: $(cd crds && echo *.yaml) kopf-peerings.yaml"
