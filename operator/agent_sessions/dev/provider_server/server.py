"""Running the reference server: in an event loop (`ProviderServer`), or in a thread of its own
for tests that drive it from synchronous code while the operator runs elsewhere
(`running_provider_server`).

The Python API mirrors the admin API — `stats()`, `requests()`, `add_fault(…)`,
`clear_faults()`, `hold(…)`, `set_tokens(…)` — so tests need no HTTP for their own bookkeeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import tempfile
import threading
from collections.abc import Coroutine, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from .faults import Fault, FaultBook
from .http_api import RequestLog, RequestRecord, Tokens, build_app
from .sessions import LocalPlatform
from .store import open_store

T = TypeVar("T")


class ProviderServer:
    """The reference platform on `host:port` (0 picks a free port), in the running event loop."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state: str | Path | None = None,
        tokens: Iterable[str] = (),
        workdir: str | Path | None = None,
        python: str = sys.executable,
    ) -> None:
        self.host = host
        self.port = port
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="agent-platform-"))
        self.platform = LocalPlatform(self.workdir, open_store(state), python=python)
        self.faults = FaultBook()
        self.log = RequestLog()
        self.tokens = Tokens(tuple(tokens))
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> ProviderServer:
        await self.platform.open()
        app = build_app(self.platform, tokens=self.tokens, faults=self.faults, log=self.log)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.port = int(server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.platform.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    async def __aenter__(self) -> ProviderServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- the Python admin API ---------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {**self.platform.counters, "requests": self.log.total, "faulted": self.log.faulted,
                "sessions": len(self.platform.records), "held": self.platform.held}

    def requests(self) -> list[RequestRecord]:
        return self.log.list()

    def add_fault(self, **fields: Any) -> Fault:
        """A fault from the admin API's JSON field names (`status`, `count`, `seconds`,
        `retryAfter`, `paths`, `methods`, `latencyMs`, `drop`)."""
        return self.faults.add(Fault.from_json(fields))

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_tokens(self, *tokens: str) -> None:
        self.tokens.set(*tokens)

    async def hold(self, hold: bool = True) -> None:
        await self.platform.set_hold(hold)


class ProviderServerThread:
    """A `ProviderServer` in its own thread and event loop; every method is thread-safe."""

    def __init__(self, **options: Any) -> None:
        self.server = ProviderServer(**options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="provider-server", daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def start(self) -> ProviderServerThread:
        self._thread.start()
        self.call(self.server.start())
        return self

    def stop(self) -> None:
        try:
            self.call(self.server.stop(), timeout=60.0)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10.0)
            self._loop.close()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run `coroutine` on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def stats(self) -> dict[str, Any]:
        return self.server.stats()

    def requests(self) -> list[RequestRecord]:
        return self.server.requests()

    def add_fault(self, **fields: Any) -> Fault:
        return self.server.add_fault(**fields)

    def clear_faults(self) -> None:
        self.server.clear_faults()

    def set_tokens(self, *tokens: str) -> None:
        self.server.set_tokens(*tokens)

    def hold(self, hold: bool = True) -> None:
        self.call(self.server.hold(hold))


@contextlib.contextmanager
def running_provider_server(**options: Any) -> Iterator[ProviderServerThread]:
    """A reference server in a thread for the duration of the block (options: `ProviderServer`)."""
    thread = ProviderServerThread(**options).start()
    try:
        yield thread
    finally:
        thread.stop()
