"""A real `agent-sessions runtime` process with the standard OTEL_* variables exports its spans
over OTLP/HTTP (issue 12): the request span continues the caller's `traceparent`, the agent's turn
is its child, and the resource names the runtime. The collector is a loopback HTTP server that
decodes what the exporter posts to `/v1/traces`."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .conftest import DEADLINE, SESSION, post_json, ready

TIER = "embedded"  # a runtime process, its demo agent and a loopback collector

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


class Collector:
    def __init__(self) -> None:
        self.spans: list[tuple[dict[str, str], object]] = []  # (resource attributes, span)
        self.url = ""

    async def traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                self.spans.extend((resource, span) for span in scope.spans)
        return web.Response(content_type="application/x-protobuf", body=b"")

    def named(self, name: str) -> list:
        return [span for _, span in self.spans if span.name == name]


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    sink = Collector()
    app = web.Application()
    app.router.add_post("/v1/traces", sink.traces)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    sink.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield sink
    await runner.cleanup()


async def test_a_runtime_process_exports_its_request_and_turn_spans_under_the_callers_trace(
        start_bridge, http, collector):
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "50"}
    bridge = await ready(http, start_bridge(env=env))
    status, reply = await post_json(http, f"{bridge.url}/v1/messages", {"text": "hello"},
                                    headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
    assert status == 200 and reply["stopReason"] == "end_turn"
    async with asyncio.timeout(DEADLINE):
        while not (collector.named("agent turn") and collector.named("POST /v1/messages")):
            await asyncio.sleep(0.05)
    [request] = collector.named("POST /v1/messages")
    [turn] = collector.named("agent turn")
    assert request.trace_id.hex() == turn.trace_id.hex() == CALLER_TRACE
    assert request.parent_span_id.hex() == CALLER_SPAN
    assert turn.parent_span_id == request.span_id
    attributes = {a.key: a.value for a in turn.attributes}
    assert attributes["agent_sessions.session.name"].string_value == SESSION["name"]
    assert attributes["agent_sessions.turn.stop_reason"].string_value == "end_turn"
    resource = next(resource for resource, span in collector.spans if span.name == "agent turn")
    assert resource["service.name"] == "agent-sessions-runtime"
    assert not collector.named("GET /healthz")  # probes are not traced
