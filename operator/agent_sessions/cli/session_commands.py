"""Session commands of the CLI: `send`, `history`, `logs`, `stop`, `start`, `restart`, `explain`.

Each works against the current kubeconfig, like kubectl (and so against `make dev`). Messages go
to the session's runtime bridge at the endpoint in its status — reachable from inside the
cluster and in `make dev` — or, with `--gateway URL` (or `$AGENT_SESSIONS_GATEWAY`), through the
gateway, authenticated with the kubeconfig's bearer token. A runtime requires its session's token:
called directly, it is read from the session's token Secret (pod provider), which only those who
may read Secrets in the session's namespace can do; everyone else goes through the gateway.

Every failure ends the command with one `error: …` line on stderr and exit code 1 (`failures`).
`logs` lives in `session_logs`, `stop`/`start`/`restart` (of many sessions at once, `--wait`) in
`session_state` and `session_wait`; their calls to the API in `session_api`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import sys
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from agent_sessions.api import constants as c
from agent_sessions.cli.failures import (
    CommandError, connection_failure, debugging, describe_failure, one_line, require_kubeconfig, yaml_problem,
)
from agent_sessions.cli.session_api import API_TIMEOUT, patch_session, read_session
from agent_sessions.cli.session_logs import cmd_logs
from agent_sessions.cli.session_state import add_state_arguments, cmd_state
from agent_sessions.cli.session_wait import why
from agent_sessions.config import ConfigInvalid, explain, resolve_config
from agent_sessions.k8s.client import USER_AGENT, connection_fields, make_api_client
from agent_sessions.k8s.session_state import now, stopped_for_idleness
from agent_sessions.wire.frames import EVENT_AGENT_MESSAGE_CHUNK, EVENT_DONE, EVENT_ERROR, EVENT_USER_MESSAGE
from agent_sessions.wire.sse import SSEParser

WAKE_TIMEOUT = 120.0


async def _runtime_headers(api: client.ApiClient, namespace: str, name: str) -> dict[str, str]:
    """Headers for a direct call to the session's runtime: its token, when the caller may read the
    session's token Secret (none otherwise: the runtime then answers 401, naming the gateway)."""
    from agent_sessions.providers.pod.names import token_secret_name
    from agent_sessions.wire.credentials import TOKEN_FILE_NAME

    headers = {"User-Agent": USER_AGENT}
    uid = ((await read_session(api, namespace, name)).get("metadata") or {}).get("uid") or ""
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
    obj = await read_session(api, namespace, name)
    status = obj.get("status") or {}
    if stopped_for_idleness(status) and wake:
        await patch_session(api, namespace, name, {"metadata": {"annotations": {c.ANNOTATION_WAKE: now()}}})
        print(f"waking {namespace}/{name} …", file=sys.stderr)
        deadline = asyncio.get_running_loop().time() + WAKE_TIMEOUT
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.5)
            status = (await read_session(api, namespace, name)).get("status") or {}
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


async def _target(args: argparse.Namespace, api: client.ApiClient, *, gateway_path: str, runtime_path: str,
                  wake: bool) -> tuple[str, Peer, dict[str, str]]:
    """Where a command reaches the session: `(url, peer, headers)` of the gateway (`--gateway`,
    at `…/sessions/NAME` + `gateway_path`) or of the session's own runtime (+ `runtime_path`)."""
    if args.gateway:
        url = f"{args.gateway.rstrip('/')}/v1/namespaces/{args.namespace}/sessions/{args.name}{gateway_path}"
        return url, _gateway(args.gateway), await _gateway_headers(api)
    endpoint = await _running_endpoint(api, args.namespace, args.name, wake=wake)
    return (f"{endpoint}{runtime_path}", _runtime(args.namespace, args.name, endpoint),
            await _runtime_headers(api, args.namespace, args.name))


async def cmd_send(args: argparse.Namespace, api: client.ApiClient) -> int:
    body = {"text": args.text}
    params = {"stream": "true"} if args.stream else {}
    url, peer, headers = await _target(args, api, gateway_path="/messages", runtime_path="/v1/messages", wake=True)
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=None)) as http:
        async with _request(http, "POST", url, peer, json=body, params=params) as response:
            if args.stream:
                await _stream(response)
            else:
                reply = await _json(response, peer)
                print(reply.get("text", "") if isinstance(reply, dict) else "")
    return 0


async def cmd_history(args: argparse.Namespace, api: client.ApiClient) -> int:
    url, peer, headers = await _target(args, api, gateway_path="", runtime_path="/v1/history", wake=False)
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


async def cmd_explain(args: argparse.Namespace, api: client.ApiClient) -> int:
    obj = await read_session(api, args.namespace, args.name)
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
            add_state_arguments(parser, name)
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
