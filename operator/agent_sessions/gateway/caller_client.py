"""Calling the Kubernetes API *as the caller*: with the caller's own bearer token.

Why: the gateway's own ServiceAccount never writes AgentSessions (`session_directory`, the chart's
gateway RBAC). What a user asks to change — stop, start, restart a session — is therefore sent to
the API server with the user's token, so that the cluster's RBAC and admission decide exactly as
for `kubectl` or `agent-sessions stop`, and the API server's audit log names the user. The
gateway's SubjectAccessReview before it only makes the refusal a clear 403 `forbidden`.

The client has the gateway's connection settings (server, CA, TLS server name, proxy) and none of
its credentials: no token, no client certificate (a certificate would authenticate the request as
the gateway whatever token it carries), no refresh hook. The token is never logged nor put in an
error: failures are described by their HTTP status only.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from kubernetes_asyncio import client

from agent_sessions.k8s.client import api_client

from .errors import FORBIDDEN, INVALID_REQUEST, SESSION_NOT_FOUND, UNAUTHORIZED, GatewayError
from .kube_errors import kube_failure


def caller_configuration(gateway: client.Configuration, token: str) -> client.Configuration:
    """The gateway's connection settings with `token` as the only credential."""
    if not token:
        raise ValueError("a caller's client needs the caller's token")  # never the server's token-less default
    configuration = client.Configuration(host=gateway.host)
    configuration.ssl_ca_cert = gateway.ssl_ca_cert
    configuration.verify_ssl = gateway.verify_ssl
    configuration.disable_strict_ssl_verification = gateway.disable_strict_ssl_verification
    configuration.tls_server_name = gateway.tls_server_name
    configuration.assert_hostname = gateway.assert_hostname
    configuration.proxy = gateway.proxy
    configuration.proxy_headers = gateway.proxy_headers
    configuration.api_key = {"BearerToken": f"Bearer {token}"}
    return configuration


@contextlib.asynccontextmanager
async def caller_api(gateway: client.ApiClient, token: str) -> AsyncIterator[client.ApiClient]:
    """An ApiClient that authenticates as the caller of `token`, closed on exit."""
    api = api_client(caller_configuration(gateway.configuration, token))
    try:
        yield api
    finally:
        await api.close()


def caller_failure(exc: BaseException, doing: str, session: Mapping[str, Any] | None) -> GatewayError:
    """What the API server refusing a request made with the caller's token means: its 401/403
    are the caller's (not the gateway's deployment error, as in `kube_errors`), 404 is a missing
    session, 409/422 an invalid request; the rest is the API server's trouble (503)."""
    status = getattr(exc, "status", None)
    if status == 401:
        return GatewayError(UNAUTHORIZED, "the Kubernetes API did not accept the bearer token", session=session)
    if status == 403:
        return GatewayError(FORBIDDEN, f"the Kubernetes API refused to let the caller {doing}", session=session)
    if status == 404:
        where = f"{session['namespace']}/{session['name']}" if session else "the session"
        return GatewayError(SESSION_NOT_FOUND, f"there is no agentsession {where}", session=session)
    if status in (409, 422):
        return GatewayError(INVALID_REQUEST, f"the Kubernetes API refused to {doing} (HTTP {status})",
                            session=session)
    return kube_failure(exc, doing).with_session(session)

