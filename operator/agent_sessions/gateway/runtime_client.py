"""Calls from the gateway to a session's runtime bridge (§7), by its `status.provider.endpoint`.

Timeouts are chosen per call, because agent turns are long and silent: a message (sync or
streamed) has a connect timeout and nothing else — no total, no read timeout — so a turn that
thinks for twenty minutes is answered. The short calls (info, history, healthz, cancel) have a
total timeout. When the gateway's client goes away, aiohttp cancels the handler, which closes the
upstream connection; the runtime then lets the turn finish into its history (only an explicit
cancel stops a turn).

Every answer is re-tagged with the session's Kubernetes identity (`SessionRef`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from .errors import runtime_error, unavailable
from .frames import Frame, SSEParser, is_terminal, tag_frame
from .session_ref import SessionRef

UPSTREAM_FAILURES = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


def runtime_url(endpoint: str, path: str) -> str:
    """`path` under the endpoint (which may carry a path prefix of its own)."""
    return endpoint.rstrip("/") + path


class RuntimeClient:
    def __init__(self, http: aiohttp.ClientSession, *, connect_seconds: float, request_seconds: float) -> None:
        self.http = http
        self.message_timeout = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=connect_seconds,
                                                     sock_read=None)
        self.short_timeout = aiohttp.ClientTimeout(total=request_seconds, sock_connect=connect_seconds)

    # -- short calls ------------------------------------------------------------------------

    async def _get_json(self, endpoint: str, path: str, session: SessionRef,
                        params: Mapping[str, str] | None = None, method: str = "GET") -> dict[str, Any]:
        try:
            async with self.http.request(method, runtime_url(endpoint, path), params=params,
                                         timeout=self.short_timeout) as response:
                body = await _json_or_none(response)
                if response.status >= 300:
                    raise runtime_error(response.status, body, session.to_json())
        except UPSTREAM_FAILURES as exc:
            raise unavailable(session.to_json(), _describe(exc)) from None
        if not isinstance(body, dict):
            raise unavailable(session.to_json(), f"{path} did not answer a JSON object")
        return body

    async def info(self, endpoint: str, session: SessionRef) -> dict[str, Any]:
        info = await self._get_json(endpoint, "/v1/info", session)
        info["session"] = session.to_json()
        return info

    async def history(self, endpoint: str, session: SessionRef, after_seq: int,
                      limit: int | None = None) -> tuple[list[Frame], int]:
        """(items after `after_seq`, tagged; the runtime's lastSeq)."""
        params = {"after_seq": str(after_seq)}
        if limit:
            params["limit"] = str(limit)
        body = await self._get_json(endpoint, "/v1/history", session, params)
        items = [tag_frame(item, session) for item in body.get("items") or [] if isinstance(item, Mapping)]
        last = body.get("lastSeq")
        return items, last if isinstance(last, int) else max([after_seq, *(i["seq"] or 0 for i in items)])

    async def cancel(self, endpoint: str, session: SessionRef) -> dict[str, Any]:
        body = await self._get_json(endpoint, "/v1/cancel", session, method="POST")
        body["session"] = session.to_json()
        return body

    async def healthy(self, endpoint: str) -> bool:
        try:
            async with self.http.get(runtime_url(endpoint, "/healthz"), timeout=self.short_timeout) as response:
                await response.read()
                return response.status == 200
        except UPSTREAM_FAILURES:
            return False

    # -- messages ---------------------------------------------------------------------------

    async def send(self, endpoint: str, session: SessionRef, message: Mapping[str, Any]) -> dict[str, Any]:
        """One turn, answered when it ends: `{"session", "seq", "stopReason", "text", "content", "usage"}`."""
        try:
            async with self.http.post(runtime_url(endpoint, "/v1/messages"), json=dict(message),
                                      timeout=self.message_timeout) as response:
                body = await _json_or_none(response)
                if response.status >= 300:
                    raise runtime_error(response.status, body, session.to_json())
        except UPSTREAM_FAILURES as exc:
            raise unavailable(session.to_json(), _describe(exc)) from None
        if not isinstance(body, dict):
            raise unavailable(session.to_json(), "the reply was not a JSON object")
        return {"session": session.to_json(), **{k: v for k, v in body.items() if k != "session"}}

    @contextlib.asynccontextmanager
    async def stream(self, endpoint: str, session: SessionRef,
                     message: Mapping[str, Any]) -> AsyncIterator[AsyncIterator[Frame]]:
        """One turn, streamed: enters once the runtime accepted the turn (errors before that —
        busy, invalid, unreachable — raise GatewayError here) and yields the turn's frames, tagged,
        ending with its `done` or `error` frame. A stream that breaks off raises GatewayError
        (`provider_unavailable`) from the iterator."""
        url = runtime_url(endpoint, "/v1/messages")
        try:
            response = await self.http.post(url, params={"stream": "true"}, json=dict(message),
                                             headers={"Accept": "text/event-stream"}, timeout=self.message_timeout)
        except UPSTREAM_FAILURES as exc:
            raise unavailable(session.to_json(), _describe(exc)) from None
        try:
            if response.status >= 300:
                try:
                    body = await _json_or_none(response)
                except UPSTREAM_FAILURES as exc:
                    raise unavailable(session.to_json(), _describe(exc)) from None
                raise runtime_error(response.status, body, session.to_json())
            if not response.content_type.startswith("text/event-stream"):
                raise unavailable(session.to_json(), f"expected an event stream, got {response.content_type}")
            frames = _frames(response, session)
            try:
                yield frames
            finally:
                await frames.aclose()
        finally:
            response.close()


async def _frames(response: aiohttp.ClientResponse, session: SessionRef) -> AsyncIterator[Frame]:
    parser = SSEParser()
    try:
        async for chunk in response.content.iter_any():
            for message in parser.feed(chunk):
                try:
                    data = message.json()
                except ValueError:
                    continue
                if not isinstance(data, dict):
                    continue
                seq = int(message.id) if message.id and message.id.isdigit() else None
                frame = tag_frame(data, session, event=message.event, seq=seq)
                yield frame
                if is_terminal(frame):
                    return
    except UPSTREAM_FAILURES as exc:
        raise unavailable(session.to_json(), f"the stream broke off: {_describe(exc)}") from None
    raise unavailable(session.to_json(), "the runtime ended the stream before the turn ended")


async def _json_or_none(response: aiohttp.ClientResponse) -> Any:
    raw = await response.read()
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

