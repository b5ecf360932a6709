"""`agent-sessions dev`: the whole system on one machine, no cluster needed (§10).

The strict embedded Kubernetes API on localhost, a pod runner that runs each session pod's
command as a local process (the runtime bridge and the agent, each pod on its own loopback
address), and the operator, wired together in one process; the samples are applied and a
kubeconfig is written, so `kubectl` and `agent-sessions send` work against it at once.
"""

from __future__ import annotations

import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

import yaml

from agent_sessions.api.crd import session_crd, template_crd
from agent_sessions.dev.pod_runner import LocalPodRunner
from agent_sessions.dev.object_store import ApiError
from agent_sessions.dev.strict_api import running_api
from agent_sessions.handlers.operator import OperatorThread
from agent_sessions.handlers.settings import OperatorOptions


def load_manifests(directory: Path) -> list[dict]:
    """Every YAML document of the directory's files, in file-name order."""
    docs: list[dict] = []
    for path in sorted(directory.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return docs


def run_dev(
    *,
    host: str,
    port: int,
    kubeconfig_path: Path,
    samples: Path | None,
    out: TextIO = sys.stdout,
    stop: threading.Event | None = None,
) -> int:
    stop = stop or threading.Event()
    with running_api(crds=[session_crd(), template_crd()], request_log_size=10_000, host=host, port=port) as api:
        kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
        api.write_kubeconfig(kubeconfig_path)
        pods_root = kubeconfig_path.parent / "pods"
        options = OperatorOptions(
            info_refresh_seconds=2.0,
            log_refresh_seconds=5.0,
            tmux=shutil.which("tmux") is not None,
            tmux_workspace_root=str(kubeconfig_path.parent / "tmux"),
        )
        with LocalPodRunner(api, pods_root), OperatorThread(options, kubeconfig=str(kubeconfig_path)):
            applied = []
            for doc in load_manifests(samples) if samples and samples.is_dir() else []:
                meta = doc.get("metadata") or {}
                try:
                    api.create(doc["kind"], doc)
                    applied.append(f"{doc['kind']}/{meta.get('name')}")
                except ApiError as exc:
                    print(f"  could not apply {doc.get('kind')}/{meta.get('name')}: {exc}", file=out)
            kubectl = f"kubectl --kubeconfig {kubeconfig_path}"
            print(f"agent-sessions dev: Kubernetes API at {api.url}, operator running.", file=out)
            if applied:
                print(f"Applied {len(applied)} samples: {', '.join(applied)}", file=out)
            print("Try:", file=out)
            print(f"  {kubectl} get ags", file=out)
            print(f"  {kubectl} get ags demo -o yaml", file=out)
            print(f"  agent-sessions send demo \"hello\" --kubeconfig {kubeconfig_path}", file=out)
            print(f"  {kubectl} apply -f manifests/samples/", file=out)
            print(f"  export KUBECONFIG={kubeconfig_path}", file=out)
            print("Ctrl-C stops everything.", file=out, flush=True)
            stop.wait()
    print("agent-sessions dev: stopped.", file=out, flush=True)
    return 0


def serve_until_signalled(**kwargs: object) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return run_dev(stop=stop, **kwargs)  # type: ignore[arg-type]

