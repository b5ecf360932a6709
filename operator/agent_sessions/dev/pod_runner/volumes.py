"""Volumes as local directories: a pod's emptyDirs, a claim's directory that outlives its pods,
and container paths rewritten to them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final





WORKSPACE_PATH: Final = "/workspace"
TMP_PATH: Final = "/tmp"


@dataclass(frozen=True)
class Mount:
    path: str
    """Where the container sees it."""
    local: Path
    """The directory that stands for it on this machine."""


def pod_directory(root: Path, pod: dict) -> Path:
    meta = pod["metadata"]
    return root / meta["namespace"] / meta["name"]


def claim_directory(root: Path, namespace: str, claim: str) -> Path:
    return root / namespace / "pvc" / claim


def mounts_for(root: Path, pod: dict, container: dict) -> list[Mount]:
    """The container's volume mounts mapped to local directories (see the module docstring),
    longest container path first (the order `localize` needs)."""
    namespace = pod["metadata"]["namespace"]
    own = pod_directory(root, pod)
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or ()}
    mounts = []
    for mount in container.get("volumeMounts") or ():
        path = "/" + str(mount.get("mountPath") or "").strip("/")
        if path == "/":
            continue
        volume = volumes.get(mount.get("name")) or {}
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            local = claim_directory(root, namespace, claim)
        elif path == WORKSPACE_PATH:
            local = own / "workspace"
        else:
            local = own / "volumes" / str(mount.get("name"))
        if mount.get("subPath"):
            local = local / str(mount["subPath"])
        mounts.append(Mount(path, local))
    return sorted(mounts, key=lambda m: len(m.path), reverse=True)


def localize(value: str, mounts: Iterable[Mount]) -> str:
    """`value` with a container path under a mount (whole, or after `--flag=`) rewritten to the
    local directory; anything else unchanged."""
    prefix, path = "", value
    if not value.startswith("/") and "=" in value:
        head, _, tail = value.partition("=")
        if tail.startswith("/"):
            prefix, path = head + "=", tail
    for mount in mounts:
        if path == mount.path or path.startswith(mount.path + "/"):
            return prefix + str(mount.local) + path[len(mount.path):]
    return value
