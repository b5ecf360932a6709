"""The conformance kit passes against the reference server and fails, readably, against a
platform that breaks the contract."""

from __future__ import annotations

import asyncio

from agent_sessions.cli.main import main as agent_sessions
from agent_sessions.dev.conformance import CHECKS, Row, format_table, run_checks

from .broken_platform import running_broken_platform
from .conftest import TOKEN


def by_name(rows: list[Row]) -> dict[str, Row]:
    return {row.check: row for row in rows}


def test_the_reference_server_passes_every_check(platform, capsys):
    exit_code = agent_sessions(["provider-conformance", platform.url, "--token", TOKEN, "--timeout", "30"])
    table = capsys.readouterr().out
    assert exit_code == 0, table
    lines = table.strip().splitlines()
    assert lines[0].split() == ["CHECK", "RESULT", "DETAIL"]
    assert len(lines) == len(CHECKS) + 2
    assert all(line.split()[1] == "PASS" for line in lines[1:-1]), table
    assert lines[-1] == f"{len(CHECKS)} checks: {len(CHECKS)} passed, 0 failed"
    assert "401 without a token and with a wrong one" in table
    stats = platform.stats()
    assert (stats["creates"], stats["sessions"]) == (1, 0)  # one session, cleaned up


def test_a_broken_platform_fails_with_one_readable_row_per_broken_rule(capsys):
    with running_broken_platform() as url:
        exit_code = agent_sessions(["provider-conformance", url, "--timeout", "5"])
    table = capsys.readouterr().out
    assert exit_code == 1
    rows = {line.split()[0]: line for line in table.strip().splitlines()[1:-1]}
    failed = {name for name, line in rows.items() if line.split()[1] == "FAIL"}
    assert failed == {"put_is_idempotent", "delete_is_idempotent"}, table
    assert "a repeated PUT must answer 200 (the session exists), got 201" in rows["put_is_idempotent"]
    assert "second DELETE: expected 404 (or 2xx), got 500 provider_unavailable" in rows["delete_is_idempotent"]
    assert rows["authentication"].split()[1] == "PASS" and "skipped: no --token given" in rows["authentication"]
    assert table.strip().splitlines()[-1] == f"{len(CHECKS)} checks: {len(CHECKS) - 2} passed, 2 failed"


def test_an_unreachable_platform_fails_every_check_with_the_reason():
    rows = asyncio.run(run_checks("http://127.0.0.1:9", timeout=1.0))
    assert [row.check for row in rows] == [name for name, _ in CHECKS]
    results = by_name(rows)
    assert not results["capabilities"].ok
    assert "no answer (ClientConnectorError" in results["capabilities"].detail
    assert not results["put_is_idempotent"].ok
    assert results["put_is_idempotent"].detail == "no session was created (see put_creates_session)"


def test_a_crashing_check_is_a_failure_not_a_crash():
    async def explodes(probe):
        raise RuntimeError("boom")

    rows = asyncio.run(run_checks("http://127.0.0.1:9", checks=(("explodes", explodes),)))
    assert rows == [Row("explodes", False, "the check crashed: RuntimeError: boom")]
    assert format_table(rows).splitlines()[1].split()[:2] == ["explodes", "FAIL"]
