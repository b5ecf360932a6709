"""`GET /v1/ws`: one WebSocket multiplexing many sessions (protocol in `ws_protocol`).

Authentication happens once, at the upgrade (a 401 JSON answer instead of the upgrade); every
`subscribe` is authorized as `get agentsessions` on that session and every `send`/`cancel` as
`create agentsessions/messages`, each when it arrives (answers cached for `auth_cache_seconds`).
A subscription, once authorized, lasts until unsubscribed or the socket closes.

Time bounds: a ping every `keepalive_seconds` (a peer that does not answer within half of that is
gone: the socket closes), and a socket with nothing going on — no subscription, no turn in flight,
no frame from the client for `websocket_idle_seconds` — is closed with 1000.

Isolation: everything the connection sends about a session goes through that session's
`SessionChannel`, which only ever carries frames read from that session's runtime and tags them
with that session's Kubernetes identity; sessions share nothing but the socket.

Exactly once, in order, with the request's id: a connection subscribed to a session that it also
sends to would otherwise see the turn twice (from its subscription's feed and from the turn's own
stream). While a send is in flight the channel holds back the feed's frames; the turn's frames go
out from the stream, carrying the send's `id`; older frames the feed had not delivered yet are
delivered first (fetched from history if needed); when the turn ends the held frames are released,
and those already sent are dropped by seq. Each seq reaches the client once per session, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from functools import partial
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from agent_sessions.wire.frames import Frame, frame_seq
from agent_sessions.wire.message_request import too_large
from agent_sessions.wire.session_ref import SessionRef

from . import metrics
from .authn import Caller, bearer_token
from .authz import READ, SEND
from .errors import INVALID_REQUEST, GatewayError, invalid_message
from .service import SERVICE, GatewayService
from .ws_protocol import (
    Cancel,
    ClientFrame,
    Ping,
    ProtocolError,
    RequestId,
    Send,
    Subscribe,
    Unsubscribe,
    control_frame,
    error_frame,
    event_frame,
    parse_client_frame,
)

logger = logging.getLogger(__name__)

SUBPROTOCOL = "agent-sessions.v1"
"""Selected when offered; a browser passing its token as a subprotocol must offer it too."""
FRAME_OVERHEAD = 64 * 1024
SOCKETS: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("sockets", weakref.WeakSet)
_dumps = partial(json.dumps, ensure_ascii=False)


class SessionChannel:
    """What one connection has going on with one session."""

    def __init__(self, connection: Connection, namespace: str, name: str) -> None:
        self.connection = connection
        self.ref = SessionRef(namespace, name)
        self.endpoint: str | None = None
        self.subscription: asyncio.Task[None] | None = None
        self.subscribed = False
        self.delivered = 0
        """The highest seq sent to the client for this session."""
        self.sending = 0
        self.held: list[Frame] = []
        self.opened = asyncio.Event()
        """Set once the current subscription knows where it starts (or has failed)."""

    @property
    def idle(self) -> bool:
        return self.subscription is None and self.sending == 0

    async def emit(self, frame: Frame, request_id: RequestId = None, *, own: bool = False) -> None:
        """Send a frame unless its seq was sent already. A send's `own` frames always go: while it
        streams, they are the only source of the turn's frames (the feed's are held), so what is
        deduplicated is the feed's copy, later."""
        seq = frame_seq(frame)
        if seq is not None:
            if seq <= self.delivered and not own:
                return
            self.delivered = max(self.delivered, seq)
        await self.connection.write(event_frame(frame, request_id))

    async def from_feed(self, frame: Frame) -> None:
        if self.sending:
            self.held.append(frame)
        else:
            await self.emit(frame)

    async def before_turn(self, first_seq: int | None) -> None:
        """The turn's first frame is here: deliver what the subscription owes from before it (the
        subscription, if one was asked for, first settles where it starts)."""
        if self.subscription is not None:
            await self.opened.wait()
        if first_seq is None or not self.subscribed:
            return
        earlier = [frame for frame in self.held if (frame_seq(frame) or 0) < first_seq]
        self.held = [frame for frame in self.held if (frame_seq(frame) or 0) >= first_seq]
        for frame in earlier:
            await self.emit(frame)
        if self.endpoint is not None and self.delivered < first_seq - 1:
            service = self.connection.service
            try:
                items, _ = await service.runtime.history(self.endpoint, self.ref, self.delivered,
                                                         first_seq - 1 - self.delivered)
            except GatewayError as exc:  # the reply matters more than the backlog: go on without it
                logger.info("could not fill %s up to seq %d: %s", self.ref, first_seq, exc.message)
                items = []
            for frame in items:
                if (frame_seq(frame) or 0) < first_seq:
                    await self.emit(frame)

    async def after_turn(self) -> None:
        if self.sending:
            return
        held, self.held = self.held, []
        for frame in held:
            await self.emit(frame)


class Connection:
    def __init__(self, service: GatewayService, caller: Caller, ws: web.WebSocketResponse) -> None:
        self.service = service
        self.caller = caller
        self.ws = ws
        self.channels: dict[tuple[str, str], SessionChannel] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._write_lock = asyncio.Lock()

    async def write(self, frame: dict[str, Any]) -> None:
        if self.ws.closed:
            return
        async with self._write_lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(_dumps(frame))

    async def run(self) -> None:
        idle = self.service.options.websocket_idle_seconds
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            # The deadline is ours, not `receive(timeout=)`'s: that one restarts on every pong,
            # and a browser answers pings by itself.
            try:
                async with asyncio.timeout_at(last + idle if idle > 0 else None):
                    message = await self.ws.receive()
            except TimeoutError:
                last = loop.time()
                if self.channels:  # subscribed or sending: a quiet client is fine
                    continue
                await self.ws.close(code=WSCloseCode.OK, message=f"idle for {idle:g}s".encode())
                break
            last = loop.time()
            if message.type == WSMsgType.TEXT:
                await self.receive(message.data)
            elif message.type == WSMsgType.BINARY:
                await self.write(error_frame(GatewayError(INVALID_REQUEST, "frames must be JSON text")))
            elif message.type in (WSMsgType.ERROR, WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                break

    async def close(self) -> None:
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for channel in self.channels.values():
            if channel.subscription is not None:
                channel.subscription.cancel()

    def _spawn(self, coroutine: Any) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def _channel(self, namespace: str, name: str) -> SessionChannel:
        channel = self.channels.get((namespace, name))
        if channel is None:
            channel = self.channels[(namespace, name)] = SessionChannel(self, namespace, name)
        return channel

    def _forget_if_idle(self, channel: SessionChannel) -> None:
        if channel.idle and self.channels.get(channel.ref.key) is channel:
            del self.channels[channel.ref.key]

    async def receive(self, text: str) -> None:
        limit = self.service.options.max_message_bytes
        if len(text) > limit or (4 * len(text) > limit and len(text.encode()) > limit):
            request_id = _peek_id(text)
            await self.write(error_frame(invalid_message(too_large(len(text.encode()), limit)), request_id))
            return
        try:
            frame = parse_client_frame(text)
        except ProtocolError as exc:
            await self.write(error_frame(exc, exc.request_id))
            return
        if isinstance(frame, Ping):
            await self.write(control_frame("pong", None, frame.id))
            return
        if isinstance(frame, Unsubscribe):
            await self.unsubscribe(frame)
            return
        request_id = frame.id if isinstance(frame, (Send, Cancel)) else None
        try:
            self.service.rate_limit(self.caller)
        except GatewayError as exc:
            await self.write(error_frame(exc, request_id, SessionRef(frame.namespace, frame.name).to_json()))
            return
        self.dispatch(frame)

    def dispatch(self, frame: ClientFrame) -> None:
        """Start the frame's work; state that orders later frames is changed before returning."""
        if isinstance(frame, Subscribe):
            channel = self._channel(frame.namespace, frame.name)
            if channel.subscription is not None:
                channel.subscription.cancel()
            channel.subscribed = True
            channel.opened = asyncio.Event()
            channel.subscription = self._spawn(self.subscribe(channel, frame))
        elif isinstance(frame, Send):
            channel = self._channel(frame.namespace, frame.name)
            channel.sending += 1
            self._spawn(self.send(channel, frame))
        elif isinstance(frame, Cancel):
            self._spawn(self.cancel(frame))

    async def subscribe(self, channel: SessionChannel, frame: Subscribe) -> None:
        me = asyncio.current_task()
        opened = channel.opened
        try:
            async with contextlib.AsyncExitStack() as held:
                await self.service.authorize(self.caller, READ, frame.namespace, frame.name)
                tail, start = await self.service.open_tail(held, self.caller, frame.namespace, frame.name,
                                                           frame.after_seq)
                channel.ref, channel.endpoint = tail.session, tail.endpoint
                # An explicit after_seq is a request to replay from there; without one, only frames
                # this connection has not had yet.
                channel.delivered = start if frame.after_seq is not None else max(channel.delivered, start)
                await self.write(control_frame("subscribed", tail.session.to_json(), after_seq=start))
                opened.set()
                async for item in tail.frames():
                    await channel.from_feed(item)
        except GatewayError as exc:
            await self.write(error_frame(exc, None, channel.ref.to_json()))
        finally:
            opened.set()
            if channel.subscription is me:
                channel.subscription = None
                channel.subscribed = False
                self._forget_if_idle(channel)

    async def unsubscribe(self, frame: Unsubscribe) -> None:
        channel = self.channels.get((frame.namespace, frame.name))
        ref = channel.ref if channel is not None else SessionRef(frame.namespace, frame.name)
        if channel is not None and channel.subscription is not None:
            task, channel.subscription, channel.subscribed = channel.subscription, None, False
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._forget_if_idle(channel)
        await self.write(control_frame("unsubscribed", ref.to_json()))

    async def send(self, channel: SessionChannel, frame: Send) -> None:
        started = asyncio.get_running_loop().time()
        code = "ok"
        try:
            await self.service.authorize(self.caller, SEND, frame.namespace, frame.name)
            message = self.service.owned_message(self.caller, frame.message)
            first = True
            async with contextlib.AsyncExitStack() as turn:
                ref, endpoint, frames = await self.service.open_turn(turn, self.caller, frame.namespace, frame.name,
                                                                     message)
                channel.ref, channel.endpoint = ref, endpoint
                async for item in frames:
                    self.service.feeds.publish(ref, endpoint, item)
                    if first:
                        await channel.before_turn(frame_seq(item))
                        first = False
                    await channel.emit(item, frame.id, own=True)
                    if item.get("event") == "error":
                        code = str(item.get("code") or "error")
        except GatewayError as exc:
            code = exc.code
            await self.write(error_frame(exc, frame.id, channel.ref.to_json()))
        except asyncio.CancelledError:
            code = "client_closed"
            raise
        finally:
            metrics.MESSAGES.labels(code).inc()
            metrics.MESSAGE_SECONDS.labels("websocket").observe(asyncio.get_running_loop().time() - started)
            channel.sending -= 1
            if not self.ws.closed:
                await channel.after_turn()
            self._forget_if_idle(channel)

    async def cancel(self, frame: Cancel) -> None:
        ref = SessionRef(frame.namespace, frame.name)
        try:
            await self.service.authorize(self.caller, SEND, frame.namespace, frame.name)
            result = await self.service.cancel(self.caller, frame.namespace, frame.name)
            await self.write(control_frame("cancelled", result["session"], frame.id,
                                           cancelled=bool(result.get("cancelled"))))
        except GatewayError as exc:
            await self.write(error_frame(exc, frame.id, ref.to_json()))


def _peek_id(text: str) -> RequestId:
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        value = json.loads(text).get("id")
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return value
    return None


async def websocket(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    caller = await service.caller(bearer_token(request.headers, offered))
    ws = web.WebSocketResponse(heartbeat=service.options.keepalive_seconds, protocols=(SUBPROTOCOL,),
                               max_msg_size=service.options.max_message_bytes + FRAME_OVERHEAD)
    if not ws.can_prepare(request).ok:
        raise GatewayError(INVALID_REQUEST, "expected a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)")
    await ws.prepare(request)
    connection = Connection(service, caller, ws)
    request.app[SOCKETS].add(ws)
    metrics.OPEN_STREAMS.labels("websocket").inc()
    try:
        await connection.run()
    finally:
        metrics.OPEN_STREAMS.labels("websocket").dec()
        request.app[SOCKETS].discard(ws)
        await connection.close()
    return ws


async def close_sockets(app: web.Application) -> None:
    """On shutdown: close open sockets with 1001 (going away); clients reconnect elsewhere."""
    for ws in list(app[SOCKETS]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"gateway shutting down")

