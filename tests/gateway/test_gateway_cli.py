"""`agent-sessions gateway`: its flags and help."""

from __future__ import annotations

import argparse

import pytest

from agent_sessions.gateway.cli import add_gateway_command, options_from_args


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="agent-sessions")
    add_gateway_command(root.add_subparsers(dest="command"))
    return root


def test_defaults_follow_the_design():
    options = options_from_args(parser().parse_args(["gateway"]))
    assert (options.port, options.max_message_bytes, options.auth_cache_seconds) == (8081, 1024 * 1024, 10.0)
    assert (options.keepalive_seconds, options.wake_timeout_seconds, options.rate_limit_per_second) == (15.0, 120.0, 0)


def test_flags(tmp_path):
    defaults = tmp_path / "defaults.yaml"
    defaults.write_text("lifecycle:\n  wakeOnMessage: false\n")
    args = parser().parse_args(["gateway", "--host", "127.0.0.1", "--port", "9000", "--kubeconfig", "kc",
                                "--max-message-bytes", "2048", "--auth-cache-seconds", "0", "--rate-limit", "5",
                                "--rate-burst", "10", "--operator-defaults", str(defaults)])
    options = options_from_args(args)
    assert (options.host, options.port, options.max_message_bytes, options.auth_cache_seconds) == (
        "127.0.0.1", 9000, 2048, 0.0)
    assert (options.rate_limit_per_second, options.rate_limit_burst) == (5.0, 10)
    assert options.operator_defaults == {"lifecycle": {"wakeOnMessage": False}}
    assert args.kubeconfig == "kc" and callable(args.func)


def test_help_describes_the_command(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["gateway", "--help"])
    text = capsys.readouterr().out
    for flag in ("--host", "--port", "--kubeconfig", "--max-message-bytes", "--auth-cache-seconds"):
        assert flag in text
    assert "SubjectAccessReview" in text


def test_bad_values_are_refused():
    with pytest.raises(SystemExit):
        parser().parse_args(["gateway", "--max-message-bytes", "0"])
