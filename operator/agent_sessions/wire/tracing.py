"""OpenTelemetry tracing: off unless the standard `OTEL_*` variables ask for it.

One message is traced across three processes: the gateway's request span, its call to the
session's runtime (a client span whose context travels in the W3C `traceparent` header), the
runtime's request span (continuing that context) and, under it, the agent turn. The operator traces
each reconcile. Spans carry identities (session namespace and name, turn seq, stop reason, token
counts), never message contents, tokens or other secrets.

Why it is off by default and loaded lazily: the operator and the gateway are long-lived processes
whose memory and start-up time matter, and most installations export no traces. So
nothing of OpenTelemetry is imported until `configure()` finds tracing asked for; until then every
entry point here is one check of a module global, and `span()` hands out one shared no-op context.

Tracing is on when `OTEL_TRACES_EXPORTER` names an exporter other than `none`, or, without it, when
`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set; `OTEL_SDK_DISABLED=true`
turns it off whatever else says. Exporters: `otlp` (HTTP/protobuf, the only OTLP transport shipped:
no gRPC stack) and `console`. The SDK reads the rest of the standard variables itself
(`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_PROPAGATORS`,
`OTEL_EXPORTER_OTLP_*` headers, timeout, compression). The packages are the `tracing` extra; asked
for without them, tracing stays off with one warning.

This process's tracer provider is kept here, not installed as OpenTelemetry's global one: the
global can be set only once per process, and tests (or an embedding program) configure again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from aiohttp import web

from .frames import EVENT_DONE

logger = logging.getLogger(__name__)

AttributeValue = str | bool | int | float
Attributes = Mapping[str, AttributeValue]

SESSION_NAMESPACE = "agent_sessions.session.namespace"
SESSION_NAME = "agent_sessions.session.name"
TURN_SEQ = "agent_sessions.turn.seq"
TURN_STOP_REASON = "agent_sessions.turn.stop_reason"
TURN_ERROR = "agent_sessions.turn.error"
PROVIDER = "agent_sessions.provider"
USAGE_ATTRIBUTES = {"inputTokens": "gen_ai.usage.input_tokens", "outputTokens": "gen_ai.usage.output_tokens"}
"""ACP usage keys with an OpenTelemetry GenAI name; other numeric keys become `agent_sessions.turn.usage.<key>`."""

_tracer: Any = None
"""The opentelemetry Tracer while tracing is on, else None (the one check everything makes)."""
_provider: Any = None


class _NoSpan:
    """What `span()` yields while tracing is off: accepts attributes and forgets them."""

    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        pass

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


NO_SPAN = _NoSpan()


def enabled() -> bool:
    return _tracer is not None


def requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for tracing (see the module docstring)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure(service_name: str, *, exporter: Any = None, environ: Mapping[str, str] = os.environ) -> bool:
    """Turn tracing on for this process when `environ` asks for it, or with `exporter` (an
    OpenTelemetry SpanExporter, exported to synchronously: tests). `service_name` is this
    component's default `service.name` (`OTEL_SERVICE_NAME` wins). Returns whether tracing is on."""
    global _tracer, _provider
    if exporter is None and not requested(environ):
        return False
    try:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        logger.warning("tracing is asked for (OTEL_*) but OpenTelemetry is not installed (%s): install "
                       "agent-session-operator[tracing]; tracing stays off", exc)
        return False
    if exporter is not None:
        processor = SimpleSpanProcessor(exporter)
    else:
        exporter = _exporter(environ)
        if exporter is None:
            return False
        processor = BatchSpanProcessor(exporter)
    attributes = {} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    shutdown()
    _provider = TracerProvider(resource=Resource.create(attributes))
    _provider.add_span_processor(processor)
    from agent_sessions import __version__
    _tracer = _provider.get_tracer("agent_sessions", __version__)
    logger.info("tracing on: %s", type(exporter).__name__)
    return True


def _exporter(environ: Mapping[str, str]) -> Any:
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()]
    name = names[0] if names else "otlp"
    if len(names) > 1:
        logger.warning("OTEL_TRACES_EXPORTER=%s: only one exporter is used, %s", ",".join(names), name)
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter
        return ConsoleSpanExporter()
    if name != "otlp":
        logger.warning("OTEL_TRACES_EXPORTER=%s is not supported (otlp, console, none): tracing stays off", name)
        return None
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol and protocol != "http/protobuf":
        logger.warning("OTEL_EXPORTER_OTLP_PROTOCOL=%s: only http/protobuf is shipped; exporting with it", protocol)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter()


def shutdown() -> None:
    """Flush and turn tracing off (a later `configure` may turn it on again)."""
    global _tracer, _provider
    provider, _tracer, _provider = _provider, None, None
    if provider is not None:
        provider.shutdown()


def span(name: str, attributes: Attributes | None = None) -> Any:
    """A context manager: an internal span, current while it is open, yielding it (or `NO_SPAN`).
    An exception leaving it is recorded and marks the span as an error."""
    if _tracer is None:
        return NO_SPAN
    return _tracer.start_as_current_span(name, attributes=attributes)


def object_span(name: str, body: Mapping[str, Any]) -> Any:
    """`span` named for a Kubernetes object (`body`): its namespace and name as attributes."""
    if _tracer is None:
        return NO_SPAN
    meta = body.get("metadata") or {}
    return span(name, session_attributes(meta.get("namespace"), meta.get("name")))


def client_span(name: str, attributes: Attributes | None = None) -> Any:
    """`span` for an outgoing call; `inject` its context into the call's headers inside it."""
    if _tracer is None:
        return NO_SPAN
    from opentelemetry.trace import SpanKind
    return _tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes)


def inject(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """`headers` with the current trace context added (`traceparent`, per `OTEL_PROPAGATORS`)."""
    if _tracer is not None:
        from opentelemetry import propagate
        propagate.inject(headers)
    return headers


def server_span(name: str, headers: Mapping[str, str], attributes: Attributes | None = None) -> Any:
    """A server span for an incoming request, continuing the trace its `headers` carry."""
    if _tracer is None:
        return NO_SPAN
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind
    return _tracer.start_as_current_span(name, context=propagate.extract(headers), kind=SpanKind.SERVER,
                                         attributes=attributes)


def session_attributes(namespace: str | None, name: str | None) -> dict[str, AttributeValue]:
    return {key: value for key, value in ((SESSION_NAMESPACE, namespace), (SESSION_NAME, name)) if value}


def usage_attributes(usage: Mapping[str, Any] | None) -> dict[str, AttributeValue]:
    """Token counts of a turn's `usage` (numbers only)."""
    attributes: dict[str, AttributeValue] = {}
    for key, value in (usage or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attributes[USAGE_ATTRIBUTES.get(key, f"agent_sessions.turn.usage.{key}")] = value
    return attributes


def record_turn(current: Any, result: Mapping[str, Any] | None) -> None:
    """A turn's end on its span: `done` → stop reason and token counts; `error` → its code, and the
    span marked as an error."""
    if result is None or current is NO_SPAN:
        return
    if result.get("event") == EVENT_DONE:
        current.set_attribute(TURN_STOP_REASON, str(result.get("stopReason")))
        current.set_attributes(usage_attributes(result.get("usage")))
    else:
        from opentelemetry.trace import Status, StatusCode
        current.set_attribute(TURN_ERROR, str(result.get("code")))
        current.set_status(Status(StatusCode.ERROR, str(result.get("code"))))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_spans(untraced: frozenset[str] = frozenset(),
                  attributes: Callable[[web.Request], Attributes] | None = None) -> Any:
    """An aiohttp middleware: a server span per request (`METHOD route`), continuing the caller's
    trace, but for the paths in `untraced` (probes, metrics). Put it first: it sees every answer."""

    @web.middleware
    async def trace_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _tracer is None or request.path in untraced:
            return await handler(request)
        info = request.match_info
        route = info.route.resource.canonical if info.route.resource is not None else request.path
        base = {"http.request.method": request.method, "http.route": route,
                **session_attributes(info.get("namespace"), info.get("name")),
                **(attributes(request) if attributes is not None else {})}
        with server_span(f"{request.method} {route}", request.headers, base) as current:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                _answered(current, exc.status)
                raise
            _answered(current, response.status)
            return response

    return trace_request


def _answered(current: Any, status: int) -> None:
    current.set_attribute("http.response.status_code", status)
    if status >= 500:
        from opentelemetry.trace import Status, StatusCode
        current.set_status(Status(StatusCode.ERROR))
