"""Tracing in the chart (issue 12): `tracing.enabled` sets the standard OTEL_* variables on the
operator and the gateway (and nothing when off), the result validates strictly, and what it sets
is what turns the processes' tracing on."""

from __future__ import annotations

from deploy.test_install import (  # noqa: F401 (fixtures)
    gateway_container,
    helm_template_fails,
    operator_container,
    validate_strictly,
)

from agent_sessions.wire import tracing

TIER = "embedded"  # renders the chart with helm
ON = ("tracing.enabled=true", "tracing.otlpEndpoint=http://otel-collector.observability:4318",
      "tracing.samplingRatio=0.25")


def otel_env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env") or () if e["name"].startswith("OTEL_")}


def test_tracing_is_off_by_default_and_sets_no_otel_variable(render):
    docs = render()
    assert otel_env(operator_container(docs)) == {} and otel_env(gateway_container(docs)) == {}


def test_tracing_enabled_sets_the_otlp_http_variables_on_operator_and_gateway(render):
    docs = render(*ON)
    validate_strictly(docs)
    expected = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4318",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.25",
    }
    operator, gateway = otel_env(operator_container(docs)), otel_env(gateway_container(docs))
    assert operator == {**expected, "OTEL_SERVICE_NAME": "agent-session-operator"}
    assert gateway == {**expected, "OTEL_SERVICE_NAME": "agent-session-operator-gateway"}
    assert tracing.requested(operator) and tracing.requested(gateway)
    assert [e["name"] for e in operator_container(docs)["env"]][0] == "POD_ID"  # kept beside them


def test_without_an_endpoint_the_sdk_default_is_used(render):
    env = otel_env(operator_container(render("tracing.enabled=true")))
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env and tracing.requested(env)


def test_tracing_values_are_checked_by_the_schema(helm):
    assert "otlpEndpoint" in helm_template_fails(helm, "tracing.otlpEndpoint=otel:4318")
    assert "samplingRatio" in helm_template_fails(helm, "tracing.samplingRatio=1.5")
    assert "samplingRatio" in helm_template_fails(helm, "tracing.samplingRatio=-1")
