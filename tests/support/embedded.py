"""The strict embedded Kubernetes API as the suites use it: fixtures, and waits on sessions.

Conftest modules import the fixtures by name (pytest registers fixtures a conftest imports).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent_sessions.dev.strict_api import StrictKubernetesAPI, running_api
from agent_sessions.k8s.client import make_api_client
from support.waits import TIMEOUT, condition, phase_is, ready, wait_session, wait_until  # noqa: F401 (re-exported)

ROOT = Path(__file__).resolve().parents[2]
CRDS = [yaml.safe_load((ROOT / "crds" / n).read_text()) for n in ("agentsessions.yaml", "sessiontemplates.yaml")]


@pytest.fixture
def api() -> Iterator[StrictKubernetesAPI]:
    with running_api(crds=CRDS) as server:
        yield server


@pytest.fixture
def kubeconfig(api: StrictKubernetesAPI, tmp_path: Path) -> str:
    return str(api.write_kubeconfig(tmp_path / "kubeconfig"))


@pytest.fixture
async def api_client(kubeconfig: str) -> AsyncIterator[Any]:
    client = await make_api_client(kubeconfig)
    try:
        yield client
    finally:
        await client.close()
