"""Session commands of the CLI: `send`, `history`, `logs`, `stop`, `start`, `restart`, `explain`.

Each works against the current kubeconfig, like kubectl (and so against `make dev`). Messages go
to the session's runtime bridge at the endpoint in its status — reachable from inside the
cluster and in `make dev` — or, with `--gateway URL` (or `$AGENT_SESSIONS_GATEWAY`), through the
gateway, authenticated with the kubeconfig's bearer token. A runtime requires its session's token:
called directly, it is read from the session's token Secret (pod provider), which only those who
may read Secrets in the session's namespace can do; everyone else goes through the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
from datetime import datetime, timezone
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from agent_sessions.api import constants as c
from agent_sessions.config import ConfigInvalid, explain, resolve_config
from agent_sessions.k8s.client import USER_AGENT, connection_fields, make_api_client
from agent_sessions.k8s.status import MERGE_PATCH
from agent_sessions.wire.frames import EVENT_AGENT_MESSAGE_CHUNK, EVENT_DONE, EVENT_ERROR, EVENT_USER_MESSAGE
from agent_sessions.wire.sse import SSEParser

WAKE_TIMEOUT = 120.0


class CommandError(Exception):
    """A failure to report to the user in one line (exit code 1)."""


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def _session(api: client.ApiClient, namespace: str, name: str) -> dict:
    try:
        return await client.CustomObjectsApi(api).get_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.SESSION_PLURAL, name
        )
    except ApiException as exc:
        if exc.status == 404:
            raise CommandError(f'agentsession "{name}" not found in namespace "{namespace}"') from None
        raise CommandError(f"reading agentsession {namespace}/{name}: {exc.status} {exc.reason}") from None


async def _patch(api: client.ApiClient, namespace: str, name: str, patch: dict) -> None:
    await client.CustomObjectsApi(api).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.SESSION_PLURAL, name, patch, _content_type=MERGE_PATCH
    )


async def _runtime_headers(api: client.ApiClient, namespace: str, name: str) -> dict[str, str]:
    """Headers for a direct call to the session's runtime: its token, when the caller may read the
    session's token Secret (none otherwise: the runtime then answers 401, naming the gateway)."""
    from agent_sessions.providers.pod.names import token_secret_name
    from agent_sessions.wire.credentials import TOKEN_FILE_NAME

    headers = {"User-Agent": USER_AGENT}
    uid = ((await _session(api, namespace, name)).get("metadata") or {}).get("uid") or ""
    try:
        secret = await client.CoreV1Api(api).read_namespaced_secret(token_secret_name(namespace, name, uid), namespace)
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
    idle = status.get("phase") == c.PHASE_STOPPED and status.get("stoppedReason") in (
        c.STOPPED_IDLE_TIMEOUT, c.STOPPED_MAX_DURATION,
    )
    if idle and wake:
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
        raise CommandError(f"session {namespace}/{name} is not running (phase {status.get('phase') or 'unknown'})")
    return endpoint


async def _gateway_headers(api: client.ApiClient) -> dict[str, str]:
    fields = await connection_fields(api)
    return fields["headers"]


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
                raise CommandError(f"{data.get('code')}: {data.get('message')}")
            if message.event == EVENT_DONE:
                sys.stdout.write("\n")
                return
            _print_update(data.get("update") or {})


async def cmd_send(args: argparse.Namespace) -> int:
    api = await make_api_client(args.kubeconfig)
    try:
        body = {"text": args.text}
        params = {"stream": "true"} if args.stream else {}
        if args.gateway:
            url = f"{args.gateway.rstrip('/')}/v1/namespaces/{args.namespace}/sessions/{args.name}/messages"
            headers = await _gateway_headers(api)
        else:
            url = f"{await _running_endpoint(api, args.namespace, args.name, wake=True)}/v1/messages"
            headers = await _runtime_headers(api, args.namespace, args.name)
        async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=None)) as http:
            async with http.post(url, json=body, params=params) as response:
                if response.status >= 400:
                    error = await response.json(content_type=None)
                    raise CommandError(f"{error.get('code', response.status)}: {error.get('message', '')}")
                if args.stream:
                    await _stream(response)
                else:
                    reply = await response.json()
                    print(reply.get("text", ""))
        return 0
    finally:
        await api.close()


async def cmd_history(args: argparse.Namespace) -> int:
    api = await make_api_client(args.kubeconfig)
    try:
        if args.gateway:
            url = f"{args.gateway.rstrip('/')}/v1/namespaces/{args.namespace}/sessions/{args.name}"
            headers = await _gateway_headers(api)
        else:
            url = f"{await _running_endpoint(api, args.namespace, args.name, wake=False)}/v1/history"
            headers = await _runtime_headers(api, args.namespace, args.name)
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(url, params={"after_seq": str(args.after_seq)}) as response:
                if response.status >= 400:
                    error = await response.json(content_type=None)
                    raise CommandError(f"{error.get('code', response.status)}: {error.get('message', '')}")
                body = await response.json()
        items = body.get("items") or (body.get("history") or {}).get("items") or []
        if args.output == "json":
            print(json.dumps(items, indent=2))
            return 0
        for line in render_history(items):
            print(line)
        return 0
    finally:
        await api.close()


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


async def cmd_logs(args: argparse.Namespace) -> int:
    api = await make_api_client(args.kubeconfig)
    try:
        obj = await _session(api, args.namespace, args.name)
        status = obj.get("status") or {}
        provider = status.get("provider") or {}
        if provider.get("type") == c.PROVIDER_POD and provider.get("id"):
            try:
                text = await client.CoreV1Api(api).read_namespaced_pod_log(
                    provider["id"], args.namespace, tail_lines=args.tail, _preload_content=False
                )
                sys.stdout.write((await text.read()).decode(errors="replace"))
                return 0
            except ApiException as exc:
                if exc.status != 404:
                    raise CommandError(f"reading logs: {exc.status} {exc.reason}") from None
        tail = (status.get("logs") or {}).get("tail")
        if tail is None:
            raise CommandError(f"no logs for session {args.namespace}/{args.name}")
        sys.stdout.write(tail)
        return 0
    finally:
        await api.close()


async def cmd_state(args: argparse.Namespace) -> int:
    api = await make_api_client(args.kubeconfig)
    try:
        await _session(api, args.namespace, args.name)
        if args.command == "restart":
            patch = {"metadata": {"annotations": {c.ANNOTATION_RESTART: _now()}}}
            verb = "restart requested"
        else:
            state = c.STATE_STOPPED if args.command == "stop" else c.STATE_RUNNING
            patch = {"spec": {"state": state}}
            verb = f"spec.state set to {state}"
        await _patch(api, args.namespace, args.name, patch)
        print(f"agentsession.{c.GROUP}/{args.name} {verb}")
        return 0
    finally:
        await api.close()


async def cmd_explain(args: argparse.Namespace) -> int:
    api = await make_api_client(args.kubeconfig)
    try:
        obj = await _session(api, args.namespace, args.name)
        listed = await client.CustomObjectsApi(api).list_namespaced_custom_object(
            c.GROUP, c.VERSION, args.namespace, c.TEMPLATE_PLURAL
        )
        templates = {t["metadata"]["name"]: t for t in listed.get("items") or []}
        try:
            resolved = resolve_config(obj, templates)
        except ConfigInvalid as invalid:
            raise CommandError("the configuration is invalid:\n  " + "\n  ".join(str(p) for p in invalid.problems)) from None
        print(explain(resolved))
        return 0
    finally:
        await api.close()


COMMANDS = {
    "send": (cmd_send, "send a message to a session and print the reply"),
    "history": (cmd_history, "print a session's message history"),
    "logs": (cmd_logs, "print a session's agent log"),
    "stop": (cmd_state, "stop a session (spec.state: Stopped; the workspace is kept)"),
    "start": (cmd_state, "start (resume) a session (spec.state: Running)"),
    "restart": (cmd_state, "restart a session (sets the agentsession.dev/restart annotation)"),
    "explain": (cmd_explain, "print a session's resolved configuration and the layer that set each field"),
}


def add_session_commands(commands: argparse._SubParsersAction) -> None:
    for name, (handler, help_text) in COMMANDS.items():
        parser = commands.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        parser.add_argument("name", metavar="NAME", help="the AgentSession")
        if name == "send":
            parser.add_argument("text", metavar="TEXT", help="the message")
            parser.add_argument("--stream", action="store_true", help="print the reply as it streams")
        if name == "history":
            parser.add_argument("--after-seq", type=int, default=0, help="only items after this sequence number")
            parser.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")
        if name == "logs":
            parser.add_argument("--tail", type=int, default=200, help="lines from the end (default: %(default)s)")
        if name in ("send", "history"):
            parser.add_argument("--gateway", default=os.environ.get("AGENT_SESSIONS_GATEWAY"),
                                help="gateway URL (default: $AGENT_SESSIONS_GATEWAY; without it, the session's "
                                "runtime endpoint is called directly)")
        parser.add_argument("-n", "--namespace", default=None, help="namespace (default: the kubeconfig's, else default)")
        parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
        parser.set_defaults(func=_run(handler))


def _run(handler: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        if args.namespace is None:
            args.namespace = _kubeconfig_namespace(args.kubeconfig)
        try:
            return asyncio.run(handler(args))
        except CommandError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return run


def _kubeconfig_namespace(path: str | None) -> str:
    import yaml

    path = path or (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0] or os.path.expanduser("~/.kube/config")
    try:
        config = yaml.safe_load(open(path, encoding="utf-8")) or {}
    except OSError:
        return "default"
    current = config.get("current-context")
    for ctx in config.get("contexts") or []:
        if ctx.get("name") == current:
            return (ctx.get("context") or {}).get("namespace") or "default"
    return "default"
