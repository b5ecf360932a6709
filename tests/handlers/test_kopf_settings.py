"""What the operator's kopf settings rely on about its own handlers."""

from __future__ import annotations

import kopf
import pytest

from agent_sessions.handlers.operator import default_provider_factories
from agent_sessions.handlers.registration import OperatorRuntime, register
from agent_sessions.handlers.settings import OperatorOptions, UnusedEssence, configure

pytestmark = pytest.mark.unit


def test_the_operator_has_no_change_or_daemon_handler_so_kopfs_essence_is_unused():
    # `UnusedEssence` builds kopf's per-event essence empty: right only while no handler reads it.
    options = OperatorOptions()
    registry = kopf.OperatorRegistry()
    register(registry, OperatorRuntime(options=options, provider_factories=default_provider_factories(options)))
    assert registry._watching.get_all_handlers()  # noqa: SLF001 - the event handlers are there
    assert not registry._changing.get_all_handlers()  # noqa: SLF001
    assert not registry._spawning.get_all_handlers()  # noqa: SLF001
    settings = kopf.OperatorSettings()
    configure(settings, options)
    assert isinstance(settings.persistence.diffbase_storage, UnusedEssence)
    body = kopf.Body({"metadata": {"name": "s", "labels": {"a": "b"}}, "spec": {"x": [1, 2, 3] * 100}})
    assert settings.persistence.diffbase_storage.build(body=body) == {}
    assert settings.persistence.diffbase_storage.fetch(body=body) is None
