"""Platforms and endpoint bases a session's templates add to the operator's allowlist
(`spec.policy.httpPlatforms`/`httpEndpoints`, DESIGN §11): for that session only, each named with
its template in messages; an unusable entry allows nothing and says so."""

from __future__ import annotations

import pytest

from agent_sessions.config import Raise, TemplateRaises
from agent_sessions.providers import InvalidConfiguration, ProviderUnavailable, SessionRef, ValidationContext
from agent_sessions.providers.http import HTTPProvider, observe_session
from agent_sessions.providers.http.allowlist import PlatformAllowlist

OPERATOR = "https://platform.example.com/v1"
TEAM = "https://team-platform.example.com/agents"
ORIGIN = "SessionTemplate team-a/remote-agents"


def raises(platforms: tuple[str, ...] = (TEAM,), endpoints: tuple[str, ...] = ()) -> TemplateRaises:
    return TemplateRaises(http_platforms=tuple(Raise(url, ORIGIN) for url in platforms),
                          http_endpoints=tuple(Raise(url, ORIGIN) for url in endpoints))


def test_a_template_adds_a_platform_for_its_sessions_only():
    operator = PlatformAllowlist([OPERATOR])
    widened = operator.raised_by(raises())
    assert widened.url_problem(f"{TEAM}/x") is None and widened.url_problem(OPERATOR) is None
    assert operator.url_problem(f"{TEAM}/x") is not None  # the operator's own list is unchanged
    assert operator.raised_by(TemplateRaises()) is operator


@pytest.mark.parametrize("url", ["https://team-platform.example.com/agentsX", "https://team-platform.example.com",
                                 "https://team-platform.example.com.evil.io/agents",
                                 "http://team-platform.example.com/agents"])
def test_a_raised_platform_is_matched_like_the_operators(url):
    assert PlatformAllowlist().raised_by(raises()).url_problem(url) is not None


def test_the_refusal_names_what_the_operator_and_each_template_allow():
    problem = PlatformAllowlist([OPERATOR]).raised_by(raises()).url_problem("https://attacker.example/collect")
    assert problem == (
        "spec.http.url: 'https://attacker.example/collect' is not an allowed http platform (this operator allows"
        f" {OPERATOR}; {ORIGIN} allows {TEAM}): sessions and their Secrets are sent only to platforms the platform"
        " team allows, with `agent-sessions run --http-platform URL` (chart value httpProvider.platforms) or a"
        " SessionTemplate's spec.policy.httpPlatforms"
    )


def test_an_unusable_template_entry_allows_nothing_and_is_a_problem():
    widened = PlatformAllowlist().raised_by(raises(("https://team.example.com/a/../admin",)))
    assert widened.problems == (
        f"spec.policy.httpPlatforms of {ORIGIN}: 'https://team.example.com/a/../admin' has a '.' or '..' path"
        " segment: it allows nothing",)
    assert widened.url_problem("https://team.example.com/admin") is not None


def test_a_template_adds_an_endpoint_base():
    widened = PlatformAllowlist([OPERATOR]).raised_by(raises((), ("http://10.0.0.7:*",)))
    assert widened.endpoint_problem("http://10.0.0.7:31001/s", OPERATOR) is None
    assert PlatformAllowlist([OPERATOR]).endpoint_problem("http://10.0.0.7:31001/s", OPERATOR) is not None
    reported = {"id": "u", "state": "Running", "ready": True, "endpoint": "http://10.0.0.8:31001/"}
    observed = observe_session(reported, endpoint_problem=lambda e: widened.endpoint_problem(e, OPERATOR))
    assert observed.endpoint is None


def ref(url: str, granted: TemplateRaises = TemplateRaises()) -> SessionRef:
    return SessionRef(namespace="team-a", name="x", uid="0b1c2d3e-0000-4000-8000-000000000002",
                      config={"provider": "http", "http": {"url": url}}, raises=granted)


def test_validate_accepts_a_platform_the_sessions_template_adds():
    provider = HTTPProvider(platforms=[OPERATOR])
    assert provider.validate(ref(TEAM).config, ValidationContext("team-a", raises())) == []
    (problem,) = provider.validate(ref(TEAM).config, ValidationContext("team-a"))
    assert problem.startswith(f"spec.http.url: '{TEAM}' is not an allowed http platform (this operator allows")


@pytest.mark.parametrize(("call", "error"), [("ensure", InvalidConfiguration), ("observe", ProviderUnavailable)])
async def test_without_the_templates_raise_no_call_goes_to_its_platform(call, error):
    provider = HTTPProvider(platforms=[OPERATOR])
    try:
        with pytest.raises(error, match=r"is not an allowed http platform"):
            await getattr(provider, call)(ref(TEAM))
    finally:
        await provider.close()
