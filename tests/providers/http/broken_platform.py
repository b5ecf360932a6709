"""A platform that gets two things wrong, for proving the conformance kit catches them:
every PUT creates a new session (201, new `createdAt`), and DELETE of an unknown id answers 500.
Everything else follows the contract, so exactly two checks must fail."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

CAPABILITIES = {"streaming": True, "history": True, "logs": True, "resume": True, "cancel": True,
                "resourceLimits": False}


def build_app(url: list[str]) -> web.Application:
    sessions: dict[str, dict[str, Any]] = {}
    created = itertools.count(1)

    def missing(session_id: str) -> web.Response:
        return web.json_response({"code": "session_not_found", "message": f"no session {session_id}"}, status=404)

    def view(session_id: str) -> dict[str, Any]:
        record = sessions[session_id]
        running = record["state"] == "Running"
        return {"id": session_id, "state": record["state"], "ready": running,
                "endpoint": url[0] + "/runtime" if running else None, "createdAt": record["createdAt"],
                "session": record["session"], "configHash": record.get("configHash"), "restarts": 0}

    async def put(request: web.Request) -> web.Response:
        session_id = request.match_info["id"]
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"code": "invalid_configuration", "message": "not JSON"}, status=400)
        agent = body.get("agent") or {}
        if "command" in agent and not isinstance(agent["command"], list):
            return web.json_response({"code": "invalid_configuration", "message": "agent.command"}, status=422)
        existing = sessions.get(session_id)
        if existing and existing["session"].get("namespace") != (body.get("session") or {}).get("namespace"):
            return web.json_response({"code": "session_already_exists", "message": "taken"}, status=409)
        # Wrong: a new session on every PUT.
        sessions[session_id] = {"state": "Running", "createdAt": f"2025-01-01T00:00:{next(created):02d}Z",
                                "session": body.get("session") or {}, "configHash": body.get("configHash")}
        return web.json_response(view(session_id), status=201)

    async def get(request: web.Request) -> web.Response:
        session_id = request.match_info["id"]
        return web.json_response(view(session_id)) if session_id in sessions else missing(session_id)

    def transition(state: str):
        async def handler(request: web.Request) -> web.Response:
            session_id = request.match_info["id"]
            if session_id not in sessions:
                return missing(session_id)
            sessions[session_id]["state"] = state
            return web.json_response(view(session_id))
        return handler

    async def delete(request: web.Request) -> web.Response:
        session_id = request.match_info["id"]
        if session_id not in sessions:  # Wrong: must be 404 (or 2xx)
            return web.json_response({"code": "provider_unavailable", "message": "internal error"}, status=500)
        del sessions[session_id]
        return web.Response(status=204)

    async def logs(request: web.Request) -> web.Response:
        session_id = request.match_info["id"]
        return web.Response(text="", content_type="text/plain") if session_id in sessions else missing(session_id)

    async def capabilities(request: web.Request) -> web.Response:
        return web.json_response(CAPABILITIES)

    async def runtime(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/v1/capabilities", capabilities)
    app.router.add_post("/v1/sessions/{id:[^/:]+}:start", transition("Running"))
    app.router.add_post("/v1/sessions/{id:[^/:]+}:stop", transition("Stopped"))
    app.router.add_get("/v1/sessions/{id:[^/:]+}/logs", logs)
    app.router.add_put("/v1/sessions/{id:[^/:]+}", put)
    app.router.add_get("/v1/sessions/{id:[^/:]+}", get)
    app.router.add_delete("/v1/sessions/{id:[^/:]+}", delete)
    app.router.add_get("/runtime/healthz", runtime)
    app.router.add_get("/runtime/v1/info", runtime)
    return app


@contextmanager
def running_broken_platform() -> Iterator[str]:
    """Serve it in a thread; yields its base URL."""
    loop = asyncio.new_event_loop()
    url: list[str] = [""]
    runner = web.AppRunner(build_app(url), access_log=None)
    started = threading.Event()

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url[0] = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        started.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield url[0]
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
