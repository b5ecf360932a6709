"""`HTTPProvider`: sessions on an external agent platform behind the REST contract (§6 "http").

The contract is `docs/provider-http.md` (`docs/provider-http.openapi.yaml`). The platform's
session id **is** the AgentSession's uid, so every call is keyed by something the operator
always knows, and the provider keeps no state the operator could not rebuild: after a restart,
`ensure` simply PUTs again and the platform — whose PUT is idempotent — answers with the session
it already has. No lookup, no id mapping, no second session.

* `ensure` = `PUT /v1/sessions/{uid}` (create or return), then `:start` if it is `Stopped`
  (resume with the workspace). A running session is never changed: the configuration is applied
  at creation only.
* `observe` = `GET`; 404 is `ABSENT`. `stop` = `:stop`, `delete` = `DELETE` (202: under way);
  404 counts as done for both.
* `logs` reads `/logs` and redacts before bounding: the bearer token, the values of the Secrets
  the agent's environment references (sent to the platform in the PUT body), and patterns.

Only platforms the operator's configuration allows, or a template of the session's chain adds
(`spec.policy.httpPlatforms`), are ever called (`allowlist`): `validate`
refuses any other `spec.http.url` before `ensure`, and every call checks again before it reads a
Secret or sends a byte, whoever calls it. A runtime endpoint a platform reports off the allowed
origins is dropped (`observe_session`), so neither the operator nor the gateway fetches it.

Every request goes through a `PlatformClient` (one per platform URL: concurrency limit,
retries with jittered backoff, `Retry-After`); the bearer token is read from its Secret on every
call (`credentials`). Capabilities come from the platform's `/v1/capabilities`, fetched during
`ensure`/`observe` (never in `capabilities()`, which does no I/O) and cached per URL.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from agent_sessions.api import constants as c
from agent_sessions.k8s.client import USER_AGENT
from agent_sessions.lifecycle.observation import Observation

from ..base import Capabilities, ProviderRef, SessionRef, ValidationContext
from ..errors import InvalidConfiguration, ProviderError, ProviderUnavailable, SessionNotFound
from ..logs import LogTail, bounded_log
from ..environment import ObjectReader, resolve_env, secret_values
from ..object_reader import KubernetesObjectReader
from .allowlist import PlatformAllowlist
from .api_errors import answer_error
from .client import PlatformAnswer, PlatformClient
from .constants import (
    CAPABILITIES_PATH,
    CAPABILITIES_RETRY_SECONDS,
    CAPABILITIES_TTL_SECONDS,
    CONCURRENCY_PER_PLATFORM,
    CONTRACT_CAPABILITIES,
    LOG_FETCH_LIMIT_BYTES,
    RETRY_BUDGET_SECONDS,
    STATE_STOPPED,
    logs_path,
    session_path,
    start_path,
    stop_path,
)
from .credentials import read_token
from .observe import observe_session
from .retry import RetryPolicy
from .session_body import session_body
from .settings import PlatformSettings
from .validation import http_problems

CAPABILITY_FIELDS = {
    "streaming": "streaming",
    "history": "history",
    "logs": "logs",
    "resume": "resume",
    "cancel": "cancel",
    "resourceLimits": "resource_limits",
}
"""`/v1/capabilities` keys → `Capabilities` fields."""


@dataclass
class _Call:
    """What one provider call needs: the platform, the policy, the token (and how to re-read it)."""

    platform: PlatformClient
    settings: PlatformSettings
    policy: RetryPolicy
    token: str | None
    reread: Callable[[], Awaitable[str | None]] | None
    allowlist: PlatformAllowlist
    """The operator's allowlist as the session's templates raise it."""


class HTTPProvider:
    """The `http` provider. Give it an `ApiClient` (to read the token Secret and the Secrets and
    ConfigMaps the agent's environment references), or in tests any object with the CoreV1Api
    read methods as `core_api`; neither is needed for platforms without credentials.

    `platforms` are the base URLs sessions may be sent to (none: every http session is refused);
    `endpoints` the bases, besides a platform's own origin, its runtime endpoints may be on
    (`PlatformAllowlist`; a bad entry raises ValueError)."""

    type_name = c.PROVIDER_HTTP

    def __init__(
        self,
        api_client: Any = None,
        *,
        platforms: Iterable[str] = (),
        endpoints: Iterable[str] = (),
        core_api: Any = None,
        concurrency: int = CONCURRENCY_PER_PLATFORM,
        retry_budget: float = RETRY_BUDGET_SECONDS,
        user_agent: str = USER_AGENT,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.allowlist = PlatformAllowlist(platforms, endpoints)
        self._reader: ObjectReader | None = None
        if core_api is not None:
            self._reader = KubernetesObjectReader(core_api, api_client)
        elif api_client is not None:
            self._reader = KubernetesObjectReader.from_api_client(api_client)
        self._concurrency = concurrency
        self._retry_budget = retry_budget
        self._user_agent = user_agent
        self._sleep = sleep
        self._rng = rng
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: aiohttp.ClientSession | None = None
        self._http_keeper: AsyncGenerator[aiohttp.ClientSession, None] | None = None
        self._platforms: dict[str, PlatformClient] = {}
        self._settings: dict[str, tuple[PlatformSettings, PlatformAllowlist]] = {}
        """Session uid → the platform settings of its last call (see `_begin`)."""
        self._capabilities: dict[str, tuple[Capabilities, float]] = {}
        """Platform URL → (its capabilities, monotonic time to ask again)."""

    # --- the protocol ---------------------------------------------------------------------

    def validate(self, config: Mapping[str, Any], context: ValidationContext) -> list[str]:
        """The provider's requirements, then the platform: under the operator's allowlist as the
        session's templates raise it (`context.raises`)."""
        problems = http_problems(config)
        allowlist = self.allowlist.raised_by(context.raises)
        problems += allowlist.problems
        if not any(problem.startswith("spec.http.url:") for problem in problems):
            url = _mapping(config.get("http")).get("url")
            refused = allowlist.url_problem(url)
            if refused is not None:
                problems.append(refused)
        return problems

    def capabilities(self, config: Mapping[str, Any] | None = None) -> Capabilities:
        """What the platform of `config` said it supports (`/v1/capabilities`, cached); without
        a config, what every platform seen so far supports. Before any answer, or when a
        platform cannot be asked, the contract's guarantees (`CONTRACT_CAPABILITIES`)."""
        if config is not None:
            known = self._capabilities.get(PlatformSettings.from_config(config).url)
            return known[0] if known is not None else CONTRACT_CAPABILITIES
        seen = [caps for caps, _ in self._capabilities.values()]
        if not seen:
            return CONTRACT_CAPABILITIES
        return Capabilities(**{name: all(getattr(caps, name) for caps in seen) for name in CAPABILITY_FIELDS.values()})

    async def ensure(self, session: SessionRef) -> ProviderRef:
        problems = self.validate(session.config, session.context)
        if problems:
            raise InvalidConfiguration(problems)
        call = await self._begin(session)
        await self._refresh_capabilities(call)
        path = session_path(session.uid)
        answer = await self._request(call, "PUT", path, body=session_body(session, env=await self._env(session)))
        if not answer.ok:
            raise _ensure_error(answer, call, "PUT", path)
        current = _session_json(answer, call, "PUT", path)
        if current.get("state") == STATE_STOPPED:
            path = start_path(session.uid)
            answer = await self._request(call, "POST", path)
            if answer.status == 404:
                return ProviderRef(self.type_name, session.uid)  # deleted meanwhile: ensured again next time
            if not answer.ok:
                raise _ensure_error(answer, call, "POST", path)
            current = _session_json(answer, call, "POST", path)
        observation = observe_session(current, session_id=session.uid, endpoint_problem=self._endpoint_check(call))
        return ProviderRef(self.type_name, session.uid, observation.endpoint)

    async def observe(self, session: SessionRef) -> Observation:
        call = await self._begin(session)
        await self._refresh_capabilities(call)
        path = session_path(session.uid)
        answer = await self._request(call, "GET", path)
        if answer.status == 404:
            return observe_session(None)
        if not answer.ok:
            raise _unavailable(answer, call, "GET", path)
        return observe_session(
            _session_json(answer, call, "GET", path), session_id=session.uid, endpoint_problem=self._endpoint_check(call)
        )

    async def stop(self, session: SessionRef) -> None:
        call = await self._begin(session)
        path = stop_path(session.uid)
        answer = await self._request(call, "POST", path)
        if not answer.ok and answer.status != 404:
            raise _unavailable(answer, call, "POST", path)

    async def delete(self, session: SessionRef) -> bool:
        call = await self._begin(session)
        path = session_path(session.uid)
        answer = await self._request(call, "DELETE", path)
        if not answer.ok and answer.status != 404:
            raise _unavailable(answer, call, "DELETE", path)
        gone = answer.status != 202
        if gone:
            self._settings.pop(session.uid, None)
        return gone

    async def logs(self, session: SessionRef, tail_lines: int = c.MAX_LOG_TAIL_LINES,
                   limit_bytes: int = c.MAX_LOG_TAIL_BYTES) -> LogTail:
        """See `Provider.logs`. One line more than asked is requested: if it comes, older
        output exists (`truncated`)."""
        call = await self._begin(session)
        path = logs_path(session.uid)
        params = {"tailLines": str(tail_lines + 1), "limitBytes": str(LOG_FETCH_LIMIT_BYTES)}
        answer = await self._request(call, "GET", path, params=params)
        if answer.status == 404:
            raise SessionNotFound(f"GET {call.settings.url}{path}: the platform has no session {session.uid}")
        if not answer.ok:
            raise _unavailable(answer, call, "GET", path)
        text = answer.text()
        cut = len(answer.body) >= LOG_FETCH_LIMIT_BYTES
        if cut:
            text = text[text.find("\n") + 1:]  # the oldest line may be cut (a secret in half): drop it
        secrets = await secret_values(_agent(session), session.namespace, self._reader)
        if call.token:
            secrets.append(call.token)
        return bounded_log(text, secrets, max_lines=tail_lines, max_bytes=limit_bytes, truncated=cut)

    async def close(self) -> None:
        """Close the connections to the platforms (the operator's clean-up; see `_open_http`)."""
        keeper, self._http_keeper, self._http = self._http_keeper, None, None
        if keeper is not None:
            await keeper.aclose()

    # --- helpers ----------------------------------------------------------------------------

    async def _begin(self, session: SessionRef) -> _Call:
        """The platform client, retry policy and token for one call on `session`.

        A session whose configuration no longer resolves (a deleted template, say) arrives with
        an empty config, yet its platform session must still be observed, stopped and deleted.
        The settings of the last call on it stand in then (an in-memory convenience for as long
        as this operator runs); without them the platform is unknown, which is reported as
        unavailable — transient, retried — until the configuration is fixed. The same goes for a
        configuration now naming a platform that is not allowed (edited after creation): the
        platform session stays where it is and nothing goes to the new URL.
        """
        settings = PlatformSettings.from_config(session.config)
        allowlist = self.allowlist.raised_by(session.raises)
        refused = allowlist.url_problem(settings.url) if settings.url else None
        if not settings.url or refused is not None:
            known = self._settings.get(session.uid)
            if known is None and refused is not None:  # before any Secret is read or byte sent, whoever called
                raise ProviderUnavailable(f"{refused}; nothing is sent there (fix the configuration)")
            if known is None:
                raise ProviderUnavailable(
                    "the session's platform is unknown: its configuration does not resolve to a spec.http.url"
                    " (fix the configuration so the platform session can be reached)"
                )
            # Where its platform session is (allowed when the last call was made, or none was made),
            # with the allowlist of then: a template's raise withdrawn must not strand it there.
            settings, allowlist = known
        self._settings[session.uid] = settings, allowlist
        policy = RetryPolicy(max_retries=settings.max_retries, budget=self._retry_budget)
        platform = self._platform(settings.url, allowlist)
        await self._open_http()
        ref = settings.credentials
        if ref is None:
            return _Call(platform, settings, policy, None, None, allowlist)

        async def reread() -> str | None:
            return await read_token(self._reader, session.namespace, ref)

        return _Call(platform, settings, policy, await reread(), reread, allowlist)

    def _endpoint_check(self, call: _Call) -> Callable[[str], str | None]:
        return lambda endpoint: call.allowlist.endpoint_problem(endpoint, call.settings.url)

    async def _env(self, session: SessionRef) -> dict[str, str] | None:
        """The agent's environment with its Secret and ConfigMap references read (as a kubelet
        computes a container's), or None when the configuration defines none. The platform
        cannot read this cluster's objects, so the values travel in the PUT body."""
        agent = _agent(session)
        if not agent.get("env") and not agent.get("envFrom"):
            return None
        return (await resolve_env(agent, session.namespace, self._reader)).values

    async def _request(self, call: _Call, method: str, path: str, *, body: Any = None,
                       params: Mapping[str, str] | None = None) -> PlatformAnswer:
        return await call.platform.request(
            method, path, policy=call.policy, timeout=call.settings.timeout, token=call.token,
            reread_token=call.reread, body=body, params=params,
        )

    def _platform(self, url: str, allowlist: PlatformAllowlist) -> PlatformClient:
        refused = allowlist.url_problem(url)
        if refused is not None:  # no client, hence no request, for a platform not allowed
            raise ProviderUnavailable(refused)
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # clients, connections and semaphores belong to one loop
            self._loop, self._http, self._http_keeper, self._platforms = loop, None, None, {}
        platform = self._platforms.get(url)
        if platform is None:
            platform = self._platforms[url] = PlatformClient(
                url, self._client, concurrency=self._concurrency, sleep=self._sleep, clock=self._clock, rng=self._rng
            )
        return platform

    def _client(self) -> aiohttp.ClientSession:
        assert self._http is not None, "_open_http() runs before any request"
        return self._http

    async def _open_http(self) -> None:
        """One pooled aiohttp session for every platform, opened on first use.

        It is held by an async generator suspended at its `yield`: the event loop finalizes
        live async generators when it shuts down (`asyncio.run` does), which closes the session
        even though the operator's clean-up knows nothing of providers. `close()` does the same
        earlier, explicitly.
        """
        if self._http is not None and not self._http.closed:
            return
        self._http_keeper = self._keep_http()
        self._http = await self._http_keeper.__anext__()

    async def _keep_http(self) -> AsyncGenerator[aiohttp.ClientSession, None]:
        http = aiohttp.ClientSession(headers={"User-Agent": self._user_agent})
        try:
            yield http
        finally:
            await http.close()

    async def _refresh_capabilities(self, call: _Call) -> None:
        """Ask the platform what it supports, at most once per TTL. Never fails the call: one
        attempt, and the contract's guarantees stand in until the platform answers."""
        url = call.settings.url
        known = self._capabilities.get(url)
        if known is not None and self._clock() < known[1]:
            return
        try:
            answer = await call.platform.request(
                "GET", CAPABILITIES_PATH, policy=RetryPolicy(max_retries=0), timeout=min(call.settings.timeout, 5.0),
                token=call.token,
            )
        except ProviderUnavailable:
            answer = None
        parsed = parse_capabilities(answer.json()) if answer is not None and answer.ok else None
        if parsed is None:
            self._capabilities[url] = (known[0] if known else CONTRACT_CAPABILITIES,
                                       self._clock() + CAPABILITIES_RETRY_SECONDS)
        else:
            self._capabilities[url] = (parsed, self._clock() + CAPABILITIES_TTL_SECONDS)


def parse_capabilities(body: Any) -> Capabilities | None:
    """`Capabilities` from a `/v1/capabilities` body; None when it is not an object. What the
    platform says is what counts; a missing or non-boolean field falls back to the contract's
    guarantee (`CONTRACT_CAPABILITIES`)."""
    if not isinstance(body, Mapping):
        return None
    return Capabilities(**{
        field: body[key] if isinstance(body.get(key), bool) else getattr(CONTRACT_CAPABILITIES, field)
        for key, field in CAPABILITY_FIELDS.items()
    })


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _agent(session: SessionRef) -> Mapping[str, Any]:
    agent = session.config.get("agent")
    return agent if isinstance(agent, Mapping) else {}


def _session_json(answer: PlatformAnswer, call: _Call, method: str, path: str) -> Mapping[str, Any]:
    body = answer.json()
    if not isinstance(body, Mapping):
        raise ProviderUnavailable(
            f"{method} {call.settings.url}{path}: the platform answered {answer.status} without a session object"
        )
    return body


def _ensure_error(answer: PlatformAnswer, call: _Call, method: str, path: str) -> ProviderError:
    """An error answer to a PUT or `:start`: a rejected configuration is permanent; a 404 means
    the URL does not lead to a platform (a PUT creates)."""
    error = answer_error(answer.status, answer.body, action=f"{method} {call.settings.url}{path}")
    if isinstance(error, SessionNotFound) and method == "PUT":
        return ProviderUnavailable(f"{error.message} (is spec.http.url the platform's base URL?)")
    return error


def _unavailable(answer: PlatformAnswer, call: _Call, method: str, path: str) -> ProviderError:
    """An error answer where only "could not ask" makes sense (GET, stop, delete, logs): anything
    but an explicit transient error is the platform not keeping the contract."""
    error = answer_error(answer.status, answer.body, action=f"{method} {call.settings.url}{path}")
    if isinstance(error, ProviderUnavailable):
        return error
    return ProviderUnavailable(error.message)
