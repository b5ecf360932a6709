"""The operator's Kubernetes API client: current kubeconfig or in-cluster config, our user agent."""

from __future__ import annotations

import os

from kubernetes_asyncio import client, config

from agent_sessions import __version__

USER_AGENT = f"agent-session-operator/{__version__}"


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
    api = client.ApiClient(configuration)
    api.user_agent = USER_AGENT
    return api


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
