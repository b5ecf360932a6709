"""`agent-sessions runtime` and `demo-agent` as registered by the runtime package."""

from __future__ import annotations

import argparse

import pytest

from agent_sessions.runtime.cli import add_runtime_commands, options_from_args, runtime_parser
from agent_sessions.runtime.options import SessionIdentity


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="agent-sessions")
    add_runtime_commands(top.add_subparsers(dest="command", required=True))
    return top


def test_both_subcommands_are_registered_with_help():
    top = parser()
    help_text = top.format_help()
    assert "runtime" in help_text and "demo-agent" in help_text
    actions = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("runtime", "demo-agent"):
        assert actions.choices[name].description
    runtime_help = actions.choices["runtime"].format_help()
    for flag in ("--port", "--host", "--workspace", "--protocol", "--session-name", "--quiet-ms"):
        assert flag in runtime_help


def test_the_agent_command_is_everything_after_the_double_dash(tmp_path):
    args = parser().parse_args(
        ["runtime", "--port", "9000", "--workspace", str(tmp_path), "--protocol", "stdio-lines", "--", "my-agent", "--port", "1"]
    )
    options = options_from_args(args)
    assert options.command == ("my-agent", "--port", "1")
    assert options.port == 9000 and options.workspace == tmp_path and options.protocol == "stdio-lines"


def test_defaults_match_the_pod_provider():
    options = options_from_args(runtime_parser().parse_args(["--", "agent"]))
    assert (options.host, options.port, options.protocol, options.quiet_ms) == ("0.0.0.0", 8080, "acp", 500)


def test_a_missing_agent_command_is_an_error():
    with pytest.raises(SystemExit):
        options_from_args(runtime_parser().parse_args(["--port", "1"]))


def test_session_identity_comes_from_flags_then_the_environment():
    env = {"AGENT_SESSION_NAMESPACE": "ns", "AGENT_SESSION_NAME": "env-name", "AGENT_SESSION_UID": "u-1"}
    assert SessionIdentity.from_env(env, name="flag-name") == SessionIdentity("ns", "flag-name", "u-1")
    assert SessionIdentity.from_env({}).to_json() == {"namespace": None, "name": None, "uid": None}


def test_sdk_tracebacks_for_unparsable_updates_are_quieted_to_debug():
    import logging

    from agent_sessions.runtime.cli import _UnparsedUpdates

    def record(msg: str, name: str = "root") -> logging.LogRecord:
        try:
            raise ValueError("validation")
        except ValueError:
            import sys

            return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, (), sys.exc_info())

    quiet = _UnparsedUpdates()
    noisy = record("Unhandled error while handling notification method=session/update")
    root = logging.getLogger()
    level = root.level
    try:
        root.setLevel(logging.INFO)
        assert quiet.filter(noisy) is False
        root.setLevel(logging.DEBUG)
        shown = record("Unhandled error while handling notification method=session/update")
        assert quiet.filter(shown) is True
        assert shown.levelno == logging.DEBUG and shown.exc_info is None
    finally:
        root.setLevel(level)
    other = record("Unhandled error while handling request method=session/prompt")
    assert quiet.filter(other) is True and other.levelno == logging.ERROR and other.exc_info


def test_the_standalone_entry_accepts_the_subcommand_names(monkeypatch):
    from agent_sessions.runtime import cli

    calls: list[tuple[str, object]] = []
    monkeypatch.setattr(cli, "run_runtime", lambda args: calls.append(("runtime", tuple(args.agent_command))) or 0)
    monkeypatch.setattr(cli, "run_demo_agent", lambda args: calls.append(("demo-agent", None)) or 0)
    cli.main(["--port", "1", "--", "agent"])
    cli.main(["runtime", "--port", "1", "--", "agent"])
    cli.main(["demo-agent"])
    assert calls == [("runtime", ("--", "agent")), ("runtime", ("--", "agent")), ("demo-agent", None)]
