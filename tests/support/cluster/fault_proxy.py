"""A fault-injecting reverse proxy in front of the real kube-apiserver.

Why: the resilience tests make the API fail on purpose (500s on a status patch, 409s on a
finalizer patch, watches dropped mid-stream). The embedded API does that itself
(`fail_next`, `drop_watches`); a real kube-apiserver cannot, so the operator under test talks to
the real server through this proxy, which can answer the next matching requests with an error
instead of forwarding them, and can cut every open watch. Everything else passes through
untouched, streams included (watch events are relayed as they arrive), with the caller's own
credentials: the audit log still records the caller as the user.

It serves plain HTTP on loopback (the operator's kubeconfig points at it) and speaks HTTPS to the
apiserver, verifying it with the cluster CA. It runs its own event loop in a thread.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from agent_sessions.dev.api_faults import FaultPlan

_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "content-length",
})


@dataclass(frozen=True)
class InjectedResponse:
    """A request the proxy answered with a fault (the apiserver never saw it)."""

    received: float
    method: str
    path: str
    status: int
    user_agent: str


class FaultProxy:
    """``start()``/``stop()``; ``url`` once started; ``fail_next`` and ``drop_watches`` as on
    the embedded API (`StrictKubernetesAPI`), so the same tests run on both backends."""

    def __init__(self, upstream: str, ca_file: str | Path) -> None:
        self.upstream = upstream.rstrip("/")
        self._ssl = ssl.create_default_context(cafile=str(ca_file))
        self._faults = FaultPlan()
        self._watches: set[asyncio.Event] = set()
        self.injected: list[InjectedResponse] = []
        """Every request answered with a fault, oldest first."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- faults -----------------------------------------------------------------------------

    def fail_next(self, method: str | None, path: str, status: int = 500, *, count: int = 1,
                  retry_after: float | None = None, message: str | None = None) -> None:
        """As `StrictKubernetesAPI.fail_next`: the matching requests never reach the apiserver."""
        self._faults.add(method, path, status, count=count, retry_after=retry_after, message=message)

    def clear_faults(self) -> None:
        self._faults.clear()

    def drop_watches(self) -> None:
        """Ends every open watch stream now; clients see the stream close and reconnect."""
        loop = self._loop
        if loop is None:
            return
        for stop in list(self._watches):
            loop.call_soon_threadsafe(stop.set)

    # --- running ----------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve())
            except BaseException as error:  # reported to start()
                failure.append(error)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self.drop_watches()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl, limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            auto_decompress=False,
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # --- proxying ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        fault = self._faults.take(request.method, request.path)
        if fault is not None:
            await request.read()
            self.injected.append(InjectedResponse(time.time(), request.method, request.path, fault.code,
                                                  request.headers.get("User-Agent", "")))
            return web.Response(status=fault.code, body=json.dumps(fault.status()).encode(),
                                content_type="application/json", headers=fault.headers)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        body = await request.read()
        # kubernetes_asyncio sends booleans as "True" (the API server parses them as Go's ParseBool)
        watching = any((request.query.get(k) or "").lower() in ("1", "true") for k in ("watch", "follow"))
        async with self._session.request(request.method, self.upstream + request.path_qs, headers=headers,
                                         data=body or None, allow_redirects=False) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in _HOP_BY_HOP:
                    response.headers[key] = value
            await response.prepare(request)
            if not watching:
                await response.write(await upstream.read())
                await response.write_eof()
                return response
            stop = asyncio.Event()
            self._watches.add(stop)
            try:
                await self._relay(upstream, response, stop)
            finally:
                self._watches.discard(stop)
            return response

    @staticmethod
    async def _relay(upstream: aiohttp.ClientResponse, response: web.StreamResponse, stop: asyncio.Event) -> None:
        """Relay a stream chunk by chunk until it ends or `drop_watches()` cuts it."""
        stopped = asyncio.ensure_future(stop.wait())
        chunk: asyncio.Future[bytes] | None = None
        try:
            while True:
                chunk = asyncio.ensure_future(upstream.content.readany())
                done, _ = await asyncio.wait({chunk, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if stopped in done:
                    return  # the client sees the stream end (no terminating chunk needed)
                data = chunk.result()
                if not data:
                    await response.write_eof()
                    return
                await response.write(data)
        except (ConnectionResetError, aiohttp.ClientError):
            return  # either side went away: the stream ends
        finally:
            stopped.cancel()
            if chunk is not None:
                chunk.cancel()
                if chunk.done() and not chunk.cancelled():
                    chunk.exception()  # retrieved: a closed upstream is the expected end here
            upstream.close()
