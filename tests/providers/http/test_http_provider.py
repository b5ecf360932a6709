"""The http provider's pure parts: validation, the PUT body, reading a platform session, error
mapping, `Retry-After`, the backoff schedule. Tables of cases; no network."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from agent_sessions.api import constants as c
from agent_sessions.lifecycle import BackingState, HealthProbe, Observation
from agent_sessions.providers import (
    REDACTED,
    Capabilities,
    InvalidConfiguration,
    ProviderUnavailable,
    SessionAlreadyExists,
    SessionNotFound,
    SessionRef,
    ValidationContext,
)
from agent_sessions.providers.http import (
    HTTPProvider,
    PlatformSettings,
    RetryPolicy,
    SecretKey,
    backoff_delay,
    http_problems,
    is_retryable,
    observe_session,
    parse_capabilities,
    parse_retry_after,
    session_body,
)
from agent_sessions.providers.http.api_errors import answer_error, error_body
from agent_sessions.providers.http.constants import CONTRACT_CAPABILITIES

URL = "https://agents.example.com"
UID = "6f1c2d3e-0000-4000-8000-000000000001"
NOW = datetime(2025, 3, 1, 9, 0, 0, tzinfo=timezone.utc)


def config(**http) -> dict:
    return {"provider": "http", "http": {"url": URL, **http}, "agent": {"protocol": "acp"}}


# --- validate() ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        pytest.param(config(), [], id="url-only-is-enough"),
        pytest.param(config(credentialsSecretRef={"name": "platform", "key": "token"}), [], id="with-credentials"),
        pytest.param({"provider": "http", "http": {}}, ["spec.http.url: required by the http provider"], id="no-url"),
        pytest.param({"provider": "http"}, ["spec.http.url: required by the http provider"], id="no-http-block"),
        pytest.param(config(url="ftp://x"), ["spec.http.url: 'ftp://x' is not an absolute http(s) URL"],
                     id="not-http"),
        pytest.param(config(url="https://x/?a=1"), ["spec.http.url: 'https://x/?a=1' is not an absolute"],
                     id="query-not-allowed"),
        pytest.param(config(credentialsSecretRef={"key": "token"}),
                     ["spec.http.credentialsSecretRef.name: required"], id="secret-ref-without-name"),
        pytest.param({**config(), "agent": {"env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s"}}},
                                                    {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "m"}}}],
                                            "envFrom": [{"secretRef": {"name": "s"}}]}},
                     [], id="secret-and-config-map-references"),
        pytest.param({**config(), "agent": {"env": [{"name": "P", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]}},
                     ["spec.agent.env[P].valueFrom.fieldRef: not supported by the http provider"], id="field-ref"),
        pytest.param({**config(), "agent": {"protocol": "grpc"}}, ["spec.agent.protocol: unknown protocol 'grpc'"],
                     id="unknown-protocol"),
    ],
)
def test_validate_reports_what_the_http_provider_cannot_run(cfg, expected):
    problems = HTTPProvider(platforms=[URL]).validate(cfg, ValidationContext())
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected):
        assert problem.startswith(start), problem


def test_validate_does_not_require_an_image_or_a_command():
    assert http_problems({"provider": "http", "http": {"url": URL}}) == []


def test_settings_read_defaults_and_the_secret_key():
    settings = PlatformSettings.from_config(config(url=f"{URL}/", credentialsSecretRef={"name": "p"}))
    assert settings == PlatformSettings(url=URL, credentials=SecretKey("p", "token"), timeout=30.0, max_retries=5)
    tuned = PlatformSettings.from_config(config(timeoutSeconds=3, maxRetries=0))
    assert (tuned.timeout, tuned.max_retries, tuned.credentials) == (3.0, 0, None)


# --- the PUT body ----------------------------------------------------------------------------


def test_session_body_carries_identity_config_blocks_and_labels_but_not_the_http_block():
    ref = SessionRef(
        namespace="team-a", name="demo", uid=UID, generation=3, config_hash="abc",
        config={**config(credentialsSecretRef={"name": "p"}), "workspace": {"size": "1Gi"},
                "lifecycle": {"restartPolicy": "Never", "idleTimeout": None},
                "agent": {"command": ["agent"], "env": [{"name": "A", "value": "1"}]}},
    )
    body = session_body(ref)
    assert body == {
        "session": {"namespace": "team-a", "name": "demo", "uid": UID, "generation": 3},
        "configHash": "abc",
        "agent": {"command": ["agent"], "env": [{"name": "A", "value": "1"}]},
        "workspace": {"size": "1Gi"},
        "lifecycle": {"restartPolicy": "Never"},
        "meta": {},
        "labels": {c.LABEL_SESSION: "demo", c.LABEL_SESSION_UID: UID, "agentsession.dev/namespace": "team-a",
                   c.LABEL_MANAGED_BY: c.MANAGED_BY},
    }
    assert session_body(ref) == body  # deterministic: repeated PUTs are identical


# --- observe: platform session → Observation ---------------------------------------------------


@pytest.mark.parametrize(
    ("session", "expected"),
    [
        pytest.param(None, Observation(BackingState.ABSENT), id="404-is-absent"),
        pytest.param({"id": UID, "state": "Pending", "ready": False, "endpoint": "http://rt:8080/"},
                     Observation(BackingState.PENDING, id=UID, endpoint="http://rt:8080"), id="pending-keeps-endpoint"),
        pytest.param({"id": UID, "state": "Running", "ready": True, "endpoint": "http://rt:8080"},
                     Observation(BackingState.RUNNING, ready=True, id=UID, endpoint="http://rt:8080",
                                 health=HealthProbe(c.HEALTH_HEALTHY)),
                     id="running-ready-is-healthy"),
        pytest.param({"id": UID, "state": "Running", "ready": False, "endpoint": "http://rt", "restarts": 2,
                      "reason": "CrashLoop", "message": "restarting"},
                     Observation(BackingState.RUNNING, id=UID, endpoint="http://rt", restarts=2, reason="CrashLoop",
                                 message="restarting"), id="running-not-ready-with-restarts"),
        pytest.param({"id": UID, "state": "Stopped", "ready": True, "endpoint": "http://rt"},
                     Observation(BackingState.STOPPED, id=UID), id="stopped-has-no-endpoint-nor-readiness"),
        pytest.param({"id": UID, "state": "Succeeded", "exitCode": 0},
                     Observation(BackingState.SUCCEEDED, id=UID, exit_code=0), id="succeeded"),
        pytest.param({"id": UID, "state": "Failed", "exitCode": 3, "reason": "Error", "message": "boom"},
                     Observation(BackingState.FAILED, id=UID, exit_code=3, reason="Error", message="boom"),
                     id="failed"),
        pytest.param({"id": UID, "state": "Pending", "permanent": True, "reason": "ImagePullBackOff"},
                     Observation(BackingState.PENDING, id=UID, reason="ImagePullBackOff", permanent=True),
                     id="permanent-pending"),
        pytest.param({"id": UID, "state": "Running", "ready": True, "permanent": True},
                     Observation(BackingState.RUNNING, ready=True, id=UID, health=HealthProbe(c.HEALTH_HEALTHY)),
                     id="permanent-ignored-when-running"),
        pytest.param({"state": "Hibernating"},
                     Observation(BackingState.PENDING, id=UID, reason="UnknownState",
                                 message="the platform reported an unknown state 'Hibernating'"),
                     id="unknown-state-is-pending"),
        pytest.param({"id": UID, "state": "Failed", "exitCode": True, "restarts": -1},
                     Observation(BackingState.FAILED, id=UID), id="ill-typed-numbers-ignored"),
    ],
)
def test_observe_session_maps_platform_states_to_the_lifecycle(session, expected):
    assert observe_session(session, session_id=UID) == expected


def test_observe_session_redacts_platform_messages():
    obs = observe_session({"state": "Failed", "message": "auth failed: Authorization: Bearer abc.def-123456"})
    assert REDACTED in obs.message and "abc.def-123456" not in obs.message


# --- error answers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        pytest.param(400, {"code": "invalid_configuration", "message": "no such model"}, InvalidConfiguration,
                     id="400"),
        pytest.param(422, None, InvalidConfiguration, id="422-without-body"),
        pytest.param(404, {"code": "session_not_found", "message": "gone"}, SessionNotFound, id="404"),
        pytest.param(409, {"code": "session_already_exists", "message": "taken"}, SessionAlreadyExists, id="409"),
        pytest.param(401, {"code": "unauthorized", "message": "bad token"}, ProviderUnavailable, id="401"),
        pytest.param(403, b"forbidden", ProviderUnavailable, id="403"),
        pytest.param(429, {"code": "rate_limited", "message": "slow down"}, ProviderUnavailable, id="429"),
        pytest.param(503, b"<html>down</html>", ProviderUnavailable, id="503-html"),
        pytest.param(501, None, ProviderUnavailable, id="501"),
        pytest.param(418, None, ProviderUnavailable, id="unexpected-status"),
        pytest.param(500, {"code": "invalid_configuration", "message": "bad image"}, InvalidConfiguration,
                     id="code-wins-over-status"),
        pytest.param(400, {"code": "provider_unavailable", "message": "maintenance"}, ProviderUnavailable,
                     id="code-wins-over-status-transient"),
    ],
)
def test_error_answers_map_to_typed_provider_errors(status, body, kind):
    error = answer_error(status, body, action="PUT https://p/v1/sessions/x", retry_after=2.0)
    assert type(error) is kind
    if kind is ProviderUnavailable:
        assert error.retry_after == 2.0
        assert f"answered {status}" in error.message


def test_invalid_configuration_carries_the_platforms_message():
    error = answer_error(422, {"code": "invalid_configuration", "message": "model 'x' unknown"}, action="PUT p")
    assert isinstance(error, InvalidConfiguration)
    assert error.problems == ["the platform rejected the configuration: model 'x' unknown"]


def test_credential_errors_say_where_the_token_comes_from():
    error = answer_error(401, {"code": "unauthorized", "message": "invalid"}, action="GET p")
    assert "spec.http.credentialsSecretRef" in error.message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b'{"code": "rate_limited", "message": "slow"}', ("rate_limited", "slow"), id="contract"),
        pytest.param(b"plain failure\n", (None, "plain failure"), id="text"),
        pytest.param(b"", (None, ""), id="empty"),
        pytest.param(b"x" * 2000, (None, "x" * 499 + "…"), id="cut"),
        pytest.param(b'{"message": "token=hunter2hunter2"}', (None, f"token={REDACTED}"), id="redacted"),
    ],
)
def test_error_body_reads_code_and_message(body, expected):
    assert error_body(body) == expected


# --- Retry-After and backoff ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("2", 2.0, id="seconds"),
        pytest.param(" 120 ", 120.0, id="seconds-with-spaces"),
        pytest.param("1.5", 1.5, id="fractional-seconds"),
        pytest.param("-3", 0.0, id="negative-is-now"),
        pytest.param(format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0, id="http-date"),
        pytest.param("Sat, 01 Mar 2025 08:59:00 GMT", 0.0, id="http-date-in-the-past"),
        pytest.param("Saturday, 01-Mar-25 09:00:10 GMT", 10.0, id="rfc850-date"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("nan", None, id="nan"),
    ],
)
def test_retry_after_parses_seconds_and_http_dates(header, expected):
    assert parse_retry_after(header, NOW) == expected


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_transient_statuses_are_retried(status):
    assert is_retryable(status)


@pytest.mark.parametrize("status", [200, 201, 204, 400, 401, 403, 404, 409, 422, 501])
def test_answers_that_cannot_change_are_not_retried(status):
    assert not is_retryable(status)


@pytest.mark.parametrize(("attempt", "step"), [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (20, 8.0)])
def test_backoff_is_exponential_with_jitter_in_the_upper_half_of_each_step(attempt, step):
    assert backoff_delay(attempt, rng=lambda: 0.0) == step / 2
    assert backoff_delay(attempt, rng=lambda: 0.999999) == pytest.approx(step, rel=1e-5)
    import random

    rng = random.Random(attempt)
    for _ in range(200):
        assert step / 2 <= backoff_delay(attempt, rng=rng.random) <= step


def test_retry_after_replaces_the_backoff_and_is_capped():
    policy = RetryPolicy(retry_after_cap=60.0)
    assert policy.delay(0, 2.0) == 2.0
    assert policy.delay(3, 0.0) == 0.0
    assert policy.delay(0, 3600.0) == 60.0
    assert 0.25 <= policy.delay(0, None) <= 0.5


def test_default_schedule_stays_within_the_budget():
    policy = RetryPolicy()
    worst = sum(policy.delay(n, None, rng=lambda: 1.0) for n in range(policy.max_retries))
    assert worst <= policy.budget


# --- capabilities -----------------------------------------------------------------------------


def test_capabilities_default_to_what_the_contract_guarantees():
    assert HTTPProvider().capabilities() == CONTRACT_CAPABILITIES
    assert HTTPProvider().capabilities(config()) == CONTRACT_CAPABILITIES
    assert CONTRACT_CAPABILITIES == Capabilities(streaming=True, history=True, logs=True, cancel=True)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"streaming": True, "history": True, "logs": True, "resume": True, "cancel": True,
                      "resourceLimits": True},
                     Capabilities(streaming=True, history=True, logs=True, resume=True, cancel=True,
                                  resource_limits=True), id="everything"),
        pytest.param({"resume": "yes", "resourceLimits": 1}, CONTRACT_CAPABILITIES,
                     id="non-booleans-fall-back-to-the-contract"),
        pytest.param({"logs": False, "resume": True},
                     Capabilities(streaming=True, history=True, logs=False, resume=True, cancel=True),
                     id="what-the-platform-says-counts"),
        pytest.param([], None, id="not-an-object"),
    ],
)
def test_capabilities_answer_is_parsed(body, expected):
    assert parse_capabilities(body) == expected
