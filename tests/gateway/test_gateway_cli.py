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
    assert (options.keepalive_seconds, options.wake_timeout_seconds) == (15.0, 120.0)


def test_hardened_by_default_rate_limited_and_every_connection_bounded_in_time():
    options = options_from_args(parser().parse_args(["gateway"]))
    assert (options.rate_limit_per_second, options.rate_limit_burst) == (10.0, 50)
    assert (options.header_timeout_seconds, options.body_timeout_seconds) == (10.0, 60.0)
    assert (options.idle_timeout_seconds, options.websocket_idle_seconds) == (75.0, 300.0)


def test_timeout_flags():
    args = parser().parse_args(["gateway", "--header-timeout-seconds", "2", "--body-timeout-seconds", "3",
                                "--idle-timeout-seconds", "4", "--websocket-idle-seconds", "0"])
    options = options_from_args(args)
    assert (options.header_timeout_seconds, options.body_timeout_seconds) == (2.0, 3.0)
    assert (options.idle_timeout_seconds, options.websocket_idle_seconds) == (4.0, 0.0)


@pytest.mark.parametrize("flag", ["--header-timeout-seconds", "--body-timeout-seconds", "--idle-timeout-seconds"])
def test_timeouts_must_be_positive(flag, capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["gateway", flag, "0"])
    assert "must be positive" in capsys.readouterr().err


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
