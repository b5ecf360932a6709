"""The real operator (kopf, in its own thread) running `provider: http` sessions on the reference
server while it misbehaves: outages, rate limits, rotated credentials, an operator restart in the
middle of a start. Every wait has a deadline; the figures measured are printed (`pytest -s`)."""

from __future__ import annotations

import time

from agent_sessions.api import constants as c

from .conftest import (
    condition,
    http_config,
    http_session,
    phase_is,
    ready,
    wait_session,
    wait_until,
)


def provider_unavailable(obj: dict) -> bool:
    cond = condition(obj, c.COND_PROVIDER_AVAILABLE)
    return cond is not None and cond["status"] == "False"


def test_platform_500s_for_30s_then_recovery_reaches_running_with_one_session(
        api, platform, token_secret, start_operator):
    start_operator()
    fault = platform.add_fault(status=500, seconds=30, paths=r"^/v1/")
    outage_ends = fault.created + 30
    api.create(c.SESSION_PLURAL, http_session("outage", platform.url))

    down = wait_session(api, "outage", provider_unavailable, timeout=35)
    reported = time.monotonic() - fault.created
    message = condition(down, c.COND_PROVIDER_AVAILABLE)["message"]
    assert f"platform {platform.url} answered 500 provider_unavailable" in message
    assert "times to PUT /v1/sessions/" in message
    assert down["status"]["phase"] == c.PHASE_PENDING

    up = wait_session(api, "outage", ready, timeout=60)
    recovered = time.monotonic()
    assert condition(up, c.COND_PROVIDER_AVAILABLE)["status"] == "True"
    assert platform.stats()["creates"] == 1
    faulted = [r for r in platform.requests() if r.fault == fault.id]
    assert faulted and all(r.status == 500 for r in faulted)
    print(f"\noutage: ProviderAvailable=False {reported:.1f}s into it; {len(faulted)} requests answered 500; "
          f"Running {recovered - outage_ends:.1f}s after it ended")


def test_retry_after_on_429_is_honoured_before_the_put_is_retried(api, platform, token_secret, start_operator):
    start_operator()
    fault = platform.add_fault(status=429, count=1, retryAfter=2, methods=["PUT"], paths=r"^/v1/sessions/")
    api.create(c.SESSION_PLURAL, http_session("limited", platform.url))
    creating = wait_session(api, "limited", phase_is(c.PHASE_CREATING))  # the retried PUT went through
    assert not provider_unavailable(creating)  # absorbed within the call: never reported
    puts = [r for r in platform.requests() if r.method == "PUT"]
    assert [r.status for r in puts[:2]] == [429, 201]
    assert puts[0].fault == fault.id
    gap = puts[1].monotonic - puts[0].monotonic
    assert 2.0 <= gap < 3.5, gap
    assert platform.stats()["creates"] == 1
    print(f"\nRetry-After: 2 → the PUT was retried after {gap:.2f}s")


def test_credentials_rotated_in_the_secret_are_used_on_the_next_call(api, platform, token_secret, start_operator):
    start_operator()
    api.create(c.SESSION_PLURAL, http_session("rotating", platform.url))
    wait_session(api, "rotating", ready)
    platform.set_tokens("token-one-7f3a9c", "token-two-51e0")  # the platform accepts both while rotating

    token_secret("token-two-51e0")
    rotated = time.monotonic()
    first_new = wait_until(lambda: next((r for r in platform.requests() if r.token == "token-two-51e0"), None),
                           timeout=10)
    requests = platform.requests()
    after = requests[requests.index(first_new):]
    assert {r.token for r in after} == {"token-two-51e0"}  # never the old one again

    platform.set_tokens("token-two-51e0")  # the old token is retired
    seen = len(platform.requests())
    wait_until(lambda: len(platform.requests()) >= seen + 3, timeout=10)
    later = platform.requests()[seen:]
    assert all(r.status in (200, 201) and r.token == "token-two-51e0" for r in later), later
    assert ready(api.get(c.SESSION_PLURAL, "default", "rotating"))
    print(f"\nrotation: the new token was first used {first_new.monotonic - rotated:.2f}s after the Secret changed")


def test_operator_restarted_while_creating_reattaches_instead_of_creating_again(
        api, platform, token_secret, start_operator):
    platform.hold(True)  # the platform keeps new sessions Pending
    first = start_operator()
    api.create(c.SESSION_PLURAL, http_session("restarted", platform.url, http=http_config(platform.url)))
    creating = wait_session(api, "restarted", phase_is(c.PHASE_CREATING))
    assert creating["status"]["provider"]["id"] == creating["metadata"]["uid"]
    assert platform.stats()["creates"] == 1
    first.stop()

    requests_before = len(platform.requests())
    start_operator()
    wait_until(lambda: any(r.method == "GET" and r.path.startswith("/v1/sessions/")
                           for r in platform.requests()[requests_before:]), timeout=15)
    platform.hold(False)
    wait_session(api, "restarted", ready)
    assert platform.stats()["creates"] == 1
    assert platform.stats()["sessions"] == 1


def test_a_crashed_agent_restarts_on_the_same_platform_session_which_is_deleted_with_the_session(
        api, platform, token_secret, start_operator):
    start_operator()
    api.create(c.SESSION_PLURAL, http_session(
        "crashy", platform.url, prompt="please crash-now",
        agent={"env": [{"name": "DEMO_AGENT_CRASH_ON", "value": "crash-now"}]},
        lifecycle={"restartPolicy": "OnFailure", "backoffLimit": 2},
    ))
    obj = wait_session(api, "crashy", lambda o: ready(o) and (o["status"].get("restartCount") or 0) == 1)
    assert obj["status"]["prompt"]["state"] == "Delivered"  # delivered once: the restart does not crash again
    provider = obj["status"]["provider"]
    assert provider["type"] == "http" and provider["id"] == obj["metadata"]["uid"]
    assert provider["endpoint"].startswith("http://127.0.0.1:")
    assert obj["status"]["capabilities"]["resume"] is True  # from the platform's /v1/capabilities
    stats = platform.stats()
    assert (stats["creates"], stats["stops"], stats["starts"]) == (1, 1, 1)  # restarted, not re-created

    api.delete(c.SESSION_PLURAL, "default", "crashy")
    wait_until(lambda: api.get(c.SESSION_PLURAL, "default", "crashy") is None)
    assert platform.stats()["sessions"] == 0
    assert [r.status for r in platform.requests() if r.method == "DELETE"][-1] == 204
