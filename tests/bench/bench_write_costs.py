"""What one request costs the API server, per kind of write (not a timed test).

    KUBE_ASSETS=<dir with kube-apiserver, …> .venv/bin/python tests/bench/bench_write_costs.py [--count 300]

A fresh control plane (no operator) per CRD variant: the AgentSession CRD as shipped, and the same
with an open schema (`x-kubernetes-preserve-unknown-fields` for spec and status), so the share of
the schema (validation, CEL, field management) shows. For each kind of request, `--count` of them
(20 at a time), and the API server's and etcd's CPU seconds over them, per request. The status
patched is a converged session's as the operator writes it. This is the floor under the start
path (docs/performance.md, "The ceiling on two cores").
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_real_scale import CpuMeter, Kube, plane_processes  # noqa: E402
from support.backends import CRDS  # noqa: E402
from support.cluster.control_plane import ControlPlane, missing_assets  # noqa: E402

from agent_sessions.api import constants as c  # noqa: E402

NAMESPACE = "default"
IMAGE = "example.invalid/agent:1"
CONVERGED_STATUS: dict[str, Any] = {
    "phase": "Running", "observedGeneration": 1, "startTime": "2026-12-07T03:23:22Z", "restartCount": 0,
    "crashCount": 0, "messageCount": 0,
    "capabilities": {"cancel": True, "history": True, "logs": True, "resourceLimits": True, "resume": True,
                     "streaming": True},
    "conditions": [{"type": kind, "status": "True", "reason": reason, "message": message, "observedGeneration": 1,
                    "lastTransitionTime": "2026-12-07T03:23:22Z"}
                   for kind, reason, message in (("Ready", "Running", "the agent is running"),
                                                 ("ConfigValid", "Valid", "the configuration is valid"),
                                                 ("ProviderAvailable", "ProviderReachable", "the provider answered"),
                                                 ("Healthy", "ProbeSucceeded", "the agent answers its health probe"),
                                                 ("UpToDate", "ConfigCurrent", "the session runs the current configuration"))],
    "health": {"state": "Healthy", "consecutiveFailures": 0, "lastProbeTime": "2026-12-07T03:23:22Z"},
    "logs": {"tail": "", "truncated": False, "updatedAt": "2026-12-07T03:23:22Z", "outputMark": "bridge:0"},
    "provider": {"type": "pod", "id": "ags-one-e2fb08f9", "endpoint": "http://10.0.0.7:8080", "restarts": 0},
    "resolved": {"hash": "efdcdee2aa2a34ff", "templateChain": []},
}


def strip_cel(node: Any) -> None:
    if isinstance(node, dict):
        node.pop("x-kubernetes-validations", None)
        for value in node.values():
            strip_cel(value)
    elif isinstance(node, list):
        for value in node:
            strip_cel(value)


def crds(variant: str) -> list[dict]:
    shipped = copy.deepcopy(CRDS)
    if variant == "no-cel":
        for crd in shipped:
            strip_cel(crd)
    if variant == "open":
        for crd in shipped:
            if crd["spec"]["names"]["kind"] == c.SESSION_KIND:
                for version in crd["spec"]["versions"]:
                    version["schema"]["openAPIV3Schema"] = {"type": "object", "properties": {
                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    return shipped


async def measure(plane: ControlPlane, work: Path, variant: str, count: int) -> None:
    admin = plane.kubeconfig(work / "admin.kubeconfig", "admin")
    async with Kube(admin, 20) as kube:
        gate = asyncio.Semaphore(20)

        async def run(title: str, make: Any) -> None:
            async def one(index: int) -> None:
                async with gate:
                    await make(index)

            with CpuMeter(plane_processes(plane)) as cpu:
                await asyncio.gather(*(one(i) for i in range(count)))
                await asyncio.sleep(0.5)
            print(f"   {variant:8s} {title:38s} API server {cpu.used['kube-apiserver'] / count * 1000:5.1f} ms, "
                  f"etcd {cpu.used['etcd'] / count * 1000:4.1f} ms")

        objects, core = kube.custom, kube.core
        args = (c.GROUP, c.VERSION, NAMESPACE, c.SESSION_PLURAL)
        merge = {"_content_type": "application/merge-patch+json"}
        name = lambda i: f"{variant}-{i}"  # noqa: E731
        changed = copy.deepcopy(CONVERGED_STATUS)
        changed["phase"], changed["logs"]["outputMark"] = "Stopped", "bridge:1"
        await run("create AgentSession", lambda i: objects.create_namespaced_custom_object(*args, {
            "apiVersion": c.API_VERSION, "kind": c.SESSION_KIND, "metadata": {"name": name(i)},
            "spec": {"agent": {"image": IMAGE, "command": ["agent"]}}}))
        await run("patch finalizers", lambda i: objects.patch_namespaced_custom_object(
            *args, name(i), {"metadata": {"finalizers": ["agentsession.dev/cleanup"]}}, **merge))
        await run("patch status (a converged one)", lambda i: objects.patch_namespaced_custom_object_status(
            *args, name(i), {"status": CONVERGED_STATUS}, **merge))
        await run("patch status (a transition)", lambda i: objects.patch_namespaced_custom_object_status(
            *args, name(i), {"status": changed}, **merge))
        await run("patch annotation", lambda i: objects.patch_namespaced_custom_object(
            *args, name(i), {"metadata": {"annotations": {"x": "1"}}}, **merge))
        await run("get AgentSession", lambda i: objects.get_namespaced_custom_object(*args, name(i)))
        await run("create Pod", lambda i: core.create_namespaced_pod(NAMESPACE, {
            "metadata": {"name": f"{variant}-pod-{i}"}, "spec": {"containers": [{"name": "c", "image": IMAGE}]}}))
        await run("create Secret", lambda i: core.create_namespaced_secret(NAMESPACE, {
            "metadata": {"name": f"{variant}-secret-{i}"}, "data": {"token": "QUJD" * 16}}))
        await run("create Event", lambda i: core.create_namespaced_event(NAMESPACE, {
            "metadata": {"name": f"{variant}-event-{i}"}, "reason": "Started", "message": "m", "type": "Normal",
            "involvedObject": {"kind": c.SESSION_KIND, "name": name(i), "namespace": NAMESPACE}}))


def served(admin: Any, timeout: float = 30.0) -> None:
    """Wait until AgentSessions are served (a CRD is served a moment after it is created)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin.forget_discovery()
            admin.get(c.SESSION_PLURAL, NAMESPACE, "none")
            return
        except Exception:  # noqa: BLE001 — not served yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--variants", nargs="+", default=["shipped", "no-cel", "open"],
                        choices=["shipped", "no-cel", "open"])
    args = parser.parse_args()
    assets = Path(os.environ.get("KUBE_ASSETS", ""))
    reason = missing_assets(assets if os.environ.get("KUBE_ASSETS") else None)
    if reason:
        print(f"bench_write_costs: {reason}", file=sys.stderr)
        return 2
    print(f"API server CPU per request ({args.count} of each, 20 at a time; {os.cpu_count()} CPUs):")
    for variant in args.variants:
        with tempfile.TemporaryDirectory(prefix="bench-writes-") as tmp, \
                ControlPlane(assets, Path(tmp) / "plane") as plane:
            admin = plane.client("admin")
            try:
                for crd in crds(variant):
                    admin.create("customresourcedefinitions", crd)
                served(admin)
            finally:
                admin.close()
            asyncio.run(measure(plane, Path(tmp), variant, args.count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
