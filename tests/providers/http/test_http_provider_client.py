"""HTTPProvider's I/O against a scripted in-process platform and a fake Secret reader: retries,
`Retry-After`, the budget, the concurrency limit, the bearer token (read on every call, re-read
on 401), and each protocol method's handling of the platform's answers.

Sleeps are recorded, not slept: the schedule is asserted exactly, and the tests stay fast.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from kubernetes_asyncio.client.exceptions import ApiException

from agent_sessions.lifecycle import BackingState
from agent_sessions.providers import (
    REDACTED,
    Capabilities,
    InvalidConfiguration,
    ProviderRef,
    ProviderUnavailable,
    SessionNotFound,
    SessionRef,
)
from agent_sessions.providers.http import HTTPProvider

UID = "6f1c2d3e-0000-4000-8000-000000000001"
NS = "team-a"


@dataclass
class Seen:
    method: str
    path: str
    token: str | None
    query: dict[str, str]
    at: float
    body: Any = None


@dataclass
class ScriptedPlatform:
    """Answers from `script` (consumed in order), then `default`; records every request."""

    script: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    delay: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0
    state: str = "Running"

    def default(self, request: web.Request) -> tuple[int, Any, dict[str, str]]:
        if request.path == "/v1/capabilities":
            return 200, {"streaming": True, "history": True, "logs": True, "resume": True, "cancel": False,
                         "resourceLimits": False}, {}
        if request.path.endswith("/logs"):
            return 200, "line 1\nline 2 token=abcdefgh\nline 3\n", {}
        if request.method == "DELETE":
            return 204, None, {}
        if request.path.endswith(":start"):
            self.state = "Pending"
        if request.path.endswith(":stop"):
            self.state = "Stopped"
        endpoint = "http://rt:8080" if self.state in ("Pending", "Running") else None
        return 200, {"id": UID, "state": self.state, "ready": self.state == "Running", "endpoint": endpoint}, {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        raw = await request.read()
        self.seen.append(Seen(request.method, request.path, auth.removeprefix("Bearer ") or None,
                              dict(request.query), time.monotonic(), json.loads(raw) if raw else None))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            status, body, headers = self.script.pop(0) if self.script else self.default(request)
        finally:
            self.in_flight -= 1
        if isinstance(body, str):
            return web.Response(status=status, text=body, headers=headers)
        return web.Response(status=status, body=json.dumps(body).encode() if body is not None else b"",
                            headers={"Content-Type": "application/json", **headers})

    def paths(self) -> list[str]:
        return [f"{s.method} {s.path}" for s in self.seen if s.path != "/v1/capabilities"]


class FakeSecrets:
    """`read_namespaced_secret` over a dict; counts reads."""

    def __init__(self, secrets: dict[tuple[str, str], dict[str, str]]) -> None:
        self.secrets = secrets
        self.reads = 0

    async def read_namespaced_secret(self, name: str, namespace: str, **_: Any) -> dict:
        self.reads += 1
        data = self.secrets.get((namespace, name))
        if data is None:
            raise ApiException(status=404, reason="Not Found")
        return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


class RecordedSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
async def platform() -> AsyncIterator[tuple[ScriptedPlatform, str]]:
    scripted = ScriptedPlatform()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", scripted.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield scripted, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.fixture
def secrets() -> FakeSecrets:
    return FakeSecrets({(NS, "platform"): {"token": "token-one\n"}})


@pytest.fixture
def sleep() -> RecordedSleep:
    return RecordedSleep()


@pytest.fixture
async def provider(platform: tuple[ScriptedPlatform, str], secrets: FakeSecrets,
                   sleep: RecordedSleep) -> AsyncIterator[HTTPProvider]:
    # The scripted platform's runtimes are at http://rt:8080, off its origin: allowed as the operator's
    # `--http-endpoint` would allow them.
    made = HTTPProvider(platforms=[platform[1]], endpoints=["http://rt:8080"], core_api=secrets, sleep=sleep,
                        rng=lambda: 1.0)
    try:
        yield made
    finally:
        await made.close()


def session(url: str, **http: Any) -> SessionRef:
    config = {"provider": "http", "http": {"url": url, "credentialsSecretRef": {"name": "platform"}, **http}}
    return SessionRef(namespace=NS, name="demo", uid=UID, config=config)


def error(status: int, code: str, headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
    return status, {"code": code, "message": f"{code} ({status})"}, headers or {}


# --- the bearer token -------------------------------------------------------------------------


async def test_the_token_is_read_from_the_secret_on_every_call_so_rotation_applies_to_the_next(
        platform, provider, secrets):
    scripted, url = platform
    await provider.observe(session(url))
    secrets.secrets[(NS, "platform")] = {"token": "token-two"}
    await provider.observe(session(url))
    tokens = [s.token for s in scripted.seen if s.method == "GET" and s.path.startswith("/v1/sessions/")]
    assert tokens == ["token-one", "token-two"]
    assert secrets.reads == 2


async def test_a_token_that_stays_rejected_is_a_credentials_problem_not_a_loop(platform, provider, secrets):
    scripted, url = platform
    scripted.script = [error(401, "unauthorized")] * 5
    with pytest.raises(ProviderUnavailable) as raised:
        await provider.observe(session(url))
    assert "spec.http.credentialsSecretRef" in str(raised.value)
    assert len([s for s in scripted.seen if s.path.startswith("/v1/sessions")]) == 1  # no re-send: same token


async def test_a_401_rereads_the_secret_and_retries_at_once_with_a_rotated_token(platform, provider, secrets, sleep):
    scripted, url = platform
    await provider.observe(session(url))
    scripted.seen.clear()
    original = secrets.read_namespaced_secret
    calls = 0

    async def rotating(name: str, namespace: str, **kwargs: Any) -> dict:
        nonlocal calls
        calls += 1
        if calls == 2:  # the re-read after the 401 finds a new token
            secrets.secrets[(NS, "platform")] = {"token": "token-new"}
        return await original(name, namespace, **kwargs)

    secrets.read_namespaced_secret = rotating  # type: ignore[method-assign]
    scripted.script = [error(401, "unauthorized")]
    obs = await provider.observe(session(url))
    assert obs.state == BackingState.RUNNING
    assert [s.token for s in scripted.seen] == ["token-one", "token-new"]
    assert sleep.delays == []


async def test_a_missing_secret_is_transient_and_names_it(platform, provider, secrets):
    _, url = platform
    secrets.secrets.clear()
    with pytest.raises(ProviderUnavailable, match=r"Secret team-a/platform .* does not exist"):
        await provider.ensure(session(url))


async def test_a_platform_without_credentials_gets_no_authorization_header(platform, sleep):
    scripted, url = platform
    provider = HTTPProvider(platforms=[url], sleep=sleep)
    try:
        ref = SessionRef(namespace=NS, name="demo", uid=UID, config={"provider": "http", "http": {"url": url}})
        await provider.observe(ref)
    finally:
        await provider.close()
    assert {s.token for s in scripted.seen} == {None}


# --- retries, Retry-After, budget ---------------------------------------------------------------


async def test_5xx_answers_are_retried_with_growing_jittered_waits_until_the_platform_answers(
        platform, provider, sleep):
    scripted, url = platform
    await provider.observe(session(url))
    scripted.script = [error(500, "provider_unavailable"), error(502, "provider_unavailable"),
                       error(503, "provider_unavailable")]
    obs = await provider.observe(session(url))
    assert obs.state == BackingState.RUNNING
    assert sleep.delays == [0.5, 1.0, 2.0]  # rng 1.0: the top of each step


async def test_exhausted_retries_raise_provider_unavailable_with_a_clear_reason(platform, provider, sleep):
    scripted, url = platform
    await provider.observe(session(url))
    scripted.script = [error(500, "provider_unavailable")] * 3
    with pytest.raises(ProviderUnavailable) as raised:
        await provider.observe(session(url, maxRetries=2))
    message = str(raised.value)
    assert message.startswith(f"platform {url} answered 500 provider_unavailable")
    assert "3 times to GET /v1/sessions/" in message
    assert len(sleep.delays) == 2


async def test_retry_after_seconds_on_429_is_slept_before_the_retry(platform, provider, sleep):
    scripted, url = platform
    await provider.observe(session(url))
    scripted.script = [error(429, "rate_limited", {"Retry-After": "2"})]
    await provider.observe(session(url))
    assert sleep.delays == [2.0]


async def test_retry_after_http_date_on_503_is_honoured(platform, provider, sleep):
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    scripted, url = platform
    await provider.observe(session(url))
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=5), usegmt=True)
    scripted.script = [error(503, "provider_unavailable", {"Retry-After": when})]
    await provider.observe(session(url))
    assert len(sleep.delays) == 1 and 3.0 <= sleep.delays[0] <= 5.0


async def test_a_retry_after_beyond_the_budget_gives_up_at_once_carrying_it(platform, provider, sleep):
    scripted, url = platform
    await provider.observe(session(url))
    scripted.seen.clear()
    scripted.script = [error(429, "rate_limited", {"Retry-After": "45"})]
    with pytest.raises(ProviderUnavailable) as raised:
        await provider.observe(session(url))
    assert raised.value.retry_after == 45.0
    assert "asked to retry after 45s" in str(raised.value)
    assert sleep.delays == [] and len(scripted.seen) == 1


async def test_a_huge_retry_after_is_capped(platform, provider, sleep):
    scripted, url = platform
    await provider.observe(session(url))
    scripted.script = [error(503, "provider_unavailable", {"Retry-After": "86400"})]
    with pytest.raises(ProviderUnavailable) as raised:
        await provider.observe(session(url))
    assert raised.value.retry_after == 60.0


async def test_an_unreachable_platform_is_retried_then_unavailable(sleep, secrets):
    provider = HTTPProvider(platforms=["http://127.0.0.1:9"], core_api=secrets, sleep=sleep, rng=lambda: 0.0)
    try:
        with pytest.raises(ProviderUnavailable, match="could not be reached"):
            await provider.observe(session("http://127.0.0.1:9", maxRetries=2))
    finally:
        await provider.close()
    assert sleep.delays == [0.25, 0.5]


async def test_a_request_timeout_is_retried(platform, provider, sleep):
    scripted, url = platform
    scripted.delay = 0.5
    with pytest.raises(ProviderUnavailable, match=r"did not answer within 0.1s 2 times"):
        await provider.observe(session(url, timeoutSeconds=0.1, maxRetries=1))


async def test_the_budget_bounds_the_total_wait_of_one_call(platform, secrets, sleep):
    scripted, url = platform
    provider = HTTPProvider(platforms=[url], core_api=secrets, sleep=sleep, rng=lambda: 1.0, retry_budget=3.0)
    try:
        scripted.script = [error(500, "provider_unavailable")] * 10
        with pytest.raises(ProviderUnavailable):
            await provider.observe(session(url, maxRetries=10))
    finally:
        await provider.close()
    assert sleep.delays == [0.5, 1.0]  # the next (2.0) would pass 3 s


async def test_concurrency_per_platform_is_limited(platform, secrets):
    scripted, url = platform
    provider = HTTPProvider(platforms=[url], core_api=secrets, concurrency=2)
    try:
        await provider.observe(session(url))
        scripted.delay = 0.05
        scripted.max_in_flight = 0
        await asyncio.gather(*(provider.observe(session(url)) for _ in range(8)))
    finally:
        await provider.close()
    assert scripted.max_in_flight == 2


# --- the protocol methods --------------------------------------------------------------------


async def test_ensure_puts_the_session_and_returns_its_reference(platform, provider):
    scripted, url = platform
    ref = await provider.ensure(session(url))
    assert ref == ProviderRef("http", UID, "http://rt:8080")
    put = next(s for s in scripted.seen if s.method == "PUT")
    assert put.path == f"/v1/sessions/{UID}"
    assert scripted.paths() == [f"PUT /v1/sessions/{UID}"]


async def test_ensure_starts_a_stopped_session(platform, provider):
    scripted, url = platform
    scripted.state = "Stopped"
    ref = await provider.ensure(session(url))
    assert scripted.paths() == [f"PUT /v1/sessions/{UID}", f"POST /v1/sessions/{UID}:start"]
    assert ref.endpoint == "http://rt:8080"


async def test_ensure_reports_a_rejected_configuration_as_permanent_without_retrying(platform, provider, sleep):
    scripted, url = platform
    scripted.script = [(200, {}, {}), error(422, "invalid_configuration")]  # capabilities, then PUT
    with pytest.raises(InvalidConfiguration, match="the platform rejected the configuration"):
        await provider.ensure(session(url))
    assert sleep.delays == []


async def test_ensure_refuses_an_invalid_config_before_any_request(platform, provider):
    scripted, url = platform
    with pytest.raises(InvalidConfiguration, match="spec.http.url"):
        await provider.ensure(SessionRef(namespace=NS, name="demo", uid=UID, config={"provider": "http"}))
    assert scripted.seen == []


async def test_ensure_on_a_url_that_is_not_a_platform_is_unavailable_not_missing(platform, provider):
    scripted, url = platform
    scripted.script = [(404, None, {}), (404, None, {})]
    with pytest.raises(ProviderUnavailable, match="is spec.http.url the platform's base URL"):
        await provider.ensure(session(url))


async def test_observe_of_an_unknown_session_is_absent(platform, provider):
    scripted, url = platform
    await provider.observe(session(url))
    scripted.script = [error(404, "session_not_found")]
    assert (await provider.observe(session(url))).state == BackingState.ABSENT


async def test_stop_and_delete_count_not_found_as_done(platform, provider):
    scripted, url = platform
    scripted.script = [error(404, "session_not_found"), error(404, "session_not_found")]
    await provider.stop(session(url))
    assert await provider.delete(session(url)) is True


async def test_delete_under_way_is_not_done_yet(platform, provider):
    scripted, url = platform
    scripted.script = [(202, None, {})]
    assert await provider.delete(session(url)) is False
    assert await provider.delete(session(url)) is True


async def test_logs_are_redacted_bounded_and_flag_older_output(platform, provider):
    scripted, url = platform
    tail = await provider.logs(session(url), 2, 1000)
    assert str(tail) == f"line 2 token={REDACTED}\nline 3\n"
    assert tail.truncated is True
    request = next(s for s in scripted.seen if s.path.endswith("/logs"))
    assert request.query["tailLines"] == "3"


async def test_logs_redact_the_bearer_token_value(platform, provider):
    scripted, url = platform
    scripted.script = [(200, "connected as token-one to the model\n", {})]
    tail = await provider.logs(session(url), 10, 1000)
    assert "token-one" not in tail and REDACTED in tail
    assert tail.truncated is False


async def test_logs_of_an_unknown_session_raise_session_not_found(platform, provider):
    scripted, url = platform
    scripted.script = [error(404, "session_not_found")]
    with pytest.raises(SessionNotFound):
        await provider.logs(session(url), 10, 1000)


async def test_capabilities_are_fetched_once_per_platform_and_cached(platform, provider):
    scripted, url = platform
    assert provider.capabilities(session(url).config) == provider.capabilities()  # the contract's, before any answer
    await provider.observe(session(url))
    await provider.observe(session(url))
    expected = Capabilities(streaming=True, history=True, logs=True, resume=True, cancel=False)
    assert provider.capabilities(session(url).config) == expected
    assert provider.capabilities() == expected
    assert [s.path for s in scripted.seen].count("/v1/capabilities") == 1


async def test_unreachable_capabilities_do_not_fail_the_call(platform, provider):
    scripted, url = platform
    scripted.script = [error(503, "provider_unavailable")]  # the capabilities request, not retried
    obs = await provider.observe(session(url))
    assert obs.state == BackingState.RUNNING
    assert provider.capabilities(session(url).config).logs is True


async def test_a_session_whose_config_no_longer_resolves_is_still_reached_until_deleted(platform, provider):
    scripted, url = platform
    await provider.observe(session(url))
    orphan = SessionRef(namespace=NS, name="demo", uid=UID, config={})  # e.g. its template was deleted
    assert (await provider.observe(orphan)).state == BackingState.RUNNING
    assert await provider.delete(orphan) is True
    assert scripted.paths()[-1] == f"DELETE /v1/sessions/{UID}"
    with pytest.raises(ProviderUnavailable, match="the session's platform is unknown"):
        await provider.observe(orphan)  # forgotten once deleted


async def test_an_unknown_platform_is_unavailable_not_a_crash(provider):
    with pytest.raises(ProviderUnavailable, match="spec.http.url"):
        await provider.stop(SessionRef(namespace=NS, name="demo", uid=UID, config={}))


async def test_ensure_sends_the_agents_environment_with_secret_references_read(platform, provider, secrets):
    scripted, url = platform
    secrets.secrets[(NS, "creds")] = {"api-key": "plain-looking-value-9f2c", "region": "eu"}
    ref = session(url)
    agent = {"command": ["agent"], "envFrom": [{"secretRef": {"name": "creds"}, "prefix": "CREDS_"}],
             "env": [{"name": "MODEL", "value": "large"},
                     {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "api-key"}}},
                     {"name": "GREETING", "value": "model $(MODEL)"},
                     {"name": "OPTIONAL", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k",
                                                                          "optional": True}}}]}
    ref = SessionRef(namespace=NS, name="demo", uid=UID, config={**ref.config, "agent": agent})
    await provider.ensure(ref)
    put = next(s for s in scripted.seen if s.method == "PUT")
    assert put.body["agent"] == {"command": ["agent"], "env": [
        {"name": "CREDS_api-key", "value": "plain-looking-value-9f2c"}, {"name": "CREDS_region", "value": "eu"},
        {"name": "MODEL", "value": "large"}, {"name": "API_KEY", "value": "plain-looking-value-9f2c"},
        {"name": "GREETING", "value": "model large"}]}

    scripted.script = [(200, "the key is plain-looking-value-9f2c\n", {})]
    tail = await provider.logs(ref, 10, 1000)
    assert str(tail) == f"the key is {REDACTED}\n"


async def test_a_missing_referenced_secret_holds_the_start_back_transiently(platform, provider):
    scripted, url = platform
    agent = {"env": [{"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "later", "key": "k"}}}]}
    ref = SessionRef(namespace=NS, name="demo", uid=UID, config={**session(url).config, "agent": agent})
    with pytest.raises(ProviderUnavailable, match=r"spec.agent.env\[API_KEY\]: secret team-a/later not found"):
        await provider.ensure(ref)
    assert not any(s.method == "PUT" for s in scripted.seen)


async def test_a_session_edited_to_a_refused_url_stays_on_its_platform_and_the_new_url_gets_nothing(
        platform, provider, secrets):
    scripted, url = platform
    await provider.observe(session(url))
    moved = session("http://127.0.0.1:9/collect")  # not an allowed platform (and nothing listens)
    assert provider.validate(moved.config, moved.context) != []
    before = len(scripted.seen)
    await provider.observe(moved)
    await provider.delete(moved)
    assert scripted.paths()[-2:] == [f"GET /v1/sessions/{UID}", f"DELETE /v1/sessions/{UID}"]
    assert len(scripted.seen) == before + 2


async def test_a_refused_url_with_no_platform_session_known_is_never_called(platform, secrets, sleep):
    scripted, url = platform
    provider = HTTPProvider(platforms=["https://agents.example.com"], core_api=secrets, sleep=sleep)
    try:
        with pytest.raises(ProviderUnavailable, match=r"is not an allowed http platform .*; nothing is sent there"):
            await provider.observe(session(url))
    finally:
        await provider.close()
    assert scripted.seen == [] and secrets.reads == 0
