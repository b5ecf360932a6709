"""The `agent-sessions gateway` subcommand; `agent_sessions.cli.main` wires it in with
`add_gateway_command(commands)`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
from pathlib import Path
from typing import Any

from .options import (
    DEFAULT_BODY_TIMEOUT_SECONDS,
    DEFAULT_HEADER_TIMEOUT_SECONDS,
    DEFAULT_IDLE_TIMEOUT_SECONDS,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_METRICS_PORT,
    DEFAULT_PORT,
    DEFAULT_PROVIDERS,
    DEFAULT_RATE_LIMIT_BURST,
    DEFAULT_RATE_LIMIT_PER_SECOND,
    DEFAULT_STATUS_STREAMS_PER_CALLER,
    DEFAULT_WEBSOCKET_IDLE_SECONDS,
    GatewayOptions,
)

DESCRIPTION = (
    "Serve the session gateway: HTTP, SSE and WebSocket access to running AgentSessions for users "
    "authenticated by Kubernetes TokenReview and authorized by SubjectAccessReview (`get agentsessions` "
    "to read, `create agentsessions/messages` to send). Stateless: run as many replicas as needed. "
    "Endpoints: GET /v1/namespaces/{ns}/sessions[/{name}], GET /v1/namespaces/{ns}/sessions?watch=true "
    "(SSE: one event per session change; `watch agentsessions`), POST .../{name}/messages[?stream=true], "
    "GET .../{name}/events, POST .../{name}/cancel, GET .../{name}/config, POST .../{name}/stop|start|restart "
    "(done with the caller's own token), GET .../{name}/access, GET /v1/namespaces[/{ns}/access], GET /v1/whoami, "
    "GET /v1/ws, GET /v1/providers (the providers of --provider and their capabilities), /healthz, /readyz; "
    "the console at /. Prometheus /metrics on --metrics-port."
)


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


PROVIDER_TYPES = ("pod", "http", "tmux")
"""Every provider an operator can offer (`providers_api` answers for each)."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def namespace_name(text: str) -> str:
    """argparse type of `--namespace NS`."""
    if not _DNS_LABEL.match(text):
        raise argparse.ArgumentTypeError(f"not a namespace name: {text!r}")
    return text


def secret_ref(text: str) -> str:
    """argparse type of `--runtime-key-secret NAMESPACE/NAME` (shared with `agent-sessions run`)."""
    namespace, slash, name = text.partition("/")
    if not slash or not _DNS_LABEL.match(namespace) or not _DNS_SUBDOMAIN.match(name):
        raise argparse.ArgumentTypeError(f"expected NAMESPACE/NAME of a Secret, got {text!r}")
    return text


def add_gateway_command(commands: Any) -> None:
    """Register `gateway` on the `agent-sessions` subcommands (an argparse subparsers object)."""
    parser = commands.add_parser("gateway", help="serve HTTP/SSE/WebSocket access to sessions (stateless)",
                                 description=DESCRIPTION)
    parser.add_argument("--host", default="0.0.0.0", help="address to serve on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to serve on (default: %(default)s)")
    parser.add_argument("--metrics-port", type=int, default=DEFAULT_METRICS_PORT,
                        help="port of the Prometheus /metrics endpoint, apart from --port so that exposing the "
                        "gateway does not expose it; 0 disables (default: %(default)s)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config or in-cluster)")
    parser.add_argument("--max-message-bytes", type=_positive(int), default=DEFAULT_MAX_MESSAGE_BYTES, metavar="N",
                        help="largest message body accepted; larger ones get 413 message_too_large "
                        "(default: %(default)s)")
    parser.add_argument("--auth-cache-seconds", type=_non_negative, default=10.0, metavar="SECONDS",
                        help="how long TokenReview and SubjectAccessReview answers are reused; 0 disables "
                        "(default: %(default)s)")
    parser.add_argument("--keepalive-seconds", type=_positive(float), default=15.0, metavar="SECONDS",
                        help="SSE keep-alive comment / WebSocket ping interval (default: %(default)s)")
    parser.add_argument("--history-poll-seconds", type=_positive(float), default=1.0, metavar="SECONDS",
                        help="how often a tailed session's runtime history is polled when the runtime does not "
                        "long-poll (runtimes that do push new frames at once) (default: %(default)s)")
    parser.add_argument("--wake-timeout-seconds", type=_positive(float), default=120.0, metavar="SECONDS",
                        help="how long a message waits for a session woken from an idle stop (default: %(default)s)")
    parser.add_argument("--rate-limit", type=_non_negative, default=DEFAULT_RATE_LIMIT_PER_SECOND, metavar="PER_SECOND",
                        help="requests (and WebSocket subscribe/send/cancel frames) per second per caller on this "
                        "replica; over it: 429 rate_limited; 0 disables (default: %(default)s)")
    parser.add_argument("--rate-burst", type=_positive(int), default=DEFAULT_RATE_LIMIT_BURST, metavar="N",
                        help="requests a caller may make at once before --rate-limit applies (default: %(default)s)")
    parser.add_argument("--header-timeout-seconds", type=_positive(float), default=DEFAULT_HEADER_TIMEOUT_SECONDS,
                        metavar="SECONDS", help="a connection that has not sent a whole request head this long "
                        "after opening (or after the first byte of its next request) is closed (default: %(default)s)")
    parser.add_argument("--body-timeout-seconds", type=_positive(float), default=DEFAULT_BODY_TIMEOUT_SECONDS,
                        metavar="SECONDS", help="time to receive a whole message body; slower gets 408 "
                        "request_timeout (default: %(default)s)")
    parser.add_argument("--idle-timeout-seconds", type=_positive(float), default=DEFAULT_IDLE_TIMEOUT_SECONDS,
                        metavar="SECONDS", help="a kept-alive connection with no request is closed after this long "
                        "(default: %(default)s)")
    parser.add_argument("--websocket-idle-seconds", type=_non_negative, default=DEFAULT_WEBSOCKET_IDLE_SECONDS,
                        metavar="SECONDS", help="a WebSocket with no subscription, no turn in flight and no frame "
                        "from its client for this long is closed; 0: never (default: %(default)s)")
    parser.add_argument("--runtime-key-secret", type=secret_ref, metavar="NAMESPACE/NAME",
                        help="the Secret holding the runtime key the operator created (`agent-sessions run "
                        "--runtime-key-secret`); the gateway derives each session runtime's token from it, and is "
                        "not ready until it can read it. Without it, protected runtimes answer the gateway 401 "
                        "(503 provider_unavailable to its clients)")
    parser.add_argument("--provider", action="append", choices=PROVIDER_TYPES, metavar="TYPE", dest="providers",
                        help="a provider the operator of this installation offers, for GET /v1/providers "
                        "(repeatable; one of %(choices)s); default: " + " and ".join(DEFAULT_PROVIDERS)
                        + " (what `agent-sessions run` offers; add tmux when it runs with --enable-tmux)")
    parser.add_argument("--status-streams-per-caller", type=_non_negative_int,
                        default=DEFAULT_STATUS_STREAMS_PER_CALLER, metavar="N",
                        help="session-status streams (GET .../sessions?watch=true) one caller may hold open on this "
                        "replica; one more gets 429 rate_limited; 0: no limit (default: %(default)s)")
    parser.add_argument("--namespace", action="append", type=namespace_name, metavar="NS", dest="namespaces",
                        help="a namespace this installation serves (repeatable; e.g. the operator's watched "
                        "namespaces): what GET /v1/namespaces offers to callers who may list sessions there; "
                        "default: the namespaces holding AgentSessions (one cluster-wide list)")
    parser.add_argument("--operator-defaults", metavar="FILE",
                        help="the operator's --defaults YAML, to resolve lifecycle.wakeOnMessage as it does")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        help="log level (default: %(default)s); tokens and message contents are never logged")
    parser.set_defaults(func=run_from_args)


def options_from_args(args: argparse.Namespace) -> GatewayOptions:
    defaults: dict[str, Any] = {}
    if args.operator_defaults:
        import yaml

        defaults = yaml.safe_load(Path(args.operator_defaults).read_text(encoding="utf-8")) or {}
        if not isinstance(defaults, dict):
            raise SystemExit(f"{args.operator_defaults}: operator defaults must be a mapping of config blocks")
    return GatewayOptions(
        host=args.host,
        port=args.port,
        metrics_port=args.metrics_port or None,
        max_message_bytes=args.max_message_bytes,
        auth_cache_seconds=args.auth_cache_seconds,
        keepalive_seconds=args.keepalive_seconds,
        history_poll_seconds=args.history_poll_seconds,
        wake_timeout_seconds=args.wake_timeout_seconds,
        rate_limit_per_second=args.rate_limit,
        rate_limit_burst=args.rate_burst,
        header_timeout_seconds=args.header_timeout_seconds,
        body_timeout_seconds=args.body_timeout_seconds,
        idle_timeout_seconds=args.idle_timeout_seconds,
        websocket_idle_seconds=args.websocket_idle_seconds,
        operator_defaults=defaults,
        providers=tuple(dict.fromkeys(args.providers)) if args.providers else DEFAULT_PROVIDERS,
        status_streams_per_caller=args.status_streams_per_caller,
        namespaces=tuple(dict.fromkeys(args.namespaces or ())),
        runtime_key_secret=args.runtime_key_secret,
    )


def run_from_args(args: argparse.Namespace) -> int:
    from .server import run_gateway

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        asyncio.run(run_gateway(options_from_args(args), kubeconfig=args.kubeconfig))
    except KeyboardInterrupt:
        pass
    return 0
