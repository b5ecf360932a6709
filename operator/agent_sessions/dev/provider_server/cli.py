"""`agent-sessions provider-server`: serves the reference platform until SIGTERM or SIGINT. The
command line is defined in `agent_sessions.cli.dev`, which imports this only when the command runs."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal


def run_from_args(args: argparse.Namespace) -> int:
    from .server import ProviderServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # SIGHUP: its terminal was closed
            loop.add_signal_handler(signum, stop.set)
        server = ProviderServer(host=args.host, port=args.port, state=args.state, tokens=args.token or (),
                                workdir=args.workdir)
        async with server:
            auth = "bearer token required" if args.token else "no authentication"
            print(f"provider-server listening on {server.url} ({auth}; workdir {server.workdir})", flush=True)
            await stop.wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return 0
