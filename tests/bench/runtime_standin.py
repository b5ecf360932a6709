"""A stand-in for every session's runtime bridge on the bench's fake node (not a test).

    python tests/bench/runtime_standin.py PORT

The fake node gives pods loopback addresses (127.0.x.y) and runs no process, so without this no
runtime answers: the operator then reads every session's log tail at every refresh (no
`outputMark`) and never backs its info polling off — costs a real installation does not have.
This answers `GET /v1/info` (and `/healthz`) on every loopback address at PORT as an idle bridge
whose log never changes does, for whichever session asks; it counts the requests and prints the
count on SIGTERM. Tokens are not checked: it stands in for the bridge's answers, not its security.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiohttp import web

INFO = {
    "session": None, "acpSessionId": "standin", "openedWith": "session/new", "agent": None, "state": "idle",
    "agentStart": {"state": "started"}, "sessionInfo": {}, "lastActivityTime": None, "messageCount": 0,
    "lastSeq": 0, "health": {"status": "ok"}, "capabilities": {}, "outputMark": "standin:0",
}


async def serve(port: int) -> None:
    counts = {"info": 0, "other": 0}

    async def info(request: web.Request) -> web.Response:
        counts["info"] += 1
        return web.json_response(INFO)

    async def other(request: web.Request) -> web.Response:
        counts["other"] += 1
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/v1/info", info)
    app.router.add_route("*", "/{tail:.*}", other)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    print(f"runtime stand-in on :{port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    print(f"runtime stand-in answered {counts['info']} info and {counts['other']} other requests", flush=True)
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
