"""A fake runtime bridge: just the HTTP contract of §7, with canned streamed replies.

One aiohttp server hosts many sessions, each under its own path prefix (`/<sid>`), which is also
how the gateway is told the endpoint (`http://127.0.0.1:<port>/<sid>`). Each reply echoes the
session id and the prompt in three chunks, so a test can tell whose reply it sees. The runtime
claims a wrong identity on purpose (`RUNTIME_CLAIM`): the gateway must replace it with the
Kubernetes one.
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

RUNTIME_CLAIM = {"namespace": "not-the-namespace", "name": "not-the-name", "uid": "runtime-made-up"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class FakeSession:
    sid: str
    history: list[dict[str, Any]] = field(default_factory=list)
    reply_delay: float = 0.0
    """Seconds of silence before the reply starts (a long, quiet agent turn)."""
    chunk_delay: float = 0.01
    hold: bool = False
    """The turn stops after its first chunk until cancelled (or `release`d)."""
    turn: asyncio.Task | None = None
    queues: list[asyncio.Queue] = field(default_factory=list)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[str] = field(default_factory=list)
    """Paths of the requests this session got."""

    @property
    def last_seq(self) -> int:
        return self.history[-1]["seq"] if self.history else 0

    def record(self, event: str, body: dict[str, Any]) -> dict[str, Any]:
        frame = {"seq": self.last_seq + 1, "event": event, "time": "2025-01-01T00:00:00Z", **body}
        self.history.append(frame)
        for queue in self.queues:
            queue.put_nowait(frame)
        return frame

    def start_turn(self, text: str, message_id: str | None = None) -> asyncio.Task:
        """Like the runtime: the user's message first, with its id (`messageId`) when it has one."""
        self.cancelled.clear()
        update: dict[str, Any] = {"sessionUpdate": "user_message", "content": [{"type": "text", "text": text}]}
        if message_id is not None:
            update["messageId"] = message_id
        self.record("user_message", {"update": update})
        self.turn = asyncio.create_task(self._run(text))
        return self.turn

    async def _run(self, text: str) -> dict[str, Any]:
        try:
            if self.reply_delay:
                await asyncio.sleep(self.reply_delay)
            reply = f"{self.sid} heard: {text}"
            third = max(1, len(reply) // 3)
            parts = [reply[:third], reply[third:2 * third], reply[2 * third:]]
            for index, part in enumerate(parts):
                await asyncio.sleep(self.chunk_delay)
                self.record("agent_message_chunk", {"update": {"sessionUpdate": "agent_message_chunk",
                                                               "content": {"type": "text", "text": part}}})
                if index == 0 and self.hold:
                    cancelled = asyncio.create_task(self.cancelled.wait())
                    released = asyncio.create_task(self.released.wait())
                    await asyncio.wait({cancelled, released}, return_when=asyncio.FIRST_COMPLETED)
                    cancelled.cancel()
                    released.cancel()
                if self.cancelled.is_set():
                    return self.record("done", {"stopReason": "cancelled", "usage": None})
            return self.record("done", {"stopReason": "end_turn", "usage": {"inputTokens": 3, "outputTokens": 5}})
        finally:
            self.turn = None


class FakeRuntime:
    def __init__(self) -> None:
        self.sessions: dict[str, FakeSession] = {}
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.tokens: dict[str, str] = {}
        """sid → the bearer token its endpoints but healthz require, as a session runtime does."""
        self.refused: list[str] = []
        """Paths answered 401 for a missing or wrong token."""

    def require_token(self, sid: str, token: str) -> None:
        self.tokens[sid] = token

    def add(self, sid: str, **options: Any) -> FakeSession:
        self.sessions[sid] = FakeSession(sid, **options)
        return self.sessions[sid]

    def endpoint(self, sid: str) -> str:
        return f"http://127.0.0.1:{self.port}/{sid}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{sid}/healthz", self.healthz)
        app.router.add_get("/{sid}/v1/info", self.info)
        app.router.add_post("/{sid}/v1/messages", self.messages)
        app.router.add_get("/{sid}/v1/history", self.history_items)
        app.router.add_post("/{sid}/v1/cancel", self.cancel)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        for session in self.sessions.values():
            if session.turn is not None:
                session.turn.cancel()
        if self.runner is not None:
            await self.runner.cleanup()

    def _session(self, request: web.Request) -> FakeSession:
        sid = request.match_info["sid"]
        session = self.sessions.get(sid)
        if session is None:
            raise web.HTTPNotFound()
        token = self.tokens.get(sid)
        if token is not None and not request.path.endswith("/healthz") \
                and request.headers.get("Authorization") != f"Bearer {token}":
            self.refused.append(request.path)
            raise web.HTTPUnauthorized(text='{"code": "unauthorized", "message": "no token"}',
                                       content_type="application/json")
        session.requests.append(request.path)
        return session

    async def healthz(self, request: web.Request) -> web.Response:
        self._session(request)
        return web.json_response({"ok": True})

    async def info(self, request: web.Request) -> web.Response:
        session = self._session(request)
        return web.json_response({"session": RUNTIME_CLAIM, "state": "busy" if session.turn else "idle",
                                  "lastSeq": session.last_seq, "sessionInfo": {"title": None}})

    async def history_items(self, request: web.Request) -> web.Response:
        session = self._session(request)
        after = int(request.query.get("after_seq") or 0)
        limit = int(request.query.get("limit") or 0)
        items = [dict(frame, session=RUNTIME_CLAIM) for frame in session.history if frame["seq"] > after]
        if limit:
            items = items[:limit]
        return web.json_response({"session": RUNTIME_CLAIM, "items": items, "lastSeq": session.last_seq})

    async def cancel(self, request: web.Request) -> web.Response:
        session = self._session(request)
        running = session.turn is not None
        if running:
            session.cancelled.set()
        return web.json_response({"session": RUNTIME_CLAIM, "cancelled": running})

    async def messages(self, request: web.Request) -> web.StreamResponse:
        session = self._session(request)
        body = await request.json()
        if "text" not in body:
            return web.json_response({"code": "invalid_request", "message": "missing text", "session": RUNTIME_CLAIM},
                                     status=422)
        if session.turn is not None:
            return web.json_response({"code": "session_busy", "message": "a turn is running",
                                      "session": RUNTIME_CLAIM}, status=409)
        queue: asyncio.Queue = asyncio.Queue()
        session.queues.append(queue)
        try:
            turn = session.start_turn(body["text"], body.get("id"))
            if request.query.get("stream") != "true":
                done = await turn
                chunks = [f["update"]["content"]["text"] for f in session.history
                          if f["event"] == "agent_message_chunk" and f["seq"] < done["seq"]]
                text = "".join(chunks[-3:])
                return web.json_response({"session": RUNTIME_CLAIM, "seq": done["seq"],
                                          "stopReason": done["stopReason"], "text": text,
                                          "content": [{"type": "text", "text": text}], "usage": done["usage"]})
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            while True:
                frame = await queue.get()
                data = json.dumps({"session": RUNTIME_CLAIM, **frame})
                await response.write(f"id: {frame['seq']}\nevent: {frame['event']}\ndata: {data}\n\n".encode())
                await response.write(b": keep-alive\n\n")
                if frame["event"] in ("done", "error"):
                    break
            await response.write_eof()
            return response
        finally:
            session.queues.remove(queue)
