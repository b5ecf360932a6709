"""STYLE.md layer order, enforced by import-linter: api → config → lifecycle → providers/k8s → handlers → cli."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TIER = "embedded"  # runs lint-imports and a fresh interpreter

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(project: Path, source_root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(project / "pyproject.toml"), "--no-cache"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )


def test_layer_contract_holds():
    result = lint_imports(ROOT, ROOT / "operator")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


def test_layer_contract_catches_a_lower_layer_importing_an_upper_one(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    source = tmp_path / "operator"
    shutil.copytree(ROOT / "operator" / "agent_sessions", source / "agent_sessions")
    violating = source / "agent_sessions" / "api" / "violation.py"
    violating.write_text("from agent_sessions.lifecycle import session_info  # api must not import lifecycle\n")
    result = lint_imports(tmp_path, source)
    assert result.returncode != 0
    assert "agent_sessions.api.violation -> agent_sessions.lifecycle" in result.stdout


@pytest.mark.parametrize(("where", "line", "reported"), [
    ("providers/http/violation.py", "from agent_sessions.providers.pod import names\n",
     "agent_sessions.providers.http.violation -> agent_sessions.providers.pod"),
    ("lifecycle/violation.py", "import aiohttp  # the lifecycle is pure\n",
     "agent_sessions.lifecycle.violation -> aiohttp"),
    ("config/violation.py", "import kubernetes_asyncio\n",
     "agent_sessions.config.violation -> kubernetes_asyncio"),
    ("api/violation.py", "import kopf\n", "agent_sessions.api.violation -> kopf"),
    # cli sits above dev in the layers: only the embedded-cluster contract stands in the way.
    ("cli/violation.py", "from agent_sessions.dev import strict_api\n",
     "agent_sessions.cli.violation -> agent_sessions.dev.strict_api"),
    ("cli/main_violation.py", "def command():\n    from agent_sessions.dev.conformance import run_checks\n",
     "agent_sessions.cli.main_violation -> agent_sessions.dev.conformance"),
])
def test_the_other_contracts_catch_a_planted_violation(tmp_path, where, line, reported):
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    source = tmp_path / "operator"
    shutil.copytree(ROOT / "operator" / "agent_sessions", source / "agent_sessions")
    (source / "agent_sessions" / where).write_text(line)
    result = lint_imports(tmp_path, source)
    assert result.returncode != 0
    assert reported in result.stdout, result.stdout



def test_the_embedded_cluster_contract_covers_a_package_added_later(tmp_path):
    """The contract's wildcard reaches a subpackage that did not exist when it was written."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    source = tmp_path / "operator"
    shutil.copytree(ROOT / "operator" / "agent_sessions", source / "agent_sessions")
    package = source / "agent_sessions" / "newly_added"
    package.mkdir()
    (package / "__init__.py").write_text("from agent_sessions.dev.object_store import ApiError\n")
    result = lint_imports(tmp_path, source)
    assert result.returncode != 0
    assert "Production code never imports the embedded cluster (agent_sessions.dev) BROKEN" in result.stdout
    assert "agent_sessions.newly_added -> agent_sessions.dev.object_store" in result.stdout, result.stdout


PRODUCTION_ENTRY_POINTS = """
import importlib, sys
from agent_sessions.cli.main import build_parser
parser = build_parser()  # every subcommand registered, as `agent-sessions run` does first
for name in ("agent_sessions.handlers.operator", "agent_sessions.handlers.settings",  # run
             "agent_sessions.gateway.server", "agent_sessions.runtime.server",  # gateway, runtime
             "agent_sessions.runtime.demo_agent", "agent_sessions.api.crd"):
    importlib.import_module(name)
print(sorted(m for m in sys.modules if m == "agent_sessions.dev" or m.startswith("agent_sessions.dev.")))
"""


def test_production_entry_points_load_no_embedded_cluster_module():
    """What the image runs (`agent-sessions run`, `gateway`, the runtime; Dockerfile ENTRYPOINT is
    the console script `agent_sessions.cli.main:main`) never imports agent_sessions.dev."""
    result = subprocess.run([sys.executable, "-c", PRODUCTION_ENTRY_POINTS], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "operator")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
