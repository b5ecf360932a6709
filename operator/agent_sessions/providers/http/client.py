"""Requests to one platform: a concurrency limit, retries with backoff, `Retry-After`, 401 re-reads.

One `PlatformClient` per platform base URL, shared by every session on that platform (the
provider keeps them; they hold connections and a semaphore, never sessions). `request()` returns
the platform's *answer* — any status it will not retry, 2xx or not — and leaves its meaning to
the caller; it raises `ProviderUnavailable` only when the platform could not be asked: every
attempt failed (unreachable, timed out, 408/429/5xx), or the platform asked to come back later
than the call's budget allows (`retry_after` set, so the operator requeues accordingly).
See `retry` for the schedule.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ..errors import ProviderUnavailable
from .api_errors import error_body
from .retry import RetryPolicy, is_retryable, parse_retry_after

MAX_ANSWER_BYTES = 2 * 1024 * 1024
"""The most of one answer that is read (session JSON is small; logs are bounded by the caller)."""
TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)

TokenSource = Callable[[], Awaitable[str | None]]


@dataclass(frozen=True)
class PlatformAnswer:
    """A platform's answer to one request."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status <= 299

    def json(self) -> Any:
        """The body as JSON; None when it is empty or not JSON."""
        try:
            return json.loads(self.body) if self.body.strip() else None
        except ValueError:
            return None

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class PlatformClient:
    """Requests to the platform at `base_url`."""

    def __init__(
        self,
        base_url: str,
        http: Callable[[], aiohttp.ClientSession],
        *,
        concurrency: int,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http
        self._limit = asyncio.Semaphore(concurrency)
        self._sleep = sleep
        self._clock = clock
        self._rng = rng

    async def request(
        self,
        method: str,
        path: str,
        *,
        policy: RetryPolicy,
        timeout: float,
        token: str | None = None,
        reread_token: TokenSource | None = None,
        body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> PlatformAnswer:
        """Send until the platform gives an answer worth returning, within `policy`."""
        action = f"{method} {path}"
        failures: list[str] = []
        waited = 0.0
        attempt = 0
        token_reread = False
        started = self._clock()
        while True:
            retry_after: float | None = None
            try:
                async with self._limit:  # held per attempt, never while waiting to retry
                    answer = await self._send(method, path, token=token, timeout=timeout, body=body, params=params)
            except TRANSPORT_ERRORS as error:
                failures.append(_transport_failure(error, timeout))
            else:
                if answer.status == 401 and reread_token is not None and not token_reread:
                    token_reread = True  # rotated while we called? Read it again, try once more
                    fresh = await reread_token()
                    if fresh != token:
                        token = fresh
                        continue
                if not is_retryable(answer.status):
                    return answer
                retry_after = parse_retry_after(answer.headers.get("Retry-After"))
                code, message = error_body(answer.body)
                failures.append(f"answered {answer.status}" + (f" {code}" if code else "")
                                + (f" ({message})" if message else ""))
            if attempt >= policy.max_retries:
                raise ProviderUnavailable(self._gave_up(action, failures, started), retry_after=retry_after)
            delay = policy.delay(attempt, retry_after, self._rng)
            if waited + delay > policy.budget:
                asked = "" if retry_after is None else f"; it asked to retry after {retry_after:g}s"
                raise ProviderUnavailable(
                    self._gave_up(action, failures, started) + asked,
                    retry_after=None if retry_after is None else min(retry_after, policy.retry_after_cap),
                )
            await self._sleep(delay)
            waited += delay
            attempt += 1

    async def _send(
        self, method: str, path: str, *, token: str | None, timeout: float, body: Any, params: Mapping[str, str] | None
    ) -> PlatformAnswer:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with self._http().request(
            method,
            self.base_url + path,
            json=body,
            params=params,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as response:
            data = await _read_bounded(response, MAX_ANSWER_BYTES)
            return PlatformAnswer(response.status, data, {k: v for k, v in response.headers.items()})

    def _gave_up(self, action: str, failures: list[str], started: float) -> str:
        """`platform http://… answered 500 6 times to PUT /v1/sessions/…` (or the distinct
        failures, in order, when they differ)."""
        elapsed = self._clock() - started
        distinct = list(dict.fromkeys(failures))
        if len(distinct) == 1:
            told = distinct[0] + (" once" if len(failures) == 1 else f" {len(failures)} times")
        else:
            told = ", then ".join(distinct[-3:]) + f" ({len(failures)} attempts)"
        return f"platform {self.base_url} {told} to {action} in {elapsed:.1f}s"


def _transport_failure(error: BaseException, timeout: float) -> str:
    if isinstance(error, asyncio.TimeoutError):
        return f"did not answer within {timeout:g}s"
    detail = str(error) or type(error).__name__
    return f"could not be reached ({type(error).__name__}: {detail})"


async def _read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.read(min(65536, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
