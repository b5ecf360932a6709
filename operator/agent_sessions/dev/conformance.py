"""The http provider contract's conformance kit: `agent-sessions provider-conformance URL`.

A vendor runs it against their own platform; the project runs it against the reference server
(and against deliberately broken servers, to prove it catches them). Each check is a small
async function of a shared `Probe` returning `(ok, detail)`; the runner calls them in order —
later checks use the session the earlier ones created — and prints one row per check. Exit 0
iff every check passed (a skipped check passes: it says why it was skipped).

The checks create one session with a fresh random id (the contract keys sessions by the
AgentSession's uid) and delete it at the end, whatever happened. They need the platform to be
able to start a session from the minimal body (no `agent.command`: the platform's default
agent), reaching `Running` and ready within `--timeout`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from agent_sessions.providers.http.constants import (
    CAPABILITIES_PATH,
    CODE_INVALID_CONFIGURATION,
    CODE_SESSION_ALREADY_EXISTS,
    CODE_SESSION_NOT_FOUND,
    STATE_RUNNING,
    STATE_STOPPED,
    STATES,
    logs_path,
    session_path,
    start_path,
    stop_path,
)

CAPABILITY_KEYS = ("streaming", "history", "logs", "resume", "cancel", "resourceLimits")
STABLE_FIELDS = ("id", "createdAt", "session", "configHash")
"""Fields of a session that a repeated PUT must answer unchanged (state may move on)."""
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Answer:
    status: int | None
    """None: no answer (connection refused, dropped, timed out)."""
    body: Any = None
    text: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    failure: str = ""

    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.failure})"
        code = self.body.get("code") if isinstance(self.body, Mapping) else None
        return f"{self.status}" + (f" {code}" if code else "")


class Probe:
    """The platform under test, and what the checks learned so far."""

    def __init__(self, url: str, token: str | None, *, timeout: float, http: aiohttp.ClientSession) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.http = http
        self.session_id = str(uuid.uuid4())
        self.body = {
            "session": {"namespace": "conformance", "name": f"check-{self.session_id[:8]}", "uid": self.session_id},
            "configHash": "conformance",
            "lifecycle": {"restartPolicy": "Never"},
            "meta": {"purpose": "agent-sessions provider-conformance"},
            "labels": {"agentsession.dev/session": f"check-{self.session_id[:8]}"},
        }
        self.created: dict[str, Any] | None = None
        self.endpoint: str | None = None

    async def call(self, method: str, path: str, *, body: Any = None, raw: bytes | None = None,
                   params: Mapping[str, str] | None = None, token: str | None | bool = True,
                   absolute: bool = False) -> Answer:
        """One request. `token`: True = the configured token, None/False = none, a str = that."""
        headers = {"Accept": "application/json"}
        presented = self.token if token is True else (token or None)
        if presented:
            headers["Authorization"] = f"Bearer {presented}"
        kwargs: dict[str, Any] = {"headers": headers, "params": params,
                                  "timeout": aiohttp.ClientTimeout(total=min(self.timeout, 30.0))}
        if raw is not None:
            kwargs["data"] = raw
            headers["Content-Type"] = "application/json"
        elif body is not None:
            kwargs["json"] = body
        try:
            async with self.http.request(method, path if absolute else self.url + path, **kwargs) as response:
                text = await response.text(errors="replace")
                try:
                    parsed = json.loads(text) if text.strip() else None
                except ValueError:
                    parsed = None
                return Answer(response.status, parsed, text, dict(response.headers))
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            return Answer(None, failure=f"{type(error).__name__}: {error}".rstrip(": "))

    async def wait_state(self, predicate: Callable[[Answer], bool]) -> tuple[Answer, list[str]]:
        """GET the session until `predicate` holds or the timeout passes; the states seen."""
        deadline = time.monotonic() + self.timeout
        seen: list[str] = []
        while True:
            answer = await self.call("GET", session_path(self.session_id))
            state = answer.body.get("state") if isinstance(answer.body, Mapping) else None
            label = str(state) if answer.status == 200 else answer.describe()
            if not seen or seen[-1] != label:
                seen.append(label)
            if predicate(answer) or time.monotonic() > deadline:
                return answer, seen
            await asyncio.sleep(POLL_SECONDS)


CheckResult = tuple[bool, str]
Check = Callable[[Probe], Awaitable[CheckResult]]


def error_problem(answer: Answer, statuses: tuple[int, ...], code: str | None) -> str | None:
    """Why `answer` is not the expected error (None when it is): a status in `statuses`, and the
    contract's `{"code", "message"}` body with `code`."""
    if answer.status not in statuses:
        return f"expected {' or '.join(map(str, statuses))}, got {answer.describe()}"
    if not isinstance(answer.body, Mapping) or not isinstance(answer.body.get("message"), str):
        return f"{answer.status}: the body is not an error object {{\"code\", \"message\"}}: {answer.text[:120]!r}"
    if code is not None and answer.body.get("code") != code:
        return f"{answer.status}: expected code {code!r}, got {answer.body.get('code')!r}"
    return None


def session_problem(body: Any, session_id: str) -> str | None:
    """Why `body` is not a session object of the contract (None when it is)."""
    if not isinstance(body, Mapping):
        return "the body is not a JSON object"
    if body.get("id") != session_id:
        return f"id is {body.get('id')!r}, expected {session_id!r}"
    if body.get("state") not in STATES:
        return f"state {body.get('state')!r} is not one of {', '.join(STATES)}"
    if not isinstance(body.get("ready"), bool):
        return "ready is not a boolean"
    for key, kinds in (("endpoint", (str, type(None))), ("message", (str, type(None))),
                       ("exitCode", (int, type(None))), ("restarts", (int, type(None)))):
        if key in body and not isinstance(body[key], kinds):
            return f"{key} has the wrong type ({type(body[key]).__name__})"
    return None


def _state(answer: Answer) -> str | None:
    return answer.body.get("state") if answer.status == 200 and isinstance(answer.body, Mapping) else None


# --- the checks ------------------------------------------------------------------------------


async def check_capabilities(probe: Probe) -> CheckResult:
    answer = await probe.call("GET", CAPABILITIES_PATH)
    if answer.status != 200 or not isinstance(answer.body, Mapping):
        return False, f"GET {CAPABILITIES_PATH}: expected 200 with a JSON object, got {answer.describe()}"
    wrong = [key for key in CAPABILITY_KEYS if not isinstance(answer.body.get(key), bool)]
    if wrong:
        return False, f"not booleans: {', '.join(wrong)}"
    return True, ", ".join(key for key in CAPABILITY_KEYS if answer.body[key]) or "none claimed"


async def check_authentication(probe: Probe) -> CheckResult:
    if not probe.token:
        return True, "skipped: no --token given"
    for label, token in (("without a token", None), ("with a wrong token", f"wrong-{uuid.uuid4().hex}")):
        answer = await probe.call("GET", CAPABILITIES_PATH, token=token)
        problem = error_problem(answer, (401,), None)
        if problem:
            return False, f"{label}: {problem}"
    return True, "401 without a token and with a wrong one"


async def check_unknown_session(probe: Probe) -> CheckResult:
    unknown = str(uuid.uuid4())
    for method, path in (("GET", session_path(unknown)), ("POST", stop_path(unknown)), ("POST", start_path(unknown)),
                         ("GET", logs_path(unknown))):
        problem = error_problem(await probe.call(method, path), (404,), CODE_SESSION_NOT_FOUND)
        if problem:
            return False, f"{method} {path}: {problem}"
    return True, "404 session_not_found for GET, :stop, :start and logs"


async def check_invalid_body(probe: Probe) -> CheckResult:
    invalid = str(uuid.uuid4())
    bad_agent = {**probe.body, "session": {**probe.body["session"], "uid": invalid}, "agent": {"command": "x"}}
    for label, kwargs in (("a body that is not JSON", {"raw": b"{not json"}),
                          ("agent.command that is not a list", {"body": bad_agent})):
        answer = await probe.call("PUT", session_path(invalid), **kwargs)
        problem = error_problem(answer, (400, 422), CODE_INVALID_CONFIGURATION)
        if problem:
            await probe.call("DELETE", session_path(invalid))
            return False, f"{label}: {problem}"
    after = await probe.call("GET", session_path(invalid))
    if after.status != 404:
        await probe.call("DELETE", session_path(invalid))
        return False, f"a rejected PUT left a session behind (GET answered {after.describe()})"
    return True, "400/422 invalid_configuration, nothing created"


async def check_put_creates(probe: Probe) -> CheckResult:
    answer = await probe.call("PUT", session_path(probe.session_id), body=probe.body)
    if answer.status not in (200, 201):
        return False, f"expected 201 (or 200), got {answer.describe()}: {answer.text[:160]!r}"
    problem = session_problem(answer.body, probe.session_id)
    if problem:
        return False, problem
    probe.created = dict(answer.body)
    return True, f"{answer.status}, state {answer.body['state']}"


async def check_put_idempotent(probe: Probe) -> CheckResult:
    if probe.created is None:
        return False, "no session was created (see put_creates_session)"
    answer = await probe.call("PUT", session_path(probe.session_id), body=probe.body)
    if answer.status != 200:
        return False, f"a repeated PUT must answer 200 (the session exists), got {answer.describe()}"
    problem = session_problem(answer.body, probe.session_id)
    if problem:
        return False, problem
    changed = [key for key in STABLE_FIELDS if answer.body.get(key) != probe.created.get(key)]
    if changed:
        return False, "a repeated PUT answered a different session: " + ", ".join(
            f"{key} {probe.created.get(key)!r} -> {answer.body.get(key)!r}" for key in changed)
    return True, "200, same session"


async def check_put_conflict(probe: Probe) -> CheckResult:
    if probe.created is None:
        return False, "no session was created (see put_creates_session)"
    other = {**probe.body, "session": {**probe.body["session"], "namespace": "someone-else"}}
    problem = error_problem(await probe.call("PUT", session_path(probe.session_id), body=other), (409,),
                            CODE_SESSION_ALREADY_EXISTS)
    if problem:
        return False, f"PUT of the same id for another session: {problem}"
    return True, "409 session_already_exists"


async def check_becomes_running(probe: Probe) -> CheckResult:
    if probe.created is None:
        return False, "no session was created (see put_creates_session)"
    answer, seen = await probe.wait_state(lambda a: _state(a) == STATE_RUNNING and a.body.get("ready") is True)
    if not (_state(answer) == STATE_RUNNING and answer.body.get("ready") is True):
        return False, f"not Running and ready within {probe.timeout:g}s; states seen: {' -> '.join(seen)}"
    unknown = [state for state in seen if state not in STATES]
    if unknown:
        return False, f"answers that are not states: {unknown}"
    problem = session_problem(answer.body, probe.session_id)
    if problem:
        return False, problem
    if not answer.body.get("endpoint"):
        return False, "Running and ready, but no endpoint"
    probe.endpoint = str(answer.body["endpoint"]).rstrip("/")
    return True, " -> ".join(seen)


async def check_endpoint(probe: Probe) -> CheckResult:
    if probe.endpoint is None:
        return False, "no endpoint (see session_becomes_running)"
    for path in ("/healthz", "/v1/info"):
        answer = await probe.call("GET", probe.endpoint + path, token=None, absolute=True)
        if answer.status != 200 or not isinstance(answer.body, Mapping):
            return False, f"GET {probe.endpoint}{path}: expected 200 with a JSON object, got {answer.describe()}"
    return True, f"{probe.endpoint} serves /healthz and /v1/info"


async def check_logs(probe: Probe) -> CheckResult:
    if probe.created is None:
        return False, "no session was created (see put_creates_session)"
    answer = await probe.call("GET", logs_path(probe.session_id), params={"tailLines": "2", "limitBytes": "100"})
    if answer.status != 200:
        return False, f"expected 200, got {answer.describe()}"
    content_type = answer.headers.get("Content-Type", "")
    if not content_type.startswith("text/plain"):
        return False, f"Content-Type {content_type!r}, expected text/plain"
    lines = answer.text.splitlines()
    if len(lines) > 2 or len(answer.text.encode()) > 100:
        return False, f"asked for 2 lines / 100 bytes, got {len(lines)} lines / {len(answer.text.encode())} bytes"
    return True, f"{len(lines)} line{'' if len(lines) == 1 else 's'}, {len(answer.text.encode())} bytes"


async def check_stop(probe: Probe) -> CheckResult:
    if probe.created is None:
        return False, "no session was created (see put_creates_session)"
    for attempt in ("first", "repeated"):
        answer = await probe.call("POST", stop_path(probe.session_id))
        if answer.status != 200:
            return False, f"{attempt} :stop: expected 200, got {answer.describe()}"
    answer, seen = await probe.wait_state(lambda a: _state(a) == STATE_STOPPED)
    if _state(answer) != STATE_STOPPED:
        return False, f"not Stopped within {probe.timeout:g}s; states seen: {' -> '.join(seen)}"
    if answer.body.get("ready") or answer.body.get("endpoint"):
        return False, "Stopped, but still ready or with an endpoint"
    return True, "200 twice, then " + " -> ".join(seen)


async def check_start(probe: Probe) -> CheckResult:
    if probe.created is None:
        return False, "no session was created (see put_creates_session)"
    answer = await probe.call("POST", start_path(probe.session_id))
    if answer.status != 200:
        return False, f":start: expected 200, got {answer.describe()}"
    answer, seen = await probe.wait_state(lambda a: _state(a) == STATE_RUNNING and a.body.get("ready") is True)
    if not (_state(answer) == STATE_RUNNING and answer.body.get("ready") is True):
        return False, f"not Running and ready within {probe.timeout:g}s; states seen: {' -> '.join(seen)}"
    again = await probe.call("POST", start_path(probe.session_id))
    if again.status != 200 or _state(again) not in (STATE_RUNNING,):
        return False, f":start of a running session: expected 200 and Running, got {again.describe()}"
    return True, "resumed: " + " -> ".join(seen)


async def check_delete(probe: Probe) -> CheckResult:
    if probe.created is None:
        return False, "no session was created (see put_creates_session)"
    answer = await probe.call("DELETE", session_path(probe.session_id))
    if answer.status not in (200, 202, 204):
        return False, f"expected 200, 202 or 204, got {answer.describe()}"
    after, seen = await probe.wait_state(lambda a: a.status == 404)
    problem = error_problem(after, (404,), CODE_SESSION_NOT_FOUND)
    if problem:
        return False, f"GET after DELETE: {problem} (seen: {' -> '.join(seen)})"
    probe.created = None
    return True, f"{answer.status}, then 404"


async def check_delete_idempotent(probe: Probe) -> CheckResult:
    again = await probe.call("DELETE", session_path(probe.session_id))
    if again.status not in (200, 202, 204, 404):
        return False, f"second DELETE: expected 404 (or 2xx), got {again.describe()}"
    unknown = await probe.call("DELETE", session_path(str(uuid.uuid4())))
    if unknown.status not in (200, 202, 204, 404):
        return False, f"DELETE of an unknown id: expected 404 (or 2xx), got {unknown.describe()}"
    return True, f"second DELETE {again.status}, unknown id {unknown.status}"


CHECKS: tuple[tuple[str, Check], ...] = (
    ("capabilities", check_capabilities),
    ("authentication", check_authentication),
    ("unknown_session_is_404", check_unknown_session),
    ("invalid_body_is_rejected", check_invalid_body),
    ("put_creates_session", check_put_creates),
    ("put_is_idempotent", check_put_idempotent),
    ("put_for_another_session_conflicts", check_put_conflict),
    ("session_becomes_running", check_becomes_running),
    ("endpoint_serves_runtime_api", check_endpoint),
    ("logs", check_logs),
    ("stop_stops_session", check_stop),
    ("start_resumes_session", check_start),
    ("delete_removes_session", check_delete),
    ("delete_is_idempotent", check_delete_idempotent),
)
"""Every check, in the order they run."""


@dataclass(frozen=True)
class Row:
    check: str
    ok: bool
    detail: str


async def run_checks(url: str, token: str | None = None, *, timeout: float = 60.0,
                     checks: tuple[tuple[str, Check], ...] = CHECKS) -> list[Row]:
    """Run `checks` against the platform at `url`; one row per check. Cleans up after itself."""
    rows: list[Row] = []
    async with aiohttp.ClientSession() as http:
        probe = Probe(url, token, timeout=timeout, http=http)
        try:
            for name, check in checks:
                try:
                    ok, detail = await check(probe)
                except Exception as error:  # a check that crashes fails, with the reason shown
                    ok, detail = False, f"the check crashed: {type(error).__name__}: {error}"
                rows.append(Row(name, ok, detail))
        finally:
            if probe.created is not None:
                await probe.call("DELETE", session_path(probe.session_id))
    return rows


def format_table(rows: list[Row]) -> str:
    """The pass/fail table: one row per check, the reason on failure, a summary line."""
    width = max([len("CHECK"), *(len(row.check) for row in rows)])
    lines = [f"{'CHECK':<{width}}  RESULT  DETAIL"]
    for row in rows:
        lines.append(f"{row.check:<{width}}  {'PASS' if row.ok else 'FAIL':<6}  {row.detail}")
    failed = sum(not row.ok for row in rows)
    lines.append(f"{len(rows)} checks: {len(rows) - failed} passed, {failed} failed")
    return "\n".join(lines)


def run_from_args(args: argparse.Namespace) -> int:
    rows = asyncio.run(run_checks(args.url, args.token, timeout=args.timeout))
    sys.stdout.write(format_table(rows) + "\n")
    return 0 if all(row.ok for row in rows) else 1

