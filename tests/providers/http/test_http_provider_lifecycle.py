"""HTTPProvider against the reference server, with its token in a Secret of the strict embedded
API: the whole protocol on real sessions (runtime bridge + demo agent as processes)."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp

from agent_sessions.lifecycle import BackingState, Observation
from agent_sessions.providers import Capabilities, ProviderUnavailable, SessionNotFound, SessionRef
from agent_sessions.providers.http import HTTPProvider

from .conftest import NAMESPACE, TOKEN, http_config, http_provider

DEADLINE = 30.0


def ref(url: str, name: str = "demo", **http) -> SessionRef:
    config = {"provider": "http", "http": http_config(url, **http), "agent": {"protocol": "acp"},
              "lifecycle": {"restartPolicy": "OnFailure"}}
    return SessionRef(namespace=NAMESPACE, name=name, uid=str(uuid.uuid4()), config=config, config_hash="h1")


async def observe_until(provider: HTTPProvider, session: SessionRef, predicate,
                        timeout: float = DEADLINE) -> Observation:
    deadline = time.monotonic() + timeout
    while True:
        observation = await provider.observe(session)
        if predicate(observation):
            return observation
        assert time.monotonic() < deadline, f"last observation: {observation}"
        await asyncio.sleep(0.1)


def running(observation: Observation) -> bool:
    return observation.state == BackingState.RUNNING and observation.ready


async def test_full_lifecycle_create_run_stop_resume_delete(platform, token_secret, provider):
    session = ref(platform.url)
    placed = await provider.ensure(session)
    assert placed.type == "http" and placed.id == session.uid
    observation = await observe_until(provider, session, running)
    assert observation.endpoint and observation.id == session.uid

    async with aiohttp.ClientSession() as http:  # the endpoint is a real runtime bridge
        async with http.post(f"{observation.endpoint}/v1/messages", json={"text": "hello platform"}) as answer:
            assert answer.status == 200
            assert "hello platform" in (await answer.json())["text"]

    logs = await provider.logs(session, 50, 8192)
    assert "runtime listening" in logs

    await provider.stop(session)
    assert (await provider.observe(session)).state == BackingState.STOPPED  # read-after-write
    await provider.stop(session)  # idempotent

    resumed = await provider.ensure(session)
    assert resumed.id == session.uid
    observation = await observe_until(provider, session, running)
    async with aiohttp.ClientSession() as http:  # the workspace (and so the history) was kept
        async with http.get(f"{observation.endpoint}/v1/history") as answer:
            texts = [str(item) for item in (await answer.json())["items"]]
            assert any("hello platform" in text for text in texts)

    assert await provider.delete(session) is True
    assert (await provider.observe(session)).state == BackingState.ABSENT
    assert await provider.delete(session) is True  # not found is done
    try:
        await provider.logs(session, 10, 100)
    except SessionNotFound:
        pass
    else:
        raise AssertionError("logs of a deleted session must raise SessionNotFound")

    stats = platform.stats()
    assert (stats["creates"], stats["starts"], stats["sessions"]) == (1, 1, 0)
    assert provider.capabilities(session.config) == Capabilities(
        streaming=True, history=True, logs=True, resume=True, cancel=True, resource_limits=False)


async def test_ensure_after_an_operator_restart_reattaches_instead_of_creating(platform, token_secret, provider,
                                                                               kubeconfig):
    session = ref(platform.url)
    first = await provider.ensure(session)
    await observe_until(provider, session, running)

    from agent_sessions.k8s.client import make_api_client

    client = await make_api_client(kubeconfig)
    restarted = http_provider(client, (platform.url,))  # a new operator: no memory of the first
    try:
        again = await restarted.ensure(session)
        twice = await restarted.ensure(session)
        assert again == twice
        assert again.id == first.id
        assert running(await restarted.observe(session))
    finally:
        await restarted.close()
        await client.close()
    assert platform.stats()["creates"] == 1
    assert platform.stats()["puts"] == 3
    await provider.delete(session)


async def test_concurrent_ensures_create_one_session(platform, token_secret, provider):
    session = ref(platform.url)
    refs = await asyncio.gather(*(provider.ensure(session) for _ in range(5)))
    assert len({r.id for r in refs}) == 1
    assert platform.stats()["creates"] == 1
    await provider.delete(session)


async def test_a_rotated_secret_is_used_by_the_next_call(platform, token_secret, provider):
    session = ref(platform.url)
    await provider.ensure(session)
    platform.set_tokens("token-two-0b1d")  # the platform now accepts only the new token
    try:
        await provider.observe(session)
    except ProviderUnavailable as unavailable:
        assert "401" in str(unavailable)
    else:
        raise AssertionError("the old token must be refused")

    token_secret("token-two-0b1d")
    before = len(platform.requests())
    assert (await provider.observe(session)).state in (BackingState.PENDING, BackingState.RUNNING)
    sent = [r for r in platform.requests()[before:] if r.path.startswith("/v1/sessions/")]
    assert [r.token for r in sent] == ["token-two-0b1d"]
    assert all(r.status == 200 for r in sent)
    await provider.delete(session)


async def test_a_wrong_token_never_reaches_a_session(platform, api, provider):
    api.create("secrets", {"apiVersion": "v1", "kind": "Secret",
                           "metadata": {"name": "agent-platform", "namespace": NAMESPACE},
                           "data": {"token": "d3Jvbmc="}})  # "wrong"
    session = ref(platform.url)
    try:
        await provider.ensure(session)
    except ProviderUnavailable as unavailable:
        assert "answered 401 unauthorized" in str(unavailable)
        assert "spec.http.credentialsSecretRef" in str(unavailable)
    else:
        raise AssertionError("a wrong token must be refused")
    assert platform.stats()["creates"] == 0
    assert TOKEN not in [r.token for r in platform.requests()]


async def test_dropped_connections_on_put_are_retried_without_a_second_session(platform, token_secret, provider):
    platform.add_fault(drop=True, count=2, methods=["PUT"])
    session = ref(platform.url)
    placed = await provider.ensure(session)
    assert placed.id == session.uid
    puts = [r for r in platform.requests() if r.method == "PUT"]
    assert [r.status for r in puts] == [None, None, 201]
    assert platform.stats()["creates"] == 1
    await provider.delete(session)
