"""Tests of the install artefacts: the Helm chart, the kustomize base, the CRDs, on a real API server too."""
