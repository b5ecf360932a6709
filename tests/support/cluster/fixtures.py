"""pytest fixtures for the real-cluster tier: import them into a conftest.py.

``control_plane`` is package-scoped (~9 s to start): one per test package that uses it, stopped
when that package is done, so it does not load the machine while other suites run. Without ``KUBE_ASSETS`` (or without etcd)
the tests skip locally with the reason, and fail under CI, where the assets are always
provided by .ci/run and their absence means that step is broken.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from .audit import AuditLog
from .control_plane import ControlPlane, missing_assets
from .rest import RestClient


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_assets() -> Path:
    """``KUBE_ASSETS`` as a Path, or skip (locally) / fail (under CI) with a one-line reason."""
    value = os.environ.get("KUBE_ASSETS")
    assets = Path(value) if value else None
    reason = missing_assets(assets)
    if reason:
        if _under_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    assert assets is not None
    return assets


@pytest.fixture(scope="package")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    assets = require_assets()
    with ControlPlane(assets, tmp_path_factory.mktemp("control-plane")) as plane:
        yield plane


@pytest.fixture(scope="package")
def admin_kubeconfig(control_plane: ControlPlane) -> Path:
    return control_plane.kubeconfig(control_plane.workdir / "admin.kubeconfig", "admin")


@pytest.fixture
def real_api(control_plane: ControlPlane) -> Iterator[RestClient]:
    """A REST client acting as the cluster admin."""
    client = control_plane.client("admin")
    yield client
    client.close()


@pytest.fixture
def audit_log(control_plane: ControlPlane) -> AuditLog:
    """The audit log, reset to now: ``records()`` returns this test's requests."""
    log = AuditLog(control_plane.audit_log)
    log.reset()
    return log
