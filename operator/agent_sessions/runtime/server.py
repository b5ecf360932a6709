"""Running the bridge: HTTP up first (so probes get an answer while the agent starts), then
serve until SIGTERM/SIGINT, then stop the agent and the server in that order (the running
turn's stream gets its final `error` frame before the connection closes)."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from .bridge import RuntimeBridge
from .http_api import build_app
from .options import RuntimeOptions

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 5.0


async def serve(options: RuntimeOptions, *, stop: asyncio.Event | None = None) -> None:
    """Serve one session until `stop` is set (default: until SIGTERM, SIGINT or SIGHUP — the
    last is what a tmux session's processes get when it is killed, or a terminal when closed)."""
    loop = asyncio.get_running_loop()
    if stop is None:
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(signum, stop.set)
    bridge = RuntimeBridge(options)
    runner = web.AppRunner(build_app(bridge), access_log=None, shutdown_timeout=SHUTDOWN_GRACE_SECONDS)
    await runner.setup()
    try:
        await web.TCPSite(runner, options.host, options.port).start()
        logger.info("runtime listening on %s:%s (protocol %s)", options.host, options.port, options.protocol)
        await bridge.start()
        await stop.wait()
        logger.info("runtime stopping")
    finally:
        await bridge.close()
        await runner.cleanup()
