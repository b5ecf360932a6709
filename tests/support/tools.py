"""The helm and kubectl binaries the install and RBAC tests drive.

`scripts/install-tools.sh` (`make tools`, a prerequisite of `make test`) puts them in
`.tools/bin`; elsewhere they may be on PATH. Without them a test skips locally and fails under CI,
where their absence means the install step is broken.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = ROOT / ".tools" / "bin"


def locate_tool(name: str) -> str | None:
    """`name` from .tools/bin, else from PATH, else None (for use at collection time)."""
    local = TOOLS_BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


def find_tool(name: str) -> str:
    """`name`, or skip (locally) / fail (under CI) with how to install it."""
    found = locate_tool(name)
    if found:
        return found
    message = f"{name} is neither in .tools/bin nor on PATH: run `make tools` (scripts/install-tools.sh)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
