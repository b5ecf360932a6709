"""`agent-sessions`: one console script, one subcommand per job (§2)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from agent_sessions import __version__
# The dev-only commands' lines; their implementations (agent_sessions.dev) load only when they run.
from agent_sessions.cli.dev import add_conformance_command, add_dev_command, add_provider_server_command

if TYPE_CHECKING:
    from agent_sessions.providers.pod.network_policy_spec import SessionNetworkPolicy


def _cmd_crds(args: argparse.Namespace) -> int:
    from agent_sessions.api.crd import generated_files

    files = generated_files()
    if args.stdout:
        sys.stdout.write("---\n".join(files.values()))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        print(f"wrote {out / name}")
    return 0


def _load_defaults(path: str | None) -> dict:
    if not path:
        return {}
    import yaml

    from agent_sessions.cli.failures import CommandError, yaml_problem

    text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise CommandError(f"{path}: operator defaults are not valid YAML ({yaml_problem(exc)})") from None
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: operator defaults must be a mapping of config blocks, got {type(data).__name__}")
    return data


def session_network_policy(args: argparse.Namespace) -> SessionNetworkPolicy | None:
    """`--session-network-policy NAME` with its peers, or None; bad input ends the command with
    the flag named (an operator must not start believing the runtimes are protected)."""
    from agent_sessions.providers.pod.network_policy_spec import SessionNetworkPolicy, parse_label_pairs

    if not args.session_network_policy:
        if args.network_policy_peer_namespace or args.network_policy_peer_labels:
            raise SystemExit("--network-policy-peer-namespace/--network-policy-peer-labels need "
                             "--session-network-policy NAME")
        return None
    try:
        peers = tuple(parse_label_pairs(labels) for labels in args.network_policy_peer_labels or ())
    except ValueError as error:
        raise SystemExit(f"--network-policy-peer-labels {error}") from None
    try:
        return SessionNetworkPolicy(args.session_network_policy, args.network_policy_peer_namespace or "", peers)
    except ValueError as error:
        raise SystemExit(f"--session-network-policy: {error}") from None


def _resource_list(flag: str, entries: list[str] | None) -> dict[str, str]:
    """`--pod-default-request cpu=250m` (repeatable) → {"cpu": "250m"}; a bad entry ends the
    command with the flag named (a typo must not start an operator without the defaults)."""
    from agent_sessions.api.base import NONNEGATIVE_QUANTITY_PATTERN

    resources: dict[str, str] = {}
    for entry in entries or ():
        name, sep, quantity = entry.partition("=")
        name, quantity = name.strip(), quantity.strip()
        if not sep or not name or not re.fullmatch(NONNEGATIVE_QUANTITY_PATTERN, quantity):
            raise SystemExit(f"{flag} {entry!r}: expected NAME=QUANTITY, e.g. cpu=250m or memory=1Gi")
        resources[name] = quantity
    return resources


def _pod_default_resources(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    requests = _resource_list("--pod-default-request", args.pod_default_request)
    limits = _resource_list("--pod-default-limit", args.pod_default_limit)
    return {key: value for key, value in (("requests", requests), ("limits", limits)) if value}


def _http_allowlist(args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`--http-platform` and `--http-endpoint` entries, checked: a typo must not start an
    operator that refuses (or, worse, allows) other platforms than meant."""
    from agent_sessions.providers.http.allowlist import PlatformAllowlist

    platforms, endpoints = tuple(args.http_platform or ()), tuple(args.http_endpoint or ())
    try:
        PlatformAllowlist(platforms, endpoints)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    return platforms, endpoints


DEFAULT_PEERING = "agent-session-operator"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _peering(args: argparse.Namespace) -> str | None:
    """The kopf peering name, or None (standalone, or sharded: the shard Leases replace it)."""
    if args.shards > 1:
        if args.peering:
            raise SystemExit("--shards replaces kopf peering (every replica stays active and holds a shard "
                             "through a Lease): drop --peering")
        return None
    return None if args.standalone else (args.peering or DEFAULT_PEERING)


def _shard_lease_namespace(args: argparse.Namespace) -> str:
    """`--shard-lease-namespace`, else the pod's own namespace, else `default`."""
    if args.shard_lease_namespace:
        return args.shard_lease_namespace
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip() or "default"
    except OSError:
        return "default"


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _cmd_run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import random

    import kopf

    from agent_sessions.handlers.operator import run_operator
    from agent_sessions.handlers.settings import OperatorOptions

    kopf.configure(
        verbose=args.verbose,
        log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.PLAIN,
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr=args.health_host)
    from agent_sessions.wire import tracing

    tracing.configure("agent-session-operator")  # only when OTEL_* ask for it (docs/monitoring.md#tracing)
    http_platforms, http_endpoints = _http_allowlist(args)
    options = OperatorOptions(
        namespaces=tuple(args.namespace or ()),
        peering=_peering(args),
        priority=args.priority if args.priority is not None else random.randint(1, 1_000_000),
        health_endpoint=f"http://{args.health_host}:{args.health_port}/healthz" if args.health_port else None,
        operator_defaults=_load_defaults(args.defaults),
        concurrency=args.concurrency,
        tmux=args.enable_tmux,
        tmux_reap_orphans=args.tmux_reap_orphans,
        tmux_workspace_root=args.tmux_workspace_root,
        pod_security_level=args.pod_security_level,
        allowed_service_accounts=tuple(args.allow_service_account or ()),
        session_network_policy=session_network_policy(args),
        pod_default_resources=_pod_default_resources(args),
        http_platforms=http_platforms,
        http_endpoints=http_endpoints,
        runtime_key_secret=args.runtime_key_secret,
        shards=args.shards,
        shard_lease_namespace=_shard_lease_namespace(args) if args.shards > 1 else "default",
        shard_lease_prefix=args.shard_lease_prefix,
        shard_lease_seconds=args.shard_lease_duration,
    )
    try:
        asyncio.run(run_operator(options, kubeconfig=args.kubeconfig))
    except KeyboardInterrupt:
        pass
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agent-sessions",
        description="Kubernetes-native AI agent sessions: operator, gateway and tools.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    crds = commands.add_parser(
        "crds",
        help="write the CustomResourceDefinitions generated from the API models",
        description="Write crds/agentsessions.yaml and crds/sessiontemplates.yaml, generated from the "
        "pydantic models (the only schema of the API).",
    )
    crds.add_argument("--out", default="crds", help="directory to write into (default: %(default)s)")
    crds.add_argument("--stdout", action="store_true", help="print a multi-document YAML stream instead")
    crds.set_defaults(func=_cmd_crds)

    run = commands.add_parser(
        "run",
        help="run the operator against the current kubeconfig or in-cluster config",
        description="Run the operator: reconcile AgentSessions onto their providers. Uses --kubeconfig, "
        "$KUBECONFIG, ~/.kube/config, or the in-cluster service account, as kubectl does.",
    )
    run.add_argument("--namespace", "-n", action="append", metavar="NS",
                     help="watch this namespace (repeatable); default: all namespaces")
    run.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config or in-cluster)")
    run.add_argument("--health-host", default="0.0.0.0", help="address of the health and metrics endpoints")
    run.add_argument("--health-port", type=int, default=8080,
                     help="port of GET /healthz for liveness/readiness probes; 0 disables (default: %(default)s)")
    run.add_argument("--metrics-port", type=int, default=9090,
                     help="port of the Prometheus /metrics endpoint; 0 disables (default: %(default)s)")
    run.add_argument("--defaults", metavar="FILE",
                     help="YAML file of operator defaults: the lowest configuration layer (Helm values)")
    run.add_argument("--log-format", choices=("json", "text"), default="json", help="log format (default: %(default)s)")
    run.add_argument("--verbose", "-v", action="store_true", help="log more")
    run.add_argument("--concurrency", type=int, default=32, help="sessions reconciled at once (default: %(default)s)")
    run.add_argument("--priority", type=int, default=None,
                     help="peering priority; the highest is active, the others stand by (default: random, so "
                     "replicas never tie)")
    run.add_argument("--enable-tmux", action="store_true",
                     help="offer the tmux provider (agents run as this user on this host: development only)")
    run.add_argument("--tmux-reap-orphans", action="store_true",
                     help="kill tmux sessions of ours that no AgentSession owns (they are always reported)")
    run.add_argument("--tmux-workspace-root", metavar="DIR", help="where tmux sessions keep their workspaces")
    run.add_argument("--pod-security-level", choices=("restricted", "baseline", "privileged"), default="restricted",
                     help="Pod Security Standards level every session pod must meet; a namespace's "
                     "pod-security.kubernetes.io/enforce label may raise it, never lower it (default: %(default)s)")
    run.add_argument("--allow-service-account", action="append", metavar="NAME",
                     help="a ServiceAccount session pods may run as besides `default`, and mount the token of "
                     "(repeatable; list `default` to allow its token); default: none")
    run.add_argument("--session-network-policy", metavar="NAME",
                     help="keep a NetworkPolicy NAME in every namespace where a session pod runs (created before "
                     "the pod): the session runtimes admit only the peers below, on the runtime port; default: none")
    run.add_argument("--network-policy-peer-namespace", metavar="NS",
                     help="the namespace of the pods that may reach the session runtimes (the install's)")
    run.add_argument("--network-policy-peer-labels", action="append", metavar="KEY=VALUE[,KEY=VALUE...]",
                     help="labels of pods in --network-policy-peer-namespace that may reach the session runtimes "
                     "(repeatable: one per kind of pod, e.g. the gateway's and the operator's)")
    run.add_argument("--pod-default-request", action="append", metavar="NAME=QUANTITY",
                     help="default request of a resource the session's agent does not name, e.g. cpu=250m "
                     "(repeatable)")
    run.add_argument("--pod-default-limit", action="append", metavar="NAME=QUANTITY",
                     help="default limit of a resource the session's agent does not name, e.g. memory=4Gi "
                     "(repeatable)")
    run.add_argument("--http-platform", action="append", metavar="URL",
                     help="base URL of an http platform sessions may be sent to, with their Secrets "
                     "(repeatable; a session's spec.http.url must be under one, e.g. https://agents.example.com/v1); "
                     "default: none, every http session is refused")
    run.add_argument("--http-endpoint", action="append", metavar="URL",
                     help="base URL where an http platform's runtime endpoints may be besides the platform's own "
                     "origin (repeatable; port * for any, e.g. http://127.0.0.1:*); others are never fetched")
    from agent_sessions.gateway.cli import secret_ref

    run.add_argument("--runtime-key-secret", type=secret_ref, metavar="NAMESPACE/NAME",
                     help="the Secret holding the runtime key (created with a fresh key when missing): each "
                     "session runtime requires a token derived from it, which only the operator and the gateway "
                     "(given the same Secret) can compute. Default: a key kept in memory (runtimes protected, but "
                     "no gateway can reach them, and a restart orphans the tokens of running sessions)")
    run.add_argument("--shards", type=_positive, default=1, metavar="N",
                     help="split the sessions into N shards by a hash of namespace/name; each replica reconciles "
                     "the one shard it holds through the Lease <prefix>-shard-<i>, replicas beyond N stand by and "
                     "take over the shard of a replica that dies. Replaces kopf peering (default: 1, no Leases)")
    run.add_argument("--shard-lease-namespace", metavar="NS",
                     help="namespace of the shard Leases (default: this pod's namespace, else default)")
    run.add_argument("--shard-lease-prefix", default=DEFAULT_PEERING, metavar="NAME",
                     help="the shard Leases are NAME-shard-0 … NAME-shard-<N-1> (default: %(default)s)")
    run.add_argument("--shard-lease-duration", type=_positive, default=15, metavar="SECONDS",
                     help="a dead replica's shard is taken over this long after its last renewal, at most a fifth "
                     "more; holders renew every fifth of it (default: %(default)s)")
    peering = run.add_mutually_exclusive_group()
    peering.add_argument("--peering", default=None,
                         help=f"kopf peering name for HA: only one operator of the peering is active "
                         f"(default: {DEFAULT_PEERING}; none with --shards)")
    peering.add_argument("--standalone", action="store_true", help="no peering (a single operator, or development)")
    run.set_defaults(func=_cmd_run)

    add_dev_command(commands)

    from agent_sessions.cli.session_commands import add_session_commands
    from agent_sessions.gateway.cli import add_gateway_command
    from agent_sessions.runtime.cli import add_runtime_commands

    add_gateway_command(commands)
    add_runtime_commands(commands)
    add_provider_server_command(commands)
    add_conformance_command(commands)
    add_session_commands(commands)
    return parser


CLUSTER_COMMANDS = ("run", "gateway")
"""Commands outside `session_commands` that need a kubeconfig (or a pod's service account) to start."""


def main(argv: list[str] | None = None) -> int:
    """Runs one command; a failure the user can fix (no kubeconfig, a file named by a flag that
    cannot be read or written) is one `error:` line and exit code 1, not a traceback."""
    args = build_parser().parse_args(argv)
    from agent_sessions.cli.failures import CommandError, require_kubeconfig

    try:
        if args.command in CLUSTER_COMMANDS:
            require_kubeconfig(args.kubeconfig)
        return int(args.func(args))
    except CommandError as failure:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    except OSError as failure:
        if failure.filename is None:
            raise
        print(f"error: {failure.filename}: {failure.strerror or failure}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
