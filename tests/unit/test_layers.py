"""STYLE.md layer order, enforced by import-linter: api → config → lifecycle → providers/k8s → handlers → cli."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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
    assert "3 kept, 0 broken" in result.stdout


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
])
def test_the_other_contracts_catch_a_planted_violation(tmp_path, where, line, reported):
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    source = tmp_path / "operator"
    shutil.copytree(ROOT / "operator" / "agent_sessions", source / "agent_sessions")
    (source / "agent_sessions" / where).write_text(line)
    result = lint_imports(tmp_path, source)
    assert result.returncode != 0
    assert reported in result.stdout, result.stdout

