"""Install artefacts (chart, kustomize base, CRDs): rendered offline, and applied to a real API server."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from support.cluster.fixtures import admin_kubeconfig, audit_log, control_plane, real_api  # noqa: F401
from support.tools import find_tool


@pytest.fixture(scope="session")
def helm() -> str:
    return find_tool("helm")


@pytest.fixture(scope="session")
def render(helm: str) -> Callable[..., list[dict]]:
    """`helm template` of the chart with --set arguments, CRDs included; cached per arguments."""
    from deploy.test_install import CHART, NAMESPACE, RELEASE, load_all, run  # noqa: PLC0415

    cache: dict[tuple[str, ...], list[dict]] = {}

    def render(*sets: str) -> list[dict]:
        if sets not in cache:
            args = [arg for s in sets for arg in ("--set", s)]
            result = run(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--include-crds", *args)
            assert result.returncode == 0, result.stderr
            cache[sets] = load_all(result.stdout)
        return copy.deepcopy(cache[sets])

    return render
