"""The operator's Kubernetes API client: current kubeconfig or in-cluster config, our user agent."""

from __future__ import annotations

import logging
import os
import ssl
import urllib.parse
import urllib.request
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from agent_sessions import __version__
from .decoding import decode

USER_AGENT = f"agent-session-operator/{__version__}"

# kubernetes_asyncio logs every response body at DEBUG: Secrets' data, TokenReviews with the
# caller's token. A --log-level DEBUG (or kopf's --debug) must never put those in a log.
logging.getLogger("kubernetes_asyncio.client.rest").setLevel(logging.INFO)


async def make_api_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """An ApiClient for the cluster the operator runs against.

    In a pod (service account mounted, no kubeconfig given) the in-cluster config is used;
    otherwise `kubeconfig` or `$KUBECONFIG` or `~/.kube/config`, as kubectl does.
    """
    configuration = client.Configuration()
    in_cluster = kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ and not os.environ.get("KUBECONFIG")
    if in_cluster:
        config.load_incluster_config(client_configuration=configuration)
    else:
        await config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    if not configuration.proxy:
        configuration.proxy = environment_proxy(configuration.host)
    return api_client(configuration)


def api_client(configuration: client.Configuration) -> client.ApiClient:
    """An ApiClient on `configuration` (its proxy already decided), with our user agent.

    kubernetes_asyncio's session trusts the environment, so aiohttp looks up the proxy variables
    and ~/.netrc in a thread for every request: a fifth of the operator's CPU in a burst of new
    sessions (py-spy, on a real API server). The proxy is looked up once (`make_api_client`), as
    client-go does; credentials come from the configuration only. (aiohttp has no setter for it.)
    """
    api = client.ApiClient(configuration)
    api.user_agent = USER_AGENT
    api.rest_client.pool_manager._trust_env = False  # noqa: SLF001
    return api


def environment_proxy(server: str | None) -> str | None:
    """The proxy `HTTPS_PROXY`/`HTTP_PROXY` name for `server` (None if none, or `NO_PROXY` excludes it)."""
    if not server:
        return None
    url = urllib.parse.urlsplit(server)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(url.scheme)
    if not proxy or urllib.request.proxy_bypass_environment(url.hostname or "", proxies):
        return None
    return proxy


async def connection_fields(api: client.ApiClient) -> dict:
    """The server, TLS and credential settings of `api`, for other HTTP clients of the operator
    (kopf's watches) so that every request uses the same identity."""
    conf = api.configuration
    token = await conf.get_api_key_with_prefix("authorization") or await conf.get_api_key_with_prefix("BearerToken")
    headers = {"User-Agent": USER_AGENT}
    if token:
        headers["Authorization"] = token if " " in token else f"Bearer {token}"
    elif conf.username and conf.password:
        headers["Authorization"] = conf.get_basic_auth_token()
    return {
        "server": conf.host,
        "headers": headers,
        "ca_path": conf.ssl_ca_cert,
        "cert_path": conf.cert_file,
        "key_path": conf.key_file,
        "verify": bool(conf.verify_ssl),
    }


async def http_session(api: client.ApiClient, user_agent: str = USER_AGENT) -> tuple[aiohttp.ClientSession, str]:
    """An aiohttp session with `api`'s TLS and credentials (kubeconfig, in-cluster or exec plugin,
    as kubectl would) and `user_agent`, and the server it talks to: for the operator's watches
    (its informers, kopf's)."""
    fields = await connection_fields(api)
    fields["headers"]["User-Agent"] = user_agent
    ssl_context: ssl.SSLContext | bool = False
    if fields["verify"]:
        ssl_context = ssl.create_default_context(cafile=fields["ca_path"])
        if fields["cert_path"]:
            ssl_context.load_cert_chain(fields["cert_path"], fields["key_path"])
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ssl=ssl_context), headers=fields["headers"])
    return session, fields["server"]


async def call_json(method: Any, *args: Any, **kwargs: Any) -> Any:
    """`method` (a `kubernetes_asyncio` API method) called for the JSON it answers with.

    The client otherwise turns a response into its model classes, which the operator turns back
    into a dict: for a created pod, the larger part of the request's CPU. A failure raises the
    `ApiException` the client would have raised (status, reason, body, headers). A stand-in that
    answers with a dict (tests) is taken as it is."""
    response = await method(*args, _preload_content=False, **kwargs)
    if not (hasattr(response, "read") and hasattr(response, "status")):
        return response
    try:
        data = await response.read()
    finally:
        response.release()
    if not 200 <= response.status <= 299:
        error = ApiException(status=response.status, reason=response.reason)
        error.body = data.decode("utf-8", errors="replace")
        error.headers = response.headers
        raise error
    return decode(data) if data else None
