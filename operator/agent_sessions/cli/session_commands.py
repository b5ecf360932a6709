"""Session commands of the CLI: `send`, `history`, `logs`, `stop`, `start`, `restart`, `explain`.

Each works against the current kubeconfig, like kubectl (and so against `make dev`). Messages go
to the session's runtime bridge at the endpoint in its status — reachable from inside the
cluster and in `make dev` — or, with `--gateway URL` (or `$AGENT_SESSIONS_GATEWAY`), through the
gateway, authenticated with the kubeconfig's bearer token. A runtime requires its session's token:
called directly, it is read from the session's token Secret (pod provider), which only those who
may read Secrets in the session's namespace can do; everyone else goes through the gateway.

Every failure ends the command with one `error: …` line on stderr and exit code 1 (`failures`);
`stop`/`start`/`restart` act on several sessions at once (names, `-l SELECTOR` or `--all`), one
line per session, exit code 1 when any of them failed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import codecs
import contextlib
import json
import os
import sys
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import aiohttp
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from agent_sessions.api import constants as c
from agent_sessions.cli.failures import (
    CommandError, connection_failure, debugging, describe_failure, one_line, require_kubeconfig, yaml_problem,
)
from agent_sessions.cli.session_wait import Target, duration, wait_for, why
from agent_sessions.config import ConfigInvalid, explain, resolve_config
from agent_sessions.k8s.client import USER_AGENT, connection_fields, make_api_client
from agent_sessions.k8s.status import MERGE_PATCH
from agent_sessions.wire.frames import EVENT_AGENT_MESSAGE_CHUNK, EVENT_DONE, EVENT_ERROR, EVENT_USER_MESSAGE
from agent_sessions.wire.sse import SSEParser

WAKE_TIMEOUT = 120.0
FOLLOW_POLL_SECONDS = 1.0
"""How often `logs --follow` reads a session without a pod log to stream (its status tail)."""
DEFAULT_WAIT_TIMEOUT = "5m"
WATCH_SECONDS = 60
"""A `--wait` watch is renewed this often (a server-side timeout: a silently dead connection ends)."""
ENDED = (c.PHASE_STOPPED, c.PHASE_COMPLETED, c.PHASE_FAILED)
"""Phases after which a session's log grows no more."""
API_TIMEOUT = aiohttp.ClientTimeout(sock_connect=10)
"""A connection to the API server that does not open in 10 s will not: say so instead of hanging
(the client's default is no timeout at all). Reads keep none: a log is followed for hours."""


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def _session_or_none(api: client.ApiClient, namespace: str, name: str) -> dict | None:
    try:
        return await client.CustomObjectsApi(api).get_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.SESSION_PLURAL, name, _request_timeout=API_TIMEOUT
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


async def session_changes(api: client.ApiClient, namespace: str, name: str) -> AsyncIterator[dict | None]:
    """The session now, then after each change, until it is deleted (None): a watch from the
    version read, read again whenever the watch ends (its server-side timeout, a 410 Expired)."""
    objects = client.CustomObjectsApi(api)
    while True:
        obj = await _session_or_none(api, namespace, name)
        yield obj
        if obj is None:
            return
        try:
            async with watch.Watch().stream(
                objects.list_namespaced_custom_object, c.GROUP, c.VERSION, namespace, c.SESSION_PLURAL,
                field_selector=f"metadata.name={name}", resource_version=obj["metadata"]["resourceVersion"],
                timeout_seconds=WATCH_SECONDS, _request_timeout=API_TIMEOUT,
            ) as events:
                async for event in events:
                    if event["type"] == "DELETED":
                        yield None
                        return
                    if event["type"] in ("ADDED", "MODIFIED"):
                        yield event["raw_object"]
        except ApiException as exc:
            if exc.status != 410:
                raise


async def _session(api: client.ApiClient, namespace: str, name: str) -> dict:
    obj = await _session_or_none(api, namespace, name)
    if obj is None:
        raise CommandError(f'agentsession "{name}" not found in namespace "{namespace}"')
    return obj


async def _patch(api: client.ApiClient, namespace: str, name: str, patch: dict) -> dict:
    return await client.CustomObjectsApi(api).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.SESSION_PLURAL, name, patch, _content_type=MERGE_PATCH,
        _request_timeout=API_TIMEOUT,
    )


async def _runtime_headers(api: client.ApiClient, namespace: str, name: str) -> dict[str, str]:
    """Headers for a direct call to the session's runtime: its token, when the caller may read the
    session's token Secret (none otherwise: the runtime then answers 401, naming the gateway)."""
    from agent_sessions.providers.pod.names import token_secret_name
    from agent_sessions.wire.credentials import TOKEN_FILE_NAME

    headers = {"User-Agent": USER_AGENT}
    uid = ((await _session(api, namespace, name)).get("metadata") or {}).get("uid") or ""
    try:
        secret = await client.CoreV1Api(api).read_namespaced_secret(
            token_secret_name(namespace, name, uid), namespace, _request_timeout=API_TIMEOUT
        )
    except ApiException:
        return headers
    encoded = (secret.data or {}).get(TOKEN_FILE_NAME)
    if encoded:
        headers["Authorization"] = f"Bearer {base64.b64decode(encoded).decode('utf-8', 'replace').strip()}"
    return headers


async def _running_endpoint(api: client.ApiClient, namespace: str, name: str, wake: bool) -> str:
    """The runtime endpoint of a Running session; wakes an idle-stopped one if asked."""
    obj = await _session(api, namespace, name)
    status = obj.get("status") or {}
    if _idle(status) and wake:
        await _patch(api, namespace, name, {"metadata": {"annotations": {c.ANNOTATION_WAKE: _now()}}})
        print(f"waking {namespace}/{name} …", file=sys.stderr)
        deadline = asyncio.get_running_loop().time() + WAKE_TIMEOUT
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.5)
            status = (await _session(api, namespace, name)).get("status") or {}
            if status.get("phase") == c.PHASE_RUNNING and (status.get("provider") or {}).get("endpoint"):
                break
    endpoint = (status.get("provider") or {}).get("endpoint")
    if status.get("phase") != c.PHASE_RUNNING or not endpoint:
        raise _not_running(namespace, name, status)
    return endpoint


def _not_running(namespace: str, name: str, status: dict) -> CommandError:
    phase, session = status.get("phase"), f"{name} -n {namespace}"
    if phase == c.PHASE_STOPPED:
        hint = f"start it with `agent-sessions start {session} --wait`"
    elif phase in (c.PHASE_FAILED, c.PHASE_COMPLETED):
        hint = f"`agent-sessions logs {session}` shows why; `agent-sessions restart {session} --wait` starts it again"
    else:
        hint = f"`agent-sessions start {session} --wait` waits until it is"
    return CommandError(f"session {namespace}/{name} is not running ({why(status)}): {hint}")


async def _gateway_headers(api: client.ApiClient) -> dict[str, str]:
    fields = await connection_fields(api)
    return fields["headers"]


@dataclass(frozen=True)
class Peer:
    """The gateway or a session's runtime bridge, as a failure names it, with what to do."""

    what: str
    hint: str
    unauthorized_hint: str = ""


def _gateway(url: str) -> Peer:
    return Peer(f"the gateway at {url}", "check --gateway (or $AGENT_SESSIONS_GATEWAY) and that the gateway runs",
                "the gateway takes the bearer token of the kubeconfig's user, never its client certificate: "
                "use a kubeconfig with a token")


def _runtime(namespace: str, name: str, endpoint: str) -> Peer:
    return Peer(f"the runtime of {namespace}/{name} at {endpoint}",
                "a session's runtime is reachable only from inside the cluster (and in `make dev`): "
                "from elsewhere go through the gateway with --gateway URL (or $AGENT_SESSIONS_GATEWAY)")


@contextlib.asynccontextmanager
async def _request(http: aiohttp.ClientSession, method: str, url: str, peer: Peer,
                   **kwargs: Any) -> AsyncIterator[aiohttp.ClientResponse]:
    """A request to the gateway or a runtime; its refusal or a broken connection as CommandError."""
    try:
        async with http.request(method, url, **kwargs) as response:
            if response.status >= 400:
                raise CommandError(await _refusal(response, peer))
            yield response
    except aiohttp.ClientConnectorError as exc:
        raise CommandError(f"cannot reach {peer.what} ({connection_failure(exc)}): {peer.hint}") from None
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        detail = f"{type(exc).__name__}: {one_line(exc)}" if str(exc) else type(exc).__name__
        raise CommandError(f"the connection to {peer.what} failed ({detail}): try again") from None


async def _refusal(response: aiohttp.ClientResponse, peer: Peer) -> str:
    """`code: message` of a gateway or bridge error (`{"code", "message"}`), else who answered what."""
    text = await response.text(errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        refusal = f"{body.get('code') or response.status}: {one_line(body['message'])}"
        return f"{refusal} ({peer.unauthorized_hint})" if response.status == 401 and peer.unauthorized_hint else refusal
    return (f"{peer.what} answered {response.status} {response.reason or ''}".rstrip()
            + f", not an error of the session API: {peer.hint}")


async def _json(response: aiohttp.ClientResponse, peer: Peer) -> Any:
    try:
        return await response.json(content_type=None)
    except ValueError:
        raise CommandError(f"{peer.what} answered {response.status} with something other than JSON: "
                           f"{peer.hint}") from None


def _print_update(update: dict[str, Any]) -> None:
    kind = update.get("sessionUpdate")
    if kind == EVENT_AGENT_MESSAGE_CHUNK:
        content = update.get("content") or {}
        sys.stdout.write(content.get("text", ""))
    elif kind == "tool_call":
        sys.stdout.write(f"\n[tool] {update.get('title') or update.get('toolCallId')}\n")
    sys.stdout.flush()


async def _stream(response: aiohttp.ClientResponse) -> None:
    parser = SSEParser()
    async for chunk in response.content.iter_any():
        for message in parser.feed(chunk):
            data = message.json()
            if message.event == EVENT_ERROR:
                raise CommandError(f"{data.get('code')}: {one_line(data.get('message'))}")
            if message.event == EVENT_DONE:
                sys.stdout.write("\n")
                return
            _print_update(data.get("update") or {})


async def cmd_send(args: argparse.Namespace, api: client.ApiClient) -> int:
    body = {"text": args.text}
    params = {"stream": "true"} if args.stream else {}
    if args.gateway:
        url = f"{args.gateway.rstrip('/')}/v1/namespaces/{args.namespace}/sessions/{args.name}/messages"
        peer = _gateway(args.gateway)
        headers = await _gateway_headers(api)
    else:
        endpoint = await _running_endpoint(api, args.namespace, args.name, wake=True)
        url, peer = f"{endpoint}/v1/messages", _runtime(args.namespace, args.name, endpoint)
        headers = await _runtime_headers(api, args.namespace, args.name)
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=None)) as http:
        async with _request(http, "POST", url, peer, json=body, params=params) as response:
            if args.stream:
                await _stream(response)
            else:
                reply = await _json(response, peer)
                print(reply.get("text", "") if isinstance(reply, dict) else "")
    return 0


async def cmd_history(args: argparse.Namespace, api: client.ApiClient) -> int:
    if args.gateway:
        url = f"{args.gateway.rstrip('/')}/v1/namespaces/{args.namespace}/sessions/{args.name}"
        peer = _gateway(args.gateway)
        headers = await _gateway_headers(api)
    else:
        endpoint = await _running_endpoint(api, args.namespace, args.name, wake=False)
        url, peer = f"{endpoint}/v1/history", _runtime(args.namespace, args.name, endpoint)
        headers = await _runtime_headers(api, args.namespace, args.name)
    async with aiohttp.ClientSession(headers=headers) as http:
        async with _request(http, "GET", url, peer, params={"after_seq": str(args.after_seq)}) as response:
            body = await _json(response, peer)
    body = body if isinstance(body, dict) else {}
    items = body.get("items") or (body.get("history") or {}).get("items") or []
    if args.output == "json":
        print(json.dumps(items, indent=2))
        return 0
    for line in render_history(items):
        print(line)
    return 0


def render_history(items: list[dict]) -> list[str]:
    """One line per message: user messages, the agent's replies (chunks joined), tool calls."""
    lines: list[str] = []
    reply: list[str] = []

    def flush() -> None:
        if reply:
            lines.append("agent: " + "".join(reply))
            reply.clear()

    for item in items:
        update = item.get("update") or {}
        kind = item.get("event") or update.get("sessionUpdate")
        if kind in (EVENT_USER_MESSAGE, "user_message_chunk"):
            flush()
            content = update.get("content") or []
            blocks = content if isinstance(content, list) else [content]
            text = " ".join(b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type", "text") == "text")
            lines.append(f"user:  {text}")
        elif kind == EVENT_AGENT_MESSAGE_CHUNK:
            reply.append((update.get("content") or {}).get("text", ""))
        elif kind == "tool_call":
            flush()
            lines.append(f"tool:  {update.get('title') or update.get('toolCallId')}")
        elif kind == EVENT_DONE:
            flush()
    flush()
    return lines


def _pod_name(obj: dict) -> str | None:
    provider = (obj.get("status") or {}).get("provider") or {}
    return provider.get("id") if provider.get("type") == c.PROVIDER_POD and provider.get("id") else None


async def _pod_log(api: client.ApiClient, namespace: str, pod: str, tail: int, follow: bool) -> str | None:
    """Writes the pod's log (with `follow`, as it grows, until the pod's container ends); None when
    written, else why there is none: the pod is gone (404) or its container has not started (400)."""
    from agent_sessions.cli.failures import status_message

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
    """Streams the pod's log while there is one; else writes the status tail as it grows, until the
    session ends or is deleted."""
    shown: list[str] = []
    while obj is not None:
        pod = _pod_name(obj)
        ended = (obj.get("status") or {}).get("phase") in ENDED
        # An ended session's pod, when kept (an agent that exited by itself), has its whole log.
        if pod and await _pod_log(api, namespace, pod, tail, follow=not ended) is None:
            return
        lines = _tail_lines(obj)
        sys.stdout.write("".join(unseen_lines(shown, lines)))
        sys.stdout.flush()
        shown = lines
        if ended:
            return
        await asyncio.sleep(FOLLOW_POLL_SECONDS)
        obj = await _session_or_none(api, namespace, name)


async def cmd_logs(args: argparse.Namespace, api: client.ApiClient) -> int:
    obj = await _session(api, args.namespace, args.name)
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


async def _selected(api: client.ApiClient, args: argparse.Namespace) -> list[str]:
    """The sessions a state command acts on: NAME…, `-l SELECTOR` or `--all` (exactly one)."""
    if sum(bool(x) for x in (args.names, args.selector, args.all)) != 1:
        raise CommandError(f"{args.command}: name the sessions (NAME …), select them (-l SELECTOR) or take --all")
    if args.names:
        return list(dict.fromkeys(args.names))
    listed = await client.CustomObjectsApi(api).list_namespaced_custom_object(
        c.GROUP, c.VERSION, args.namespace, c.SESSION_PLURAL, label_selector=args.selector or None,
        _request_timeout=API_TIMEOUT,
    )
    return sorted(item["metadata"]["name"] for item in listed.get("items") or [])


def _idle(status: dict) -> bool:
    """Stopped by the operator for idleness or duration, not by `spec.state`: a wake resumes it."""
    return status.get("phase") == c.PHASE_STOPPED and status.get("stoppedReason") in (
        c.STOPPED_IDLE_TIMEOUT, c.STOPPED_MAX_DURATION,
    )


async def _change_state(api: client.ApiClient, args: argparse.Namespace, name: str) -> Target:
    """Asks for the state change of one session; what `--wait` waits for."""
    before = await _session(api, args.namespace, name)
    if args.command == "restart":
        request = _now()
        obj = await _patch(api, args.namespace, name, {"metadata": {"annotations": {c.ANNOTATION_RESTART: request}}})
        verb = "restart requested"
        stopped = (obj.get("spec") or {}).get("state") == c.STATE_STOPPED  # recorded, not acted on
        target = Target(c.PHASE_STOPPED if stopped else c.PHASE_RUNNING, obj["metadata"].get("generation") or 0,
                        ("restartRequest", request))
    elif args.command == "start" and (before.get("spec") or {}).get("state") != c.STATE_STOPPED \
            and _idle(before.get("status") or {}):
        # spec.state is Running already: only a wake resumes a session stopped for idleness.
        request = _now()
        obj = await _patch(api, args.namespace, name, {"metadata": {"annotations": {c.ANNOTATION_WAKE: request}}})
        verb = f"wake requested (stopped for {(before.get('status') or {}).get('stoppedReason')})"
        target = Target(c.PHASE_RUNNING, obj["metadata"].get("generation") or 0, ("wakeRequest", request))
    else:
        state = c.STATE_STOPPED if args.command == "stop" else c.STATE_RUNNING
        obj = await _patch(api, args.namespace, name, {"spec": {"state": state}})
        verb = f"spec.state set to {state}"
        target = Target(c.PHASE_STOPPED if args.command == "stop" else c.PHASE_RUNNING,
                        obj["metadata"].get("generation") or 0)
    if not args.wait:
        print(f"agentsession.{c.GROUP}/{name} {verb}", flush=True)
    return target


def _report(api: client.ApiClient, exc: Exception) -> None:
    """One session's failure, in its line: the other sessions of a batch go on."""
    print(f"error: {describe_failure(exc, api.configuration.host)}", file=sys.stderr, flush=True)
    if debugging():
        traceback.print_exc()


async def _wait(api: client.ApiClient, args: argparse.Namespace, name: str, target: Target) -> bool:
    try:
        await wait_for(session_changes(api, args.namespace, name), args.namespace, name, target, args.timeout)
    except Exception as exc:
        _report(api, exc)
        return False
    print(f"agentsession.{c.GROUP}/{name} is {target.describe()}", flush=True)
    return True


async def cmd_state(args: argparse.Namespace, api: client.ApiClient) -> int:
    """Asks each session in turn (lines in the order given, or by name), then waits for them all
    at once (lines as they get there)."""
    names = await _selected(api, args)
    if not names:
        chosen = f"match -l {args.selector}" if args.selector else "exist"
        print(f"no agentsessions {chosen} in namespace {args.namespace}: nothing to {args.command}", file=sys.stderr)
        return 0
    targets: dict[str, Target] = {}
    for name in names:
        try:
            targets[name] = await _change_state(api, args, name)
        except Exception as exc:
            _report(api, exc)
    waited = await asyncio.gather(*(_wait(api, args, n, t) for n, t in targets.items())) if args.wait else []
    return 0 if len(targets) == len(names) and all(waited) else 1


async def cmd_explain(args: argparse.Namespace, api: client.ApiClient) -> int:
    obj = await _session(api, args.namespace, args.name)
    listed = await client.CustomObjectsApi(api).list_namespaced_custom_object(
        c.GROUP, c.VERSION, args.namespace, c.TEMPLATE_PLURAL, _request_timeout=API_TIMEOUT
    )
    templates = {t["metadata"]["name"]: t for t in listed.get("items") or []}
    try:
        resolved = resolve_config(obj, templates)
    except ConfigInvalid as invalid:
        raise CommandError(f"the configuration of agentsession {args.namespace}/{args.name} is invalid: "
                           + "; ".join(one_line(p) for p in invalid.problems)) from None
    print(explain(resolved))
    return 0


COMMANDS = {
    "send": (cmd_send, "send a message to a session and print the reply"),
    "history": (cmd_history, "print a session's message history"),
    "logs": (cmd_logs, "print a session's agent log"),
    "stop": (cmd_state, "stop sessions (spec.state: Stopped; the workspace is kept)"),
    "start": (cmd_state, "start (resume) sessions (spec.state: Running)"),
    "restart": (cmd_state, "restart sessions (sets the agentsession.dev/restart annotation)"),
    "explain": (cmd_explain, "print a session's resolved configuration and the layer that set each field"),
}
STATE_COMMANDS = ("stop", "start", "restart")


def add_session_commands(commands: argparse._SubParsersAction) -> None:
    for name, (handler, help_text) in COMMANDS.items():
        parser = commands.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        if name in STATE_COMMANDS:
            _add_state_arguments(parser, name)
        else:
            parser.add_argument("name", metavar="NAME", help="the AgentSession")
        if name == "send":
            parser.add_argument("text", metavar="TEXT", help="the message")
            parser.add_argument("--stream", action="store_true", help="print the reply as it streams")
        if name == "history":
            parser.add_argument("--after-seq", type=int, default=0, help="only items after this sequence number")
            parser.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")
        if name == "logs":
            parser.add_argument("--tail", type=int, default=200, help="lines from the end (default: %(default)s)")
            parser.add_argument("-f", "--follow", action="store_true",
                                help="keep printing the log as it grows, until interrupted or the session ends "
                                "(the pod's log; for sessions without one, status.logs.tail)")
        if name in ("send", "history"):
            parser.add_argument("--gateway", default=os.environ.get("AGENT_SESSIONS_GATEWAY"),
                                help="gateway URL (default: $AGENT_SESSIONS_GATEWAY; without it, the session's "
                                "runtime endpoint is called directly)")
        parser.add_argument("-n", "--namespace", default=None, help="namespace (default: the kubeconfig's, else default)")
        parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
        parser.set_defaults(func=_run(handler))


def _add_state_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    reached = "Stopped" if command == "stop" else "Running and Ready"
    parser.add_argument("names", metavar="NAME", nargs="*", help="the AgentSessions (or -l, or --all)")
    parser.add_argument("-l", "--selector", metavar="SELECTOR",
                        help="every AgentSession of the namespace with these labels, e.g. team=a,tier!=prod")
    parser.add_argument("--all", action="store_true", help="every AgentSession of the namespace")
    parser.add_argument("--wait", action="store_true",
                        help=f"wait until each session is {reached}; exit code 1 with the reason when one "
                        "fails or the timeout passes")
    parser.add_argument("--timeout", type=duration, default=duration(DEFAULT_WAIT_TIMEOUT), metavar="DURATION",
                        help=f"how long --wait waits, e.g. 90s, 5m (default: {DEFAULT_WAIT_TIMEOUT})")


async def _with_api(handler: Any, args: argparse.Namespace) -> int:
    api = await make_api_client(args.kubeconfig)
    try:
        return await handler(args, api)
    except CommandError:
        raise
    except Exception as exc:
        raise CommandError(describe_failure(exc, api.configuration.host)) from exc
    finally:
        await api.close()


def _run(handler: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            require_kubeconfig(args.kubeconfig)
            if args.namespace is None:
                args.namespace = _kubeconfig_namespace(args.kubeconfig)
            return asyncio.run(_with_api(handler, args))
        except KeyboardInterrupt:
            return 130
        except Exception as exc:
            print(f"error: {describe_failure(exc, None)}", file=sys.stderr)
            if debugging():
                traceback.print_exc()
            return 1

    return run


def _kubeconfig_namespace(path: str | None) -> str:
    import yaml

    path = path or (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0] or os.path.expanduser("~/.kube/config")
    try:
        with open(path, encoding="utf-8") as file:
            config = yaml.safe_load(file) or {}
    except OSError:
        return "default"
    except yaml.YAMLError as exc:
        raise CommandError(f"kubeconfig {path} is not valid YAML ({yaml_problem(exc)}): fix it, "
                           "or point KUBECONFIG or --kubeconfig at another") from None
    if not isinstance(config, dict):
        return "default"
    current = config.get("current-context")
    for ctx in config.get("contexts") or []:
        if isinstance(ctx, dict) and ctx.get("name") == current:
            return (ctx.get("context") or {}).get("namespace") or "default"
    return "default"
