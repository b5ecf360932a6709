"""The one client of a session's runtime bridge (§7), by its `status.provider.endpoint`.

The gateway relays users' calls with it; the operator reads `/v1/info` and delivers `spec.prompt`
with it. Timeouts are chosen per kind of call (`RuntimeTimeouts`), because agent turns are long and
silent: a message (sync or streamed) has a connect timeout and nothing else — no total, no read
timeout — so a turn that thinks for twenty minutes is answered. The short calls (info, history,
healthz, cancel) and the prompt delivery (which does not wait for the turn) have a total timeout;
a history long poll (`wait`) has that timeout on top of the wait it asked for.
When a gateway's client goes away, aiohttp cancels the handler, which closes the upstream
connection; the runtime then lets the turn finish into its history (only an explicit cancel stops a
turn).

Prompt delivery is exactly-once by construction: the message carries an id, and the bridge answers
a repeated id with the turn it already accepted instead of prompting the agent again. So a caller
can always retry — after a timeout, an error, or a restart in the middle of a delivery.

Redirects are never followed: the endpoint is checked where it is learnt (the http provider drops
one off the allowed origins), and a redirect would lead anywhere after that check (SSRF).

Every call but `healthy` (the open `/healthz`) carries the session's runtime token,
`Authorization: Bearer <token>`, when the client has a `token_for` (uid → token: the operator and
the gateway derive it from the runtime key, `wire.credentials.session_token`); a call that names
no session, or a session without a uid, goes without one, and a protected runtime answers it 401.

Every call carries the caller's trace context (W3C `traceparent`) while tracing is on
(`wire.tracing`), and a message or delivery is a client span of its own.

Frames and answers are tagged with the session's Kubernetes identity (`SessionRef`), never what the
runtime says about itself. A call that fails raises `RuntimeCallFailed`, or what the caller's
`failure` hook makes of it (the gateway's error, the reconciler's retry-later).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from . import tracing
from .frames import Frame, is_terminal, tag_frame
from .paths import CANCEL_PATH, HEALTH_PATH, HISTORY_PATH, INFO_PATH, MESSAGES_PATH
from .runtime_info import RuntimeInfo
from .session_ref import SessionRef
from .sse import SSEParser

UPSTREAM_FAILURES = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
CONNECT_FAILURES = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
"""Failures before a connection was made: the request never reached a runtime."""
NOT_TAKEN = frozenset({401, 404})
"""Answers of a runtime that did not take the call: the token is not its session's (401), or it
serves no such thing (404)."""


class RuntimeCallFailed(Exception):
    """A call that did not get the answer the wire promises: the runtime was unreachable, broke
    off, or answered something else (`why`); or it answered `status` (≥ 300) with `body`."""

    def __init__(self, session: SessionRef | None, why: str, *, status: int | None = None,
                 body: Any = None, connected: bool = True) -> None:
        super().__init__(f"the session's runtime answered {status} ({why})" if status is not None
                         else f"the session's runtime is unreachable: {why}")
        self.session = session
        self.why = why
        self.status = status
        self.body = body
        self.connected = connected
        """False: no connection could be made (refused, no route, connect timeout)."""

    @property
    def not_taken(self) -> bool:
        """The call surely did nothing: it reached no runtime, or the runtime refused it as not its
        session's (401) or nothing it serves (404). Making it to another endpoint repeats nothing."""
        return self.status in NOT_TAKEN if self.status is not None else not self.connected


@dataclass(frozen=True)
class HistoryPage:
    """One answer of `/v1/history`."""

    items: list[Frame]
    """Frames after the seq asked for, oldest first, tagged with the session's identity."""
    last_seq: int
    """The runtime's lastSeq when it answered."""
    long_poll: bool = False
    """The runtime honoured `wait` (it answers `"longPoll": true`); one that ignored it answered at
    once, whatever there was."""


def _as_is(failure: RuntimeCallFailed) -> Exception:
    return failure


@dataclass(frozen=True)
class RuntimeTimeouts:
    """A timeout per kind of call; the defaults are the operator's."""

    short: aiohttp.ClientTimeout = field(default_factory=lambda: aiohttp.ClientTimeout(total=5, connect=2))
    """`/v1/info`, `/v1/history`, `/v1/cancel`, `/healthz`."""
    message: aiohttp.ClientTimeout = field(
        default_factory=lambda: aiohttp.ClientTimeout(total=None, connect=None, sock_connect=2, sock_read=None))
    """A message that waits for (or streams) its turn: connecting only, a turn may think for long."""
    delivery: aiohttp.ClientTimeout = field(default_factory=lambda: aiohttp.ClientTimeout(total=30, connect=2))
    """A message handed over without waiting for its turn (`?wait=false`)."""

    @classmethod
    def of(cls, *, connect_seconds: float, request_seconds: float) -> RuntimeTimeouts:
        return cls(
            short=aiohttp.ClientTimeout(total=request_seconds, sock_connect=connect_seconds),
            message=aiohttp.ClientTimeout(total=None, connect=None, sock_connect=connect_seconds, sock_read=None),
            delivery=aiohttp.ClientTimeout(total=request_seconds, sock_connect=connect_seconds),
        )


@dataclass(frozen=True)
class Delivery:
    accepted: bool
    """The bridge has the message (now or from an earlier attempt)."""
    busy: bool = False
    """Another turn runs: try again later."""


def runtime_url(endpoint: str, path: str) -> str:
    """`path` under the endpoint (which may carry a path prefix of its own)."""
    return endpoint.rstrip("/") + path


OWN_KEEPALIVE_SECONDS = 2.0
"""How long the client's own session keeps an idle connection to a runtime. The operator calls a
runtime in short bursts (its info, then maybe its log tail, in one reconcile; a prompt's delivery)
and then not for 10–60 s: a connection kept longer is a socket and its buffers held for nothing —
with aiohttp's default (15 s, idle connections not bounded in number) thousands of them at
10,000 sessions (issue 11: memory)."""


class RuntimeClient:
    """HTTP calls to session runtimes over one aiohttp session: the caller's `http`, or one of its
    own (sent with `user_agent`, closed by `close()`, idle connections kept `OWN_KEEPALIVE_SECONDS`)."""

    def __init__(self, http: aiohttp.ClientSession | None = None, *, user_agent: str | None = None,
                 timeouts: RuntimeTimeouts | None = None,
                 failure: Callable[[RuntimeCallFailed], Exception] = _as_is,
                 token_for: Callable[[str], str | None] | None = None) -> None:
        self._http = http
        self.token_for = token_for
        """uid → the bearer token of that session's runtime (None: calls go without one)."""
        self._owned: aiohttp.ClientSession | None = None
        self._headers = {"User-Agent": user_agent} if user_agent else {}
        self.timeouts = timeouts or RuntimeTimeouts()
        self._failure = failure

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is not None:
            return self._http
        if self._owned is None or self._owned.closed:
            self._owned = aiohttp.ClientSession(
                headers=self._headers, connector=aiohttp.TCPConnector(keepalive_timeout=OWN_KEEPALIVE_SECONDS))
        return self._owned

    async def close(self) -> None:
        if self._owned is not None:
            await self._owned.close()

    def _auth(self, session: SessionRef | None) -> dict[str, str]:
        """The Authorization header for a call to `session`'s runtime (none when unknown)."""
        if self.token_for is None or session is None or not session.uid:
            return {}
        token = self.token_for(session.uid)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _call_headers(self, session: SessionRef | None) -> dict[str, str]:
        """Authorization and the trace context."""
        return tracing.inject(self._auth(session))  # type: ignore[return-value]

    def _fail(self, session: SessionRef | None, why: str, *, status: int | None = None,
              body: Any = None) -> Exception:
        return self._failure(RuntimeCallFailed(session, why, status=status, body=body))

    def _unreachable(self, session: SessionRef | None, exc: BaseException, prefix: str = "") -> Exception:
        """The failure of a call that got no answer (`exc`), told whether it ever connected."""
        failure = RuntimeCallFailed(session, prefix + _describe(exc), connected=not isinstance(exc, CONNECT_FAILURES))
        return self._failure(failure)

    # -- short calls ------------------------------------------------------------------------

    async def _get_json(self, endpoint: str, path: str, session: SessionRef | None,
                        params: Mapping[str, str] | None = None, method: str = "GET",
                        timeout: aiohttp.ClientTimeout | None = None) -> dict[str, Any]:
        try:
            async with self.http.request(method, runtime_url(endpoint, path), params=params,
                                         headers=self._call_headers(session), timeout=timeout or self.timeouts.short,
                                         allow_redirects=False) as response:
                body = await _json_or_none(response)
                if response.status >= 300:
                    raise self._fail(session, f"to {path}", status=response.status, body=body)
        except UPSTREAM_FAILURES as exc:
            raise self._unreachable(session, exc) from None
        if not isinstance(body, dict):
            raise self._fail(session, f"{path} did not answer a JSON object")
        return body

    async def info(self, endpoint: str, session: SessionRef | None = None) -> RuntimeInfo:
        return RuntimeInfo.from_json(await self._get_json(endpoint, INFO_PATH, session))

    async def history(self, endpoint: str, session: SessionRef, after_seq: int,
                      limit: int | None = None, *, wait: float | None = None) -> tuple[list[Frame], int]:
        """(items after `after_seq`, tagged; the runtime's lastSeq). See `history_page`."""
        page = await self.history_page(endpoint, session, after_seq, limit, wait=wait)
        return page.items, page.last_seq

    async def history_page(self, endpoint: str, session: SessionRef, after_seq: int,
                           limit: int | None = None, *, wait: float | None = None) -> HistoryPage:
        """Frames after `after_seq`; with `wait`, a long poll: a runtime that honours it answers when
        there is a frame after `after_seq`, or after `wait` seconds (`long_poll` says whether it
        did). The call's timeout is the short one plus `wait`."""
        params = {"after_seq": str(after_seq)}
        if limit:
            params["limit"] = str(limit)
        timeout = None
        if wait is not None:
            params["wait"] = f"{wait:g}"
            short = self.timeouts.short
            timeout = aiohttp.ClientTimeout(total=None if short.total is None else short.total + wait,
                                            connect=short.connect, sock_connect=short.sock_connect)
        body = await self._get_json(endpoint, HISTORY_PATH, session, params, timeout=timeout)
        items = [tag_frame(item, session) for item in body.get("items") or [] if isinstance(item, Mapping)]
        last = body.get("lastSeq")
        last_seq = last if isinstance(last, int) else max([after_seq, *(i["seq"] or 0 for i in items)])
        return HistoryPage(items, last_seq, long_poll=wait is not None and body.get("longPoll") is True)

    async def cancel(self, endpoint: str, session: SessionRef) -> dict[str, Any]:
        body = await self._get_json(endpoint, CANCEL_PATH, session, method="POST")
        body["session"] = session.to_json()
        return body

    async def healthy(self, endpoint: str) -> bool:
        try:
            async with self.http.get(runtime_url(endpoint, HEALTH_PATH), timeout=self.timeouts.short,
                                     allow_redirects=False) as response:
                await response.read()
                return response.status == 200
        except UPSTREAM_FAILURES:
            return False

    # -- messages ---------------------------------------------------------------------------

    async def deliver(self, endpoint: str, text: str, message_id: str,
                      session: SessionRef | None = None) -> Delivery:
        """Hand `text` to the agent as message `message_id` without waiting for the reply."""
        body = {"text": text, "id": message_id}
        with tracing.client_span(f"POST {MESSAGES_PATH}", _span_attributes(session, "deliver")):
            return await self._deliver(endpoint, body, session)

    async def _deliver(self, endpoint: str, body: dict[str, str], session: SessionRef | None) -> Delivery:
        try:
            async with self.http.post(runtime_url(endpoint, MESSAGES_PATH), params={"wait": "false"}, json=body,
                                      headers=self._call_headers(session), timeout=self.timeouts.delivery,
                                      allow_redirects=False) as response:
                answer = await _json_or_none(response)
                if response.status in (200, 202):
                    return Delivery(accepted=True)
                if response.status == 409:
                    return Delivery(accepted=False, busy=True)
                raise self._fail(session, "to the prompt", status=response.status, body=answer)
        except UPSTREAM_FAILURES as exc:
            raise self._unreachable(session, exc) from None

    async def send(self, endpoint: str, session: SessionRef, message: Mapping[str, Any]) -> dict[str, Any]:
        """One turn, answered when it ends: `{"session", "seq", "stopReason", "text", "content", "usage"}`."""
        with tracing.client_span(f"POST {MESSAGES_PATH}", _span_attributes(session, "sync")):
            return await self._send(endpoint, session, message)

    async def _send(self, endpoint: str, session: SessionRef, message: Mapping[str, Any]) -> dict[str, Any]:
        try:
            async with self.http.post(runtime_url(endpoint, MESSAGES_PATH), json=dict(message),
                                      headers=self._call_headers(session), timeout=self.timeouts.message,
                                      allow_redirects=False) as response:
                body = await _json_or_none(response)
                if response.status >= 300:
                    raise self._fail(session, "to the message", status=response.status, body=body)
        except UPSTREAM_FAILURES as exc:
            raise self._unreachable(session, exc) from None
        if not isinstance(body, dict):
            raise self._fail(session, "the reply was not a JSON object")
        return {"session": session.to_json(), **{k: v for k, v in body.items() if k != "session"}}

    @contextlib.asynccontextmanager
    async def stream(self, endpoint: str, session: SessionRef,
                     message: Mapping[str, Any]) -> AsyncIterator[AsyncIterator[Frame]]:
        """One turn, streamed: enters once the runtime accepted the turn (errors before that —
        busy, invalid, unreachable — raise here) and yields the turn's frames, tagged, ending with
        its `done` or `error` frame. A stream that breaks off raises from the iterator."""
        with tracing.client_span(f"POST {MESSAGES_PATH}", _span_attributes(session, "stream")):
            async with self._stream(endpoint, session, message) as frames:
                yield frames

    @contextlib.asynccontextmanager
    async def _stream(self, endpoint: str, session: SessionRef,
                      message: Mapping[str, Any]) -> AsyncIterator[AsyncIterator[Frame]]:
        url = runtime_url(endpoint, MESSAGES_PATH)
        try:
            response = await self.http.post(url, params={"stream": "true"}, json=dict(message),
                                             headers={"Accept": "text/event-stream", **self._call_headers(session)},
                                             timeout=self.timeouts.message,
                                             allow_redirects=False)
        except UPSTREAM_FAILURES as exc:
            raise self._unreachable(session, exc) from None
        try:
            if response.status >= 300:
                try:
                    body = await _json_or_none(response)
                except UPSTREAM_FAILURES as exc:
                    raise self._unreachable(session, exc) from None
                raise self._fail(session, "to the message", status=response.status, body=body)
            if not response.content_type.startswith("text/event-stream"):
                raise self._fail(session, f"expected an event stream, got {response.content_type}")
            frames = self._frames(response, session)
            try:
                yield frames
            finally:
                await frames.aclose()
        finally:
            response.close()

    async def _frames(self, response: aiohttp.ClientResponse, session: SessionRef) -> AsyncIterator[Frame]:
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
            raise self._unreachable(session, exc, "the stream broke off: ") from None
        raise self._fail(session, "the runtime ended the stream before the turn ended")


def _span_attributes(session: SessionRef | None, mode: str) -> dict[str, tracing.AttributeValue]:
    names = tracing.session_attributes(session.namespace, session.name) if session is not None else {}
    return {"agent_sessions.message.mode": mode, **names}


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
