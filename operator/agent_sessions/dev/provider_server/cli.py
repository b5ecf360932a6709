"""`agent-sessions provider-server`; `agent_sessions.cli.main` wires it in with
`add_provider_server_command(commands)`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import Any

DESCRIPTION = (
    "Serve the reference implementation of the http provider contract (docs/provider-http.md): each "
    "session runs the runtime bridge and its agent (agent.command from the PUT body, default the demo "
    "agent) as local processes on 127.0.0.1, and reports the bridge's URL as the session's endpoint. "
    "Admin API for tests: GET /v1/admin/stats, POST|GET|DELETE /v1/admin/faults, GET /v1/admin/requests, "
    "POST /v1/admin/hold. Runs agents as the current user: a development tool, not a platform."
)


def add_provider_server_command(commands: Any) -> None:
    """Register `provider-server` on the `agent-sessions` subcommands (an argparse subparsers object)."""
    parser = commands.add_parser("provider-server", help="serve the reference external agent platform (http provider)",
                                 description=DESCRIPTION)
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
    parser.set_defaults(func=run_from_args)


def run_from_args(args: argparse.Namespace) -> int:
    from .server import ProviderServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
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
