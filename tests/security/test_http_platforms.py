"""Issue 10, item 2: http platforms are the platform team's.

The attacks as they were reproduced, against the real operator (kopf in its thread, the default
provider wiring of `agent-sessions run`) on the strict embedded API — the real API server adds
nothing here: what matters is where the operator sends requests.

* **Secret exfiltration**: a session with `provider: http` whose `http.url` is a server of the
  author's choosing, `credentialsSecretRef` and `env[].valueFrom.secretKeyRef` naming another
  team's Secret. The operator allows only the reference platform: the session is refused
  (`ConfigValid=False`, the precise message), and the attacker's server receives no request at all
  — no bearer token, no `STOLEN` variable. With no platform configured (the default), even the
  reference platform is refused.
* **SSRF**: an allowed platform that reports a runtime `endpoint` on another origin
  (`http://127.0.0.1:<port>/admin/secrets#`). The endpoint is dropped: not in `status.provider`
  (where the gateway reads it, so the gateway cannot fetch it either), the session unhealthy and
  not ready with the reason, and the server behind it never receives a request from the operator
  (which otherwise reads a running session's `/info` there at once).
* **SSRF by redirect**: an endpoint on the platform's own origin that redirects elsewhere. The
  runtime client (the operator's and the gateway's) follows no redirect: the target never hears.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from support.embedded import api, kubeconfig  # noqa: F401 (fixtures)
from support.http_server import ThreadedServer
from support.operators import operators, start_operator  # noqa: F401 (fixtures)
from support.waits import condition, wait_session, wait_until

from agent_sessions.api import constants as c
from agent_sessions.dev.provider_server import ProviderServerThread, running_provider_server

NAMESPACE = "default"
TOKEN = "platform-token-5b1e"
STOLEN = "other-teams-secret-9c4d7e21"


class RecordingServer(ThreadedServer):
    """An HTTP server in its own thread that records every request it gets (method, path,
    headers, body). `sessions` makes it a minimal platform: it answers the contract's session
    calls with a running session whose `endpoint` is `endpoint`."""

    def __init__(self, *, endpoint: str | None = None, redirect_to: str | None = None) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.redirect_to = redirect_to
        """Where requests under `/rt` (a runtime endpoint on this server's own origin) are redirected."""
        self.requests: list[dict[str, Any]] = []

    async def answer(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append({"method": request.method, "path": request.path_qs, "headers": dict(request.headers),
                              "body": body.decode("utf-8", "replace")})
        if self.redirect_to is not None and request.path.startswith("/rt"):
            raise web.HTTPTemporaryRedirect(self.redirect_to)
        if self.endpoint is None:
            return web.json_response({"ok": True})
        if request.path == "/v1/capabilities":
            return web.json_response({"streaming": True, "history": True, "logs": True})
        uid = request.match_info["tail"].split("/")[2].split(":")[0] if request.path.startswith("/v1/sessions/") else ""
        if request.method == "DELETE":
            return web.json_response({"id": uid, "state": "Succeeded"})
        return web.json_response({"id": uid, "state": "Running", "ready": True, "endpoint": self.endpoint})


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[ProviderServerThread]:
    """The reference platform: the one the platform team allowed."""
    with running_provider_server(tokens=[TOKEN], workdir=tmp_path / "platform") as server:
        yield server


@pytest.fixture
def attacker() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


def secret(api: Any, name: str, key: str, value: str) -> None:
    api.create("secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NAMESPACE},
                           "type": "Opaque", "data": {key: base64.b64encode(value.encode()).decode()}})


def http_session(name: str, url: str, secret_name: str, key: str, **spec: Any) -> dict:
    http = {"url": url, "credentialsSecretRef": {"name": secret_name, "key": key}, "maxRetries": 0}
    return {"apiVersion": c.API_VERSION, "kind": c.SESSION_KIND, "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"provider": "http", "http": http, **spec}}


def exfiltrating_session(name: str, url: str) -> dict:
    env = [{"name": "STOLEN", "valueFrom": {"secretKeyRef": {"name": "other-team", "key": "key"}}}]
    return http_session(name, url, "other-team", "key", agent={"env": env})


def config_invalid(obj: dict | None) -> bool:
    return (condition(obj, c.COND_CONFIG_VALID) or {}).get("status") == "False"


def refusal(url: str, allowed: str) -> str:
    return (f"spec.http.url: {url!r} is not an allowed http platform ({allowed}): sessions and their Secrets are"
            " sent only to platforms the platform team allows, with `agent-sessions run --http-platform URL`"
            " (chart value httpProvider.platforms)")


def test_a_session_cannot_send_another_teams_secret_to_a_server_of_its_choosing(
        api, platform, attacker, start_operator):
    secret(api, "other-team", "key", STOLEN)
    secret(api, "platform", "token", TOKEN)
    start_operator(http_platforms=(platform.url,))

    api.create(c.SESSION_PLURAL, exfiltrating_session("exfil", attacker.url))
    refused = wait_session(api, "exfil", config_invalid)
    message = condition(refused, c.COND_CONFIG_VALID)["message"]
    assert refusal(attacker.url, f"this operator allows {platform.url}") in message
    assert (refused["status"].get("provider") or {}).get("id") is None

    # The operator is working meanwhile: a session on the allowed platform gets there …
    api.create(c.SESSION_PLURAL, http_session("allowed", platform.url, "platform", "token"))
    wait_session(api, "allowed", lambda o: ((o or {}).get("status", {}).get("provider") or {}).get("id"))
    # … and later passes over the refused one (its spec touched) still send nothing.
    api.patch(c.SESSION_PLURAL, NAMESPACE, "exfil", {"spec": {"title": "again"}})
    wait_session(api, "exfil", lambda o: config_invalid(o) and (o or {}).get("status", {}).get("observedGeneration")
                 == (o or {}).get("metadata", {}).get("generation"))
    assert attacker.requests == []
    assert STOLEN not in json.dumps(api.get(c.SESSION_PLURAL, NAMESPACE, "exfil"))


def test_with_no_platform_configured_every_http_session_is_refused(api, platform, start_operator):
    secret(api, "platform", "token", TOKEN)
    start_operator()  # the default: `agent-sessions run` without --http-platform

    api.create(c.SESSION_PLURAL, http_session("nowhere", platform.url, "platform", "token"))
    refused = wait_session(api, "nowhere", config_invalid)
    assert refusal(platform.url, "this operator allows none") in condition(refused, c.COND_CONFIG_VALID)["message"]
    assert platform.stats()["creates"] == 0


def test_an_endpoint_a_platform_reports_on_another_origin_is_never_used(api, attacker, start_operator):
    target = f"{attacker.url}/admin/secrets#"
    with RecordingServer(endpoint=target) as hostile:
        secret(api, "platform", "token", TOKEN)
        start_operator(http_platforms=(hostile.url,), info_refresh_seconds=0.2)
        api.create(c.SESSION_PLURAL, http_session("ssrf", hostile.url, "platform", "token"))

        unhealthy = wait_session(api, "ssrf", lambda o: (condition(o, c.COND_HEALTHY) or {}).get("status") == "False")
        expected = f"endpoint {target!r} reported by the platform is not on an allowed origin"
        assert expected in condition(unhealthy, c.COND_HEALTHY)["message"]
        assert expected in unhealthy["status"]["health"]["message"]
        assert "endpoint" not in (unhealthy["status"].get("provider") or {})  # where the gateway would read it
        assert target not in json.dumps(unhealthy["status"]["provider"])
        assert (condition(unhealthy, c.COND_READY) or {}).get("status") != "True"

        # Several passes later (the platform is asked again each time), still no request there.
        seen = len(hostile.requests)
        wait_until(lambda: len(hostile.requests) >= seen + 2, what="the platform observed again")
        obj = api.get(c.SESSION_PLURAL, NAMESPACE, "ssrf")
        assert "endpoint" not in (obj["status"].get("provider") or {})
        assert attacker.requests == []


def test_a_runtime_endpoint_that_redirects_elsewhere_is_not_followed(api, attacker, start_operator):
    with RecordingServer(redirect_to=f"{attacker.url}/admin/secrets") as hostile:
        hostile.endpoint = f"{hostile.url}/rt"  # its own origin: allowed
        secret(api, "platform", "token", TOKEN)
        start_operator(http_platforms=(hostile.url,), info_refresh_seconds=0.2)
        api.create(c.SESSION_PLURAL, http_session("redirected", hostile.url, "platform", "token"))

        wait_session(api, "redirected", lambda o: ((o or {}).get("status", {}).get("provider") or {}).get("endpoint")
                     == hostile.endpoint)
        wait_until(lambda: len([r for r in hostile.requests if r["path"].startswith("/rt/")]) >= 2,
                   what="the operator reading the session's info (redirected)")
        assert attacker.requests == []
