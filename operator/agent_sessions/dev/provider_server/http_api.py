"""The reference server's HTTP API: the contract (`docs/provider-http.md`) plus an admin API.

Every request passes, in order: the request log (what tests measure: times, statuses, tokens),
bearer authentication (when tokens are configured; admin included), fault injection (never on
`/v1/admin/…`), then the handler. Errors are the contract's `{"code", "message"}`.

Admin API (for tests and demos; not part of the contract):

* `GET /v1/admin/stats` — counters: `creates`, `puts`, `starts`, `stops`, `deletes`, `gets`,
  `logs`, `requests`, `faulted`, `sessions`.
* `POST /v1/admin/faults` (a fault, see `faults`) · `GET` (those in force) · `DELETE` (clear).
* `GET /v1/admin/requests?limit=N` — the request log (tokens as a SHA-256 prefix only).
* `POST /v1/admin/hold` `{"hold": true|false}` — keep sessions `Pending` / let them start.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from agent_sessions.providers.http.constants import CODE_INVALID_CONFIGURATION, CODE_UNAUTHORIZED

from .faults import ADMIN_PREFIX, Fault, FaultBook, code_for_status
from .sessions import ContractError, LocalPlatform

SESSION = r"{id:[^/:]+}"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PLATFORM_KEY: web.AppKey[LocalPlatform] = web.AppKey("platform", LocalPlatform)
_RequestKey: Any = getattr(web, "RequestKey", None)  # aiohttp >= 3.12; plain strings before
FAULT_KEY: Any = _RequestKey("fault", object) if _RequestKey else "fault"
DROPPED_KEY: Any = _RequestKey("dropped", bool) if _RequestKey else "dropped"


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it."""

    time: float
    """`time.time()` when it arrived."""
    monotonic: float
    """`time.monotonic()` when it arrived (for measuring gaps)."""
    method: str
    path: str
    status: int | None
    """The status answered; None when the connection was dropped (or the handler crashed)."""
    token: str | None
    """The bearer token presented, if any."""
    fault: int | None = None
    """Id of the fault that shaped the answer."""

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time, "method": self.method, "path": self.path, "status": self.status,
            "tokenSha256": hashlib.sha256(self.token.encode()).hexdigest()[:12] if self.token else None,
            "fault": self.fault,
        }


class RequestLog:
    """The last `size` requests, readable from any thread."""

    def __init__(self, size: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._records: deque[RequestRecord] = deque(maxlen=size)
        self.total = 0
        self.faulted = 0

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)
            self.total += 1
            self.faulted += record.fault is not None

    def list(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


class Tokens:
    """The bearer tokens accepted; none configured = no authentication. Replaced atomically
    (`set`), so a test can rotate credentials while requests are in flight."""

    def __init__(self, tokens: tuple[str, ...] = ()) -> None:
        self.accepted: frozenset[str] = frozenset(tokens)

    def set(self, *tokens: str) -> None:
        self.accepted = frozenset(tokens)


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status, headers=headers)


def build_app(platform: LocalPlatform, *, tokens: Tokens, faults: FaultBook, log: RequestLog) -> web.Application:
    """The aiohttp application serving `platform`."""

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[FAULT_KEY] = None
        arrived = (time.time(), time.monotonic())
        status: int | None = None
        try:
            response = await handler(request)
            status = None if request.get(DROPPED_KEY) else response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            log.add(RequestRecord(arrived[0], arrived[1], request.method, request.path, status,
                                  _bearer(request), request[FAULT_KEY]))

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if tokens.accepted:
            presented = _bearer(request)
            if presented is None:
                return error(401, CODE_UNAUTHORIZED, "a bearer token is required",
                             {"WWW-Authenticate": 'Bearer realm="agent-platform"'})
            if presented not in tokens.accepted:
                return error(401, CODE_UNAUTHORIZED, "the bearer token is not valid",
                             {"WWW-Authenticate": 'Bearer realm="agent-platform", error="invalid_token"'})
        return await handler(request)

    @web.middleware
    async def inject(request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = faults.take(request.method, request.path)
        if fault is None:
            return await handler(request)
        request[FAULT_KEY] = fault.id
        if fault.latency_ms:
            await asyncio.sleep(fault.latency_ms / 1000)
        if fault.drop:
            request[DROPPED_KEY] = True
            if request.transport is not None:
                request.transport.close()  # the client sees the connection close, no answer
            return web.Response(status=204)
        if fault.status is None:
            return await handler(request)
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
        return error(fault.status, code_for_status(fault.status), f"injected fault {fault.id}", headers)

    @web.middleware
    async def contract_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ContractError as exc:
            return error(exc.status, exc.code, exc.message)

    app = web.Application(middlewares=[record, authenticate, inject, contract_errors])
    app[PLATFORM_KEY] = platform

    async def capabilities(request: web.Request) -> web.Response:
        return web.json_response(platform.capabilities())

    async def put_session(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read() or b"null")
        except ValueError as exc:
            return error(400, CODE_INVALID_CONFIGURATION, f"the body is not JSON: {exc}")
        created, view = await platform.put(request.match_info["id"], body)
        return web.json_response(view, status=201 if created else 200)

    async def get_session(request: web.Request) -> web.Response:
        return web.json_response(await platform.get(request.match_info["id"]))

    async def start_session(request: web.Request) -> web.Response:
        return web.json_response(await platform.start(request.match_info["id"]))

    async def stop_session(request: web.Request) -> web.Response:
        return web.json_response(await platform.stop(request.match_info["id"]))

    async def delete_session(request: web.Request) -> web.Response:
        await platform.delete(request.match_info["id"])
        return web.Response(status=204)

    async def session_logs(request: web.Request) -> web.Response:
        try:
            tail = _optional_int(request, "tailLines")
            limit = _optional_int(request, "limitBytes")
        except ValueError as exc:
            return error(400, "invalid_request", str(exc))
        text = platform.logs(request.match_info["id"], tail, limit)
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({**platform.counters, "requests": log.total, "faulted": log.faulted,
                                  "sessions": len(platform.records), "held": platform.held})

    async def add_fault(request: web.Request) -> web.Response:
        try:
            fault = Fault.from_json(await request.json())
        except ValueError as exc:
            return error(400, "invalid_request", str(exc))
        return web.json_response(faults.add(fault).to_json(), status=201)

    async def list_faults(request: web.Request) -> web.Response:
        return web.json_response({"faults": [fault.to_json() for fault in faults.list()]})

    async def clear_faults(request: web.Request) -> web.Response:
        faults.clear()
        return web.Response(status=204)

    async def requests(request: web.Request) -> web.Response:
        records = log.list()
        limit = _optional_int(request, "limit")
        if limit is not None:
            records = records[-limit:] if limit > 0 else []
        return web.json_response({"requests": [r.to_json() for r in records]})

    async def hold(request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict) or not isinstance(body.get("hold"), bool):
            return error(400, "invalid_request", 'expected {"hold": true|false}')
        await platform.set_hold(body["hold"])
        return web.json_response({"hold": platform.held})

    router = app.router
    router.add_get("/v1/capabilities", capabilities)
    router.add_post(f"/v1/sessions/{SESSION}:start", start_session)
    router.add_post(f"/v1/sessions/{SESSION}:stop", stop_session)
    router.add_get(f"/v1/sessions/{SESSION}/logs", session_logs)
    router.add_put(f"/v1/sessions/{SESSION}", put_session)
    router.add_get(f"/v1/sessions/{SESSION}", get_session)
    router.add_delete(f"/v1/sessions/{SESSION}", delete_session)
    router.add_get(f"{ADMIN_PREFIX}stats", stats)
    router.add_post(f"{ADMIN_PREFIX}faults", add_fault)
    router.add_get(f"{ADMIN_PREFIX}faults", list_faults)
    router.add_delete(f"{ADMIN_PREFIX}faults", clear_faults)
    router.add_get(f"{ADMIN_PREFIX}requests", requests)
    router.add_post(f"{ADMIN_PREFIX}hold", hold)
    return app


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _optional_int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not an integer") from None
    if number < 0:
        raise ValueError(f"{name}: must not be negative")
    return number
