"""The dev-only subcommands: `dev`, `provider-server` and `provider-conformance`.

They run the embedded cluster (§10), the reference http platform and the conformance kit, all
of which live in `agent_sessions.dev`. That package is not part of what a production install
runs (the import-linter contract "Production code never imports the embedded cluster"), so
this module only defines the command lines: each command imports its implementation when it
runs, and `agent-sessions run`, `gateway` and the runtime never load `agent_sessions.dev`.

`agent-sessions dev`: the strict embedded Kubernetes API on localhost, a pod runner that runs
each session pod's command as a local process (the runtime bridge and the agent, each pod on its
own loopback address), and the operator, wired together in one process; the samples are applied
and a kubeconfig is written, so `kubectl` and `agent-sessions send` work against it at once.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

import yaml

DEV_HTTP_PLATFORMS = ("http://127.0.0.1:8089", "http://127.0.0.1:8090")
"""The http platforms `dev` allows (`--http-platform`): the `cloud` sample's URL
(manifests/samples/20-session-http.yaml) and `agent-sessions provider-server`'s default address."""
DEV_HTTP_ENDPOINTS = ("http://127.0.0.1:*",)
"""Where `dev` lets those platforms' runtime endpoints be (`--http-endpoint`): the reference
server's sessions each listen on a local port of their own."""
DEV_INSTALL_NAMESPACE = "agent-sessions-system"
DEV_RUNTIME_KEY_SECRET = f"{DEV_INSTALL_NAMESPACE}/agent-session-operator-runtime-key"
"""The runtime key Secret the dev operator creates (as the chart's does) and a gateway started by
hand against the dev API reads (`agent-sessions gateway --runtime-key-secret …`)."""

PROVIDER_SERVER_DESCRIPTION = (
    "Serve the reference implementation of the http provider contract (docs/provider-http.md): each "
    "session runs the runtime bridge and its agent (agent.command from the PUT body, default the demo "
    "agent) as local processes on 127.0.0.1, and reports the bridge's URL as the session's endpoint. "
    "Admin API for tests: GET /v1/admin/stats, POST|GET|DELETE /v1/admin/faults, GET /v1/admin/requests, "
    "POST /v1/admin/hold. Runs agents as the current user: a development tool, not a platform."
)
CONFORMANCE_DESCRIPTION = (
    "Check that the platform at URL implements the http provider contract (docs/provider-http.md): "
    "capabilities, authentication, 404 for unknown sessions, invalid bodies rejected, idempotent PUT, "
    "conflicts, the session reaching Running with an endpoint that serves the runtime API, logs, "
    "stop/start, idempotent DELETE. Creates one session with a random id and deletes it. Prints one row "
    "per check; exits 0 iff all pass."
)


def add_dev_command(commands: Any) -> None:
    """Register `dev`: the whole system on one machine, no cluster needed (§10)."""
    dev = commands.add_parser(
        "dev",
        help="run everything locally: an embedded Kubernetes API, the operator and a pod runner",
        description="Start the strict embedded Kubernetes API on localhost, a pod runner in place of "
        "the kubelet, and the operator; apply the samples; write a kubeconfig for kubectl. Runs until "
        "Ctrl-C. No cluster needed.",
    )
    dev.add_argument("--host", default="127.0.0.1", help="address of the API (default: %(default)s)")
    dev.add_argument("--port", type=int, default=8001, help="port of the API; 0 picks a free one (default: %(default)s)")
    dev.add_argument("--kubeconfig-out", default=".dev/kubeconfig", help="where to write the kubeconfig (default: %(default)s)")
    dev.add_argument("--samples", default="manifests/samples",
                     help="directory of manifests to apply at start; '' for none (default: %(default)s)")
    dev.set_defaults(func=_cmd_dev)


def add_provider_server_command(commands: Any) -> None:
    """Register `provider-server`: the reference external agent platform (http provider)."""
    parser = commands.add_parser("provider-server", help="serve the reference external agent platform (http provider)",
                                 description=PROVIDER_SERVER_DESCRIPTION)
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8090,
                        help="port to serve on; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--state", metavar="FILE", default=None,
                        help="keep sessions and counters in FILE (.json, or .sqlite/.db); default: in memory")
    parser.add_argument("--token", action="append", metavar="TOKEN", default=None,
                        help="require this bearer token (repeatable: several are accepted, for rotation); "
                        "default: no authentication")
    parser.add_argument("--workdir", metavar="DIR", default=None,
                        help="where session workspaces and logs live (default: a temporary directory, removed at exit)")
    parser.set_defaults(func=_cmd_provider_server)


def add_conformance_command(commands: Any) -> None:
    """Register `provider-conformance`: the http provider contract's conformance kit."""
    parser = commands.add_parser("provider-conformance", help="check a platform against the http provider contract",
                                 description=CONFORMANCE_DESCRIPTION)
    parser.add_argument("url", metavar="URL", help="the platform's base URL, e.g. https://agents.example.com")
    parser.add_argument("--token", default=None, help="bearer token (also enables the authentication check)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                        help="how long a session may take to reach a state (default: %(default)s)")
    parser.set_defaults(func=_cmd_conformance)


def _cmd_dev(args: argparse.Namespace) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    samples = Path(args.samples) if args.samples else None
    return serve_until_signalled(
        host=args.host, port=args.port, kubeconfig_path=Path(args.kubeconfig_out), samples=samples
    )


def _cmd_provider_server(args: argparse.Namespace) -> int:
    from agent_sessions.dev.provider_server.cli import run_from_args

    return run_from_args(args)


def _cmd_conformance(args: argparse.Namespace) -> int:
    from agent_sessions.dev.conformance import run_from_args

    return run_from_args(args)


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
    from agent_sessions.api.crd import session_crd, template_crd
    from agent_sessions.dev.object_store import ApiError
    from agent_sessions.dev.pod_runner import LocalPodRunner
    from agent_sessions.dev.strict_api import running_api
    from agent_sessions.handlers.operator import OperatorThread
    from agent_sessions.handlers.settings import OperatorOptions

    stop = stop or threading.Event()
    with running_api(crds=[session_crd(), template_crd()], request_log_size=10_000, host=host, port=port) as api:
        kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
        api.write_kubeconfig(kubeconfig_path)
        pods_root = kubeconfig_path.parent / "pods"
        api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEV_INSTALL_NAMESPACE}})
        options = OperatorOptions(
            info_refresh_seconds=2.0,
            log_refresh_seconds=5.0,
            tmux=shutil.which("tmux") is not None,
            tmux_workspace_root=str(kubeconfig_path.parent / "tmux"),
            http_platforms=DEV_HTTP_PLATFORMS,
            http_endpoints=DEV_HTTP_ENDPOINTS,
            runtime_key_secret=DEV_RUNTIME_KEY_SECRET,
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
            print(f"  agent-sessions gateway --kubeconfig {kubeconfig_path} --port 8081 "
                  f"--runtime-key-secret {DEV_RUNTIME_KEY_SECRET}", file=out)
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

