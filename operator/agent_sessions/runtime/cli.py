"""The `runtime` and `demo-agent` subcommands, for `agent-sessions` and `python -m agent_sessions.runtime`.

`agent_sessions.cli.main` wires them in with `add_runtime_commands(commands)`; the runtime
package can also run on its own (`python -m agent_sessions.runtime …`), which is what the tests
use, so they do not depend on the top-level CLI.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from agent_sessions.api.constants import ENV_RUNTIME_HOST
from agent_sessions.wire.credentials import ENV_TOKEN_FILE

from .options import (
    ENV_SESSION_NAME,
    ENV_SESSION_NAMESPACE,
    ENV_SESSION_UID,
    PROTOCOLS,
    RuntimeOptions,
    SessionIdentity,
)
from .output import CountingFilter

RUNTIME_DESCRIPTION = (
    "Run an agent inside its session and serve the session's HTTP endpoint: GET /healthz, GET /v1/info, "
    "POST /v1/messages (JSON or SSE), GET /v1/history?after_seq=N[&wait=S] (long-poll), POST /v1/cancel. "
    "The agent is the "
    "command after `--`; it speaks ACP over stdio (or, with --protocol stdio-lines, plain lines). "
    "History and the ACP session id are kept in <workspace>/.agent-session/ so a resumed session "
    "continues where it stopped."
)
DEMO_AGENT_DESCRIPTION = (
    "A real ACP agent on stdio, for samples and tests: echoes each prompt back in streamed chunks, "
    "reports a tool call and usage, and titles the session from the first prompt. Environment: "
    "DEMO_AGENT_CHUNK_DELAY (seconds between chunks, default 0.05), DEMO_AGENT_REQUIRE_AUTH=1 (refuse "
    "session/new with -32000 'Authentication required'), DEMO_AGENT_CRASH_ON=<text> (exit 3 on a prompt "
    "containing it)."
)


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default=os.environ.get(ENV_RUNTIME_HOST) or "0.0.0.0",
        help=f"address to serve on (default: ${ENV_RUNTIME_HOST}, else 0.0.0.0)",
    )
    parser.add_argument("--port", type=int, default=8080, help="port to serve on (default: %(default)s)")
    parser.add_argument("--workspace", default=None, metavar="DIR",
                        help="the agent's working directory; state goes to DIR/.agent-session/ "
                        "(default: current directory)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="acp",
                        help="how to talk to the agent: ACP over stdio, or one line in / lines out "
                        "(default: %(default)s)")
    parser.add_argument("--session-namespace", default=None,
                        help=f"session namespace (default: ${ENV_SESSION_NAMESPACE})")
    parser.add_argument("--session-name", default=None, help=f"session name (default: ${ENV_SESSION_NAME})")
    parser.add_argument("--session-uid", default=None, help=f"session uid (default: ${ENV_SESSION_UID})")
    parser.add_argument("--quiet-ms", type=int, default=500,
                        help="stdio-lines: a reply ends after this much silence (default: %(default)s)")
    parser.add_argument("--first-output-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="stdio-lines: end a reply that has not started after this long (default: %(default)s)")
    parser.add_argument("--start-timeout", type=float, default=60.0, metavar="SECONDS",
                        help="acp: time allowed for initialize and opening the session (default: %(default)s)")
    parser.add_argument("--cancel-grace", type=float, default=10.0, metavar="SECONDS",
                        help="how long the agent has to end a turn after cancel before the runtime ends it "
                        "(default: %(default)s)")
    parser.add_argument("--permissions", choices=("allow", "reject"), default="allow",
                        help="acp: how to answer the agent's permission requests; nobody is there to ask "
                        "(default: %(default)s)")
    parser.add_argument("--token-file", default=None, metavar="FILE",
                        help="a file holding the bearer token every endpoint but /healthz requires "
                        f"(default: ${ENV_TOKEN_FILE}; without either the endpoint is open to anyone who can "
                        "connect, and a warning is logged)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        help="log level (default: %(default)s); message contents are never logged")
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="log format (default: %(default)s)")
    parser.add_argument("agent_command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG ...]",
                        help="the agent's command line")


def options_from_args(args: argparse.Namespace) -> RuntimeOptions:
    command = list(args.agent_command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise SystemExit("agent-sessions runtime: give the agent's command after `--`")
    if not args.cancel_grace > 0:
        raise SystemExit(f"agent-sessions runtime: --cancel-grace must be a positive number of seconds, got {args.cancel_grace}")
    return RuntimeOptions(
        command=tuple(command),
        token=read_token(args.token_file or os.environ.get(ENV_TOKEN_FILE) or None),
        workspace=Path(args.workspace) if args.workspace else Path.cwd(),
        host=args.host,
        port=args.port,
        protocol=args.protocol,
        session=SessionIdentity.from_env(
            os.environ, namespace=args.session_namespace, name=args.session_name, uid=args.session_uid
        ),
        quiet_ms=args.quiet_ms,
        first_output_timeout=args.first_output_timeout,
        start_timeout=args.start_timeout,
        cancel_grace=args.cancel_grace,
        permissions=args.permissions,
    )


def read_token(path: str | None) -> str | None:
    """The bearer token in the file at `path` (surrounding whitespace dropped); None without a path.
    A named file that cannot be read, or is empty, stops the runtime: it must never serve open
    because its credential went missing."""
    if not path:
        return None
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise SystemExit(f"agent-sessions runtime: cannot read the token file {path}: {error}") from None
    if not token:
        raise SystemExit(f"agent-sessions runtime: the token file {path} is empty")
    return token


class _JsonFormatter(logging.Formatter):
    def __init__(self, session: SessionIdentity) -> None:
        super().__init__()
        self._session = session.to_json()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "session": self._session,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _UnparsedUpdates(logging.Filter):
    """The ACP SDK logs a full traceback (at ERROR, on the root logger) for every
    `session/update` its models cannot parse — e.g. an update kind newer than the SDK. The bridge
    records such updates raw anyway (see `acp_link`), so one traceback per streamed chunk would
    only bury the logs: they are shown, without the traceback, at DEBUG only."""

    PREFIX = "Unhandled error while handling notification method=session/update"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "root" or not str(record.msg).startswith(self.PREFIX):
            return True
        record.msg, record.args = "a session/update the ACP SDK could not parse was recorded as sent", ()
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


def configure_logging(level: str, fmt: str, session: SessionIdentity) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_UnparsedUpdates())
    handler.addFilter(CountingFilter())  # last: counts what is written (`output`)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter(session))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def run_runtime(args: argparse.Namespace) -> int:
    import asyncio

    from .server import serve

    options = options_from_args(args)
    configure_logging(args.log_level, args.log_format, options.session)
    from agent_sessions.wire import tracing

    tracing.configure("agent-sessions-runtime")
    try:
        asyncio.run(serve(options))
    except KeyboardInterrupt:
        pass
    return 0


def run_demo_agent(args: argparse.Namespace) -> int:
    from .demo_agent import main as demo_main

    return demo_main()


def add_runtime_commands(commands: argparse._SubParsersAction) -> None:
    """Register `runtime` and `demo-agent` on the `agent-sessions` subcommands."""
    runtime = commands.add_parser(
        "runtime",
        help="run an agent inside its session and serve the session's HTTP endpoint",
        description=RUNTIME_DESCRIPTION,
    )
    add_runtime_arguments(runtime)
    runtime.set_defaults(func=run_runtime)
    demo = commands.add_parser(
        "demo-agent",
        help="a demo ACP agent on stdio (echo, tool call, usage, title)",
        description=DEMO_AGENT_DESCRIPTION,
    )
    demo.set_defaults(func=run_demo_agent)


def runtime_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m agent_sessions.runtime", description=RUNTIME_DESCRIPTION)
    add_runtime_arguments(parser)
    return parser


def demo_agent_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog="python -m agent_sessions.runtime demo-agent", description=DEMO_AGENT_DESCRIPTION
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m agent_sessions.runtime [options] -- COMMAND…`: the runtime without the top-level CLI.

    The subcommand names are accepted too (`… runtime [options] -- COMMAND…`, `… demo-agent`), so
    a command line written for `agent-sessions` runs unchanged with `agent-sessions` replaced by
    `python -m agent_sessions.runtime` (local pod runners do that).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["demo-agent"]:
        return run_demo_agent(demo_agent_parser().parse_args(args[1:]))
    if args[:1] == ["runtime"]:
        args = args[1:]
    return run_runtime(runtime_parser().parse_args(args))
