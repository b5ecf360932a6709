"""The session commands' calls to the Kubernetes API: read, patch and watch one AgentSession."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from agent_sessions.api import constants as c
from agent_sessions.cli.failures import CommandError
from agent_sessions.k8s.status import MERGE_PATCH

API_TIMEOUT = aiohttp.ClientTimeout(sock_connect=10)
"""A connection to the API server that does not open in 10 s will not: say so instead of hanging
(the client's default is no timeout at all). Reads keep none: a log is followed for hours."""
WATCH_SECONDS = 60
"""A `--wait` watch is renewed this often (a server-side timeout: a silently dead connection ends)."""


async def session_or_none(api: client.ApiClient, namespace: str, name: str) -> dict | None:
    try:
        return await client.CustomObjectsApi(api).get_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace, c.SESSION_PLURAL, name, _request_timeout=API_TIMEOUT
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


async def session_changes(api: client.ApiClient, namespace: str, name: str) -> AsyncIterator[dict | None]:
    """The session now, then after each change, until it is deleted (None): a watch from the
    version read, read again whenever the watch ends (its server-side timeout, a 410 Expired)."""
    objects = client.CustomObjectsApi(api)
    while True:
        obj = await session_or_none(api, namespace, name)
        yield obj
        if obj is None:
            return
        try:
            async with watch.Watch().stream(
                objects.list_namespaced_custom_object, c.GROUP, c.VERSION, namespace, c.SESSION_PLURAL,
                field_selector=f"metadata.name={name}", resource_version=obj["metadata"]["resourceVersion"],
                timeout_seconds=WATCH_SECONDS, _request_timeout=API_TIMEOUT,
            ) as events:
                async for event in events:
                    if event["type"] == "DELETED":
                        yield None
                        return
                    if event["type"] in ("ADDED", "MODIFIED"):
                        yield event["raw_object"]
        except ApiException as exc:
            if exc.status != 410:
                raise


async def read_session(api: client.ApiClient, namespace: str, name: str) -> dict:
    obj = await session_or_none(api, namespace, name)
    if obj is None:
        raise CommandError(f'agentsession "{name}" not found in namespace "{namespace}"')
    return obj


async def patch_session(api: client.ApiClient, namespace: str, name: str, patch: dict) -> dict:
    return await client.CustomObjectsApi(api).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.SESSION_PLURAL, name, patch, _content_type=MERGE_PATCH,
        _request_timeout=API_TIMEOUT,
    )
