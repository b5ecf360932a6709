"""The dev-only subcommands: `dev`, `provider-server` and `provider-conformance`.

They run the embedded cluster (§10), the reference http platform and the conformance kit, all
of which live in `agent_sessions.dev`. That package is not part of what a production install
runs (the import-linter contract "Production code never imports the embedded cluster"), so
this module only defines the command lines: each command imports its implementation when it
runs, and `agent-sessions run`, `gateway` and the runtime never load `agent_sessions.dev`.

`agent-sessions dev`: the strict embedded Kubernetes API on localhost, a pod runner that runs
each session pod's command as a local process (the runtime bridge and the agent, each pod on its
own loopback address), the operator and the gateway, wired together in one process; the samples
are applied and a kubeconfig is written, so `kubectl` and `agent-sessions send` work against it
at once. kubectl sends no token over plain HTTP, so the API serves token-less requests as the
admin and knows two tokens, for the gateway's TokenReview and SubjectAccessReview
(`agent_sessions.dev.strict_api.developer`): the dev user's (`.dev/token`, "developer": may read,
stop, start and message sessions) and a read-only viewer's (`.dev/viewer-token`, "viewer"). The
gateway serves the console at its root URL. Ctrl-C, SIGTERM or a closed terminal (SIGHUP) stops
all of it, the tmux sessions of its sessions included (`TmuxSessions`); what a killed run left
running, the next run stops before it starts (`agent_sessions.dev.run_record`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shlex
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
        help="run everything locally: an embedded Kubernetes API, the operator, the gateway and a pod runner",
        description="Start the strict embedded Kubernetes API on localhost, a pod runner in place of "
        "the kubelet, the operator and the gateway; apply the samples; write a kubeconfig for kubectl, "
        "and tokens for the gateway and its console next to it (token: the dev user \"developer\"; "
        "viewer-token: the read-only user \"viewer\"), with operator.log and gateway.log. Runs until "
        "Ctrl-C, SIGTERM or a closed terminal (SIGHUP), which stop everything it started, tmux sessions "
        "included. No cluster needed.",
    )
    dev.add_argument("--host", default="127.0.0.1", help="address of the API and the gateway (default: %(default)s)")
    dev.add_argument("--port", type=int, default=8001, help="port of the API; 0 picks a free one (default: %(default)s)")
    dev.add_argument("--gateway-port", type=int, default=8081,
                     help="port of the gateway; 0 picks a free one (default: %(default)s)")
    dev.add_argument("--kubeconfig-out", default=".dev/kubeconfig",
                     help="where to write the kubeconfig; its directory also gets the dev user's token, the "
                     "logs and the pods' and tmux sessions' workspaces (default: %(default)s)")
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
    samples = Path(args.samples) if args.samples else None
    return serve_until_signalled(
        host=args.host, port=args.port, gateway_port=args.gateway_port,
        kubeconfig_path=Path(args.kubeconfig_out), samples=samples,
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
    gateway_port: int = 8081,
    out: TextIO = sys.stdout,
    stop: threading.Event | None = None,
) -> int:
    """Run the embedded cluster until `stop` is set, then stop everything it started: the
    gateway, the operator, the tmux sessions of its sessions, the pods' processes, the API."""
    from agent_sessions.api.crd import session_crd, template_crd
    from agent_sessions.dev.pod_runner import LocalPodRunner
    from agent_sessions.dev.run_record import RunRecord
    from agent_sessions.dev.strict_api import developer_access, developer_token, running_api
    from agent_sessions.gateway.options import DEFAULT_PROVIDERS, GatewayOptions
    from agent_sessions.handlers.operator import OperatorThread, default_provider_factories
    from agent_sessions.handlers.settings import OperatorOptions

    stop = stop or threading.Event()
    kubeconfig_path = kubeconfig_path.absolute()
    state = kubeconfig_path.parent
    state.mkdir(parents=True, exist_ok=True)
    token_path, viewer_token_path = state / "token", state / "viewer-token"
    token = developer_token(token_path)
    viewer_token = developer_token(viewer_token_path)
    options = OperatorOptions(
        info_refresh_seconds=2.0,
        log_refresh_seconds=5.0,
        tmux=shutil.which("tmux") is not None,
        tmux_workspace_root=str(state / "tmux"),
        http_platforms=DEV_HTTP_PLATFORMS,
        http_endpoints=DEV_HTTP_ENDPOINTS,
        runtime_key_secret=DEV_RUNTIME_KEY_SECRET,
    )
    with DevLogs(state) as logs, RunRecord(state) as record, contextlib.ExitStack() as serving:
        left = record.stop_leftovers()
        if left:
            print(f"agent-sessions dev: stopped what a killed earlier run had left running: {', '.join(left)}",
                  file=out, flush=True)
        try:
            api = serving.enter_context(running_api(crds=[session_crd(), template_crd()], request_log_size=10_000,
                                                    host=host, port=port,
                                                    **developer_access(token, viewer_token)))
        except OSError as exc:
            raise SystemExit(f"agent-sessions dev: the Kubernetes API could not serve on {host}:{port}: {exc} "
                             "(--port 0 picks a free port)") from None
        api.write_kubeconfig(kubeconfig_path)
        api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEV_INSTALL_NAMESPACE}})
        tmux = TmuxSessions(api, record)
        gateway_options = GatewayOptions(host=host, port=gateway_port, runtime_key_secret=DEV_RUNTIME_KEY_SECRET,
                                         operator_defaults=options.operator_defaults,
                                         # What this operator offers: `GET /v1/providers` says so.
                                         providers=(*DEFAULT_PROVIDERS, "tmux") if options.tmux else DEFAULT_PROVIDERS)
        # Left in reverse order: the gateway and the operator first, so that nothing restarts
        # what is being stopped; the tmux sessions while the API still says which are ours.
        with contextlib.ExitStack() as running:
            running.enter_context(LocalPodRunner(api, state / "pods", on_container_start=record.process_group))
            running.enter_context(tmux)
            running.enter_context(OperatorThread(options, kubeconfig=str(kubeconfig_path),
                                                 provider_factories=tmux.keeping(default_provider_factories(options))))
            gateway = running.enter_context(GatewayThread(gateway_options, kubeconfig=str(kubeconfig_path)))
            applied = apply_samples(api, samples, out)
            print_banner(out, api_url=api.url, gateway_url=gateway.url, kubeconfig=kubeconfig_path, token=token,
                         token_path=token_path, viewer_token_path=viewer_token_path, logs=logs, applied=applied,
                         samples=samples)
            stop.wait()
            print("agent-sessions dev: stopping…", file=out, flush=True)
        for problem in tmux.problems:
            print(f"  {problem}", file=out)
    print("agent-sessions dev: stopped.", file=out, flush=True)
    return 0


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Ctrl-C; SIGTERM (`make dev` forwards it); SIGHUP: the terminal `dev` runs in was closed."""


def serve_until_signalled(**kwargs: object) -> int:
    """`run_dev` until one of `STOP_SIGNALS`. Once the terminal is gone (SIGHUP) nothing can be
    printed to it, and the shutdown goes on all the same (`SteadyOutput`)."""
    stop = threading.Event()
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: stop.set())
    return run_dev(stop=stop, out=SteadyOutput(sys.stdout), **kwargs)  # type: ignore[arg-type]


class SteadyOutput:
    """What `dev` prints, to a terminal that may have gone: a write that fails (a hung-up
    terminal answers EIO, a closed pipe EPIPE) sends the stream's descriptor to /dev/null, so
    that neither the rest of the shutdown nor the interpreter's last flush fail on it."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return self._steadily(self.stream.write, text) or len(text)

    def flush(self) -> None:
        self._steadily(self.stream.flush)

    def _steadily(self, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except OSError:
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.stream.fileno())
                os.close(devnull)
            return None


def apply_samples(api: Any, samples: Path | None, out: TextIO) -> list[str]:
    """Create every object of the samples directory; what could not be is said, not fatal."""
    from agent_sessions.dev.object_store import ApiError

    applied = []
    for doc in load_manifests(samples) if samples and samples.is_dir() else []:
        meta = doc.get("metadata") or {}
        try:
            api.create(doc["kind"], doc)
            applied.append(f"{doc['kind']}/{meta.get('name')}")
        except ApiError as exc:
            print(f"  could not apply {doc.get('kind')}/{meta.get('name')}: {exc}", file=out)
    return applied


# --- what the banner says --------------------------------------------------------------------


def command_path(name: str) -> str:
    """How to run the console script `name` from any directory: its name when it is on PATH,
    else its absolute path next to this Python (a virtualenv's `bin/`, which `make` does not
    put on PATH), else `python -m agent_sessions.cli.main`."""
    on_path = shutil.which(name)
    beside = Path(sys.executable).parent / name
    if on_path and (not beside.exists() or Path(on_path).absolute() == beside.absolute()):
        return name
    if beside.is_file() and os.access(beside, os.X_OK):
        return shlex.quote(str(beside))
    return f"{shlex.quote(sys.executable)} -m agent_sessions.cli.main"


def print_banner(out: TextIO, *, api_url: str, gateway_url: str, kubeconfig: Path, token: str, token_path: Path,
                 viewer_token_path: Path, logs: DevLogs, applied: list[str], samples: Path | None) -> None:
    """What runs, where its logs are, and lines to paste, each working from any directory."""
    config = shlex.quote(str(kubeconfig))
    kubectl = f"kubectl --kubeconfig {config}"
    cli = command_path("agent-sessions")
    bin_dir = Path(sys.executable).parent
    sessions = f"{gateway_url}/v1/namespaces/default/sessions"
    bearer = shlex.quote(f"Authorization: Bearer {token}")
    lines = [f"agent-sessions dev: Kubernetes API at {api_url}, operator and gateway running."]
    if applied:
        lines.append(f"Applied {len(applied)} samples: {', '.join(applied)}")
    lines += [
        f"Logs: {logs.operator} (operator, API, pod runner) and {logs.gateway} (gateway).",
        "Try:",
        f"  {kubectl} get ags",
        f"  {kubectl} get ags demo -o yaml",
        f"  {cli} send demo \"hello\" --kubeconfig {config}",
    ]
    if samples and samples.is_dir():
        lines.append(f"  {kubectl} apply -f {shlex.quote(str(samples.absolute()))}")
    lines += [
        "Or set up this shell (agent-sessions and the kubectl plugin `kubectl agentsession` live in "
        f"{bin_dir}):",
        f"  export KUBECONFIG={config} PATH={shlex.quote(str(bin_dir))}:\"$PATH\"",
        "  kubectl get ags; agent-sessions send demo \"hello\"; kubectl agentsession history demo",
        f"The gateway, at {gateway_url}, as the dev user \"developer\" (token in {shlex.quote(str(token_path))}; "
        "without it: 401):",
        f"  curl -sS -H {bearer} {sessions}",
        f"  curl -sS -H {bearer} -H 'Content-Type: application/json' -d '{{\"text\": \"hello\"}}' {sessions}/demo/messages",
        f"Console: {gateway_url}/ (sign in with a token: {shlex.quote(str(token_path))} is \"developer\", who may "
        f"stop, start and message sessions; {shlex.quote(str(viewer_token_path))} is \"viewer\", who may only "
        "read them)",
        "Ctrl-C stops everything (API, operator, gateway, pods, tmux sessions).",
    ]
    print("\n".join(lines), file=out, flush=True)


# --- what runs beside the API ----------------------------------------------------------------


class DevLogs:
    """The process's logs, in `operator.log` (the operator, the embedded API, the pod runner) and
    `gateway.log` (the gateway and its access log) of the state directory, this run's only;
    errors also on stderr. Restores the logging it found when it exits."""

    GATEWAY_LOGGERS = ("agent_sessions.gateway", "aiohttp.access")

    def __init__(self, directory: Path) -> None:
        self.operator = directory / "operator.log"
        self.gateway = directory / "gateway.log"
        self._handlers: list[logging.Handler] = []
        self._level = logging.WARNING

    def __enter__(self) -> DevLogs:
        root = logging.getLogger()
        self._level = root.level
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        gateway = logging.FileHandler(self.gateway, mode="w", encoding="utf-8")
        gateway.addFilter(lambda record: record.name.startswith(self.GATEWAY_LOGGERS))
        operator = logging.FileHandler(self.operator, mode="w", encoding="utf-8")
        operator.addFilter(lambda record: not record.name.startswith(self.GATEWAY_LOGGERS))
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.ERROR)
        for handler in (gateway, operator, console):
            handler.setFormatter(formatter)
            root.addHandler(handler)
            self._handlers.append(handler)
        root.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        for handler in self._handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(self._level)


class RecordedTmuxProvider:
    """A tmux provider whose every tmux session is written down in the run's record once
    `ensure` has it; everything else is the provider's own."""

    def __init__(self, provider: Any, record: Any) -> None:
        self._provider = provider
        self._record = record

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)

    async def ensure(self, session: Any) -> Any:
        ref = await self._provider.ensure(session)
        if ref.id:
            self._record.tmux_session(self._provider.socket_of(session.config), ref.id)
        return ref


class GatewayThread:
    """The gateway in a thread and event loop of its own, as `OperatorThread` runs the operator.
    `url` is where it serves once entered; exiting stops it (clients' streams are closed)."""

    def __init__(self, options: Any, *, kubeconfig: str) -> None:
        self.options = options
        self.kubeconfig = kubeconfig
        self.url = ""
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="agent-session-gateway", daemon=True)

    def __enter__(self) -> GatewayThread:
        self._thread.start()
        if not self._ready.wait(30) or self.error is not None:
            self._thread.join(5)
            where = f"{self.options.host}:{self.options.port}"
            raise SystemExit(f"agent-sessions dev: the gateway could not serve on {where}: {self.error} "
                             "(--gateway-port 0 picks a free port)") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # handed to the caller's thread
            self.error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        from agent_sessions.gateway.server import serve_gateway
        from agent_sessions.k8s.client import make_api_client

        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        api = await make_api_client(self.kubeconfig)
        try:
            async with serve_gateway(self.options, api) as running:
                self.url = running.url
                self._ready.set()
                await self._stop.wait()
        finally:
            await api.close()


class TmuxSessions:
    """The tmux sessions `dev` started, stopped when it stops.

    A tmux session outlives the operator that made it (that is how the tmux provider adopts its
    sessions after a restart), but the embedded API, whose AgentSessions own them, dies with
    `dev`: left running, they would be orphans nothing ever adopts, holding a tmux server, a
    runtime bridge and an agent. So `keeping()` hands the operator provider factories that remember
    every tmux provider built, and on exit the tmux sessions of this API's AgentSessions are
    stopped as the operator stops them (SIGTERM to the bridge, which ends its agent, then the
    tmux session goes), which ends the tmux server once its last session is gone. Other tmux
    sessions on the socket are left alone; the workspaces stay, as the pods' do. Each tmux session
    a provider creates is written down in the run's record (`dev.run_record`), for the next run to
    stop should this one be killed."""

    def __init__(self, api: Any, record: Any) -> None:
        self.api = api
        self.record = record
        self.providers: list[Any] = []
        self.problems: list[str] = []

    def keeping(self, factories: dict[str, Any]) -> dict[str, Any]:
        from agent_sessions.api import constants as c

        make = factories.get(c.PROVIDER_TMUX)
        if make is not None:
            def build(api_client: Any) -> Any:
                provider = make(api_client)
                self.providers.append(provider)
                return RecordedTmuxProvider(provider, self.record)

            factories = {**factories, c.PROVIDER_TMUX: build}
        return factories

    def __enter__(self) -> TmuxSessions:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.providers:
            return
        from agent_sessions.api import constants as c

        uids = {(item.get("metadata") or {}).get("uid") for item in self.api.list(c.SESSION_PLURAL)}
        asyncio.run(self._stop(uids - {None}))

    async def _stop(self, uids: set[str]) -> None:
        from agent_sessions.providers.base import SessionRef

        for provider in self.providers:
            try:
                found = [state for state in await provider.list_sessions() if state.uid in uids]
            except Exception as exc:  # noqa: BLE001 - said, and the rest of the shutdown goes on
                self.problems.append(f"could not list the tmux sessions: {exc}")
                continue
            sessions = [SessionRef(namespace=state.namespace, name=state.session, uid=state.uid) for state in found]
            results = await asyncio.gather(*(provider.stop(session) for session in sessions), return_exceptions=True)
            self.problems += [f"could not stop tmux session {state.name}: {result}"
                              for state, result in zip(found, results) if isinstance(result, BaseException)]
