"""The provider contract of §6 and `providers.base.Provider`, checked the same way for every
provider (`PROVIDERS` in conftest): idempotent ensure/stop/delete keyed by uid, observation in
the lifecycle's vocabulary, resume with the workspace, not-found as an answer, typed errors,
validation before anything is created, logs redacted and bounded.
"""

from __future__ import annotations

import aiohttp
import pytest

from agent_sessions.lifecycle import BackingState
from agent_sessions.providers import Capabilities, InvalidConfiguration, ProviderRef, SessionNotFound

from support.waits import eventually

from .conftest import ContractEnv, eventually_ready

GONE = (BackingState.ABSENT, BackingState.STOPPED, BackingState.TERMINATING)
"""After `stop()`: gone, stopped, or on its way out (a pod within its grace period)."""


async def healthz(endpoint: str) -> int:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        async with http.get(f"{endpoint}/healthz") as response:
            return response.status


async def test_capabilities_are_constant_and_validate_accepts_the_base_config(contract: ContractEnv):
    provider = contract.provider
    assert isinstance(provider.capabilities(), Capabilities)
    assert provider.capabilities() == provider.capabilities()
    assert provider.type_name == contract.name
    assert provider.validate(contract.make_ref().config, contract.make_ref().context) == []


async def test_a_session_never_ensured_is_absent_and_stop_delete_logs_answer_not_found(contract: ContractEnv):
    ref = contract.make_ref()
    assert (await contract.provider.observe(ref)).state == BackingState.ABSENT
    await contract.provider.stop(ref)  # not found counts as done
    assert await contract.provider.delete(ref) is True
    with pytest.raises(SessionNotFound):
        await contract.provider.logs(ref, 10, 4096)
    assert await contract.backings(ref) == 0


async def test_ensure_twice_makes_one_backing_that_becomes_ready_with_an_endpoint(contract: ContractEnv):
    ref = contract.make_ref()
    first = await contract.provider.ensure(ref)
    second = await contract.provider.ensure(ref)
    assert isinstance(first, ProviderRef) and first.type == contract.name
    assert second.id == first.id
    assert await contract.backings(ref) == 1

    observation = await eventually_ready(contract, ref)
    assert observation.state == BackingState.RUNNING and observation.ready
    assert observation.id in (None, first.id)
    assert await contract.backings(ref) == 1
    if contract.expect.serves_endpoint:
        assert observation.endpoint
        assert await healthz(observation.endpoint) == 200


async def test_sessions_of_distinct_uids_get_distinct_backings(contract: ContractEnv):
    one = contract.make_ref(name="same-name")
    other = contract.make_ref(name="same-name")  # re-created under the same name: a new uid
    assert (await contract.provider.ensure(one)).id != (await contract.provider.ensure(other)).id
    assert await contract.backings(one) == 1
    assert await contract.backings(other) == 1


async def test_stop_keeps_the_workspace_and_ensure_resumes_the_session_with_its_history(contract: ContractEnv):
    ref = contract.make_ref()
    await contract.provider.ensure(ref)
    running = await eventually_ready(contract, ref)
    workspace = contract.workspace(ref)
    if workspace is not None:
        (workspace / "notes.txt").write_text("written before stop")
    if contract.expect.serves_endpoint:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{running.endpoint}/v1/messages", json={"text": "remember me"}) as response:
                assert response.status == 200, await response.text()

    await contract.provider.stop(ref)
    assert (await contract.provider.observe(ref)).state in GONE  # read-after-write
    await contract.provider.stop(ref)  # idempotent
    assert (await contract.provider.observe(ref)).state in GONE
    assert await contract.workspace_kept(ref)

    resumed = await eventually_ready(contract, ref)
    assert await contract.backings(ref) == 1
    if workspace is not None:
        assert (workspace / "notes.txt").read_text() == "written before stop"
    if contract.expect.serves_endpoint:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{resumed.endpoint}/v1/history") as response:
                history = await response.json()
        assert "remember me" in str(history)


async def test_delete_removes_the_backing_and_workspace_and_a_second_delete_is_done(contract: ContractEnv):
    ref = contract.make_ref()
    await contract.provider.ensure(ref)
    await eventually_ready(contract, ref)
    assert await contract.workspace_kept(ref)

    await eventually(lambda: contract.provider.delete(ref), "delete reports done")
    assert (await contract.provider.observe(ref)).state == BackingState.ABSENT
    assert await contract.backings(ref) == 0
    assert not await contract.workspace_kept(ref)
    assert await contract.provider.delete(ref) is True


async def test_a_backing_that_vanished_is_absent_and_its_logs_are_not_found(contract: ContractEnv):
    ref = contract.make_ref()
    await contract.provider.ensure(ref)
    await contract.remove_backing(ref)

    async def absent() -> bool:
        return (await contract.provider.observe(ref)).state == BackingState.ABSENT

    await eventually(absent, "the vanished backing is observed ABSENT")
    with pytest.raises(SessionNotFound):
        await contract.provider.logs(ref, 10, 4096)
    await contract.provider.ensure(ref)  # the lifecycle re-creates it
    assert await contract.backings(ref) == 1


async def test_unsupported_settings_are_problems_and_ensure_creates_nothing(contract: ContractEnv):
    assert contract.expect.invalid, "declare at least one configuration the provider rejects"
    for overrides, expected in contract.expect.invalid:
        ref = contract.make_ref(**overrides)
        problems = contract.provider.validate(ref.config, ref.context)
        assert any(expected in problem for problem in problems), (overrides, problems)
        with pytest.raises(InvalidConfiguration) as raised:
            await contract.provider.ensure(ref)
        assert any(expected in problem for problem in raised.value.problems)
        assert await contract.backings(ref) == 0


async def test_logs_are_redacted_before_they_are_bounded(contract: ContractEnv, api):
    secret_value = "plain-looking-value-9f2c"
    api.create("secrets", {"metadata": {"name": "agent-creds", "namespace": "default"},
                           "stringData": {"api-key": secret_value}})
    ref = contract.make_ref(agent={
        "command": ["/bin/sh", "-c", 'echo "the key is $API_KEY" >&2; exec "$0" "$@"', *contract.base_config["agent"]["command"]],
        "env": [{"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "agent-creds", "key": "api-key"}}}],
    })
    await contract.provider.ensure(ref)
    await eventually_ready(contract, ref)

    async def logged() -> str:
        text = await contract.provider.logs(ref, 50, 8192)
        return text if "the key is" in text else ""

    text = await eventually(logged, "the agent's line reaches the log")
    assert secret_value not in text
    assert "the key is [REDACTED]" in text

    short = await contract.provider.logs(ref, 1, 8192)
    assert len(short.splitlines()) == 1
    assert short.truncated is True
    assert secret_value not in await contract.provider.logs(ref, 50, 20)
