"""The reference platform's sessions: the contract's semantics, with local processes behind them.

Every operation on one session id runs under that id's lock, so two PUTs racing each other
create one session — the idempotency the operator relies on is the platform's to guarantee,
and this is how a platform guarantees it (a database would use a unique key).

State, as `GET` reports it, is computed when asked:

| situation | state | ready |
|---|---|---|
| stopped (`:stop`) | Stopped | false |
| should run, no process yet (starting, or held by `hold`) | Pending | false |
| bridge not answering yet / agent starting | Pending | false |
| bridge healthy (`/healthz` 200) | Running | true |
| bridge up, agent unhealthy after it was ready | Running | false |
| agent exited (bridge reports `AgentExited`), or the bridge itself exited | Succeeded / Failed | false |

The server never restarts an agent by itself (`restarts` stays 0): it reports the exit, and the
operator applies the session's restart policy (`:stop` + `:start`).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp

from agent_sessions.providers.http.constants import (
    CODE_INVALID_CONFIGURATION,
    CODE_SESSION_ALREADY_EXISTS,
    CODE_SESSION_NOT_FOUND,
    STATE_FAILED,
    STATE_PENDING,
    STATE_RUNNING,
    STATE_STOPPED,
    STATE_SUCCEEDED,
)

from .processes import SessionProcess
from .store import DESIRED_RUNNING, DESIRED_STOPPED, SessionRecord, SessionStore

SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PROBE_TIMEOUT = aiohttp.ClientTimeout(total=2.0)
AGENT_EXITED = "AgentExited"
MAX_LOG_BYTES = 1024 * 1024
COUNTERS = ("creates", "puts", "starts", "stops", "deletes", "gets", "logs", "capabilities")


class ContractError(Exception):
    """An error answer of the contract: HTTP status, code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class LocalPlatform:
    """Sessions of the reference server, each a `SessionProcess` while it runs."""

    def __init__(self, root: Path, store: SessionStore, *, python: str = sys.executable) -> None:
        self.root = root
        self.store = store
        self.python = python
        self.records: dict[str, SessionRecord] = {}
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.held = False
        self._processes: dict[str, SessionProcess] = {}
        self._ever_ready: set[str] = set()
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._http: aiohttp.ClientSession | None = None

    # --- server lifecycle -----------------------------------------------------------------

    async def open(self) -> None:
        """Load the stored sessions and start those that should run (a platform restart)."""
        self.records, counters = self.store.load()
        self.counters.update({k: int(v) for k, v in counters.items()})
        self._http = aiohttp.ClientSession()
        for record in list(self.records.values()):
            if record.desired == DESIRED_RUNNING:
                await self._spawn(record)

    async def close(self) -> None:
        """Stop every process (sessions stay in the store, to be resumed by the next server)."""
        await asyncio.gather(*(process.stop() for process in self._processes.values()), return_exceptions=True)
        self._processes.clear()
        if self._http is not None:
            await self._http.close()
        self.store.close()

    async def set_hold(self, hold: bool) -> None:
        """Hold: sessions that should run stay `Pending` with no process (a slow platform).
        Releasing starts them."""
        self.held = hold
        if not hold:
            for record in list(self.records.values()):
                if record.desired == DESIRED_RUNNING and record.id not in self._processes:
                    async with self._locks[record.id]:
                        await self._spawn(record)

    # --- the contract ---------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        self.counters["capabilities"] += 1
        return {"streaming": True, "history": True, "logs": True, "resume": True, "cancel": True,
                "resourceLimits": False, "contractVersion": "v1"}

    async def put(self, session_id: str, body: Any) -> tuple[bool, dict[str, Any]]:
        """Create the session, or return it if it exists (then nothing changes). True if created."""
        _check_id(session_id)
        problems = body_problems(session_id, body)
        if problems:
            raise ContractError(422, CODE_INVALID_CONFIGURATION, "; ".join(problems))
        self.counters["puts"] += 1
        async with self._locks[session_id]:
            existing = self.records.get(session_id)
            if existing is not None:
                _check_owner(existing, body)
                return False, await self._view(existing)
            record = SessionRecord(
                id=session_id,
                body=body,
                created_at=_now(),
                workspace=str(self.root / session_id / "workspace"),
            )
            self.records[session_id] = record
            self.counters["creates"] += 1
            self.store.save(record, self.counters)
            await self._spawn(record)
            return True, await self._view(record)

    async def get(self, session_id: str) -> dict[str, Any]:
        self.counters["gets"] += 1
        return await self._view(self._record(session_id))

    async def start(self, session_id: str) -> dict[str, Any]:
        async with self._locks[session_id]:
            record = self._record(session_id)
            self.counters["starts"] += 1
            view = await self._view(record)
            if view["state"] in (STATE_STOPPED, STATE_SUCCEEDED, STATE_FAILED):
                await self._halt(session_id)
                record.desired = DESIRED_RUNNING
                self.store.save(record, self.counters)
                await self._spawn(record)
                view = await self._view(record)
            return view

    async def stop(self, session_id: str) -> dict[str, Any]:
        async with self._locks[session_id]:
            record = self._record(session_id)
            self.counters["stops"] += 1
            record.desired = DESIRED_STOPPED
            self.store.save(record, self.counters)
            await self._halt(session_id)
            return await self._view(record)

    async def delete(self, session_id: str) -> None:
        async with self._locks[session_id]:
            record = self._record(session_id)
            self.counters["deletes"] += 1
            await self._halt(session_id)
            del self.records[session_id]
            self.store.remove(session_id, self.counters)
            shutil.rmtree(self.root / session_id, ignore_errors=True)
            self._ever_ready.discard(record.id)
        # The id's lock stays: dropping it would let a PUT already waiting on it and a newer PUT
        # holding a fresh one both create the session.

    def logs(self, session_id: str, tail_lines: int | None, limit_bytes: int | None) -> str:
        """The end of the session's output: at most `tail_lines` lines and `limit_bytes` bytes,
        whole lines (only a single line longer than `limit_bytes` is cut, keeping its end)."""
        self._record(session_id)
        self.counters["logs"] += 1
        path = self._log_path(session_id)
        if not path.exists():
            return ""
        limit = min(limit_bytes if limit_bytes is not None else MAX_LOG_BYTES, MAX_LOG_BYTES)
        with open(path, "rb") as log:
            log.seek(0, 2)
            size = log.tell()
            log.seek(max(0, size - MAX_LOG_BYTES))
            data = log.read()
        lines = data.splitlines(keepends=True)
        if size > MAX_LOG_BYTES and lines:
            lines = lines[1:]  # the first line read may start mid-line
        if tail_lines is not None:
            lines = lines[-tail_lines:] if tail_lines > 0 else []
        kept: list[bytes] = []
        used = 0
        for line in reversed(lines):
            if used + len(line) > limit:
                if not kept and limit > 0:
                    kept.append(line[-limit:])
                break
            kept.append(line)
            used += len(line)
        return b"".join(reversed(kept)).decode("utf-8", errors="replace")

    # --- helpers ----------------------------------------------------------------------------

    def _record(self, session_id: str) -> SessionRecord:
        record = self.records.get(session_id)
        if record is None:
            raise ContractError(404, CODE_SESSION_NOT_FOUND, f"no session {session_id!r}")
        return record

    def _log_path(self, session_id: str) -> Path:
        return self.root / session_id / "output.log"

    async def _spawn(self, record: SessionRecord) -> None:
        if self.held or record.id in self._processes:
            return
        body = record.body
        process = SessionProcess(
            workspace=Path(record.workspace),
            log_path=self._log_path(record.id),
            identity=record.identity,
            agent=body.get("agent") if isinstance(body.get("agent"), dict) else {},
            python=self.python,
        )
        self._processes[record.id] = process
        self._ever_ready.discard(record.id)
        await process.start()

    async def _halt(self, session_id: str) -> None:
        process = self._processes.pop(session_id, None)
        if process is not None:
            await process.stop()
        self._ever_ready.discard(session_id)

    async def _view(self, record: SessionRecord) -> dict[str, Any]:
        """The session as the contract shows it (see the module docstring for the states)."""
        view: dict[str, Any] = {
            "id": record.id,
            "state": STATE_PENDING,
            "ready": False,
            "endpoint": None,
            "message": "",
            "exitCode": None,
            "restarts": record.restarts,
            "permanent": False,
            "createdAt": record.created_at,
            "session": record.identity,
        }
        if record.body.get("configHash"):
            view["configHash"] = record.body["configHash"]
        process = self._processes.get(record.id)
        if record.desired == DESIRED_STOPPED:
            return {**view, "state": STATE_STOPPED, "message": "stopped; the workspace is kept"}
        if process is None:
            why = "held by the reference server (admin hold)" if self.held else "the session is starting"
            return {**view, "message": why}
        view["endpoint"] = process.endpoint
        if process.exit_code is not None:
            return {**view, **_ended(process.exit_code, "the runtime exited"), "endpoint": None}
        status, health = await self._probe(process)
        if status == 200:
            self._ever_ready.add(record.id)
            return {**view, "state": STATE_RUNNING, "ready": True}
        if status is None:
            return {**view, "message": "the runtime is starting"}
        if health.get("reason") == AGENT_EXITED and isinstance(health.get("exitCode"), int):
            return {**view, **_ended(health["exitCode"], "the agent exited")}
        message = str(health.get("message") or health.get("reason") or f"the runtime answered {status}")
        reason = health.get("reason") if isinstance(health.get("reason"), str) else None
        state = STATE_RUNNING if record.id in self._ever_ready else STATE_PENDING
        return {**view, "state": state, "message": message, **({"reason": reason} if reason else {})}

    async def _probe(self, process: SessionProcess) -> tuple[int | None, dict[str, Any]]:
        """`/healthz` of the session's bridge: (status, body), or (None, {}) when it does not answer."""
        assert self._http is not None
        try:
            async with self._http.get(f"{process.endpoint}/healthz", timeout=PROBE_TIMEOUT) as response:
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = {}
                return response.status, body if isinstance(body, dict) else {}
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return None, {}


def body_problems(session_id: str, body: Any) -> list[str]:
    """What is wrong with a PUT body, per the contract's schema (empty when nothing is)."""
    if not isinstance(body, Mapping):
        return ["the body must be a JSON object"]
    problems: list[str] = []
    for block in ("session", "agent", "workspace", "lifecycle", "meta", "labels"):
        if block in body and not isinstance(body[block], Mapping):
            problems.append(f"{block}: must be an object")
    session = body.get("session") if isinstance(body.get("session"), Mapping) else {}
    for key in ("namespace", "name", "uid"):
        if key in session and not isinstance(session[key], str):
            problems.append(f"session.{key}: must be a string")
    if isinstance(session.get("uid"), str) and session["uid"] != session_id:
        problems.append(f"session.uid: {session['uid']!r} is not the session id in the path ({session_id!r})")
    agent = body.get("agent") if isinstance(body.get("agent"), Mapping) else {}
    for key in ("command", "args"):
        value = agent.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            problems.append(f"agent.{key}: must be a list of strings")
    if isinstance(agent.get("command"), list) and not agent["command"] and "command" in agent:
        problems.append("agent.command: must not be empty (omit it for the default agent)")
    env = agent.get("env")
    if env is not None and not (isinstance(env, list) and all(
        isinstance(e, Mapping) and isinstance(e.get("name"), str) and isinstance(e.get("value", ""), str)
        and "valueFrom" not in e for e in env
    )):
        problems.append("agent.env: must be a list of {name, value} with literal string values")
    protocol = agent.get("protocol")
    if protocol is not None and protocol not in ("acp", "stdio-lines"):
        problems.append(f"agent.protocol: {protocol!r} is not acp or stdio-lines")
    labels = body.get("labels")
    if isinstance(labels, Mapping) and not all(isinstance(v, str) for v in labels.values()):
        problems.append("labels: values must be strings")
    return problems


def _check_id(session_id: str) -> None:
    if not SESSION_ID.match(session_id):
        raise ContractError(400, CODE_INVALID_CONFIGURATION,
                            f"session id {session_id!r}: 1-128 letters, digits, '.', '_' or '-'")


def _check_owner(existing: SessionRecord, body: Mapping[str, Any]) -> None:
    """A PUT for an existing id from another session (namespace/name) is a conflict."""
    asked = body.get("session") if isinstance(body.get("session"), Mapping) else {}
    have = existing.identity
    for key in ("namespace", "name"):
        if key in asked and key in have and asked[key] != have[key]:
            raise ContractError(
                409, CODE_SESSION_ALREADY_EXISTS,
                f"session {existing.id!r} belongs to {have.get('namespace')}/{have.get('name')}",
            )


def _ended(exit_code: int, what: str) -> dict[str, Any]:
    return {
        "state": STATE_SUCCEEDED if exit_code == 0 else STATE_FAILED,
        "exitCode": exit_code,
        "message": f"{what} with code {exit_code}",
        "reason": "Completed" if exit_code == 0 else "Error",
    }


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
