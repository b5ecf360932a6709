"""Which platforms the http provider may talk to, and which runtime endpoints it may pass on
(`providers/http/allowlist.py`). Tables of URLs, tricky ones first; no network."""

from __future__ import annotations

import pytest

from agent_sessions.api import constants as c
from agent_sessions.cli.main import _http_allowlist, build_parser
from agent_sessions.lifecycle import BackingState
from agent_sessions.providers import InvalidConfiguration, ProviderUnavailable, SessionRef, ValidationContext
from agent_sessions.providers.http import HTTPProvider, observe_session
from agent_sessions.providers.http.allowlist import PlatformAllowlist, parse_url
from agent_sessions.providers.http.observe import REASON_ENDPOINT_REFUSED

BASE = "https://platform.example.com/v1"
ALLOWLIST = PlatformAllowlist([BASE, "http://127.0.0.1:8089"], ["https://runtimes.example.com:*/s"])


@pytest.mark.parametrize(
    "url",
    [
        "https://platform.example.com/v1",
        "https://platform.example.com/v1/",
        "https://platform.example.com/v1/team-a",
        "https://platform.example.com:443/v1",
        "HTTPS://Platform.EXAMPLE.com/v1/team-a",
        "http://127.0.0.1:8089",
        "http://127.0.0.1:8089/any/prefix",
    ],
)
def test_a_url_under_an_allowed_base_is_allowed(url):
    assert ALLOWLIST.url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        pytest.param("https://platform.example.com.evil.io/v1", "is not an allowed http platform", id="suffix-host"),
        pytest.param("https://platform.example.com@evil.io/v1", "carries userinfo", id="userinfo-host"),
        pytest.param("https://user:pw@platform.example.com/v1", "carries userinfo", id="userinfo-on-allowed-host"),
        pytest.param("https://evil.io/platform.example.com/v1", "is not an allowed http platform", id="host-in-path"),
        pytest.param("https://platform.example.com:8443/v1", "is not an allowed http platform", id="other-port"),
        pytest.param("http://platform.example.com/v1", "is not an allowed http platform", id="other-scheme"),
        pytest.param("http://127.0.0.1:8090", "is not an allowed http platform", id="other-local-port"),
        pytest.param("http://localhost:8089", "is not an allowed http platform", id="other-name-same-place"),
        pytest.param("https://platform.example.com/v10", "is not an allowed http platform", id="prefix-not-at-slash"),
        pytest.param("https://platform.example.com/V1", "is not an allowed http platform", id="path-case"),
        pytest.param("https://platform.example.com", "is not an allowed http platform", id="above-the-prefix"),
        pytest.param("https://platform.example.com/v1/../admin", "'..' path segment", id="dot-dot"),
        pytest.param("https://platform.example.com/v1/%2e%2E/admin", "'..' path segment", id="encoded-dot-dot"),
        pytest.param("https://platform.example.com/v1/./x", "'..' path segment", id="dot"),
        pytest.param("https://platform.example.com/v1\\..\\admin", "backslash", id="backslash"),
        pytest.param("https://platform.example.com/v1 ", "whitespace", id="trailing-space"),
        pytest.param("https://platform.example.com/v1\n", "control characters", id="newline"),
        pytest.param("https://platform.example.com:99999/v1", "cannot be parsed", id="bad-port"),
        pytest.param("ftp://platform.example.com/v1", "is not an http or https URL", id="ftp"),
        pytest.param("https:///v1", "has no host", id="no-host"),
        pytest.param(42, "is not a URL", id="not-a-string"),
    ],
)
def test_a_url_not_under_an_allowed_base_is_refused_with_the_reason(url, why):
    problem = ALLOWLIST.url_problem(url)
    assert problem is not None and problem.startswith(f"spec.http.url: {url!r} ") and why in problem, problem


def test_with_no_platform_allowed_every_url_is_refused_and_the_message_says_how_to_allow_one():
    problem = PlatformAllowlist().url_problem("https://attacker.example/collect")
    assert problem == (
        "spec.http.url: 'https://attacker.example/collect' is not an allowed http platform (this operator allows"
        " none): sessions and their Secrets are sent only to platforms the platform team allows, with"
        " `agent-sessions run --http-platform URL` (chart value httpProvider.platforms) or a SessionTemplate's"
        " spec.policy.httpPlatforms"
    )


def test_the_refusal_names_the_allowed_platforms():
    problem = ALLOWLIST.url_problem("https://evil.io")
    assert "(this operator allows https://platform.example.com/v1, http://127.0.0.1:8089)" in problem


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("platform.example.com", "is not an http or https URL"),
        ("https://user@platform.example.com", "carries userinfo"),
        ("https://platform.example.com/v1?tenant=a", "no query or fragment"),
        ("https://platform.example.com/a/../b", "'..' path segment"),
        ("https://platform.example.com:*", "cannot be parsed"),
    ],
)
def test_a_bad_allowlist_entry_is_refused_naming_the_flag(entry, why):
    with pytest.raises(ValueError, match=r"^--http-platform ") as raised:
        PlatformAllowlist([entry])
    assert why in str(raised.value)


def test_url_parts_are_normalised():
    assert parse_url("HTTPS://Platform.Example.COM/v1/") == parse_url("https://platform.example.com:443/v1")


# --- endpoints a platform reports (SSRF) ------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://platform.example.com/runtimes/abc",  # the platform's own origin, any path
        "https://platform.example.com:443/v1/sessions/abc/runtime",
        "http://127.0.0.1:8089/other",  # under another allowed platform
        "https://runtimes.example.com:9443/s/abc",  # under an endpoint base, any port
        "https://runtimes.example.com/s",
    ],
)
def test_an_endpoint_on_the_platform_origin_or_an_allowed_base_is_used(endpoint):
    assert ALLOWLIST.endpoint_problem(endpoint, BASE) is None


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:18996/admin/secrets#",
        "http://169.254.169.254/latest/meta-data/",
        "https://platform.example.com:8443/x",
        "http://platform.example.com/x",
        "https://platform.example.com.evil.io/x",
        "https://platform.example.com@evil.io/x",
        "https://runtimes.example.com/other",
        "https://runtimes.example.com/s/../../admin",
        "not a url",
        {"url": "https://platform.example.com"},
    ],
)
def test_an_endpoint_elsewhere_is_refused(endpoint):
    problem = ALLOWLIST.endpoint_problem(endpoint, BASE)
    assert problem is not None and problem.startswith(f"endpoint {endpoint!r} reported by the platform is not on an"
                                                      " allowed origin"), problem


def test_a_refused_endpoint_is_dropped_and_the_session_says_why():
    reported = {"id": "u", "state": "Running", "ready": True, "endpoint": "http://127.0.0.1:18996/admin/secrets#"}
    obs = observe_session(reported, endpoint_problem=lambda e: ALLOWLIST.endpoint_problem(e, BASE))
    assert obs.state == BackingState.RUNNING and obs.endpoint is None and not obs.ready
    assert obs.reason == REASON_ENDPOINT_REFUSED
    assert obs.message.startswith("endpoint 'http://127.0.0.1:18996/admin/secrets#' reported by the platform is not"
                                  " on an allowed origin")
    assert obs.health is not None and obs.health.state == c.HEALTH_UNHEALTHY and obs.health.message == obs.message


def test_an_allowed_endpoint_is_kept_as_before():
    reported = {"id": "u", "state": "Running", "ready": True, "endpoint": "https://platform.example.com/rt/u/"}
    obs = observe_session(reported, endpoint_problem=lambda e: ALLOWLIST.endpoint_problem(e, BASE))
    assert obs.endpoint == "https://platform.example.com/rt/u" and obs.ready
    assert obs.health is not None and obs.health.state == c.HEALTH_HEALTHY


# --- the provider: validate, and every call guarded -----------------------------------------


class NoSecrets:
    """A CoreV1Api whose every read fails the test: a refused platform must not cost a Secret read."""

    api_client = None

    async def read_namespaced_secret(self, name, namespace, **_):
        raise AssertionError(f"Secret {namespace}/{name} was read for a refused platform")

    async def read_namespaced_config_map(self, name, namespace, **_):
        raise AssertionError(f"ConfigMap {namespace}/{name} was read for a refused platform")


def refused_ref(url: str = "http://127.0.0.1:9/collect") -> SessionRef:
    config = {"provider": "http", "http": {"url": url, "credentialsSecretRef": {"name": "other-team"}},
              "agent": {"env": [{"name": "STOLEN", "valueFrom": {"secretKeyRef": {"name": "other-team", "key": "k"}}}]}}
    return SessionRef(namespace="team-a", name="x", uid="0b1c2d3e-0000-4000-8000-000000000001", config=config)


def test_validate_refuses_a_platform_the_operator_does_not_allow():
    problems = HTTPProvider(platforms=[BASE]).validate(refused_ref().config, refused_ref().context)
    assert problems == [PlatformAllowlist([BASE]).url_problem("http://127.0.0.1:9/collect")]


def test_validate_reports_a_malformed_url_once():
    problems = HTTPProvider(platforms=[BASE]).validate({"provider": "http", "http": {"url": "ftp://x"}},
                                                       ValidationContext())
    assert len(problems) == 1 and "is not an absolute http(s) URL" in problems[0]


@pytest.mark.parametrize(
    ("call", "error"),
    [("ensure", InvalidConfiguration), ("observe", ProviderUnavailable), ("stop", ProviderUnavailable),
     ("delete", ProviderUnavailable), ("logs", ProviderUnavailable)],
)
async def test_every_call_on_a_refused_platform_fails_before_any_secret_or_request(call, error):
    """`ensure` refuses the configuration for good; the others say the platform cannot be asked
    (the reconciler retries them, and deletion can be abandoned): a session edited to a refused
    URL after creation keeps its platform session, and nothing goes to the new URL."""
    provider = HTTPProvider(platforms=[BASE], core_api=NoSecrets())
    try:
        with pytest.raises(error, match=r"^spec\.http\.url: 'http://127\.0\.0\.1:9/collect' is not an"):
            await getattr(provider, call)(refused_ref())
    finally:
        await provider.close()


def test_the_run_command_takes_platforms_and_endpoints_and_refuses_a_bad_one():
    args = build_parser().parse_args(["run", "--http-platform", BASE, "--http-platform", "http://127.0.0.1:8089",
                                      "--http-endpoint", "http://127.0.0.1:*"])
    assert _http_allowlist(args) == ((BASE, "http://127.0.0.1:8089"), ("http://127.0.0.1:*",))
    assert _http_allowlist(build_parser().parse_args(["run"])) == ((), ())
    with pytest.raises(SystemExit, match="^--http-platform .* carries userinfo"):
        _http_allowlist(build_parser().parse_args(["run", "--http-platform", "https://u@p.example"]))
