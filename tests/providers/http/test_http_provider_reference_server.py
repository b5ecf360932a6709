"""The reference server itself: persistence across restarts, the admin API (faults, hold,
stats, request log) over HTTP, and its command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid

import aiohttp
import pytest
from support.processes import alive, descendants
from support.waits import wait_until

from agent_sessions.cli.dev import add_conformance_command, add_provider_server_command
from agent_sessions.dev.provider_server import Fault, running_provider_server
from agent_sessions.dev.provider_server.store import SessionRecord, open_store

TIER = "embedded"  # starts the reference platform server

BODY = {"session": {"namespace": "ns", "name": "persisted"}, "agent": {"protocol": "acp"}}


async def wait_running(http: aiohttp.ClientSession, url: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        async with http.get(url) as response:
            body = await response.json()
        if body.get("state") == "Running" and body.get("ready"):
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("state_file", ["state.json", "state.sqlite", "state.db"])
def test_both_state_files_keep_sessions_and_counters(tmp_path, state_file):
    store = open_store(tmp_path / state_file)
    record = SessionRecord(id="s1", body=BODY, created_at="2025-01-01T00:00:00Z", workspace="/w", desired="Stopped")
    store.save(record, {"creates": 1, "puts": 2})
    store.save(SessionRecord(id="s2", body={}, created_at="x", workspace="/v"), {"creates": 2, "puts": 3})
    store.remove("s2", {"creates": 2, "puts": 4})
    store.close()
    records, counters = open_store(tmp_path / state_file).load()
    assert records == {"s1": record}
    assert counters == {"creates": 2, "puts": 4}


def test_an_unknown_state_file_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="use a .json file or a .sqlite"):
        open_store(tmp_path / "state.txt")


async def test_sessions_and_counters_survive_a_server_restart(tmp_path):
    session_id = str(uuid.uuid4())
    options = {"state": tmp_path / "state.sqlite", "workdir": tmp_path / "work"}
    async with aiohttp.ClientSession() as http:
        with running_provider_server(**options) as first:
            url = f"{first.url}/v1/sessions/{session_id}"
            async with http.put(url, json=BODY) as response:
                assert response.status == 201
            created = await wait_running(http, url)
        with running_provider_server(**options) as second:  # a new process, same state
            url = f"{second.url}/v1/sessions/{session_id}"
            resumed = await wait_running(http, url)  # it should run, so it was started again
            assert resumed["createdAt"] == created["createdAt"]
            async with http.put(url, json=BODY) as response:
                assert response.status == 200
            assert second.stats()["creates"] == 1
            async with http.delete(url) as response:
                assert response.status == 204


async def test_the_admin_api_injects_counts_and_clears_faults():
    async with aiohttp.ClientSession() as http:
        with running_provider_server() as server:
            base = server.url
            async with http.post(f"{base}/v1/admin/faults", json={"status": 503, "count": 2, "retryAfter": 7,
                                                                  "paths": "^/v1/capabilities$"}) as response:
                assert response.status == 201
                fault = await response.json()
            answers = []
            for _ in range(3):
                async with http.get(f"{base}/v1/capabilities") as response:
                    answers.append((response.status, response.headers.get("Retry-After")))
            assert answers == [(503, "7"), (503, "7"), (200, None)]

            async with http.post(f"{base}/v1/admin/faults", json={"drop": True, "methods": ["GET"]}):
                pass
            with pytest.raises(aiohttp.ServerDisconnectedError):
                async with http.get(f"{base}/v1/capabilities"):
                    pass
            async with http.get(f"{base}/v1/admin/faults") as response:  # admin paths are never faulted
                assert [f["drop"] for f in (await response.json())["faults"]] == [True]
            async with http.delete(f"{base}/v1/admin/faults") as response:
                assert response.status == 204
            async with http.get(f"{base}/v1/capabilities") as response:
                assert response.status == 200

            async with http.post(f"{base}/v1/admin/faults", json={"status": "500"}) as response:
                assert response.status == 400
                assert "status" in (await response.json())["message"]

            async with http.get(f"{base}/v1/admin/requests?limit=3") as response:
                log = (await response.json())["requests"]
            assert [r["status"] for r in log] == [204, 200, 400]
            async with http.get(f"{base}/v1/admin/stats") as response:
                stats = await response.json()
            assert stats["faulted"] >= 3 and stats["creates"] == 0  # the client may retry a dropped GET once
            capabilities = [r for r in server.requests() if r.path == "/v1/capabilities"]
            assert [r.fault for r in capabilities[:3]] == [fault["id"], fault["id"], None]


async def test_hold_keeps_new_sessions_pending_until_released():
    session_id = str(uuid.uuid4())
    async with aiohttp.ClientSession() as http:
        with running_provider_server() as server:
            async with http.post(f"{server.url}/v1/admin/hold", json={"hold": True}) as response:
                assert await response.json() == {"hold": True}
            url = f"{server.url}/v1/sessions/{session_id}"
            async with http.put(url, json=BODY) as response:
                body = await response.json()
            assert (body["state"], body["endpoint"]) == ("Pending", None)
            assert "held" in body["message"]
            server.hold(False)
            await wait_running(http, url)
            async with http.delete(url):
                pass


async def test_latency_faults_delay_without_failing():
    async with aiohttp.ClientSession() as http:
        with running_provider_server() as server:
            server.add_fault(latencyMs=300, count=1)
            started = time.monotonic()
            async with http.get(f"{server.url}/v1/capabilities") as response:
                assert response.status == 200
            assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "a fault needs status, drop or latencyMs"),
        ({"status": 700}, "status: 700 is not an HTTP status"),
        ({"status": True}, "status: True has the wrong type"),
        ({"status": 500, "count": 0}, "count: must be at least 1"),
        ({"status": 500, "paths": "("}, "paths: not a regular expression"),
        ({"status": 500, "colour": "red"}, "unknown fields ['colour']"),
        ({"drop": True, "methods": "GET"}, "methods: must be a list"),
    ],
)
def test_invalid_faults_are_refused_with_the_field_named(body, problem):
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace("[", r"\[")):
        Fault.from_json(body)


def test_the_commands_parse_their_options():
    parser = argparse.ArgumentParser(prog="agent-sessions")
    commands = parser.add_subparsers(dest="command", required=True)
    add_provider_server_command(commands)
    add_conformance_command(commands)
    args = parser.parse_args(["provider-server", "--port", "0", "--state", "s.json", "--token", "a", "--token", "b"])
    assert (args.port, args.state, args.token, args.host) == (0, "s.json", ["a", "b"], "127.0.0.1")
    args = parser.parse_args(["provider-conformance", "https://p.example", "--token", "t"])
    assert (args.url, args.token, args.timeout) == ("https://p.example", "t", 60.0)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=["term", "int", "hup"])
async def test_the_server_process_stops_its_sessions_processes_however_it_is_stopped(sig, tmp_path):
    """SIGHUP is what a closed terminal sends; before, it ended the server at once and left every
    session's bridge and agent running."""
    server = subprocess.Popen([sys.executable, "-m", "agent_sessions.cli.main", "provider-server", "--port", "0",
                               "--workdir", str(tmp_path / "work")],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    started: set[int] = set()
    try:
        line = server.stdout.readline()
        assert "listening on " in line, line
        url = line.split("listening on ", 1)[1].split()[0]
        async with aiohttp.ClientSession() as http:
            session = f"{url}/v1/sessions/{uuid.uuid4()}"
            async with http.put(session, json=BODY) as response:
                assert response.status == 201
            await wait_running(http, session)
        started = wait_until(lambda: found if len(found := descendants(server.pid)) >= 2 else None,
                             timeout=20, what="the session's bridge and agent")
        server.send_signal(sig)
        assert server.wait(timeout=30) == 0
        wait_until(lambda: not any(alive(pid) for pid in started), timeout=10,
                   what="the session's processes gone with the server")
    finally:
        if server.poll() is None:
            server.kill()
        for pid in started:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
