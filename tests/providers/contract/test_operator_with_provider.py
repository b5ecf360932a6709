"""The real operator over each provider: what the contract promises shows in the session's status.

A provider's `validate()` problems become `ConfigValid=False` (reason `InvalidConfiguration`)
with the provider's own message, and its `capabilities()` are published in
`status.capabilities` once a session runs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agent_sessions.api import constants as c
from agent_sessions.dev.strict_api import StrictKubernetesAPI
from agent_sessions.handlers.operator import OperatorThread
from agent_sessions.handlers.settings import OperatorOptions
from support.waits import wait_session_async

from .conftest import NAMESPACE, TIMEOUT, ContractEnv


def agent_session(name: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND,
            "metadata": {"name": name, "namespace": NAMESPACE}, "spec": dict(config)}


def condition(obj: dict, type_: str) -> dict:
    return next((x for x in (obj.get("status") or {}).get("conditions") or [] if x["type"] == type_), {})


async def wait_session(api: StrictKubernetesAPI, name: str, predicate: Any) -> dict:
    return await wait_session_async(api, name, predicate, NAMESPACE, TIMEOUT)


async def test_the_operator_reports_provider_problems_and_publishes_capabilities(
    contract: ContractEnv, api: StrictKubernetesAPI, kubeconfig: str
):
    options = OperatorOptions(info_refresh_seconds=0.5, log_refresh_seconds=1.0,
                              operator_defaults=dict(contract.operator_defaults))
    operator = OperatorThread(options, kubeconfig=kubeconfig, provider_factories={contract.name: contract.factory})
    contract.on_change = lambda namespace, name: operator.runtime.scheduler.trigger((namespace, name))
    await asyncio.to_thread(operator.start)
    try:
        overrides, expected = contract.expect.invalid[0]
        api.create(c.SESSION_PLURAL, agent_session("unsupported", contract.make_ref(**overrides).config))
        api.create(c.SESSION_PLURAL, agent_session("valid", contract.make_ref().config))

        invalid = await wait_session(api, "unsupported", lambda o: condition(o, c.COND_CONFIG_VALID).get("status") == "False")
        config_valid = condition(invalid, c.COND_CONFIG_VALID)
        assert config_valid["reason"] == c.REASON_INVALID_CONFIGURATION
        assert expected in config_valid["message"]
        assert invalid["status"]["phase"] == c.PHASE_FAILED

        running = await wait_session(api, "valid", lambda o: condition(o, c.COND_READY).get("status") == "True")
        assert running["status"]["phase"] == c.PHASE_RUNNING
        published = contract.provider.capabilities().model_dump(mode="json", by_alias=True, exclude_none=True)
        assert running["status"]["capabilities"] == published
        assert running["status"]["provider"]["type"] == contract.name
    finally:
        await asyncio.to_thread(operator.stop)
