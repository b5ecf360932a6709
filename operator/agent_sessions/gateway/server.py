"""Running the gateway: the aiohttp application, in-process (tests, `agent-sessions dev`) or as
the `agent-sessions gateway` process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from kubernetes_asyncio import client

from agent_sessions import __version__
from agent_sessions.k8s.client import make_api_client
from agent_sessions.wire import tracing

from .http_api import add_routes, json_errors, metrics_app
from .options import GatewayOptions
from .service import SERVICE, GatewayService
from .slow_clients import GatewaySite
from .websocket import SOCKETS, close_sockets

logger = logging.getLogger(__name__)

SHUTDOWN_SECONDS = 10.0
GATEWAY_USER_AGENT = f"agent-session-gateway/{__version__}"
UNTRACED = frozenset({"/healthz", "/readyz"})


def build_app(service: GatewayService) -> web.Application:
    # Message bodies are read and limited by the handlers (`wire.message_request.read_limited`), so that
    # 413 comes in the gateway's error shape.
    # A span per request while tracing is on (wire.tracing), continuing the caller's trace.
    app = web.Application(middlewares=[tracing.request_spans(UNTRACED), json_errors])
    app[SERVICE] = service
    app[SOCKETS] = weakref.WeakSet()
    app.on_shutdown.append(close_sockets)
    add_routes(app)
    return app


@dataclass(frozen=True)
class RunningGateway:
    url: str
    """Base URL, e.g. `http://127.0.0.1:8081`."""
    service: GatewayService
    metrics_url: str | None = None
    """Base URL of the metrics listener (`/metrics` under it), if there is one."""


def base_url(runner: web.AppRunner) -> str:
    host, port = runner.addresses[0][:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"


@contextlib.asynccontextmanager
async def serve_gateway(options: GatewayOptions, api: client.ApiClient) -> AsyncIterator[RunningGateway]:
    """Serve the gateway in the running loop (`options.port` 0 = a free port) until exit.

    `handler_cancellation` is on: when a client goes away, its handler is cancelled and so is the
    upstream request to the runtime (the agent's turn itself goes on: only a cancel stops it).
    The runtime key is read in the background (`GatewayService.keep_runtime_key`): `/readyz` says
    not ready until it is held. Connections are bounded in time (`slow_clients`): a request head within `header_timeout_seconds`,
    no longer than `idle_timeout_seconds` idle between requests.
    """
    connector = aiohttp.TCPConnector(limit=0, enable_cleanup_closed=True)
    http = aiohttp.ClientSession(connector=connector, headers={"User-Agent": GATEWAY_USER_AGENT})
    service = GatewayService(options, api, http)
    if not options.runtime_key_secret:
        logger.warning("no --runtime-key-secret: calls to session runtimes carry no token, and runtimes "
                       "started by the operator refuse them")
    key_reader: asyncio.Task[None] | None = None
    if not await service.read_runtime_key_once():  # usually there already: ready at once
        logger.info("not ready until the runtime key Secret %s can be read", options.runtime_key_secret)
        key_reader = asyncio.create_task(service.keep_runtime_key(), name="runtime key")
    runner = web.AppRunner(build_app(service), handle_signals=False, handler_cancellation=True,
                           shutdown_timeout=SHUTDOWN_SECONDS)
    metrics = web.AppRunner(metrics_app(), handle_signals=False, access_log=None) \
        if options.metrics_port is not None else None
    await runner.setup()
    try:
        site = GatewaySite(runner, options.host, options.port, header_timeout=options.header_timeout_seconds,
                           idle_timeout=options.idle_timeout_seconds)
        await site.start()
        if metrics is not None:
            await metrics.setup()
            await web.TCPSite(metrics, options.host, options.metrics_port).start()
        yield RunningGateway(base_url(runner), service, base_url(metrics) if metrics is not None else None)
    finally:
        if key_reader is not None:
            key_reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await key_reader
        await service.close()
        await runner.cleanup()
        if metrics is not None:
            await metrics.cleanup()
        await http.close()


async def run_gateway(options: GatewayOptions, kubeconfig: str | None = None) -> None:
    """The `agent-sessions gateway` process: serve until SIGTERM/SIGINT."""
    tracing.configure("agent-sessions-gateway")
    api = await make_api_client(kubeconfig)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        async with serve_gateway(options, api) as running:
            logger.info("gateway serving on %s%s", running.url,
                        f", /metrics on {running.metrics_url}" if running.metrics_url else "")
            await stop.wait()
            logger.info("gateway stopping")
    finally:
        await api.close()
