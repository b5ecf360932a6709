"""Tracing (issue 12): one message is one trace — the gateway's request, its call to the runtime,
the runtime's request (continued from the `traceparent` the call carried) and the agent's turn —
and with tracing off there is nothing: no span, no header, no OpenTelemetry SDK loaded.

A real runtime bridge with the demo agent (a process) is served in the test's loop, so its spans
reach the same in-memory exporter as the gateway's; the trace context crosses only on the wire
(the bridge's request handlers run in tasks of its own server, not the caller's context).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from agent_sessions.runtime.bridge import RuntimeBridge
from agent_sessions.runtime.http_api import build_app
from agent_sessions.runtime.options import RuntimeOptions, SessionIdentity
from agent_sessions.wire import tracing
from agent_sessions.wire.runtime_client import RuntimeClient
from agent_sessions.wire.session_ref import SessionRef

from .conftest import ALICE, DEADLINE, make_session, read_sse
from .test_gateway_http import session_url

TIER = "embedded"  # the gateway, a runtime bridge and the demo agent's process
DEMO = (sys.executable, "-m", "agent_sessions.runtime.demo_agent")
MESSAGES = "/v1/namespaces/{namespace}/sessions/{name}/messages"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    assert tracing.configure("agent-sessions-test", exporter=spans, environ={})
    yield spans
    tracing.shutdown()


class Headers:
    """What the runtime was sent: the headers of each request, by path."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    @web.middleware
    async def record(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        if request.path.endswith("/messages"):
            self.seen.append(dict(request.headers))
        return await handler(request)


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[tuple[str, Headers]]:
    """A runtime bridge running the demo agent, on a loopback port, ready for a message."""
    options = RuntimeOptions(command=DEMO, workspace=tmp_path / "workspace",
                             session=SessionIdentity("team-a", "demo", "uid-demo"))
    runtime = RuntimeBridge(options)
    await runtime.start()
    headers = Headers()
    app = build_app(runtime)
    app.middlewares.insert(0, headers.record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with asyncio.timeout(DEADLINE):
            while not runtime.health.ok:
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", headers
    finally:
        await runtime.close()
        await runner.cleanup()


def one(spans, name: str, kind: SpanKind = SpanKind.INTERNAL):  # type: ignore[no-untyped-def]
    [span] = [s for s in spans if s.name == name and s.kind == kind]
    return span


def assert_one_message_trace(spans) -> dict:  # type: ignore[no-untyped-def]
    """gateway request → runtime call → runtime request → agent turn, one trace, each the parent
    of the next; returns them by role."""
    gateway = one(spans, f"POST {MESSAGES}", SpanKind.SERVER)
    call = one(spans, "POST /v1/messages", SpanKind.CLIENT)
    runtime = one(spans, "POST /v1/messages", SpanKind.SERVER)
    turn = one(spans, "agent turn")
    assert len({s.context.trace_id for s in (gateway, call, runtime, turn)}) == 1
    assert call.parent.span_id == gateway.context.span_id
    assert runtime.parent.span_id == call.context.span_id
    assert runtime.parent.is_remote  # continued from the wire, not inherited in-process
    assert turn.parent.span_id == runtime.context.span_id
    for span in (gateway, call, runtime, turn):
        assert span.attributes[tracing.SESSION_NAMESPACE] == "team-a"
        assert span.attributes[tracing.SESSION_NAME] == "demo"
    assert gateway.attributes["http.response.status_code"] == 200
    assert runtime.attributes["http.response.status_code"] == 200
    assert turn.attributes[tracing.TURN_STOP_REASON] == "end_turn"
    assert isinstance(turn.attributes[tracing.TURN_SEQ], int)
    assert turn.status.status_code != StatusCode.ERROR
    return {"gateway": gateway, "call": call, "runtime": runtime, "turn": turn}


def span_texts(spans) -> str:  # type: ignore[no-untyped-def]
    return json.dumps([{**dict(s.attributes), "name": s.name} for s in spans])


async def test_a_sync_message_is_one_trace_from_gateway_through_runtime_to_agent_turn(
        exporter, api, bridge, gateway, http):
    endpoint, headers = bridge
    make_session(api, "demo", endpoint=endpoint)
    async with http.post(session_url(gateway, "demo") + "/messages", json={"text": "secret plans"},
                         headers=ALICE) as response:
        assert response.status == 200
        assert (await response.json())["text"] == "You said: secret plans"
    spans = [s for s in exporter.get_finished_spans() if not s.name.startswith("GET ")]
    named = assert_one_message_trace(spans)
    assert headers.seen[-1]["traceparent"].split("-")[1] == f"{named['turn'].context.trace_id:032x}"
    assert "secret plans" not in span_texts(spans) and "alice-token" not in span_texts(spans)
    usage = {k: v for k, v in named["turn"].attributes.items() if k.startswith("gen_ai.usage.")}
    assert usage, "the demo agent reports token usage: the turn's span carries it"


async def test_a_streamed_message_is_one_trace_too(exporter, api, bridge, gateway, http):
    endpoint, _ = bridge
    make_session(api, "demo", endpoint=endpoint)
    async with http.post(session_url(gateway, "demo") + "/messages", params={"stream": "true"},
                         json={"text": "count these words"}, headers=ALICE) as response:
        assert response.status == 200
        frames = await read_sse(response, lambda m: bool(m) and m[-1]["event"] in ("done", "error"))
    assert frames[-1]["event"] == "done"
    async with asyncio.timeout(DEADLINE):  # the gateway's span ends once its handler returns
        while not any(s.name == f"POST {MESSAGES}" for s in exporter.get_finished_spans()):
            await asyncio.sleep(0.01)
    assert_one_message_trace([s for s in exporter.get_finished_spans() if not s.name.startswith("GET ")])


async def test_a_caller_trace_is_continued_by_the_gateway(exporter, api, bridge, gateway, http):
    endpoint, _ = bridge
    make_session(api, "demo", endpoint=endpoint)
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    async with http.post(session_url(gateway, "demo") + "/messages", json={"text": "hi"},
                         headers={**ALICE, "traceparent": caller}) as response:
        assert response.status == 200
    gateway_span = one(exporter.get_finished_spans(), f"POST {MESSAGES}", SpanKind.SERVER)
    assert f"{gateway_span.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert f"{gateway_span.parent.span_id:016x}" == "b7ad6b7169203331"


async def test_the_operators_prompt_delivery_continues_its_reconcile_trace_into_the_agent_turn(exporter, bridge):
    endpoint, headers = bridge
    client = RuntimeClient()
    try:
        with tracing.object_span("reconcile", {"metadata": {"namespace": "team-a", "name": "demo"}}):
            delivery = await client.deliver(endpoint, "the spec.prompt", "prompt-1", SessionRef("team-a", "demo", "u"))
        assert delivery.accepted
        async with asyncio.timeout(DEADLINE):  # delivery does not wait for the turn
            while not any(s.name == "agent turn" for s in exporter.get_finished_spans()):
                await asyncio.sleep(0.02)
    finally:
        await client.close()
    spans = exporter.get_finished_spans()
    reconcile = one(spans, "reconcile")
    call = one(spans, "POST /v1/messages", SpanKind.CLIENT)
    runtime = one(spans, "POST /v1/messages", SpanKind.SERVER)
    turn = one(spans, "agent turn")
    assert call.attributes["agent_sessions.message.mode"] == "deliver"
    assert (call.parent.span_id, runtime.parent.span_id, turn.parent.span_id) == (
        reconcile.context.span_id, call.context.span_id, runtime.context.span_id)
    assert len({s.context.trace_id for s in (reconcile, call, runtime, turn)}) == 1
    assert runtime.attributes["http.response.status_code"] == 202


async def test_with_tracing_off_a_message_makes_no_span_and_sends_no_traceparent(api, bridge, gateway, http):
    spans = InMemorySpanExporter()
    assert not tracing.configure("agent-sessions-test", environ={})  # no OTEL_* variable: off
    assert not tracing.enabled()
    endpoint, headers = bridge
    make_session(api, "demo", endpoint=endpoint)
    async with http.post(session_url(gateway, "demo") + "/messages", json={"text": "hi"}, headers=ALICE) as response:
        assert response.status == 200
    assert headers.seen and all("traceparent" not in h for h in headers.seen)
    assert spans.get_finished_spans() == ()


@pytest.mark.parametrize(("environ", "on"), [
    ({}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
    ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
    ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}, False),
])
def test_tracing_is_asked_for_by_the_standard_variables_only(environ, on):
    assert tracing.requested(environ) is on


def test_tracing_off_loads_no_opentelemetry_sdk_and_costs_one_check():
    # A fresh interpreter: what importing and running the traced code paths loads while tracing is off.
    script = """
import os, sys
for name in [n for n in os.environ if n.startswith("OTEL_")]:
    del os.environ[name]
import agent_sessions.handlers.operator, agent_sessions.reconciler.reconcile
operator = sorted(n for n in sys.modules if n.startswith("opentelemetry"))
import agent_sessions.gateway.server, agent_sessions.runtime.http_api
from agent_sessions.wire import tracing
assert not tracing.configure("x")
with tracing.span("reconcile", {"a": 1}) as s:
    s.set_attribute("b", 2)
assert tracing.inject({}) == {}
assert tracing.span("x") is tracing.NO_SPAN
print(operator)
print(sorted(n for n in sys.modules if n.startswith(("opentelemetry.sdk", "opentelemetry.exporter",
                                                      "opentelemetry.propagat", "google.protobuf"))))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    # The operator loads nothing of OpenTelemetry; the gateway and the runtime neither its SDK, its
    # exporter nor its propagators (the ACP library imports the bare API when it is installed).
    assert out.stdout.split("\n")[:2] == ["[]", "[]"]


def test_the_otlp_exporter_is_the_http_one_and_service_name_follows_otel_service_name():
    script = """
from agent_sessions.wire import tracing
env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SERVICE_NAME": "my-gateway"}
assert tracing.configure("agent-sessions-gateway", environ=env)
print(type(tracing._exporter(env)).__module__, tracing._provider.resource.attributes["service.name"])
import sys; print("grpc" in sys.modules)
"""
    env = {"PATH": "/usr/bin:/bin", "OTEL_SERVICE_NAME": "my-gateway", "OTEL_BSP_SCHEDULE_DELAY": "100"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["opentelemetry.exporter.otlp.proto.http.trace_exporter", "my-gateway", "False"]


def test_asked_for_without_the_tracing_extra_tracing_stays_off_with_a_warning():
    script = """
import logging, sys
sys.modules["opentelemetry.sdk"] = None  # as if the tracing extra were not installed
logging.basicConfig(level=logging.WARNING)
from agent_sessions.wire import tracing
print(tracing.configure("x", environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}), tracing.enabled())
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "False"]
    assert "agent-session-operator[tracing]" in out.stderr and out.stderr.count("WARNING") == 1
