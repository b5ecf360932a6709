"""`stop`, `start` and `restart` of one session or many (NAME…, `-l SELECTOR`, `--all`).

Each session is asked in turn (its line printed in the order given, or by name); `--wait` then
waits for them all at once (a line each as it gets there). One session's failure is its own
`error:` line: the others go on, and the command exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import traceback

from kubernetes_asyncio import client

from agent_sessions.api import constants as c
from agent_sessions.cli.failures import CommandError, debugging, describe_failure
from agent_sessions.cli.session_api import API_TIMEOUT, read_session, session_changes
from agent_sessions.cli.session_wait import Target, duration, wait_for
from agent_sessions.k8s.session_state import request_state_change

DEFAULT_WAIT_TIMEOUT = "5m"


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


async def _change_state(api: client.ApiClient, args: argparse.Namespace, name: str) -> Target:
    """Asks for the state change of one session (`k8s.session_state`, as the gateway's
    `POST …/stop|start|restart` does); what `--wait` waits for."""
    before = await read_session(api, args.namespace, name)
    obj, change = await request_state_change(api, args.namespace, name, args.command, before,
                                             request_timeout=API_TIMEOUT)
    if not args.wait:
        print(f"agentsession.{c.GROUP}/{name} {change.said}", flush=True)
    return Target(change.phase, obj["metadata"].get("generation") or 0, change.request)


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


def add_state_arguments(parser: argparse.ArgumentParser, command: str) -> None:
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
