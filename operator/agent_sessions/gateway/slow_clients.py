"""Closing connections whose clients are too slow to be worth serving (slowloris and kin).

aiohttp bounds a connection's idle keep-alive time, but not the time a client takes to send a
request head: a client that opens a connection and sends one header byte every few seconds holds
a connection (and a file descriptor) for as long as the idle timeout, and many of them exhaust the
replica. `HeadDeadlineHandler` adds the missing bound: a request head (request line and headers)
must be complete within `header_timeout` of the connection opening, or of the first byte of the
next request on a kept-alive connection; otherwise the connection is closed. Once the head is in,
the handler owns the time: bodies are read under their own deadline (`http_api`, 408), WebSockets
and event streams under theirs (`websocket`, keep-alives).

`GatewaySite` is aiohttp's `TCPSite` serving connections with this handler. Both rely on
aiohttp's connection handler internals (`RequestHandler` in aiohttp 3.x, pinned in
constraints.txt); tests/security/test_gateway.py holds a real slowloris connection against them,
so an aiohttp upgrade that breaks them fails there.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler


class HeadDeadlineHandler(RequestHandler):
    """aiohttp's connection handler, closing the connection when a request head is late."""

    def __init__(self, manager: web.Server, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.header_timeout = header_timeout
        self.head_deadline: asyncio.TimerHandle | None = None

    def waiting_for_head(self) -> bool:
        """No request is parsed, queued, being handled or upgraded: bytes now are a head's."""
        return (self.transport is not None and not self._messages and not self._request_in_progress
                and not self._upgraded and self._payload_parser is None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        waiting = self.waiting_for_head()
        super().data_received(data)
        if not self.waiting_for_head():
            self._disarm()
        elif waiting and data:
            self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self.head_deadline is None and self.header_timeout > 0:
            self.head_deadline = self._loop.call_later(self.header_timeout, self._head_late)

    def _disarm(self) -> None:
        if self.head_deadline is not None:
            self.head_deadline.cancel()
            self.head_deadline = None

    def _head_late(self) -> None:
        self.head_deadline = None
        if self.waiting_for_head():
            self.log_debug("closing a connection whose request head took over %ss", self.header_timeout)
            self.force_close()


class GatewaySite(web.TCPSite):
    """A `TCPSite` whose connections are `HeadDeadlineHandler`s (with the idle keep-alive bound)."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, header_timeout: float,
                 idle_timeout: float) -> None:
        super().__init__(runner, host, port)
        self.handler_options = {"header_timeout": header_timeout, "keepalive_timeout": idle_timeout}

    def connection(self) -> HeadDeadlineHandler:
        server = self._runner.server
        assert server is not None
        return HeadDeadlineHandler(server, loop=asyncio.get_running_loop(), **self.handler_options)

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self.connection, self._host, self._port,
                                                backlog=self._backlog)
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
