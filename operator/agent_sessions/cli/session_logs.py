"""`agent-sessions logs [--follow]`: the pod's log while there is one, else the tail the operator
keeps in `status.logs.tail` (sessions without a pod: tmux, http; a pod that is gone).

`--follow` streams the pod's log until its container ends, then the next pod's if the session
gets one (a restart); without a pod log to stream it prints the status tail as it grows (the
lines it has not shown: the tail is a sliding window); until the session ends or is deleted.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import sys

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from agent_sessions.api import constants as c
from agent_sessions.cli.failures import CommandError, one_line, status_message
from agent_sessions.cli.session_api import API_TIMEOUT, read_session, session_or_none
from agent_sessions.cli.session_wait import why

FOLLOW_POLL_SECONDS = 1.0
"""How often `logs --follow` reads a session without a pod log to stream (its status tail)."""
ENDED = (c.PHASE_STOPPED, c.PHASE_COMPLETED, c.PHASE_FAILED)
"""Phases after which a session's log grows no more."""


def _pod_name(obj: dict) -> str | None:
    provider = (obj.get("status") or {}).get("provider") or {}
    return provider.get("id") if provider.get("type") == c.PROVIDER_POD and provider.get("id") else None


async def _pod_log(api: client.ApiClient, namespace: str, pod: str, tail: int, follow: bool) -> str | None:
    """Writes the pod's log (with `follow`, as it grows, until the pod's container ends); None when
    written, else why there is none: the pod is gone (404) or its container has not started (400)."""
    response = await client.CoreV1Api(api).read_namespaced_pod_log(
        pod, namespace, tail_lines=tail, follow=follow, _preload_content=False, _request_timeout=API_TIMEOUT
    )
    try:
        if response.status >= 400:
            refused = ApiException(status=response.status, reason=response.reason)
            refused.body = await response.text(errors="replace")
            if response.status == 404:
                return f"pod {pod} is gone"
            if response.status == 400:
                return f"pod {pod} has no log yet ({one_line(status_message(refused))})"
            raise refused
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        async for chunk in response.content.iter_any():
            sys.stdout.write(decoder.decode(chunk))
            sys.stdout.flush()
        sys.stdout.write(decoder.decode(b"", final=True))
        return None
    finally:
        response.release()


def _tail_lines(obj: dict) -> list[str]:
    return (((obj.get("status") or {}).get("logs") or {}).get("tail") or "").splitlines(keepends=True)


def unseen_lines(shown: list[str], lines: list[str]) -> list[str]:
    """The lines of a new log tail after those of the tail already shown: the tail is a window
    that slides as the log grows, so the longest end of `shown` that starts `lines` is skipped."""
    for overlap in range(min(len(shown), len(lines)), 0, -1):
        if shown[-overlap:] == lines[:overlap]:
            return lines[overlap:]
    return lines


def _no_logs(namespace: str, name: str, obj: dict, missing: str) -> CommandError:
    session = f"{name} -n {namespace}"
    hint = (f"`agent-sessions logs {session} --follow` prints it as it comes" if "no log yet" in missing
            else f"`kubectl describe agentsession {session}` shows its events")
    return CommandError(f"no logs for agentsession {namespace}/{name} ({why(obj.get('status') or {})}): {missing} "
                        f"and status.logs.tail is empty; {hint}")


async def _follow(api: client.ApiClient, namespace: str, name: str, obj: dict | None, tail: int) -> None:
    """Streams the log of each pod the session runs on (a restart's new pod too) while there is
    one; without any, writes the status tail as it grows; until the session ends or is deleted."""
    shown: list[str] = []
    streamed: tuple | None = None  # the start whose pod log was printed (to its end): not printed again
    while obj is not None:
        status = obj.get("status") or {}
        pod = _pod_name(obj)
        ended = status.get("phase") in ENDED
        start = (pod, status.get("startTime"), status.get("restartCount"))  # a restart's pod may keep its name
        # An ended session's pod, when kept (an agent that exited by itself), has its whole log.
        if pod and start != streamed and await _pod_log(api, namespace, pod, tail, follow=not ended) is None:
            streamed = start
        if streamed is None:
            lines = _tail_lines(obj)
            sys.stdout.write("".join(unseen_lines(shown, lines)))
            sys.stdout.flush()
            shown = lines
        if ended:
            return
        await asyncio.sleep(FOLLOW_POLL_SECONDS)
        obj = await session_or_none(api, namespace, name)


async def cmd_logs(args: argparse.Namespace, api: client.ApiClient) -> int:
    obj = await read_session(api, args.namespace, args.name)
    if args.follow:
        await _follow(api, args.namespace, args.name, obj, args.tail)
        return 0
    pod = _pod_name(obj)
    missing = await _pod_log(api, args.namespace, pod, args.tail, follow=False) if pod else "it has no pod to read"
    if missing is None:
        return 0
    tail = ((obj.get("status") or {}).get("logs") or {}).get("tail")
    if not tail:
        raise _no_logs(args.namespace, args.name, obj, missing)
    if pod:
        print(f"({missing}: these are the last lines the operator kept, status.logs.tail)", file=sys.stderr)
    sys.stdout.write(tail)
    return 0
