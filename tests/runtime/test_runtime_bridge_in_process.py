"""The bridge served in the test's own event loop: exact frames from a scripted agent, and a
clean shutdown (agent stopped, no task left behind)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import aiohttp

from agent_sessions.runtime.options import RuntimeOptions, SessionIdentity
from agent_sessions.runtime.server import serve

from .conftest import DEMO_AGENT, free_port, get_json, post_json

TIER = "embedded"  # starts agent processes

SCRIPTED_AGENT = (sys.executable, str(Path(__file__).with_name("scripted_agent.py")))


async def _until_healthy(http: aiohttp.ClientSession, url: str, server: asyncio.Task[None]) -> None:
    end = asyncio.get_running_loop().time() + 20
    while asyncio.get_running_loop().time() < end:
        assert not server.done(), server
        try:
            async with http.get(f"{url}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("the bridge never became healthy")


async def _serve(tmp_path: Path, command: tuple[str, ...], check) -> None:
    before = asyncio.all_tasks()
    stop = asyncio.Event()
    port = free_port()
    options = RuntimeOptions(
        command=command, workspace=tmp_path / "ws", host="127.0.0.1", port=port, session=SessionIdentity("ns", "s", "u")
    )
    server = asyncio.create_task(serve(options, stop=stop))
    try:
        async with aiohttp.ClientSession() as http:
            await _until_healthy(http, f"http://127.0.0.1:{port}", server)
            await check(http, f"http://127.0.0.1:{port}")
    finally:
        stop.set()
        await asyncio.wait_for(server, timeout=20)
    end = asyncio.get_running_loop().time() + 2
    while True:
        leaked = {task for task in asyncio.all_tasks() - before if task is not asyncio.current_task() and not task.done()}
        if not leaked or asyncio.get_running_loop().time() > end:
            break
        await asyncio.sleep(0.01)
    assert not leaked, leaked


async def test_session_info_nulls_and_unknown_updates_are_kept_as_the_agent_sent_them(tmp_path):
    async def check(http: aiohttp.ClientSession, url: str) -> None:
        status, reply = await post_json(http, f"{url}/v1/messages", {"text": "go"})
        assert status == 200 and reply["text"] == "ok"
        status, info = await get_json(http, f"{url}/v1/info")
        assert info["sessionInfo"] == {"title": None, "updatedAt": None, "meta": {"b": 2, "c": 3}}
        assert info["openedWith"] == "session/new" and info["capabilities"]["resume"] is False
        status, history = await get_json(http, f"{url}/v1/history")
        updates = [item["update"] for item in history["items"] if item["event"] not in ("user_message", "done")]
        assert updates[1] == {"sessionUpdate": "session_info_update", "title": None, "_meta": {"a": None}}
        assert "title" not in updates[2]
        assert [item["event"] for item in history["items"]][4] == "future_kind"

    await _serve(tmp_path, SCRIPTED_AGENT, check)


async def test_stopping_the_bridge_stops_the_agent_and_leaves_no_tasks(tmp_path):
    pids: list[int] = []
    before = set(_children())  # e.g. a control plane another test tier keeps running

    async def check(http: aiohttp.ClientSession, url: str) -> None:
        status, reply = await post_json(http, f"{url}/v1/messages", {"text": "hello"})
        assert status == 200
        status, info = await get_json(http, f"{url}/v1/info")
        assert info["state"] == "idle"
        for line in (tmp_path / "ws" / ".agent-session" / "history.jsonl").read_text().splitlines():
            assert line.startswith("{")
        pids.extend(set(_children()) - before)

    await _serve(tmp_path, DEMO_AGENT, check)
    if not Path("/proc").is_dir():
        return  # no portable way to list children; the no-leaked-tasks check above still ran
    assert pids, "the agent ran as a child process"
    assert not set(pids) & set(_children()), "the agent is gone once the bridge has stopped"


def _children() -> list[int]:
    """Live child processes of the test process (Linux /proc)."""
    me = os.getpid()
    found: list[int] = []
    if not Path("/proc").is_dir():
        return found
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me and fields[0] != "Z":
                found.append(int(entry.name))
    return found
