"""Tracing in the operator (issue 12): a reconcile is a span, each provider call under it a child
span, and a provider's I/O is traced without the provider knowing; with tracing off the registry
hands out the provider itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agent_sessions.api import constants as c
from agent_sessions.providers.base import SessionRef
from agent_sessions.providers.errors import InvalidConfiguration
from agent_sessions.providers.registry import ProviderRegistry
from agent_sessions.providers.traced_provider import TracedProvider, traced_provider
from agent_sessions.wire import tracing

from .test_reconcile_deletion_and_sanitising import (  # noqa: F401 (fixture)
    MISSING_TEMPLATE,
    RAN_ON_PODS,
    FakeProvider,
    deleted_session,
    recorded,
)

TIER = "unit"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    assert tracing.configure("agent-session-operator-test", exporter=spans, environ={})
    yield spans
    tracing.shutdown()


async def test_a_reconcile_is_a_span_with_its_provider_calls_as_children(exporter, recorded):  # noqa: F811
    pods = FakeProvider()
    reconciler = recorded({})
    reconciler.providers = lambda name: traced_provider({c.PROVIDER_POD: pods}[name], name)
    outcome = await reconciler.reconcile(deleted_session(spec=MISSING_TEMPLATE, status=RAN_ON_PODS), {})
    assert outcome.gone and [name for name, _ in pods.calls] == ["observe", "delete"]
    spans = exporter.get_finished_spans()
    [reconcile] = [s for s in spans if s.name == "reconcile"]
    assert dict(reconcile.attributes) == {tracing.SESSION_NAMESPACE: "team", tracing.SESSION_NAME: "gone-wrong"}
    calls = [s for s in spans if s.name.startswith("provider ")]
    assert [s.name for s in calls] == ["provider observe", "provider delete"]
    for call in calls:
        assert call.parent.span_id == reconcile.context.span_id
        assert call.context.trace_id == reconcile.context.trace_id
        assert call.attributes[tracing.PROVIDER] == c.PROVIDER_POD
        assert call.attributes[tracing.SESSION_NAME] == "gone-wrong"


async def test_a_failing_provider_call_is_an_error_span_and_the_error_reaches_the_caller(exporter):
    provider = traced_provider(FakeProvider(down="platform unreachable"), c.PROVIDER_HTTP)
    session = deleted_session(spec={})
    ref = SessionRef(session["metadata"]["namespace"], session["metadata"]["name"], "uid-1")
    with pytest.raises(Exception, match="platform unreachable"):
        await provider.observe(ref)
    [span] = exporter.get_finished_spans()
    assert span.name == "provider observe" and not span.status.is_ok


def test_the_registry_traces_providers_only_while_tracing_is_on(exporter):
    pods = FakeProvider()
    registry = ProviderRegistry()
    registry.register(c.PROVIDER_POD, lambda: pods)
    traced = registry.get(c.PROVIDER_POD)
    assert isinstance(traced, TracedProvider) and traced.provider is pods
    assert traced.capabilities() == pods.capabilities() and traced.type_name == c.PROVIDER_POD
    tracing.shutdown()
    untraced = ProviderRegistry()
    untraced.register(c.PROVIDER_POD, lambda: pods)
    assert untraced.get(c.PROVIDER_POD) is pods
    with pytest.raises(InvalidConfiguration):
        untraced.get(c.PROVIDER_HTTP)
