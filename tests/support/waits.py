"""Waiting in tests, once: for a session to match, and for anything else with a deadline.

Two kinds of wait, chosen by what signals the change:

* an API write wakes `wait_session` / `wait_session_async` (the embedded API's and the real
  server's `wait_for` re-check on every write they see, with a deadline), so a test waits no
  longer than the write takes;
* nothing signals the rest (a process ending, a request made to a fake, the operator's own
  progress): `wait_until` / `eventually` poll, with a deadline.

Every wait that runs out raises `AssertionError` naming what never happened and the last state
seen, so a failing test says why without a debugger.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import yaml

from agent_sessions.api import constants as c

TIMEOUT = 30.0
"""Generous: CI machines are slow and shared; a passing wait returns as soon as it holds."""

GONE: dict = {"gone": True}
"""What `wait_session(..., allow_gone=True)` matches a deleted session as (the predicate sees None)."""


def wait_until(predicate: Callable[[], Any], timeout: float = TIMEOUT, interval: float = 0.02,
               what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy, which is returned."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(interval)
    return result


async def eventually(check: Callable[[], Any | Awaitable[Any]], what: str = "condition",
                     timeout: float = TIMEOUT, interval: float = 0.02) -> Any:
    """`wait_until` for async tests: `check` may be a plain or an async callable."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        await asyncio.sleep(interval)


def _session_check(api: Any, namespace: str, name: str, predicate: Callable[[Any], bool],
                   allow_gone: bool) -> Callable[[], Any]:
    def check() -> Any:
        obj = api.get(c.SESSION_PLURAL, namespace, name)
        if obj is None:
            return GONE if allow_gone and predicate(None) else None
        return obj if predicate(obj) else None

    return check


def _never(api: Any, namespace: str, name: str) -> AssertionError:
    obj = api.get(c.SESSION_PLURAL, namespace, name)
    return AssertionError(f"session {namespace}/{name} never matched; last seen: {yaml.safe_dump(obj)}")


def wait_session(api: Any, name: str, predicate: Callable[[Any], bool], namespace: str = "default",
                 timeout: float = TIMEOUT, *, allow_gone: bool = False) -> dict | None:
    """Wait, woken by API writes, until the session satisfies `predicate`; returns it.

    With `allow_gone` the predicate also sees None once the session is deleted, and the wait
    returns None when it accepts that."""
    try:
        found = api.wait_for(_session_check(api, namespace, name, predicate, allow_gone), timeout=timeout)
    except TimeoutError:
        raise _never(api, namespace, name) from None
    return None if found is GONE else found


async def wait_session_async(api: Any, name: str, predicate: Callable[[Any], bool], namespace: str = "default",
                             timeout: float = TIMEOUT, *, allow_gone: bool = False) -> dict | None:
    """`wait_session` for async tests (the embedded API's `wait_for_async`)."""
    try:
        found = await api.wait_for_async(_session_check(api, namespace, name, predicate, allow_gone),
                                         timeout=timeout)
    except TimeoutError:
        raise _never(api, namespace, name) from None
    return None if found is GONE else found


# --- predicates on a session ------------------------------------------------------------------


def condition(obj: dict | None, type_: str) -> dict | None:
    return next((x for x in ((obj or {}).get("status") or {}).get("conditions") or [] if x["type"] == type_), None)


def ready(obj: dict | None) -> bool:
    cond = condition(obj, c.COND_READY)
    return cond is not None and cond["status"] == "True"


def phase_is(phase: str) -> Callable[[dict | None], bool]:
    return lambda obj: ((obj or {}).get("status") or {}).get("phase") == phase
